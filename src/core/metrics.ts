/**
 * Prometheus metrics. Each app instance has its own registry (tests build many apps in one
 * process). HTTP metrics are labelled by the route template, never the raw URL, so ids in paths
 * cannot explode the number of series.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { PoolStats } from './db/index.js'
import type { QueueStats } from './queue/index.js'

export interface Metrics {
  registry: Registry
  httpRequests: Counter<'method' | 'route' | 'status'>
  httpDuration: Histogram<'method' | 'route' | 'status'>
  taskRuns: Counter<'task' | 'outcome'>
  taskDuration: Histogram<'task'>
  business: BusinessMetrics
}

/**
 * What the shop did, counted by the process that did it once its transaction committed (callers
 * use `ctx.afterCommit`): Prometheus adds the processes up, and a rolled-back checkout counts nothing.
 */
export interface BusinessMetrics {
  orderPlaced(currency: string): void
  /** An order paid (the first time), with its total in minor units. */
  orderPaid(currency: string, total: number): void
  paymentFailed(provider: string): void
  reservationExpired(): void
  /** A provider's webhook event arrived this long after the provider created it. */
  webhookReceived(provider: string, lagSeconds: number): void
}

export interface MetricSources {
  pool: () => PoolStats
  queue: () => Promise<QueueStats>
  outboxBacklog: () => Promise<{ count: number; oldest_age_seconds: number }>
}

export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read())
      },
    })
  gauge('db_pool_connections', 'Open database connections', () => sources.pool().total)
  gauge('db_pool_idle_connections', 'Idle database connections', () => sources.pool().idle)
  gauge('db_pool_waiting_clients', 'Queries waiting for a database connection', () => sources.pool().waiting)
  gauge('db_pool_max_connections', 'Configured database pool size', () => sources.pool().max)
  // One read of the queue (Redis round trips with a broker) per scrape serves the four gauges.
  let queueRead: Promise<QueueStats | null> | null = null
  const queueStat = (name: string, help: string, pick: (stats: QueueStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        queueRead ??= sources.queue().catch(() => null).finally(() => setImmediate(() => (queueRead = null)))
        const stats = await queueRead
        this.set(stats ? pick(stats) : -1)
      },
    })
  queueStat('task_queue_waiting', 'Jobs waiting to run (also delayed for a retry); -1 when the broker does not answer', (stats) => stats.waiting)
  queueStat('task_queue_active', 'Jobs running', (stats) => stats.active)
  queueStat('task_queue_failed', 'Jobs kept as failed', (stats) => stats.failed)
  queueStat('task_queue_completed', 'Jobs completed (kept by the broker, or since start in-process)', (stats) => stats.completed)
  new Gauge({
    name: 'outbox_backlog_events',
    help: 'Domain events not yet handed to the queue',
    registers,
    labelNames: [],
    async collect() {
      this.set((await sources.outboxBacklog().catch(() => ({ count: -1 }))).count)
    },
  })
  new Gauge({
    name: 'outbox_oldest_event_age_seconds',
    help: 'Age of the oldest domain event not yet handed to the queue (0 when none waits; -1 when unknown)',
    registers,
    async collect() {
      this.set((await sources.outboxBacklog().catch(() => ({ oldest_age_seconds: -1 }))).oldest_age_seconds)
    },
  })

  return {
    registry,
    httpRequests: new Counter({ name: 'http_requests_total', help: 'HTTP requests answered', labelNames: ['method', 'route', 'status'], registers }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    taskRuns: new Counter({ name: 'tasks_total', help: 'Task runs by outcome', labelNames: ['task', 'outcome'], registers }),
    taskDuration: new Histogram({ name: 'task_duration_seconds', help: 'Task run time', labelNames: ['task'], registers }),
    business: businessMetrics(registers),
  }
}

function businessMetrics(registers: Registry[]): BusinessMetrics {
  const placed = new Counter({ name: 'shop_orders_placed_total', help: 'Orders placed at checkout', labelNames: ['currency'], registers })
  const paid = new Counter({ name: 'shop_orders_paid_total', help: 'Orders paid (each once)', labelNames: ['currency'], registers })
  const revenue = new Counter({ name: 'shop_revenue_minor_units_total', help: 'Totals of the orders paid, in minor units of the currency', labelNames: ['currency'], registers })
  const failures = new Counter({ name: 'shop_payment_failures_total', help: 'Payments the provider reported as failed', labelNames: ['provider'], registers })
  const expired = new Counter({ name: 'shop_reservations_expired_total', help: 'Unpaid orders cancelled when their stock reservation ran out', registers })
  const webhookLag = new Histogram({
    name: 'shop_webhook_lag_seconds',
    help: "Time from a provider creating a webhook event to its arrival (the provider's retries show here)",
    labelNames: ['provider'],
    // Seconds when all is well, minutes to days while the provider retries.
    buckets: [1, 5, 15, 60, 300, 900, 3_600, 21_600, 86_400],
    registers,
  })
  return {
    orderPlaced: (currency) => placed.inc({ currency }),
    orderPaid(currency, total) {
      paid.inc({ currency })
      revenue.inc({ currency }, total)
    },
    paymentFailed: (provider) => failures.inc({ provider }),
    reservationExpired: () => expired.inc(),
    webhookReceived: (provider, lagSeconds) => webhookLag.observe({ provider }, Math.max(0, lagSeconds)),
  }
}
