/**
 * Review routes under /api/products: anyone reads a product's reviews; a signed-in user writes,
 * edits and deletes their own (`mine`); staff delete any by id (a customer gets 403 there).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { AuthGuards } from '../../core/auth.js'
import { pageUrl } from '../../core/http/pagination.js'
import { Page, Problem } from '../../core/http/schemas.js'
import { CreateReviewBody, ProductSlugParams, ReviewIdParams, ReviewListQuery, ReviewSchema, UpdateReviewBody } from './review-schemas.js'
import type { Reviews } from './reviews.js'

const bearer = [{ bearerAuth: [] }]
const tags = ['reviews']

export function reviewRoutes(reviews: Reviews, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/:slug/reviews/', {
      schema: {
        tags,
        summary: "A product's reviews, newest first",
        description: '`count` is the number of reviews of the product; follow `next` for the following page.',
        params: ProductSlugParams,
        querystring: ReviewListQuery,
        response: { 200: Page(ReviewSchema), 404: Problem, 422: Problem },
      },
    }, async (request) => {
      const page = await reviews.list(request.ctx, request.params.slug, request.query)
      return { count: page.count, next: pageUrl(request, page.next_cursor), previous: null, results: page.results }
    })

    app.post('/:slug/reviews/', {
      preValidation: guards.requireUser,
      schema: {
        tags,
        summary: 'Review a product (one review per user and product: a second one is a 409)',
        security: bearer,
        params: ProductSlugParams,
        body: CreateReviewBody,
        response: { 201: ReviewSchema, 401: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request, reply) => reply.code(201).send(await reviews.create(request.ctx, request.params.slug, request.actor!.id, request.body)))

    app.get('/:slug/reviews/mine/', {
      preValidation: guards.requireUser,
      schema: { tags, summary: 'Your review of a product', security: bearer, params: ProductSlugParams, response: { 200: ReviewSchema, 401: Problem, 404: Problem } },
    }, async (request) => reviews.mine(request.ctx, request.params.slug, request.actor!.id))

    app.patch('/:slug/reviews/mine/', {
      preValidation: guards.requireUser,
      schema: {
        tags,
        summary: 'Edit your review of a product',
        security: bearer,
        params: ProductSlugParams,
        body: UpdateReviewBody,
        response: { 200: ReviewSchema, 401: Problem, 404: Problem, 422: Problem },
      },
    }, async (request) => reviews.update(request.ctx, request.params.slug, request.actor!.id, request.body))

    app.delete('/:slug/reviews/mine/', {
      preValidation: guards.requireUser,
      schema: { tags, summary: 'Delete your review of a product', security: bearer, params: ProductSlugParams, response: { 204: Type.Null(), 401: Problem, 404: Problem } },
    }, async (request, reply) => {
      await reviews.remove(request.ctx, request.params.slug, request.actor!.id)
      return reply.code(204).send(null)
    })

    // Staff only, through the guard, so REQUIRE_STAFF_MFA applies; authors use /mine/.
    app.delete('/:slug/reviews/:id/', {
      preValidation: guards.requireStaff,
      schema: {
        tags,
        summary: 'Delete any review of a product (staff moderation)',
        security: bearer,
        params: ReviewIdParams,
        response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem, 422: Problem },
      },
    }, async (request, reply) => {
      await reviews.removeById(request.ctx, request.params.slug, request.params.id)
      return reply.code(204).send(null)
    })
  }
}
