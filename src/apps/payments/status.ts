/**
 * How a payment's status may move. Provider events arrive late, twice and out of order; only a
 * newer event moves a payment, and `succeeded` and `canceled` are final (refunds are counted
 * apart, in `amount_refunded`). Events of the same second are ordered by how far along they are.
 * Money taken always counts: `succeeded` replaces anything, even a cancellation we recorded.
 */
import type { PaymentStatus } from './tables.js'

// A decline usually follows `processing` within the second; a retry after it takes longer.
const PROGRESS: Record<PaymentStatus, number> = { pending: 0, processing: 1, failed: 2, succeeded: 3, canceled: 3 }

/** Whether an update seen at `at` (Unix seconds) may replace the current status seen at `current.at`. */
export function mayMove(current: { status: PaymentStatus; at: number }, next: { status: PaymentStatus; at: number }): boolean {
  if (current.status === next.status || current.status === 'succeeded') return false
  if (next.status === 'succeeded') return true
  if (current.status === 'canceled') return false
  if (next.status === 'canceled') return true
  if (next.at !== current.at) return next.at > current.at
  return PROGRESS[next.status] > PROGRESS[current.status]
}

/** A payment a customer can still complete, so a new request for the order reuses it. */
export function isUsable(status: PaymentStatus): boolean {
  return status !== 'canceled'
}
