/**
 * The order state machine of API.md. Every move is one of these edges; anything else is a 409
 * that changes nothing.
 *
 *   pending_payment → paid → processing → shipped → delivered
 *   pending_payment → cancelled            (by the customer, staff, or reservation expiry)
 *   paid | processing → cancelled          (the payment is refunded)
 *   delivered → refunded | partially_refunded,  partially_refunded → refunded
 */
import type { OrderStatus } from './tables.js'

const MOVES: Record<OrderStatus, readonly OrderStatus[]> = {
  pending_payment: ['paid', 'cancelled'],
  paid: ['processing', 'cancelled'],
  processing: ['shipped', 'cancelled'],
  shipped: ['delivered'],
  delivered: ['refunded', 'partially_refunded'],
  partially_refunded: ['refunded'],
  cancelled: [],
  refunded: [],
}

export function canMove(from: OrderStatus, to: OrderStatus): boolean {
  return MOVES[from].includes(to)
}

export function nextStatuses(from: OrderStatus): readonly OrderStatus[] {
  return MOVES[from]
}

/** A customer may cancel their order until it ships. */
export const CUSTOMER_CANCELLABLE: readonly OrderStatus[] = ['pending_payment', 'paid', 'processing']
