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
  }
}
