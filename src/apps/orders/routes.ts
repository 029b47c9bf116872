import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AuthGuards } from '../../core/auth.js'
import { pageUrl } from '../../core/http/pagination.js'
import { Page, Problem } from '../../core/http/schemas.js'
import type { Checkout } from './checkout.js'
import { CancelBody, CheckoutBody, NumberParams, OrderListQuery, OrderLookupQuery, OrderSchema, TransitionBody } from './schemas.js'
import type { OrdersService } from './service.js'

const bearer = [{ bearerAuth: [] }]
const cartToken = (header: string | string[] | undefined) => (typeof header === 'string' && header.length > 0 ? header : null)

export function checkoutRoutes(checkout: Checkout): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/api/checkout/', {
      config: { idempotency: 'required' },
      schema: {
        tags: ['checkout'],
        summary: 'Turn the cart into an order (Idempotency-Key required)',
        description:
          'The cart of the signed-in user, or the guest cart named by `X-Cart-Token`. Stock is reserved until the order is paid or `ORDER_RESERVATION_MINUTES` pass; a line short of stock is a 409 and nothing is kept.',
        body: CheckoutBody,
        response: { 201: OrderSchema, 400: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request, reply) => {
      const actor = request.ctx.actor
      const owner = { userId: actor?.kind === 'user' ? actor.id : null, token: cartToken(request.headers['x-cart-token']) }
      return reply.code(201).send(await checkout.checkout(request.ctx, owner, request.body))
    })
  }
}

export function orderRoutes(orders: OrdersService, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/orders/', {
      preValidation: guards.requireUser,
      schema: {
        tags: ['orders'],
        summary: 'Your orders, newest first (staff: every order, with status and email filters)',
        security: bearer,
        querystring: OrderListQuery,
        response: { 200: Page(OrderSchema), 401: Problem, 403: Problem, 422: Problem },
      },
    }, async (request) => {
      const page = await orders.list(request.ctx, request.query)
      return { count: null, next: pageUrl(request, page.next_cursor), previous: null, results: page.results }
    })

    app.get('/api/orders/:number/', {
      schema: {
        tags: ['orders'],
        summary: "An order: its owner, staff, or a guest giving the order's email",
        params: NumberParams,
        querystring: OrderLookupQuery,
        response: { 200: OrderSchema, 404: Problem },
      },
    }, async (request) => orders.get(request.ctx, request.params.number, { email: request.query.email }))

    app.post('/api/orders/:number/cancel/', {
      // A cancel needs no body: none at all is read as {} rather than refused as not an object.
      preValidation: [guards.requireUser, async (request) => void (request.body ??= {})],
      schema: {
        tags: ['orders'],
        summary: 'Cancel an order (its owner before it ships, or staff): stock goes back, a paid order is refunded',
        security: bearer,
        params: NumberParams,
        body: CancelBody,
        response: { 200: OrderSchema, 401: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request) => orders.cancel(request.ctx, request.params.number, request.body?.note))

    app.post('/api/orders/:number/transition/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: ['orders'],
        summary: 'Move an order along its state machine (staff); any other move is a 409',
        security: bearer,
        params: NumberParams,
        body: TransitionBody,
        response: { 200: OrderSchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request) => orders.transition(request.ctx, request.params.number, request.body))
  }
}

// The internal routes answer under both prefixes, like every internal route (the original served /internal/ too).
const INTERNAL_PREFIXES = ['/api/internal', '/internal'] as const
const serviceToken = [{ serviceToken: [] }]

/** Orders for other services (X-Service-Token; the guard of core/service-auth runs first). */
export function internalOrderRoutes(orders: OrdersService): FastifyPluginAsyncTypebox {
  return async (app) => {
    for (const prefix of INTERNAL_PREFIXES) {
      app.get(`${prefix}/orders/:number/`, {
        schema: { tags: ['internal'], summary: 'A whole order for another service', security: serviceToken, params: NumberParams, response: { 200: OrderSchema, 401: Problem, 403: Problem, 404: Problem } },
      }, async (request) => orders.get(request.ctx, request.params.number))

      app.post(`${prefix}/orders/:number/status/`, {
        schema: {
          tags: ['internal'],
          summary: 'Move an order along its state machine on behalf of a service; any other move is a 409',
          security: serviceToken,
          params: NumberParams,
          body: TransitionBody,
          response: { 200: OrderSchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem },
        },
      }, async (request) => orders.transition(request.ctx, request.params.number, request.body))
    }
  }
}
