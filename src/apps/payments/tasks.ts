/**
 * The payments app's tasks, all safe to run twice: refunds executed from the outbox (the
 * provider gets the same idempotency key every time), open intents cancelled or paid orders
 * refunded after an order is cancelled, the periodic reconciliation, and the customer's emails
 * about failed payments and refunds.
 */
import { Type } from 'typebox'
import type { Settings } from '../../config/index.js'
import { formatMoney, htmlFromText } from '../../core/email.js'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import type { Platform } from '../../core/platform.js'
import { defineTask, type JobContext } from '../../core/queue/index.js'
import { StatusChangedSchema, type OrdersEvents } from '../orders/events.js'
import type { OrdersService } from '../orders/service.js'
import type { PaymentsEvents } from './events.js'
import type { PaymentsService } from './service.js'

export const RECONCILE_PAYMENTS_TASK = 'payments.reconcile'
/** A payment is read back from the provider when no word came for this long. */
export const RECONCILE_AFTER_MS = 10 * 60_000

export function registerPaymentsTasks(platform: Platform, payments: PaymentsService, orders: OrdersService): void {
  const { settings } = platform
  const contextOf = (job: JobContext) => platform.context({ requestId: job.id, log: job.log, actor: { kind: 'service', id: 'worker' } })

  platform.tasks.register(
    defineTask({
      name: 'payments.execute_refund',
      schema: envelopeOf(Type.Object({ refund_id: Type.String(), payment_id: Type.String() })),
      async handler(event: EventEnvelope<PaymentsEvents['payment.refund_requested']>, job) {
        await payments.executeRefund(contextOf(job), event.payload.refund_id)
      },
    }),
  )
  platform.tasks.subscribe('payment.refund_requested', 'payments.execute_refund')

  platform.tasks.register(
    defineTask({
      name: 'payments.after_order_moved',
      schema: envelopeOf(StatusChangedSchema),
      async handler(event: EventEnvelope<OrdersEvents['order.status_changed']>, job) {
        await payments.afterOrderMoved(contextOf(job), event.payload)
      },
    }),
  )
  platform.tasks.subscribe('order.status_changed', 'payments.after_order_moved')

  platform.tasks.register(
    defineTask({
      name: RECONCILE_PAYMENTS_TASK,
      schema: Type.Object({ older_than_ms: Type.Optional(Type.Integer({ minimum: 0 })) }),
      async handler(payload, job) {
        const looked = await payments.reconcile(contextOf(job), { olderThanMs: payload.older_than_ms ?? RECONCILE_AFTER_MS })
        if (looked.payments + looked.refunds > 0) job.log.info(looked, 'payments reconciled with the provider')
      },
    }),
  )

  platform.tasks.register(
    defineTask({
      name: 'payments.send_payment_failed_email',
      schema: envelopeOf(Type.Object({ payment_id: Type.String(), order_id: Type.String() })),
      async handler(event: EventEnvelope<PaymentsEvents['payment.failed']>, job) {
        const ctx = contextOf(job)
        const payment = await payments.get(ctx, event.payload.payment_id)
        const order = await orders.findForPayment(ctx, event.payload.order_id)
        if (!order || order.status !== 'pending_payment') return
        await platform.queue.enqueue('core.send_email', paymentFailedEmail(settings, order, payment.failure_message), { jobId: `email:${event.id}` })
      },
    }),
  )
  platform.tasks.subscribe('payment.failed', 'payments.send_payment_failed_email')

  platform.tasks.register(
    defineTask({
      name: 'payments.send_refund_email',
      schema: envelopeOf(Type.Object({ payment_id: Type.String(), order_id: Type.String(), amount: Type.Integer(), refund_id: Type.Union([Type.String(), Type.Null()]) })),
      async handler(event: EventEnvelope<PaymentsEvents['payment.refunded']>, job) {
        const ctx = contextOf(job)
        const payment = await payments.get(ctx, event.payload.payment_id)
        const order = (await orders.findForPayment(ctx, event.payload.order_id))!
        const reason = payment.refunds.find((refund) => refund.id === event.payload.refund_id)?.reason ?? null
        await platform.queue.enqueue('core.send_email', refundEmail(settings, order, event.payload.amount, payment.currency, reason), { jobId: `email:${event.id}` })
      },
    }),
  )
  platform.tasks.subscribe('payment.refunded', 'payments.send_refund_email')
}

interface OrderRef {
  number: string
  email: string
}

function paymentFailedEmail(settings: Settings, order: OrderRef, reason: string | null) {
  const shop = settings.auth.shopName
  const link = `${settings.auth.frontendUrl}/orders/${order.number}`
  const text = `Hello,\n\nThe payment for your ${shop} order ${order.number} did not go through${reason ? `: ${reason}` : '.'}\n\nYour items stay reserved for a while. You can try again with another payment method here:\n${link}\n`
  return { to: order.email, subject: `Payment for order ${order.number} did not go through`, text, html: htmlFromText(text, [link]) }
}

const REFUND_EXPLANATIONS: Record<string, string> = {
  order_unavailable: 'Your payment arrived after the order had been cancelled, and the items are no longer in stock, so we refunded you in full.',
  order_cancelled: 'Your order was cancelled, so we refunded your payment.',
  duplicate: 'The order had already been paid, so we refunded the second payment.',
}

function refundEmail(settings: Settings, order: OrderRef, amount: number, currency: string, reason: string | null) {
  const shop = settings.auth.shopName
  const link = `${settings.auth.frontendUrl}/orders/${order.number}`
  const why = (reason && REFUND_EXPLANATIONS[reason]) ?? 'We have refunded part or all of your payment.'
  const text = `Hello,\n\n${why}\n\nRefund: ${formatMoney(amount, currency)} for ${shop} order ${order.number}. Depending on your bank it shows on your statement within 5–10 business days.\n\nYour order:\n${link}\n`
  return { to: order.email, subject: `Refund of ${formatMoney(amount, currency)} for order ${order.number}`, text, html: htmlFromText(text, [link]) }
}
