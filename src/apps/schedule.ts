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
  // Outgoing webhooks whose retry is due and whose delayed job was lost (a restart) are sent.
  { name: 'webhooks.deliver_due', task: 'webhooks.deliver_due', every_seconds: 60 },
  // Yesterday's analytics (and any day not rolled up yet) into the daily tables the reports read.
  // Every 15 minutes: after midnight in any TIME_ZONE the day is rolled up soon, and a run with nothing new is cheap.
  { name: 'analytics.rollup', task: 'analytics.rollup', every_seconds: 900 },
  // Cleanups run daily at night (UTC), one after the other.
  // Idempotency keys past IDEMPOTENCY_TTL_HOURS, outbox events delivered a week ago.
  { name: 'core.clean_expired', task: 'core.clean_expired', cron: '10 3 * * *' },
  // Refresh and one-time tokens that can no longer be used.
  { name: 'accounts.clean_spent_tokens', task: 'accounts.clean_spent_tokens', cron: '20 3 * * *' },
  // The Stripe webhook inbox forgets event ids after 90 days (Stripe retries for 3).
  { name: 'payments.prune_webhook_events', task: 'payments.prune_webhook_events', cron: '30 3 * * *' },
  // Raw analytics events older than ANALYTICS_RETENTION_DAYS.
  { name: 'analytics.prune_events', task: 'analytics.prune_events', cron: '50 3 * * *' },
  // Finished outgoing webhook deliveries older than WEBHOOK_LOG_DAYS leave the delivery log.
  { name: 'webhooks.prune_deliveries', task: 'webhooks.prune_deliveries', cron: '40 3 * * *' },
]
