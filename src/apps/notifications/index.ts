import type { FastifyInstance } from 'fastify'
import type { AuthGuards } from '../../core/auth.js'
import type { Marketing } from './marketing.js'
import { marketingRoutes } from './marketing-routes.js'
import { notificationRoutes } from './routes.js'
import type { NotificationsService } from './service.js'

/** /api/notifications/: the in-app inbox, notification preferences, staff broadcasts and the unsubscribe link. */
export async function notificationsApp(app: FastifyInstance, deps: { notifications: NotificationsService; marketing: Marketing; guards: AuthGuards }): Promise<void> {
  await app.register(notificationRoutes(deps.notifications, deps.guards))
  await app.register(marketingRoutes(deps.marketing, deps.guards))
}
