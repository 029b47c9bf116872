import type { FastifyInstance } from 'fastify'
import type { AuthGuards } from '../../core/auth.js'
import type { Checkout } from './checkout.js'
import { checkoutRoutes, internalOrderRoutes, orderRoutes } from './routes.js'
import type { OrdersService } from './service.js'

/** /api/checkout/, /api/orders/ and the internal order routes. */
export async function ordersApp(app: FastifyInstance, deps: { orders: OrdersService; checkout: Checkout; guards: AuthGuards }): Promise<void> {
  await app.register(checkoutRoutes(deps.checkout))
  await app.register(orderRoutes(deps.orders, deps.guards))
  await app.register(internalOrderRoutes(deps.orders))
}
