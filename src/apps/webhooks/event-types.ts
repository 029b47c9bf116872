/**
 * The public event types receivers subscribe to, and which domain event each comes from. The
 * domain events are internal and may change; these names are the contract with receivers.
 */

export const PUBLIC_EVENT_TYPES = {
  'order.created': 'An order was checked out; its stock is reserved until it is paid.',
  'order.paid': 'An order was paid.',
  'order.processing': 'An order is being prepared.',
  'order.shipped': 'An order was shipped (with its tracking number when there is one).',
  'order.delivered': 'An order was delivered.',
  'order.cancelled': 'An order was cancelled (a paid one is refunded).',
  'order.refunded': 'A delivered order was refunded in full.',
  'order.partially_refunded': 'A delivered order was refunded in part.',
  'payment.failed': 'An attempt to pay failed; the customer may try again.',
  'payment.refunded': 'Money went back to the customer.',
  'payment.flagged': 'A payment needs a person: an amount that does not match, or a dispute.',
  'products.changed': 'Products whose public view changed (created, edited, deleted, stock crossing zero).',
} as const

export type PublicEventType = keyof typeof PUBLIC_EVENT_TYPES
export const ALL_EVENTS = '*'

/** The domain events the fan-out subscribes to. */
export const SOURCE_EVENTS = ['order.created', 'order.status_changed', 'payment.failed', 'payment.refunded', 'payment.flagged', 'catalog.products_changed'] as const
export type SourceEvent = (typeof SOURCE_EVENTS)[number]

export const isPublicEventType = (name: string): name is PublicEventType => Object.hasOwn(PUBLIC_EVENT_TYPES, name)

/** The public type of a domain event, or null when receivers are not told of it. */
export function publicTypeOf(name: string, payload: Record<string, unknown>): PublicEventType | null {
  switch (name) {
    case 'order.created':
    case 'payment.failed':
    case 'payment.refunded':
    case 'payment.flagged':
      return name
    case 'order.status_changed': {
      const type = `order.${String(payload.to)}`
      return isPublicEventType(type) && type !== 'order.created' ? type : null
    }
    case 'catalog.products_changed':
      return 'products.changed'
    default:
      return null
  }
}
