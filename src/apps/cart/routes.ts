import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest, preValidationAsyncHookHandler } from 'fastify'
import { Type } from 'typebox'
import { UnauthorizedError } from '../../core/errors.js'
import { Problem } from '../../core/http/schemas.js'
import { AddItemBody, CartSchema, CouponBody, CreatedCartSchema, ItemParams, UpdateItemBody } from './schemas.js'
import type { CartService } from './service.js'

/** A signed-in user, or a guest with the token of their cart. */
const cartOwner: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { cartToken: [] }]

/** The X-Cart-Token header, or null. */
export function cartTokenOf(request: Pick<FastifyRequest, 'headers'>): string | null {
  const header = request.headers['x-cart-token']
  const token = Array.isArray(header) ? header[0] : header
  return token ? token : null
}

/** 401 before any 422: the caller must be signed in or show a cart token. Whose cart it is, the service decides (404). */
const requireCartOwner: preValidationAsyncHookHandler = async function (request) {
  if (!request.actor && !cartTokenOf(request)) throw new UnauthorizedError('not_authenticated', 'Sign in, or send the X-Cart-Token of your cart.')
}

export function cartRoutes(cart: CartService): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/api/cart/', {
      // The answer carries the guest token: it is never stored for Idempotency-Key replays (a
      // retried request makes another empty cart, which expires; a user's cart is found again anyway).
      config: { idempotency: false },
      schema: {
        tags: ['cart'],
        summary: "A guest's new cart (with its token, shown once), or the signed-in user's open cart",
        description: 'A guest always gets a new cart: 201 with `token`, to send as `X-Cart-Token`. A signed-in user gets their one open cart: 201 when it was created now, 200 when it already existed (`token` is null).',
        response: { 200: CreatedCartSchema, 201: CreatedCartSchema },
      },
    }, async (request, reply) => {
      const { cart: opened, created } = await cart.openCart(request.ctx)
      return reply.code(created ? 201 : 200).send(opened)
    })

    app.get('/api/cart/', {
      preValidation: requireCartOwner,
      schema: {
        tags: ['cart'],
        summary: 'The cart, priced from the catalog now',
        description: 'Prices, stock and for-sale flags are read live. Lines no longer for sale are shown with `for_sale: false` and count in no total. 404 when the cart is no longer open (checked out, merged, expired) or the token matches none.',
        security: cartOwner,
        response: { 200: CartSchema, 401: Problem, 404: Problem },
      },
    }, async (request) => cart.getCart(request.ctx, cartTokenOf(request)))

    app.post('/api/cart/items/', {
      preValidation: requireCartOwner,
      schema: {
        tags: ['cart'],
        summary: 'Add a variant to the cart (adds to its line when it has one)',
        description: '409 `insufficient_stock` (with `sku`, `available`, `in_cart`) when the cart would hold more than is available; 409 `not_for_sale`; 404 for an unknown SKU; 422 beyond 1000 per line or 100 lines (`too_many_lines`).',
        security: cartOwner,
        body: AddItemBody,
        response: { 201: CartSchema, 401: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request, reply) => reply.code(201).send(await cart.addItem(request.ctx, cartTokenOf(request), request.body)))

    app.patch('/api/cart/items/:id/', {
      preValidation: requireCartOwner,
      schema: {
        tags: ['cart'],
        summary: "Change a line's quantity",
        description: 'Lowering a quantity is always accepted; raising it beyond the available stock is a 409 `insufficient_stock`. A line no longer for sale can only be removed (409 `not_for_sale`).',
        security: cartOwner,
        params: ItemParams,
        body: UpdateItemBody,
        response: { 200: CartSchema, 401: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request) => cart.updateItem(request.ctx, cartTokenOf(request), request.params.id, request.body))

    app.delete('/api/cart/items/:id/', {
      preValidation: requireCartOwner,
      schema: { tags: ['cart'], summary: 'Remove a line', security: cartOwner, params: ItemParams, response: { 204: Type.Null(), 401: Problem, 404: Problem, 422: Problem } },
    }, async (request, reply) => {
      await cart.removeItem(request.ctx, cartTokenOf(request), request.params.id)
      return reply.code(204).send(null)
    })

    app.post('/api/cart/coupon/', {
      preValidation: requireCartOwner,
      schema: {
        tags: ['cart'],
        summary: 'Apply a coupon code to the cart',
        description: 'Validated against the cart as it is now (422 with the reason when the code is unknown, expired, used up or the subtotal is too low). The code stays on the cart; each read validates it again and shows `coupon_error` when it gives no discount.',
        security: cartOwner,
        body: CouponBody,
        response: { 200: CartSchema, 401: Problem, 404: Problem, 422: Problem },
      },
    }, async (request) => cart.applyCoupon(request.ctx, cartTokenOf(request), request.body.code))

    app.delete('/api/cart/coupon/', {
      preValidation: requireCartOwner,
      schema: { tags: ['cart'], summary: 'Remove the coupon from the cart', security: cartOwner, response: { 204: Type.Null(), 401: Problem, 404: Problem } },
    }, async (request, reply) => {
      await cart.removeCoupon(request.ctx, cartTokenOf(request))
      return reply.code(204).send(null)
    })
  }
}
