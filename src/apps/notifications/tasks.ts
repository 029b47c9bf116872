/**
 * In-app notifications from domain events, for the order's customer (a guest order has no inbox:
 * nothing is made). Safe to run twice: a notification remembers its event, and the same event
 * never makes a second one. The customer's in-app preference for order updates is respected.
 */
import { Type } from 'typebox'
import { formatMoney } from '../../core/email.js'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import type { Platform } from '../../core/platform.js'
import { defineTask, type JobContext } from '../../core/queue/index.js'
import { StatusChangedSchema, type OrdersEvents } from '../orders/events.js'
import type { OrdersService } from '../orders/service.js'
import type { PaymentsEvents } from '../payments/events.js'
import type { PaymentsService } from '../payments/service.js'
import type { NotificationsService } from './service.js'

export const NOTIFY_ORDER_MOVED_TASK = 'notifications.notify_order_moved'
export const NOTIFY_PAYMENT_FAILED_TASK = 'notifications.notify_payment_failed'
export const NOTIFY_REFUND_TASK = 'notifications.notify_refund'

interface Notice {
  type: string
  title: string
  body: string
  data?: Record<string, unknown>
}

type OrderMove = OrdersEvents['order.status_changed']

/**
 * Moves the customer hears about. Processing is the shop's own business; a move to (partially)
 * refunded comes with the refund itself, whose notice (`payment.refunded`) says how much.
 */
const NOTIFIED_MOVES = ['paid', 'shipped', 'delivered', 'cancelled']

function orderMoveNotice(move: OrderMove, trackingNumber: string | null): Notice | null {
  const number = move.number
  switch (move.to) {
    case 'paid':
      return { type: 'order.paid', title: `Order ${number} confirmed`, body: 'We received your payment and are preparing your order.' }
    case 'shipped':
      return {
        type: 'order.shipped',
        title: `Order ${number} shipped`,
        body: trackingNumber ? `Your order is on its way. Tracking number: ${trackingNumber}.` : 'Your order is on its way.',
        data: { tracking_number: trackingNumber },
      }
    case 'delivered':
      return { type: 'order.delivered', title: `Order ${number} delivered`, body: 'Your order has been delivered. Enjoy!' }
    case 'cancelled':
      return {
        type: 'order.cancelled',
        title: `Order ${number} cancelled`,
        body: move.refund_due ? 'Your order was cancelled. A refund of your payment is on its way.' : 'Your order was cancelled.',
        data: { refund_due: move.refund_due },
      }
    default:
      return null
  }
}

export function registerNotificationsTasks(platform: Platform, deps: { notifications: NotificationsService; orders: OrdersService; payments: PaymentsService }): void {
  const { notifications, orders, payments } = deps
  const contextOf = (job: JobContext) => platform.context({ requestId: job.id, log: job.log, actor: { kind: 'service', id: 'worker' } })
  const linkTo = (number: string) => `${platform.settings.auth.frontendUrl}/orders/${number}`

  /** Adds the notice to the inbox of the order's customer, once per event. */
  const tellCustomer = async (job: JobContext, event: EventEnvelope, order: { user_id: string | null; number: string }, notice: Notice) => {
    if (!order.user_id) return
    await notifications.notify(contextOf(job), {
      user_id: order.user_id,
      kind: 'order_updates',
      type: notice.type,
      title: notice.title,
      body: notice.body,
      link: linkTo(order.number),
      data: { order_number: order.number, ...notice.data },
      source_event_id: event.id,
    })
  }

  platform.tasks.register(
    defineTask({
      name: NOTIFY_ORDER_MOVED_TASK,
      schema: envelopeOf(StatusChangedSchema),
      async handler(event: EventEnvelope<OrderMove>, job) {
        if (!NOTIFIED_MOVES.includes(event.payload.to)) return
        const ctx = contextOf(job)
        const order = await orders.findForPayment(ctx, event.payload.order_id)
        if (!order?.user_id) return
        // The tracking number as it is now: staff set it with the move to shipped.
        const trackingNumber = event.payload.to === 'shipped' ? (await orders.get(ctx, order.number)).tracking_number : null
        const notice = orderMoveNotice(event.payload, trackingNumber)
        if (notice) await tellCustomer(job, event, order, notice)
      },
    }),
  )
  platform.tasks.subscribe('order.status_changed', NOTIFY_ORDER_MOVED_TASK)

  platform.tasks.register(
    defineTask({
      name: NOTIFY_PAYMENT_FAILED_TASK,
      schema: envelopeOf(Type.Object({ payment_id: Type.String(), order_id: Type.String() })),
      async handler(event: EventEnvelope<PaymentsEvents['payment.failed']>, job) {
        const ctx = contextOf(job)
        const order = await orders.findForPayment(ctx, event.payload.order_id)
        // Like the email: a failure after the order was paid (or given up) asks nothing of the customer.
        if (!order?.user_id || order.status !== 'pending_payment') return
        const reason = (await payments.get(ctx, event.payload.payment_id)).failure_message
        await tellCustomer(job, event, order, {
          type: 'payment.failed',
          title: `Payment for order ${order.number} did not go through`,
          body: `${reason ? `The payment failed: ${reason.replace(/\.$/, '')}.` : 'The payment failed.'} Your items stay reserved for a while; you can try again with another payment method.`,
          data: { payment_id: event.payload.payment_id },
        })
      },
    }),
  )
  platform.tasks.subscribe('payment.failed', NOTIFY_PAYMENT_FAILED_TASK)

  platform.tasks.register(
    defineTask({
      name: NOTIFY_REFUND_TASK,
      schema: envelopeOf(Type.Object({ payment_id: Type.String(), order_id: Type.String(), amount: Type.Integer(), refund_id: Type.Union([Type.String(), Type.Null()]) })),
      async handler(event: EventEnvelope<PaymentsEvents['payment.refunded']>, job) {
        const order = await orders.findForPayment(contextOf(job), event.payload.order_id)
        if (!order?.user_id) return
        const amount = formatMoney(event.payload.amount, order.currency)
        await tellCustomer(job, event, order, {
          type: 'payment.refunded',
          title: `Refund of ${amount} for order ${order.number}`,
          body: `We refunded ${amount}. Depending on your bank it shows on your statement within 5–10 business days.`,
          data: { payment_id: event.payload.payment_id, amount: event.payload.amount, currency: order.currency },
        })
      },
    }),
  )
  platform.tasks.subscribe('payment.refunded', NOTIFY_REFUND_TASK)
}
