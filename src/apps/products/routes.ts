import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { isStaff, type AuthGuards } from '../../core/auth.js'
import { pageUrl } from '../../core/http/pagination.js'
import { Page, Problem } from '../../core/http/schemas.js'
import { Type } from 'typebox'
import type { SearchService } from '../search/service.js'
import type { Catalog } from './catalog.js'
import { pageJson, sendRendered } from './rendered.js'
import type { Categories } from './categories.js'
import {
  CategorySchema,
  CreateCategoryBody,
  CreateProductBody,
  InternalAdjustBody,
  ProductListQuery,
  ProductSchema,
  SkuParams,
  SlugParams,
  StockChangeBody,
  StockSchema,
  UpdateCategoryBody,
  UpdateProductBody,
} from './schemas.js'
import type { ProductsService } from './service.js'

const bearer = [{ bearerAuth: [] }]

export function inventoryRoutes(products: ProductsService, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/variants/:sku/stock/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['inventory'], summary: "A variant's stock (staff)", security: bearer, params: SkuParams, response: { 200: StockSchema, 401: Problem, 403: Problem, 404: Problem } },
    }, async (request) => products.getStock(request.ctx, request.params.sku))

    app.patch('/variants/:sku/stock/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: ['inventory'],
        summary: "Set or change a variant's stock (staff); every change is recorded in the stock ledger",
        security: bearer,
        params: SkuParams,
        body: StockChangeBody,
        response: { 200: StockSchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request) => products.adjustStock(request.ctx, request.params.sku, request.body))
  }
}

export function categoryRoutes(categories: Categories, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/categories/', {
      schema: { tags: ['catalog'], summary: 'The category tree', response: { 200: Type.Array(CategorySchema) } },
    }, async (request) => categories.tree(request.ctx))

    app.post('/api/categories/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['catalog'], summary: 'Create a category (staff)', security: bearer, body: CreateCategoryBody, response: { 201: CategorySchema, 401: Problem, 403: Problem, 409: Problem, 422: Problem } },
    }, async (request, reply) => reply.code(201).send(await categories.create(request.ctx, request.body)))

    app.get('/api/categories/:slug/', {
      schema: { tags: ['catalog'], summary: 'One category with its subtree', params: SlugParams, response: { 200: CategorySchema, 404: Problem } },
    }, async (request) => categories.get(request.ctx, request.params.slug))

    app.patch('/api/categories/:slug/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: ['catalog'],
        summary: 'Rename or move a category (staff); a move under its own subtree is a 409',
        security: bearer,
        params: SlugParams,
        body: UpdateCategoryBody,
        response: { 200: CategorySchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request) => categories.update(request.ctx, request.params.slug, request.body))

    app.delete('/api/categories/:slug/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['catalog'], summary: 'Delete a category without subcategories (staff)', security: bearer, params: SlugParams, response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem, 409: Problem } },
    }, async (request, reply) => {
      await categories.remove(request.ctx, request.params.slug)
      return reply.code(204).send(null)
    })
  }
}


export function catalogRoutes(catalog: Catalog, search: SearchService, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/products/', {
      schema: {
        tags: ['catalog'],
        summary: 'Active products: filters, ordering and keyset pages',
        description: '`price` is a product\'s lowest variant price; `min_price`/`max_price` filter on it. `count` is given on the first page only. With `search` and no `ordering`, results are ranked by relevance.',
        querystring: ProductListQuery,
        response: { 200: Page(ProductSchema), 422: Problem, 503: Problem },
      },
    }, async (request, reply) => {
      const { search: text, ...params } = request.query
      const page = text?.trim() ? await search.productList(request.ctx, { ...params, search: text }) : await catalog.list(request.ctx, params)
      return sendRendered(reply, pageJson({ count: page.count, next: pageUrl(request, page.next), previous: pageUrl(request, page.previous) }, page.results))
    })

    app.post('/api/products/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['catalog'], summary: 'Create a product with its variants (staff)', security: bearer, body: CreateProductBody, response: { 201: ProductSchema, 401: Problem, 403: Problem, 409: Problem, 422: Problem } },
    }, async (request, reply) => sendRendered(reply, await catalog.create(request.ctx, request.body), 201))

    app.get('/api/products/:slug/', {
      schema: { tags: ['catalog'], summary: 'One product with its variants, images and live stock (staff also see inactive ones)', params: SlugParams, response: { 200: ProductSchema, 404: Problem } },
    }, async (request, reply) => sendRendered(reply, await catalog.get(request.ctx, request.params.slug, { staff: isStaff(request.ctx.actor) })))

    app.patch('/api/products/:slug/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: ['catalog'],
        summary: 'Change a product (staff); `variants`, when given, is the full list',
        security: bearer,
        params: SlugParams,
        body: UpdateProductBody,
        response: { 200: ProductSchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request, reply) => sendRendered(reply, await catalog.update(request.ctx, request.params.slug, request.body)))

    app.delete('/api/products/:slug/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['catalog'], summary: 'Soft-delete a product (staff): orders and reviews keep it, shoppers no longer see it', security: bearer, params: SlugParams, response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem } },
    }, async (request, reply) => {
      await catalog.remove(request.ctx, request.params.slug)
      return reply.code(204).send(null)
    })
  }
}

const INTERNAL_PREFIXES = ['/api/internal', '/internal'] as const

/** Stock changes by other services (X-Service-Token), recorded in the ledger with the service as actor. */
export function internalInventoryRoutes(products: ProductsService): FastifyPluginAsyncTypebox {
  return async (app) => {
    for (const prefix of INTERNAL_PREFIXES) {
      app.post(`${prefix}/inventory/adjust/`, {
        schema: {
          tags: ['internal'],
          summary: "Change a variant's on-hand stock by a delta, with a reason (e.g. a warehouse count)",
          security: [{ serviceToken: [] }],
          body: InternalAdjustBody,
          response: { 200: StockSchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem },
        },
      }, async (request) => products.adjustStock(request.ctx, request.body.sku, { delta: request.body.delta, reason: request.body.reason }))
    }
  }
}
