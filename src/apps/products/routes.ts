import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AuthGuards } from '../../core/auth.js'
import { Problem } from '../../core/http/schemas.js'
import { Type } from 'typebox'
import type { Categories } from './categories.js'
import { CategorySchema, CreateCategoryBody, SkuParams, SlugParams, StockChangeBody, StockSchema, UpdateCategoryBody } from './schemas.js'
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
