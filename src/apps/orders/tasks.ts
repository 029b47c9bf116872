/**
 * The orders app's tasks. The periodic one cancels unpaid orders whose reservation ran out and
 * releases their stock; it is safe to run twice or in several processes at once (rows are locked
 * with SKIP LOCKED, and a cancelled order cannot be cancelled again). The confirmation email goes
 * out when an order becomes paid, the shipping notice (with its tracking number) when it ships: from
 * the outbox, never inside the transaction that moved the order.
 */
import { Type } from 'typebox'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import type { Platform } from '../../core/platform.js'
import { defineTask } from '../../core/queue/index.js'
import { StatusChangedSchema, type OrdersEvents } from './events.js'
import { confirmationEmail, shippedEmail } from './emails.js'
import type { OrdersService } from './service.js'

export const EXPIRE_RESERVATIONS_TASK = 'orders.expire_reservations'
export const SEND_STATUS_EMAIL_TASK = 'orders.send_status_email'

/** The moves the customer is emailed about (refunds and failed payments: the payments app). */
const STATUS_EMAILS: Partial<Record<string, typeof confirmationEmail>> = { paid: confirmationEmail, shipped: shippedEmail }

export function registerOrdersTasks(platform: Platform, orders: OrdersService): void {
  platform.tasks.register(
    defineTask({
      name: EXPIRE_RESERVATIONS_TASK,
      schema: Type.Object({}),
      async handler(_payload, job) {
        const ctx = platform.context({ requestId: job.id, log: job.log })
        // Batches of 100 until none is left, so a backlog clears in one run.
        let cancelled = 0
        for (let batch = await orders.expireReservations(ctx); batch > 0; batch = await orders.expireReservations(ctx)) cancelled += batch
        if (cancelled > 0) job.log.info({ cancelled }, 'expired unpaid orders cancelled')
      },
    }),
  )

  platform.tasks.register(
    defineTask({
      name: SEND_STATUS_EMAIL_TASK,
      schema: envelopeOf(StatusChangedSchema),
      async handler(event: EventEnvelope<OrdersEvents['order.status_changed']>, job) {
        const emailFor = STATUS_EMAILS[event.payload.to]
        if (!emailFor) return
        const ctx = platform.context({ requestId: job.id, log: job.log, actor: { kind: 'service', id: 'worker' } })
        const order = await orders.get(ctx, event.payload.number)
        await platform.queue.enqueue('core.send_email', emailFor(platform.emails, order, platform.settings.auth.frontendUrl), { jobId: `email:${event.id}` })
      },
    }),
  )
  platform.tasks.subscribe('order.status_changed', SEND_STATUS_EMAIL_TASK)
}
