/**
 * What the payments app needs of a payment provider. Two implement it: Stripe (when
 * STRIPE_SECRET_KEY is set) and the built-in dummy for local use and demos. Every call that
 * changes something carries an idempotency key, so a retry never charges or refunds twice.
 */
import { AppError } from '../../core/errors.js'
import type { PaymentStatus, RefundStatus } from './tables.js'

export interface ProviderIntent {
  ref: string
  status: PaymentStatus
  amount: number
  /** ISO 4217, upper case. */
  currency: string
  clientSecret: string | null
  failureMessage: string | null
}

export interface ProviderRefund {
  ref: string
  status: RefundStatus
  failureMessage: string | null
}

export interface PaymentProvider {
  readonly name: 'stripe' | 'dummy'
  readonly publishableKey: string | null
  createIntent(input: { amount: number; currency: string; orderId: string; orderNumber: string; idempotencyKey: string }): Promise<ProviderIntent>
  /** The intent as the provider has it now; null when the provider keeps no state of its own (dummy). */
  retrieveIntent(ref: string): Promise<ProviderIntent | null>
  cancelIntent(ref: string, idempotencyKey: string): Promise<void>
  refund(input: { ref: string; amount: number; reason: string; refundId: string; idempotencyKey: string }): Promise<ProviderRefund>
}

/** The provider refused the request for good (invalid, declined): retrying cannot help. */
export class ProviderRejectedError extends Error {
  override name = 'ProviderRejectedError'
  constructor(message: string, readonly code: string | null) {
    super(message)
  }
}

/** The provider did not answer, or not usefully (network, its outage, our misconfiguration): try later. */
export class ProviderUnavailableError extends AppError {
  readonly status = 503
  readonly code = 'payment_provider_unavailable'
  constructor(cause: unknown) {
    super('The payment provider is not reachable right now; please try again shortly.', { cause })
  }
}
