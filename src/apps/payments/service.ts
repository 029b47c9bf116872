/**
 * Payments: one provider intent per order attempt, its status moved only forward by provider
 * events (webhooks.ts), the order paid in the same transaction, and refunds that never exceed
 * what was captured. Provider calls never run inside a transaction: a slow provider must not hold
 * row locks. What a call must still do after a crash is written down first (a refund row, an
 * outbox event) and finished by a task or the reconciliation.
 *
 * No paid order is left without its goods or its money back: a payment that succeeds for an
 * order cancelled meanwhile gets the goods back if they are still there, else an automatic refund.
 */
import { isStaff } from '../../core/auth.js'
import type { Ctx } from '../../core/context.js'
import type { DayRange } from '../../core/db/days.js'
import { NotFoundError } from '../../core/errors.js'
import type { BusinessMetrics } from '../../core/metrics.js'
import type { OrderPaymentSummary, OrdersService, PayableOrder } from '../orders/service.js'
import { ConfirmUnavailableError, FullyRefundedError, NotCapturedError, OrderNotPayableError, RefundTooLargeError } from './errors.js'
import type { PaymentsEvents } from './events.js'
import { ProviderRejectedError, type PaymentProvider, type ProviderIntent } from './provider.js'
import * as q from './queries.js'
import type { PaymentRow, RefundRow } from './queries.js'
import { isUsable, mayMove } from './status.js'
import type { PaymentStatus, RefundStatus } from './tables.js'

export type { PaymentStatus } from './tables.js'

export const REFUND_REASONS = ['requested_by_customer', 'duplicate', 'fraudulent'] as const
/** Reasons the shop refunds on its own. */
type SystemRefundReason = 'order_cancelled' | 'order_unavailable' | 'duplicate'

export interface RefundDto {
  id: string
  payment_id: string
  amount: number
  currency: string
  status: RefundStatus
  reason: string
  note: string | null
  failure_message: string | null
  created_at: string
  updated_at: string
}

export interface PaymentDto {
  id: string
  order_number: string
  provider: string
  status: PaymentStatus
  amount: number
  currency: string
  amount_refunded: number
  /** For the paying customer's browser (Stripe.js); null for anyone else and once settled. */
  client_secret: string | null
  publishable_key: string | null
  flagged: string | null
  failure_message: string | null
  refunds: RefundDto[]
  created_at: string
  updated_at: string
}

/** A provider's word on an intent: from a webhook event, a retrieve, or the dummy confirm. */
export interface IntentUpdate {
  status: PaymentStatus
  /** What the provider says was (or will be) charged, and in which currency. */
  amount: number
  currency: string
  failureMessage: string | null
  /** Unix seconds of the provider's observation. */
  at: number
}

/** How a provider event or update was taken: recorded on the webhook inbox row. */
export type UpdateOutcome = 'applied' | 'stale' | 'flagged' | 'refunded_unavailable' | 'refunded_duplicate'

const nowSeconds = () => Math.floor(Date.now() / 1000)
const actorLabel = (ctx: Ctx) => (ctx.actor ? `${ctx.actor.kind}:${ctx.actor.id}` : 'system')

