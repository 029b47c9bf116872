/**
 * The body of a public event, built once when its deliveries are written:
 * `{"id", "type", "created_at", "data"}`. Orders are shown as staff see them, payments with their
 * order number; both read through their apps' services with the caller's (service) context.
 */
import type { Ctx } from '../../core/context.js'
import type { EventEnvelope } from '../../core/events/index.js'
import type { OrdersService } from '../orders/service.js'
import type { PaymentsService } from '../payments/service.js'
import type { PublicEventType } from './event-types.js'

type Payload = Record<string, unknown>

export function createPayloads(deps: { orders: OrdersService; payments: PaymentsService }) {
  const { orders, payments } = deps

  const dataOf = async (ctx: Ctx, event: EventEnvelope<Payload>): Promise<Payload> => {
    const payload = event.payload
    switch (event.name) {
      case 'order.created':
        return { order: await orders.get(ctx, String(payload.number)) }
      case 'order.status_changed':
        return { order: await orders.get(ctx, String(payload.number)), previous_status: payload.from }
      case 'payment.failed':
      case 'payment.refunded':
      case 'payment.flagged': {
        const payment = await payments.get(ctx, String(payload.payment_id))
        // The facts of the moment: which refund and how much, or why it was flagged.
        const facts = event.name === 'payment.refunded' ? { amount: payload.amount, refund_id: payload.refund_id } : event.name === 'payment.flagged' ? { reason: payload.reason } : {}
        return { payment, order_number: payment.order_number, ...facts }
      }
      case 'catalog.products_changed':
        return { product_ids: payload.product_ids }
      default:
        throw new Error(`No webhook payload for ${event.name}`)
    }
  }

  return {
    /** The exact bytes every attempt and replay of this event's deliveries sends. */
    async bodyOf(ctx: Ctx, type: PublicEventType, event: EventEnvelope<Payload>): Promise<string> {
      return JSON.stringify({ id: event.id, type, created_at: event.occurred_at, data: await dataOf(ctx, event) })
    },
  }
}
