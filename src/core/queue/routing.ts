/**
 * Where each task runs and how hard it is tried, in one place — the counterpart of the original's
 * `core/celery_config.py`. Three queues: `high` for what a customer waits on (email, refunds),
 * `default`, and `low` for housekeeping. A worker listens to some or all of them
 * (`npm run worker -- --queues high,default`). What a route leaves out comes from the task's
 * definition, then the settings (attempts 5, backoff from 1 s doubling, timeout 60 s). Periodic
 * tasks try fewer times: their next run comes soon anyway.
 */
export const QUEUE_NAMES = ['high', 'default', 'low'] as const
export type QueueName = (typeof QUEUE_NAMES)[number]

export interface TaskRoute {
  queue: QueueName
  /** BullMQ priority within the queue: 1 runs first; absent runs after every prioritised job. */
  priority?: number
  attempts?: number
  /** Hard limit of one attempt. */
  timeoutMs?: number
}

export const TASK_ROUTES: Readonly<Record<string, TaskRoute>> = {
  'core.send_email': { queue: 'high', timeoutMs: 30_000 },
  'accounts.send_verification_email': { queue: 'high' },
  'accounts.send_password_reset_email': { queue: 'high', priority: 1 },
  'orders.send_status_email': { queue: 'high' },
  'payments.execute_refund': { queue: 'high', timeoutMs: 60_000 },
  'payments.send_payment_failed_email': { queue: 'high' },
  'payments.send_refund_email': { queue: 'high' },
  'payments.after_order_moved': { queue: 'default' },
  'search.index_products': { queue: 'default' },
  'webhooks.fan_out': { queue: 'default' },
  'webhooks.deliver': { queue: 'default' },
  'notifications.notify_order_moved': { queue: 'default' },
  'notifications.notify_payment_failed': { queue: 'default' },
  'notifications.notify_refund': { queue: 'default' },
  'orders.expire_reservations': { queue: 'default', attempts: 3, timeoutMs: 5 * 60_000 },
  'payments.reconcile': { queue: 'low', attempts: 3, timeoutMs: 5 * 60_000 },
  'cart.expire_carts': { queue: 'low', attempts: 3, timeoutMs: 5 * 60_000 },
  'notifications.send_broadcast': { queue: 'low', timeoutMs: 10 * 60_000 },
  'webhooks.deliver_due': { queue: 'low' },
  'analytics.record_order_placed': { queue: 'low' },
  'analytics.record_order_paid': { queue: 'low' },
  'analytics.record_refund': { queue: 'low' },
  'analytics.rollup': { queue: 'low', attempts: 3, timeoutMs: 10 * 60_000 },
  'analytics.prune_events': { queue: 'low', attempts: 3, timeoutMs: 10 * 60_000 },
  'webhooks.prune_deliveries': { queue: 'low', attempts: 3, timeoutMs: 10 * 60_000 },
  'core.clean_expired': { queue: 'low', attempts: 3, timeoutMs: 10 * 60_000 },
  'accounts.clean_spent_tokens': { queue: 'low', attempts: 3, timeoutMs: 10 * 60_000 },
  'payments.prune_webhook_events': { queue: 'low', attempts: 3, timeoutMs: 10 * 60_000 },
}

export function routeOf(task: string): TaskRoute {
  return TASK_ROUTES[task] ?? { queue: 'default' }
}

/** `--queues high,default` → the names, refusing any other. */
export function parseQueueNames(value: string): QueueName[] {
  const names = value.split(',').map((name) => name.trim()).filter(Boolean)
  const unknown = names.filter((name) => !(QUEUE_NAMES as readonly string[]).includes(name))
  if (unknown.length > 0 || names.length === 0) throw new Error(`--queues: expected some of ${QUEUE_NAMES.join(', ')}, got "${value}"`)
  return [...new Set(names)] as QueueName[]
}