export function createPaymentsService(deps: { provider: PaymentProvider; orders: OrdersService; metrics: Pick<BusinessMetrics, 'paymentFailed'>; /** The dummy confirm is for local use: never in production. */ allowDummyConfirm: boolean }) {
  const { provider, orders } = deps

  const refundDto = (row: RefundRow, currency: string): RefundDto => ({
    id: row.id,
    payment_id: row.payment_id,
    amount: row.amount,
    currency,
    status: row.status,
    reason: row.reason,
    note: row.note,
    failure_message: row.failure_message,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  })

  const toDto = (row: PaymentRow, order: PayableOrder, refunds: RefundRow[], forPayer: boolean): PaymentDto => ({
    id: row.id,
    order_number: order.number,
    provider: row.provider,
    status: row.status,
    amount: row.amount,
    currency: row.currency,
    amount_refunded: row.amount_refunded,
    client_secret: forPayer && !['succeeded', 'canceled'].includes(row.status) ? row.client_secret : null,
    publishable_key: row.provider === 'stripe' ? provider.publishableKey : null,
    flagged: row.flagged,
    failure_message: row.failure_message,
    refunds: refunds.map((refund) => refundDto(refund, row.currency)),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  })

  const dtoOf = async (ctx: Ctx, row: PaymentRow, forPayer: boolean): Promise<PaymentDto> => {
    const [order, refunds] = await Promise.all([orders.findForPayment(ctx, row.order_id), q.refundsOf(ctx.db, row.id)])
    return toDto(row, order!, refunds, forPayer)
  }

  /** The payment when the actor may see it: the order's customer, or staff. Others get a 404. */
  const visible = async (ctx: Ctx, id: string, access: { email?: string }): Promise<{ row: PaymentRow; payer: boolean }> => {
    const row = await q.findPayment(ctx.db, id)
    const order = row && (await orders.findForPayment(ctx, row.order_id))
    const actor = ctx.actor
    const payer =
      order !== undefined &&
      ((actor?.kind === 'user' && order.user_id === actor.id) || (order.user_id === null && access.email !== undefined && access.email.trim().toLowerCase() === order.email.toLowerCase()))
    if (!row || (!payer && !isStaff(actor) && actor?.kind !== 'service')) throw new NotFoundError('Payment', id)
    return { row, payer }
  }

  /**
   * The order's payment: the newest one unless it was cancelled, else a new provider intent.
   * Attempts are numbered, and the number is in the idempotency key: two requests racing for the
   * same attempt get the same intent from the provider and store one row.
   */
  const ensurePayment = async (ctx: Ctx, order: PayableOrder): Promise<PaymentRow> => {
    const existing = await q.paymentsOfOrder(ctx.db, order.id)
    const succeeded = existing.find((payment) => payment.status === 'succeeded')
    if (succeeded) return succeeded
    if (order.status !== 'pending_payment') throw new OrderNotPayableError(order.number, order.status)
    const latest = existing[0]
    if (latest && isUsable(latest.status)) return latest
    const intent = await provider.createIntent({
      amount: order.total,
      currency: order.currency,
      orderId: order.id,
      orderNumber: order.number,
      idempotencyKey: `order-${order.id}-payment-${existing.length + 1}`,
    })
    return q.insertPayment(ctx.db, {
      order_id: order.id,
      provider: provider.name,
      provider_ref: intent.ref,
      client_secret: intent.clientSecret,
      status: intent.status,
      amount: intent.amount,
      currency: intent.currency,
    })
  }

  /**
   * Writes a refund down (the payment row locked) and asks for its execution through the outbox.
   * Never more than captured minus what is refunded or being refunded.
   */
  const requestRefund = async (tx: Ctx, payment: PaymentRow, input: { amount?: number; reason: string; note?: string | null }): Promise<RefundRow> => {
    if (payment.status !== 'succeeded') throw new NotCapturedError(payment.status)
    const remaining = payment.amount - payment.amount_refunded - (await q.pendingRefundTotal(tx.db, payment.id))
    if (remaining <= 0) throw new FullyRefundedError()
    const amount = input.amount ?? remaining
    if (amount > remaining) throw new RefundTooLargeError(remaining, payment.currency)
    const refund = await q.insertRefund(tx.db, { payment_id: payment.id, amount, reason: input.reason, note: input.note ?? null, requested_by: actorLabel(tx) })
    await tx.events.publish('payment.refund_requested', { refund_id: refund.id, payment_id: payment.id } satisfies PaymentsEvents['payment.refund_requested'])
    return refund
  }

  /** The shop gives the whole remaining amount back on its own (order cancelled or unavailable, paid twice). */
  const refundRemaining = async (tx: Ctx, payment: PaymentRow, reason: SystemRefundReason, note: string): Promise<RefundRow | null> => {
    const remaining = payment.amount - payment.amount_refunded - (await q.pendingRefundTotal(tx.db, payment.id))
    if (remaining <= 0) return null
    return requestRefund(tx, payment, { amount: remaining, reason, note })
  }

  /**
   * The provider's running total of refunds went up (our refund executed, or one made in the
   * provider's dashboard): the payment, the order and the customer hear of it once.
   */
  const raiseRefunded = async (tx: Ctx, payment: PaymentRow, total: number, refundId: string | null): Promise<boolean> => {
    const refunded = Math.min(payment.amount, Math.max(payment.amount_refunded, total))
    if (refunded <= payment.amount_refunded) return false
    const delta = refunded - payment.amount_refunded
    await q.setPayment(tx.db, payment.id, { amount_refunded: refunded })
    await orders.recordRefund(tx, payment.order_id, { amount: delta, refunded, captured: payment.amount, currency: payment.currency })
    await tx.events.publish('payment.refunded', { payment_id: payment.id, order_id: payment.order_id, amount: delta, refund_id: refundId } satisfies PaymentsEvents['payment.refunded'])
    return true
  }

  /**
   * Applies the provider's word on an intent to the locked payment and its order. An amount or
   * currency that does not match is flagged for a person, never accepted; an older word is ignored.
   */
  const applyUpdate = async (tx: Ctx, payment: PaymentRow, update: IntentUpdate): Promise<UpdateOutcome> => {
    if (update.status === 'succeeded' && (update.amount !== payment.amount || update.currency !== payment.currency)) {
      const reason = `amount_mismatch: the provider charged ${update.amount} ${update.currency}, the payment is for ${payment.amount} ${payment.currency}`
      await q.setPayment(tx.db, payment.id, { flagged: reason })
      await orders.note(tx, payment.order_id, 'payment_flagged', reason)
      await tx.events.publish('payment.flagged', { payment_id: payment.id, order_id: payment.order_id, reason } satisfies PaymentsEvents['payment.flagged'])
      tx.log.warn({ payment_id: payment.id, reason }, 'payment flagged: amount does not match the order')
      return 'flagged'
    }
    if (!mayMove({ status: payment.status, at: payment.status_at }, { status: update.status, at: update.at })) return 'stale'
    const updated = await q.setPayment(tx.db, payment.id, {
      status: update.status,
      status_at: Math.max(update.at, payment.status_at),
      failure_message: update.status === 'failed' ? update.failureMessage : null,
    })
    if (update.status === 'failed') {
      await orders.note(tx, payment.order_id, 'payment_failed', update.failureMessage ?? 'The payment failed.')
      await tx.events.publish('payment.failed', { payment_id: payment.id, order_id: payment.order_id } satisfies PaymentsEvents['payment.failed'])
      tx.afterCommit(() => deps.metrics.paymentFailed(payment.provider))
    }
    if (update.status !== 'succeeded') return 'applied'

    const settlement = await orders.settlePayment(tx, payment.order_id)
    if (settlement === 'unavailable') {
      await refundRemaining(tx, updated, 'order_unavailable', 'The order was cancelled before the payment arrived and its goods are gone.')
      await orders.note(tx, payment.order_id, 'payment_refunded_automatically', 'Paid after cancellation; the goods were no longer in stock, so the payment is refunded in full.')
      return 'refunded_unavailable'
    }
    if (settlement === 'already_paid') {
      const others = await q.paymentsOfOrder(tx.db, payment.order_id)
      if (others.some((other) => other.id !== payment.id && other.status === 'succeeded')) {
        await refundRemaining(tx, updated, 'duplicate', 'The order was already paid by another payment.')
        return 'refunded_duplicate'
      }
    }
    return 'applied'
  }

  /** A provider intent that names one of our orders but has no row (the row was lost): adopt it. */
  const adopt = async (tx: Ctx, intent: { ref: string; amount: number; currency: string; orderId: string | null; clientSecret: string | null }): Promise<PaymentRow | undefined> => {
    if (!intent.orderId || !/^[0-9a-f-]{36}$/.test(intent.orderId)) return undefined
    const order = await orders.findForPayment(tx, intent.orderId)
    if (!order) return undefined
    const row = await q.insertPayment(tx.db, { order_id: order.id, provider: provider.name, provider_ref: intent.ref, client_secret: intent.clientSecret, amount: order.total, currency: order.currency })
    tx.log.warn({ payment_id: row.id, provider_ref: intent.ref }, 'adopted a provider intent we had no row for')
    return q.lockPayment(tx.db, row.id)
  }

  /** Sends a pending refund to the provider and settles it. Safe to run twice: same idempotency key, conditional settle. */
  const executeRefund = async (ctx: Ctx, refundId: string): Promise<RefundRow | undefined> => {
    const refund = await q.findRefund(ctx.db, refundId)
    if (!refund || refund.status !== 'pending') return refund
    const payment = (await q.findPayment(ctx.db, refund.payment_id))!
    let result
    try {
      result = await provider.refund({ ref: payment.provider_ref, amount: refund.amount, reason: refund.reason, refundId: refund.id, idempotencyKey: `refund-${refund.id}` })
    } catch (err) {
      if (!(err instanceof ProviderRejectedError)) throw err
      result = { ref: null, status: 'failed' as const, failureMessage: err.message }
    }
    const outcome = result
    return ctx.tx(async (tx) => {
      const locked = (await q.lockPayment(tx.db, payment.id))!
      if (outcome.status === 'pending') {
        if (outcome.ref) await q.setRefundRef(tx.db, refund.id, outcome.ref)
        return q.findRefund(tx.db, refund.id)
      }
      const settled = await q.settleRefund(tx.db, refund.id, outcome.status, { ...(outcome.ref ? { provider_ref: outcome.ref } : {}), failure_message: outcome.failureMessage })
      if (!settled) return q.findRefund(tx.db, refund.id)
      if (outcome.status === 'failed') {
        await orders.note(tx, payment.order_id, 'refund_failed', `A refund of ${refund.amount} ${payment.currency} failed: ${outcome.failureMessage ?? 'no reason given'}.`)
        tx.log.error({ refund_id: refund.id, reason: outcome.failureMessage }, 'refund failed at the provider')
      } else {
        await raiseRefunded(tx, locked, await q.succeededRefundTotal(tx.db, payment.id), refund.id)
      }
      return settled
    })
  }

  /** Reads one payment's intent back from the provider and applies what it says. */
  const reconcilePayment = async (ctx: Ctx, paymentId: string): Promise<UpdateOutcome | 'unchanged'> => {
    const payment = await q.findPayment(ctx.db, paymentId)
    if (!payment || payment.provider !== provider.name) return 'unchanged'
    const intent = await provider.retrieveIntent(payment.provider_ref)
    if (!intent) return 'unchanged'
    return ctx.tx(async (tx) => {
      const locked = (await q.lockPayment(tx.db, paymentId))!
      if (intent.status === locked.status) {
        // Checked: the reconciliation looks at it again only after another interval.
        await q.setPayment(tx.db, paymentId, {})
        return 'unchanged'
      }
      return applyUpdate(tx, locked, updateOf(intent, nowSeconds()))
    })
  }

  return {
    provider: provider.name,

    /** `POST /api/payments/`: the customer's order's payment, created when none is usable. */
    /** For analytics: money refunded per shop day (the day it succeeded) and order. */
    refundsByDay: (ctx: Ctx, range: DayRange) => q.refundsByDay(ctx.db, range),

    async paymentForOrder(ctx: Ctx, number: string, access: { email?: string } = {}): Promise<PaymentDto> {
      const order = await orders.payableBy(ctx, number, access)
      const payment = await ensurePayment(ctx, order)
      return toDto(payment, order, await q.refundsOf(ctx.db, payment.id), true)
    },

    /** Right after checkout: the new order's first payment (a provider outage leaves it to POST /api/payments/). */
    async startPayment(ctx: Ctx, orderId: string): Promise<void> {
      const order = await orders.findForPayment(ctx, orderId)
      if (order) await ensurePayment(ctx, order)
    },

    async get(ctx: Ctx, id: string, access: { email?: string } = {}): Promise<PaymentDto> {
      const { row, payer } = await visible(ctx, id, access)
      return dtoOf(ctx, row, payer)
    },

    /** What orders show of their payments (the orders app's port). */
    async summaries(ctx: Ctx, orderIds: string[]): Promise<Map<string, OrderPaymentSummary>> {
      const rows = await q.latestPayments(ctx.db, orderIds)
      return new Map(
        rows.map((row) => [
          row.order_id,
          {
            id: row.id,
            provider: row.provider,
            status: row.status,
            client_secret: ['succeeded', 'canceled'].includes(row.status) ? null : row.client_secret,
            amount: row.amount,
            amount_refunded: row.amount_refunded,
          },
        ]),
      )
    },

    /** The dummy provider's stand-in for a customer paying: the payment succeeds as a webhook would say. */
    async confirmDummy(ctx: Ctx, id: string, access: { email?: string } = {}): Promise<PaymentDto> {
      const { row, payer } = await visible(ctx, id, access)
      if (!payer) throw new NotFoundError('Payment', id)
      if (!deps.allowDummyConfirm) throw new ConfirmUnavailableError('The dummy provider cannot complete payments in production: set STRIPE_SECRET_KEY.')
      if (provider.name !== 'dummy' || row.provider !== 'dummy') throw new ConfirmUnavailableError('Only payments of the built-in dummy provider are confirmed here; Stripe payments are confirmed in the browser with Stripe.js.')
      if (row.status === 'canceled') throw new ConfirmUnavailableError('This payment was cancelled; ask for a new one with POST /api/payments/.')
      await ctx.tx(async (tx) => {
        const locked = (await q.lockPayment(tx.db, id))!
        await applyUpdate(tx, locked, { status: 'succeeded', amount: locked.amount, currency: locked.currency, failureMessage: null, at: nowSeconds() })
      })
      return dtoOf(ctx, (await q.findPayment(ctx.db, id))!, true)
    },

    /** Staff refund, whole or in part: written down, then executed at once (the outbox task retries an interrupted one). */
    async refund(ctx: Ctx, id: string, input: { amount?: number; reason?: string; note?: string }): Promise<RefundDto> {
      const refund = await ctx.tx(async (tx) => {
        const locked = await q.lockPayment(tx.db, id)
        if (!locked) throw new NotFoundError('Payment', id)
        return requestRefund(tx, locked, { amount: input.amount, reason: input.reason ?? 'requested_by_customer', note: input.note })
      })
      const payment = (await q.findPayment(ctx.db, id))!
      try {
        await executeRefund(ctx, refund.id)
      } catch (err) {
        // Written down and in the outbox: the task finishes it when the provider answers again.
        ctx.log.warn({ err, refund_id: refund.id }, 'refund left pending: the provider did not answer')
      }
      return refundDto((await q.findRefund(ctx.db, refund.id))!, payment.currency)
    },

    executeRefund,

    /** Applies a provider's word on an intent (webhook events). `intent.orderId` lets a lost row be adopted. */
    async applyIntentEvent(tx: Ctx, intent: { ref: string; orderId: string | null; clientSecret: string | null }, update: IntentUpdate): Promise<{ outcome: UpdateOutcome | 'unmatched'; paymentId: string | null }> {
      const payment = (await q.lockPaymentByRef(tx.db, provider.name, intent.ref)) ?? (await adopt(tx, { ...intent, amount: update.amount, currency: update.currency }))
      if (!payment) return { outcome: 'unmatched', paymentId: null }
      return { outcome: await applyUpdate(tx, payment, update), paymentId: payment.id }
    },

    /** The provider reports an intent's refunds adding up to `total` (charge.refunded). */
    async applyRefundedTotal(tx: Ctx, ref: string, total: number): Promise<{ outcome: 'applied' | 'stale' | 'unmatched'; paymentId: string | null }> {
      const payment = await q.lockPaymentByRef(tx.db, provider.name, ref)
      if (!payment) return { outcome: 'unmatched', paymentId: null }
      // What our refunds (settled or on their way) do not explain was refunded outside the shop (the
      // dashboard): it becomes a row too, so the sum of succeeded rows stays the provider's total.
      const outside = total - (await q.succeededRefundTotal(tx.db, payment.id)) - (await q.pendingRefundTotal(tx.db, payment.id))
      const row = outside > 0 ? await q.insertRefund(tx.db, { payment_id: payment.id, amount: outside, status: 'succeeded', reason: 'external', note: 'Refunded outside the shop (the provider\'s dashboard).', requested_by: 'provider' }) : null
      return { outcome: (await raiseRefunded(tx, payment, total, row?.id ?? null)) ? 'applied' : 'stale', paymentId: payment.id }
    },

    /** A dispute (chargeback) was opened: flagged for a person, noted on the order. */
    async applyDispute(tx: Ctx, ref: string, dispute: { amount: number; currency: string; reason: string }): Promise<{ outcome: 'flagged' | 'unmatched'; paymentId: string | null }> {
      const payment = await q.lockPaymentByRef(tx.db, provider.name, ref)
      if (!payment) return { outcome: 'unmatched', paymentId: null }
      const reason = `dispute: ${dispute.reason} (${dispute.amount} ${dispute.currency})`
      await q.setPayment(tx.db, payment.id, { flagged: reason })
      await orders.note(tx, payment.order_id, 'dispute_opened', `The customer's bank opened a dispute over ${dispute.amount} ${dispute.currency}: ${dispute.reason}.`)
      await tx.events.publish('payment.flagged', { payment_id: payment.id, order_id: payment.order_id, reason } satisfies PaymentsEvents['payment.flagged'])
      return { outcome: 'flagged', paymentId: payment.id }
    },

    /** Records a webhook event in the inbox; false when it was recorded before. */
    recordEvent: (tx: Ctx, event: { id: string; type: string; objectRef: string | null; created: number }) =>
      q.recordWebhookEvent(tx.db, { id: event.id, type: event.type, object_ref: event.objectRef, outcome: 'received', created: event.created }),
    setEventOutcome: (tx: Ctx, id: string, outcome: string, paymentId: string | null) => q.setWebhookOutcome(tx.db, id, outcome, paymentId),

    /**
     * After an order moved: a paid order that was cancelled gets its money back; an unpaid one that
     * was cancelled (or expired) has its open intents cancelled at the provider, so the customer
     * cannot pay for goods released. An intent the provider will not cancel is read back and
     * settled: it may have succeeded meanwhile (a lost webhook), and then compensation applies.
     */
    async afterOrderMoved(ctx: Ctx, move: { order_id: string; from: string; to: string; refund_due: boolean }): Promise<void> {
      if (move.to !== 'cancelled') return
      const payments = await q.paymentsOfOrder(ctx.db, move.order_id)
      if (move.refund_due) {
        const refunds = await ctx.tx(async (tx) => {
          const created: RefundRow[] = []
          for (const payment of payments.filter((row) => row.status === 'succeeded')) {
            const refund = await refundRemaining(tx, (await q.lockPayment(tx.db, payment.id))!, 'order_cancelled', 'The order was cancelled after payment.')
            if (refund) created.push(refund)
          }
          return created
        })
        for (const refund of refunds) await executeRefund(ctx, refund.id)
        return
      }
      for (const payment of payments.filter((row) => row.status === 'pending' || row.status === 'failed')) {
        try {
          await provider.cancelIntent(payment.provider_ref, `cancel-${payment.id}`)
          await ctx.tx(async (tx) => {
            await applyUpdate(tx, (await q.lockPayment(tx.db, payment.id))!, { status: 'canceled', amount: payment.amount, currency: payment.currency, failureMessage: null, at: nowSeconds() })
          })
        } catch (err) {
          if (!(err instanceof ProviderRejectedError)) throw err
          await reconcilePayment(ctx, payment.id)
        }
      }
    },

    reconcilePayment,

    /**
     * The periodic safety net for lost webhooks and interrupted calls: payments stuck in
     * `processing` are read back from the provider, refunds still pending are sent again (same
     * idempotency key, so never twice). Answers what it looked at.
     */
    async reconcile(ctx: Ctx, options: { olderThanMs: number; limit?: number }): Promise<{ payments: number; refunds: number }> {
      const before = new Date(Date.now() - options.olderThanMs)
      const stuck = await q.paymentsIn(ctx.db, 'processing', before, options.limit ?? 100)
      for (const payment of stuck) await reconcilePayment(ctx, payment.id)
      const pending = await q.stalePendingRefunds(ctx.db, before, options.limit ?? 100)
      for (const refund of pending) await executeRefund(ctx, refund.id)
      return { payments: stuck.length, refunds: pending.length }
    },
  }
}

export type PaymentsService = ReturnType<typeof createPaymentsService>

export function updateOf(intent: ProviderIntent, at: number): IntentUpdate {
  return { status: intent.status, amount: intent.amount, currency: intent.currency, failureMessage: intent.failureMessage, at }
}
