/**
 * The orders app's tasks. The periodic one cancels unpaid orders whose reservation ran out and
 * releases their stock; it is safe to run twice or in several processes at once (rows are locked
 * with SKIP LOCKED, and a cancelled order cannot be cancelled again). The confirmation email goes
 * out when an order becomes paid, from the outbox, never inside the payment's transaction.
 */
import { Type } from 'typebox'
import type { Settings } from '../../config/index.js'
import { formatMoney, htmlFromText } from '../../core/email.js'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import type { Platform } from '../../core/platform.js'
import { defineTask } from '../../core/queue/index.js'
import { StatusChangedSchema, type OrdersEvents } from './events.js'
import type { OrderDto, OrdersService } from './service.js'

export const EXPIRE_RESERVATIONS_TASK = 'orders.expire_reservations'
export const SEND_CONFIRMATION_TASK = 'orders.send_confirmation_email'

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
      name: SEND_CONFIRMATION_TASK,
      schema: envelopeOf(StatusChangedSchema),
      async handler(event: EventEnvelope<OrdersEvents['order.status_changed']>, job) {
        if (event.payload.to !== 'paid') return
        const ctx = platform.context({ requestId: job.id, log: job.log, actor: { kind: 'service', id: 'worker' } })
        const order = await orders.get(ctx, event.payload.number)
        await platform.queue.enqueue('core.send_email', confirmationEmail(platform.settings, order), { jobId: `email:${event.id}` })
      },
    }),
  )
  platform.tasks.subscribe('order.status_changed', SEND_CONFIRMATION_TASK)
}

export function confirmationEmail(settings: Settings, order: OrderDto) {
  const shop = settings.auth.shopName
  const link = `${settings.auth.frontendUrl}/orders/${order.number}`
  const money = (amount: number) => formatMoney(amount, order.currency)
  const lines = order.items.map((item) => `  ${item.quantity} × ${item.product_name} (${item.variant_name}, ${item.sku})  ${money(item.unit_price * item.quantity)}`)
  const totals = order.totals
  const text = [
    `Thank you for your order at ${shop}.`,
    '',
    `Order ${order.number} is paid and being prepared.`,
    '',
    ...lines,
    '',
    `Subtotal  ${money(totals.subtotal)}`,
    ...(totals.discount > 0 ? [`Discount  -${money(totals.discount)}`] : []),
    `Shipping  ${money(totals.shipping)}`,
    `Tax       ${money(totals.tax)}`,
    `Total     ${money(totals.total)}`,
    '',
    `Shipping to: ${order.shipping_address.name}, ${order.shipping_address.line1}, ${order.shipping_address.postal_code} ${order.shipping_address.city}, ${order.shipping_address.country}`,
    '',
    'Follow your order here:',
    link,
    '',
  ].join('\n')
  return { to: order.email, subject: `Your ${shop} order ${order.number} is confirmed`, text, html: htmlFromText(text, [link]) }
}
