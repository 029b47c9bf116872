import { Type } from 'typebox'

/** Events the orders app publishes (payloads carry ids; consumers read the rest through the service). */
export interface OrdersEvents {
  /** Checked out: stock reserved, waiting for payment. */
  'order.created': { order_id: string; number: string }
  /** Any status move, with who made it. Payments refunds a cancelled paid order from it. */
  'order.status_changed': { order_id: string; number: string; from: string; to: string; refund_due: boolean }
}

/** `order.status_changed` as subscribed tasks validate it. */
export const StatusChangedSchema = Type.Object({ order_id: Type.String(), number: Type.String(), from: Type.String(), to: Type.String(), refund_due: Type.Boolean() })

declare module '../../core/events/index.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface DomainEvents extends OrdersEvents {}
}
