import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { AuthGuards } from '../../core/auth.js'
import type { Ctx } from '../../core/context.js'
import { pageUrl } from '../../core/http/pagination.js'
import { Problem } from '../../core/http/schemas.js'
import { IdParams, SearchQuerystring, SearchResultSchema, SynonymBody, SynonymSchema } from './schemas.js'
import { pageJson, sendRendered } from '../products/service.js'
import type { SearchService } from './service.js'
import type { Synonyms } from './synonyms.js'

const bearer = [{ bearerAuth: [] }]

/** Told of every first page of a search the API answered (analytics). */
export type OnSearch = (ctx: Ctx, query: string, resultCount: number | null) => void

export function searchRoutes(search: SearchService, synonyms: Synonyms, guards: AuthGuards, onSearch?: OnSearch): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/search/', {
      schema: {
        tags: ['search'],
        summary: 'Full-text product search with facets and highlights',
        description: 'Same filters as the product list. Words are matched as prefixes, corrected against the catalog when unknown (`corrections`), and expanded with synonyms.',
        querystring: SearchQuerystring,
        // 503: OpenSearch (when configured) is down; the search answers again once it is back.
        response: { 200: SearchResultSchema, 422: Problem, 503: Problem },
      },
    }, async (request, reply) => {
      const page = await search.search(request.ctx, request.query)
      if (onSearch && !request.query.cursor && request.query.q.trim()) onSearch(request.ctx, request.query.q.trim(), page.count)
      const head = { count: page.count, next: pageUrl(request, page.next), previous: pageUrl(request, page.previous) }
      return sendRendered(reply, pageJson(head, page.results, { facets: page.facets, corrections: page.corrections }))
    })

    app.get('/api/search/synonyms/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['search'], summary: 'Synonym groups (staff)', security: bearer, response: { 200: Type.Array(SynonymSchema), 401: Problem, 403: Problem } },
    }, async (request) => synonyms.list(request.ctx))

    app.post('/api/search/synonyms/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['search'], summary: 'Add a synonym group, e.g. ["tee", "t-shirt"] (staff)', security: bearer, body: SynonymBody, response: { 201: SynonymSchema, 401: Problem, 403: Problem, 422: Problem } },
    }, async (request, reply) => reply.code(201).send(await synonyms.create(request.ctx, request.body.terms)))

    app.put('/api/search/synonyms/:id/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['search'], summary: "Replace a synonym group's terms (staff)", security: bearer, params: IdParams, body: SynonymBody, response: { 200: SynonymSchema, 401: Problem, 403: Problem, 404: Problem, 422: Problem } },
    }, async (request) => synonyms.update(request.ctx, request.params.id, request.body.terms))

    app.delete('/api/search/synonyms/:id/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['search'], summary: 'Delete a synonym group (staff)', security: bearer, params: IdParams, response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem } },
    }, async (request, reply) => {
      await synonyms.remove(request.ctx, request.params.id)
      return reply.code(204).send(null)
    })
  }
}
