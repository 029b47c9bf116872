import type { FastifyInstance } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Ctx } from '../../core/context.js'
import type { Platform } from '../../core/platform.js'
import { pricingRoutes, type PricingRouteDeps } from './pricing-routes.js'
import { cartRoutes, cartTokenOf } from './routes.js'
import type { CartService } from './service.js'
import { createCartTasks } from './tasks.js'

/** The cart: /api/cart/ (guest and user carts, lines, coupon) and the cart.expire_carts task. */
export async function cartApp(app: FastifyInstance, platform: Platform, deps: { cart: CartService; pricing: PricingRouteDeps }): Promise<void> {
  for (const task of createCartTasks(deps.cart, platform.context)) platform.tasks.register(task)
  // Full paths: the cart lives at /api/cart/ itself, with its trailing slash documented.
  await app.register(cartRoutes(deps.cart))
  // Coupons, shipping methods and tax rates: full paths (/api/coupons/, /api/checkout/shipping-methods/, /api/tax-rates/).
  await app.register(pricingRoutes(deps.pricing))
}

/**
 * The accounts app's sign-in hook: a sign-in whose request carries X-Cart-Token merges that guest
 * cart into the user's cart. Passed to accounts at composition, so accounts never imports the cart.
 */
export function mergeCartOnSignIn(cart: Pick<CartService, 'mergeGuestCart'>) {
  return async (ctx: Ctx, userId: string, headers: IncomingHttpHeaders): Promise<void> => {
    const token = cartTokenOf({ headers })
    if (token) await cart.mergeGuestCart(ctx, token, userId)
  }
}
