/**
 * The payments app's tasks, all safe to run twice: refunds executed from the outbox (the
 * provider gets the same idempotency key every time), open intents cancelled or paid orders
 * refunded after an order is cancelled, the periodic reconciliation, and the customer's emails
 * about failed payments and refunds.
 */
import { Type } from 'typebox'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import { defineCleanupTask } from '../../core/housekeeping.js'
import type { Platform } from '../../core/platform.js'
import { defineTask, type JobContext } from '../../core/queue/index.js'
import { StatusChangedSchema, type OrdersEvents } from '../orders/events.js'
import type { OrdersService } from '../orders/service.js'
import { paymentFailedEmail, refundEmail } from './emails.js'
import type { PaymentsEvents } from './events.js'
import { deleteOldWebhookEvents } from './queries.js'
import type { PaymentsService } from './service.js'

export const RECONCILE_PAYMENTS_TASK = 'payments.reconcile'
/** A payment is read back from the provider when no word came for this long. */
export const RECONCILE_AFTER_MS = 10 * 60_000
export const PRUNE_WEBHOOK_EVENTS_TASK = 'payments.prune_webhook_events'
/** How long the webhook inbox remembers an event id (Stripe retries for 3 days). */
export const WEBHOOK_INBOX_DAYS = 90

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

  platform.tasks.register(defineCleanupTask(PRUNE_WEBHOOK_EVENTS_TASK, async () => ({ payment_webhook_events: await deleteOldWebhookEvents(platform.database.db, WEBHOOK_INBOX_DAYS) })))

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
        await platform.queue.enqueue('core.send_email', paymentFailedEmail(platform.emails, settings.auth.frontendUrl, order, payment.failure_message), { jobId: `email:${event.id}` })
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
        await platform.queue.enqueue('core.send_email', refundEmail(platform.emails, settings.auth.frontendUrl, order, event.payload.amount, payment.currency, reason), { jobId: `email:${event.id}` })
      },
    }),
  )
  platform.tasks.subscribe('payment.refunded', 'payments.send_refund_email')
}
