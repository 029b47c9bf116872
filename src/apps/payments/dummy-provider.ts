/**
 * The built-in provider when STRIPE_SECRET_KEY is unset: intents are created here and completed
 * by `POST /api/payments/{id}/confirm/`, refunds succeed at once. For local use and demos only.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { PaymentProvider } from './provider.js'

export function createDummyProvider(): PaymentProvider {
  return {
    name: 'dummy',
    publishableKey: null,
    async createIntent(input) {
      // Like Stripe, the same idempotency key answers the same intent.
      const ref = `dummy_pi_${createHash('sha256').update(input.idempotencyKey).digest('hex').slice(0, 24)}`
      return { ref, status: 'pending', amount: input.amount, currency: input.currency, clientSecret: `${ref}_secret_${randomBytes(12).toString('hex')}`, failureMessage: null }
    },
    retrieveIntent: async () => null,
    cancelIntent: async () => undefined,
    refund: async () => ({ ref: `dummy_re_${randomUUID().replaceAll('-', '')}`, status: 'succeeded', failureMessage: null }),
  }
}
