import type { FastifyInstance } from 'fastify'
import type { Settings } from '../../config/index.js'
import type { AuthGuards } from '../../core/auth.js'
import { webhookRoutes } from './routes.js'
import type { WebhooksConfig, WebhooksService } from './service.js'

export { registerWebhooksTasks } from './tasks.js'

/** The service's settings: WEBHOOK_* plus the shop name (User-Agent) and SECRET_KEY (sealing secrets). */
export const webhooksConfigOf = (settings: Settings): WebhooksConfig => ({ ...settings.webhooks, secretKey: settings.secretKey, shopName: settings.auth.shopName })

/** /api/webhooks/: outgoing webhook endpoints and their delivery logs (staff). */
export async function webhooksApp(app: FastifyInstance, deps: { webhooks: WebhooksService; guards: AuthGuards }): Promise<void> {
  await app.register(webhookRoutes(deps.webhooks, deps.guards))
}
