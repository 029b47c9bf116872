/**
 * Stripe through its official SDK: one PaymentIntent per order attempt (automatic payment methods,
 * the order in metadata), refunds against the intent, each write with an idempotency key.
 * STRIPE_API_BASE points the SDK at another base URL (a local stand-in in tests).
 */
import type { Stripe as StripeClient } from 'stripe'
import type { Logger } from '../../core/logging.js'
import { ProviderRejectedError, ProviderUnavailableError, type PaymentProvider, type ProviderIntent } from './provider.js'
import type { PaymentStatus } from './tables.js'

export interface StripeSettings {
  secretKey: string
  publishableKey: string | null
  apiBase: string | null
}

/** The SDK's connection options for STRIPE_API_BASE (e.g. http://127.0.0.1:12111). */
export function connectionOf(apiBase: string | null): { host?: string; port?: number; protocol?: 'http' | 'https' } {
  if (!apiBase) return {}
  const url = new URL(apiBase)
  const protocol = url.protocol === 'http:' ? 'http' : 'https'
  return { host: url.hostname, port: Number(url.port || (protocol === 'http' ? 80 : 443)), protocol }
}

export async function createStripeProvider(settings: StripeSettings, log: Logger): Promise<PaymentProvider> {
  // Loaded only when Stripe is configured: the SDK is large and the dummy provider needs none of it.
  const { default: Stripe } = await import('stripe')
  const stripe = new Stripe(settings.secretKey, {
    ...connectionOf(settings.apiBase),
    maxNetworkRetries: 2,
    timeout: 15_000,
    telemetry: false,
    appInfo: { name: 'shop-backend' },
  })

  /** Turns an SDK failure into a refusal (do not retry) or an outage (retry later). */
  const call = async <T>(what: string, request: () => Promise<T>): Promise<T> => {
    try {
      return await request()
    } catch (err) {
      const failure = err as { type?: string; statusCode?: number; code?: string; message?: string }
      const status = failure.statusCode ?? 0
      if (status === 401 || status === 403) log.error({ stripe_error: failure.type, what }, 'Stripe refused our credentials: check STRIPE_SECRET_KEY')
      if ([400, 402, 404, 409].includes(status)) throw new ProviderRejectedError(failure.message ?? `Stripe refused to ${what}.`, failure.code ?? null)
      throw new ProviderUnavailableError(err)
    }
  }

  return {
    name: 'stripe',
    publishableKey: settings.publishableKey,
    async createIntent(input) {
      const intent = await call('create a payment', () =>
        stripe.paymentIntents.create(
          {
            amount: input.amount,
            currency: input.currency.toLowerCase(),
            automatic_payment_methods: { enabled: true },
            // No receipt_email: the shop sends its own confirmation, and Stripe needs no more personal data.
            description: `Order ${input.orderNumber}`,
            metadata: { order_id: input.orderId, order_number: input.orderNumber },
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      )
      return intentOf(intent)
    },
    async retrieveIntent(ref) {
      return intentOf(await call('read a payment', () => stripe.paymentIntents.retrieve(ref)))
    },
    async cancelIntent(ref, idempotencyKey) {
      await call('cancel a payment', () => stripe.paymentIntents.cancel(ref, {}, { idempotencyKey }))
    },
    async refund(input) {
      const refund = await call('refund', () =>
        stripe.refunds.create(
          {
            payment_intent: input.ref,
            amount: input.amount,
            reason: STRIPE_REASONS[input.reason] ?? 'requested_by_customer',
            metadata: { refund_id: input.refundId, reason: input.reason },
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      )
      const status = refund.status === 'succeeded' ? 'succeeded' : refund.status === 'failed' || refund.status === 'canceled' ? 'failed' : 'pending'
      return { ref: refund.id, status, failureMessage: refund.failure_reason ?? null }
    },
  }
}

/** Stripe accepts three refund reasons; ours say more and travel in metadata. */
const STRIPE_REASONS: Record<string, 'duplicate' | 'fraudulent' | 'requested_by_customer'> = { duplicate: 'duplicate', fraudulent: 'fraudulent' }

/** Our status for a PaymentIntent (or the intent inside a webhook event). */
export function statusOfIntent(intent: { status: string; last_payment_error?: unknown }): PaymentStatus {
  switch (intent.status) {
    case 'processing':
      return 'processing'
    case 'succeeded':
      return 'succeeded'
    case 'canceled':
      return 'canceled'
    case 'requires_payment_method':
      // Back to asking for a payment method after an attempt: that attempt failed.
      return intent.last_payment_error ? 'failed' : 'pending'
    default:
      return 'pending'
  }
}

export function intentOf(intent: StripeClient.PaymentIntent): ProviderIntent {
  return {
    ref: intent.id,
    status: statusOfIntent(intent),
    amount: intent.amount,
    currency: intent.currency.toUpperCase(),
    clientSecret: intent.client_secret,
    failureMessage: intent.last_payment_error?.message ?? null,
  }
}
