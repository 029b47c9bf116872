/**
 * Stripe webhooks: the raw body is verified against STRIPE_WEBHOOK_SECRET with Stripe's own
 * helper (signature and a 5-minute timestamp tolerance) before anything is read from it. Each
 * event is then recorded and applied in one transaction: the inbox row's primary key is the event
 * id, so a repeated or concurrent delivery of the same event finds it taken and changes nothing.
 * Unknown event types are recorded and answered 200, so Stripe stops sending them.
 */
import type { Ctx } from '../../core/context.js'
import { AppError, BadRequestError } from '../../core/errors.js'
import type { PaymentsService } from './service.js'
import { statusOfIntent } from './stripe-provider.js'
import type { PaymentStatus } from './tables.js'

/** Stripe's default: a delivery signed longer ago than this is refused as a possible replay. */
export const SIGNATURE_TOLERANCE_SECONDS = 300

export interface StripeEventLike {
  id: string
  type: string
  created: number
  data: { object: Record<string, unknown> }
}

export class WebhooksNotConfiguredError extends AppError {
  readonly status = 503
  readonly code = 'webhooks_not_configured'
  constructor() {
    super('STRIPE_WEBHOOK_SECRET is not set: this server cannot verify Stripe webhooks.')
  }
}

/** Verifies a delivery and answers its event; a bad, stale or missing signature is a 400. */
export async function verifyStripeDelivery(raw: Buffer, signature: string | undefined, secret: string | null): Promise<StripeEventLike> {
  if (!secret) throw new WebhooksNotConfiguredError()
  if (!signature) throw new BadRequestError('invalid_signature', 'The Stripe-Signature header is missing.')
  const { default: Stripe } = await import('stripe')
  try {
    return Stripe.webhooks.constructEvent(raw, signature, secret, SIGNATURE_TOLERANCE_SECONDS) as unknown as StripeEventLike
  } catch {
    // Which check failed is not the sender's business: one answer for all.
    throw new BadRequestError('invalid_signature', 'The Stripe-Signature header does not verify this payload (wrong secret, altered body or too old).')
  }
}

/** What each intent event says about the payment. */
const INTENT_EVENTS: Record<string, PaymentStatus | null> = {
  'payment_intent.succeeded': 'succeeded',
  'payment_intent.processing': 'processing',
  'payment_intent.payment_failed': 'failed',
  'payment_intent.canceled': 'canceled',
  // Read from the intent itself.
  'payment_intent.requires_action': null,
  'payment_intent.created': null,
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null)
const int = (value: unknown): number => (typeof value === 'number' && Number.isInteger(value) ? value : 0)
/** Stripe sends ids, or whole objects where expanded. */
const refOf = (value: unknown): string | null => str(value) ?? str((value as { id?: unknown } | null)?.id)

/** Records and applies one verified event; answers whether it was new and what it did. */
export async function handleStripeEvent(ctx: Ctx, payments: PaymentsService, event: StripeEventLike): Promise<{ duplicate: boolean; outcome: string }> {
  const object = event.data.object
  return ctx.tx(async (tx) => {
    const fresh = await payments.recordEvent(tx, { id: event.id, type: event.type, objectRef: str(object.id), created: event.created })
    if (!fresh) return { duplicate: true, outcome: 'duplicate' }
    const { outcome, paymentId } = await apply(tx, payments, event)
    await payments.setEventOutcome(tx, event.id, outcome, paymentId)
    tx.log.info({ stripe_event: event.id, type: event.type, outcome, payment_id: paymentId }, 'stripe event applied')
    return { duplicate: false, outcome }
  })
}

async function apply(tx: Ctx, payments: PaymentsService, event: StripeEventLike): Promise<{ outcome: string; paymentId: string | null }> {
  const object = event.data.object
  if (event.type in INTENT_EVENTS) {
    const status = INTENT_EVENTS[event.type] ?? statusOfIntent({ status: String(object.status), last_payment_error: object.last_payment_error })
    const error = object.last_payment_error as { message?: unknown } | null | undefined
    // What was captured counts for a success; before that, what the intent asks for.
    const amount = status === 'succeeded' && int(object.amount_received) > 0 ? int(object.amount_received) : int(object.amount)
    const metadata = (object.metadata ?? {}) as Record<string, unknown>
    return payments.applyIntentEvent(
      tx,
      { ref: String(object.id), orderId: str(metadata.order_id), clientSecret: str(object.client_secret) },
      { status, amount, currency: String(object.currency).toUpperCase(), failureMessage: str(error?.message), at: event.created },
    )
  }
  const intentRef = refOf(object.payment_intent)
  if (event.type === 'charge.refunded' && intentRef) return payments.applyRefundedTotal(tx, intentRef, int(object.amount_refunded))
  if (event.type === 'charge.dispute.created' && intentRef) {
    return payments.applyDispute(tx, intentRef, { amount: int(object.amount), currency: String(object.currency).toUpperCase(), reason: str(object.reason) ?? 'unknown' })
  }
  return { outcome: 'ignored', paymentId: null }
}
