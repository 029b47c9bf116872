/**
 * The periodic tasks the code ships with. The scheduler inserts the rows that are missing from
 * `periodic_tasks` and never changes existing ones, so an operator's edit (disabled, another
 * interval) survives deploys. Task names are strings: this list is configuration, read by the
 * scheduler and `manage periodic`, and a name nobody registered is logged and skipped.
 */
import type { ScheduleEntry } from '../core/scheduler/index.js'

export const DEFAULT_SCHEDULE: readonly ScheduleEntry[] = [
  // Unpaid orders past ORDER_RESERVATION_MINUTES are cancelled; their stock and coupon released.
  { name: 'orders.expire_reservations', task: 'orders.expire_reservations', every_seconds: 60 },
  // Carts idle for CART_EXPIRY_DAYS expire.
  { name: 'cart.expire_carts', task: 'cart.expire_carts', every_seconds: 3_600 },
  // The safety net for lost webhooks: payments stuck in processing are read back, pending refunds sent again.
  { name: 'payments.reconcile', task: 'payments.reconcile', every_seconds: 300 },
]
