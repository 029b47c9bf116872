/** Events the payments app publishes (payloads carry ids; consumers read the rest through the service). */
export interface PaymentsEvents {
  /** A refund row was written: the execute task sends it to the provider (at least once, same idempotency key). */
  'payment.refund_requested': { refund_id: string; payment_id: string }
  /** Money went back to the customer (`refund_id` null when the provider reported a refund made elsewhere). */
  'payment.refunded': { payment_id: string; order_id: string; amount: number; refund_id: string | null }
  /** An attempt to pay failed; the customer may try again. */
  'payment.failed': { payment_id: string; order_id: string }
  /** A person must look: an amount that does not match the order, or a dispute. */
  'payment.flagged': { payment_id: string; order_id: string; reason: string }
}

declare module '../../core/events/index.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface DomainEvents extends PaymentsEvents {}
}
