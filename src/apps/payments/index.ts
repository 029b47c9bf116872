import type { FastifyInstance } from 'fastify'
import type { Settings } from '../../config/index.js'
import type { AuthGuards } from '../../core/auth.js'
import type { Logger } from '../../core/logging.js'
import type { BusinessMetrics } from '../../core/metrics.js'
import { createDummyProvider } from './dummy-provider.js'
import type { PaymentProvider } from './provider.js'
import { paymentRoutes, webhookRoutes } from './routes.js'
import type { PaymentsService } from './service.js'
import { createStripeProvider } from './stripe-provider.js'

/** Stripe when STRIPE_SECRET_KEY is set, else the built-in dummy provider. */
export async function createPaymentProvider(settings: Settings, log: Logger): Promise<PaymentProvider> {
  const { secretKey, publishableKey, apiBase } = settings.stripe
  if (secretKey) return createStripeProvider({ secretKey, publishableKey, apiBase }, log)
  if (settings.environment === 'production') log.warn('STRIPE_SECRET_KEY is not set: payments use the dummy provider, which cannot be confirmed in production')
  return createDummyProvider()
}

/** /api/payments/ and Stripe's webhook. */
export async function paymentsApp(app: FastifyInstance, deps: { payments: PaymentsService; guards: AuthGuards; webhookSecret: string | null; metrics: Pick<BusinessMetrics, 'webhookReceived'> }): Promise<void> {
  await app.register(paymentRoutes(deps.payments, deps.guards))
  await app.register(webhookRoutes(deps.payments, deps.webhookSecret, deps.metrics))
}
