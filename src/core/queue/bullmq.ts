/**
 * The task queue on BullMQ (Redis at CELERY_BROKER_URL): what `npm run worker` consumes.
 * Producers (API processes, the scheduler, workers enqueuing follow-ups) only add jobs, to the
 * queue of the task's route; workers (`startWorkers`) run them with the same semantics as the
 * in-process runner: payload validated on both sides, exponential backoff, a hard timeout, and
 * failed jobs kept (inspectable and retryable with `npm run manage -- tasks failed|retry ID`).
 *
 * A job whose worker died mid-run (SIGKILL, a lost machine) keeps its lock only for
 * `lockDurationMs`; BullMQ then hands it to another worker. Tasks are idempotent, so running
 * again what half ran is safe.
 */
import { Queue, UnrecoverableError as BullUnrecoverableError, Worker, type Job } from 'bullmq'
import type { Logger } from '../logging.js'
import { isFinalFailure, planOf, runAttempt, validatePayload, type FailedJob, type QueueDefaults, type QueueStats, type TaskFailureHandler, type TaskQueue, type TaskRegistry } from './index.js'
import { QUEUE_NAMES, type QueueName } from './routing.js'

export interface BullmqSettings extends QueueDefaults {
  brokerUrl: string
  /** Key prefix in Redis, so several shops (or test runs) can share one server. */
  prefix: string
  /** How long an add may wait for Redis before it fails (the outbox keeps the event meanwhile). */
  enqueueTimeoutMs: number
}

/** How long finished jobs are kept in Redis: completed ones a day, failed ones a week. */
const KEEP_COMPLETED = { age: 24 * 3600, count: 10_000 }
const KEEP_FAILED = { age: 7 * 24 * 3600 }

/** BullMQ refuses custom ids with ':' (its own separator); ours use it (`<event id>:<task>`). */
export const bullJobId = (id: string) => id.replaceAll(':', '|')

export function createBullmqQueue(options: { settings: BullmqSettings; registry: TaskRegistry; log: Logger }): TaskQueue & { queue(name: QueueName): Queue } {
  const { settings, registry, log } = options
  const queues = new Map<QueueName, Queue>()
  const queue = (name: QueueName): Queue => {
    let existing = queues.get(name)
    if (!existing) {
      // No offline queue: with Redis down an add fails at once instead of piling up in memory.
      existing = new Queue(name, { connection: { url: settings.brokerUrl, enableOfflineQueue: false }, prefix: settings.prefix })
      existing.on('error', (err) => log.warn({ err, queue: name }, 'task queue connection problem'))
      queues.set(name, existing)
    }
    return existing
  }
  const all = () => QUEUE_NAMES.map(queue)

  const withTimeout = async <T>(what: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`The task broker did not answer within ${settings.enqueueTimeoutMs} ms`)), settings.enqueueTimeoutMs)
    })
    try {
      return await Promise.race([what, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  const counts = async () => {
    const perQueue = await Promise.all(all().map((q) => q.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed')))
    return perQueue.reduce(
      (sum, c) => ({
        waiting: sum.waiting + (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
        active: sum.active + (c.active ?? 0),
        completed: sum.completed + (c.completed ?? 0),
        failed: sum.failed + (c.failed ?? 0),
      }),
      { waiting: 0, active: 0, completed: 0, failed: 0 } as QueueStats,
    )
  }

  return {
    backend: 'bullmq',
    queue,
    async enqueue(name, payload, enqueueOptions = {}) {
      const task = registry.get(name)
      validatePayload(task, payload)
      const plan = planOf(task, settings)
      const job = await withTimeout(
        queue(plan.queue).add(name, payload, {
          ...(enqueueOptions.jobId ? { jobId: bullJobId(enqueueOptions.jobId) } : {}),
          attempts: enqueueOptions.attempts ?? plan.attempts,
          backoff: { type: 'exponential', delay: plan.backoffMs },
          ...(plan.priority !== undefined ? { priority: plan.priority } : {}),
          ...(enqueueOptions.delayMs ? { delay: enqueueOptions.delayMs } : {}),
          removeOnComplete: KEEP_COMPLETED,
          removeOnFail: KEEP_FAILED,
        }),
      )
      return { id: job.id! }
    },
    // Bounded like ping: health checks and /metrics/ scrapes must not hang on a broker that never answered.
    stats: () => withTimeout(counts()),
    /** Waits (polling Redis) until no job waits or runs: for tests and one-off commands. */
    async drain() {
      for (;;) {
        const { waiting, active } = await counts()
        if (waiting + active === 0) return
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    async failed() {
      const jobs = (await Promise.all(all().map((q) => q.getFailed()))).flat() as Job[]
      return jobs.map(failedJobOf).sort((a, b) => a.failed_at.localeCompare(b.failed_at))
    },
    async retry(id) {
      for (const q of all()) {
        const job = await q.getJob(id)
        if (job && (await job.isFailed())) {
          // From its first attempt, as documented: BullMQ keeps the used-up count unless told.
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true })
          return true
        }
      }
      return false
    },
    async ping() {
      // A count is one round trip to Redis: the cheapest question the queue API asks.
      await withTimeout(queue('default').getJobCounts('waiting'))
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()))
    },
  }
}

function failedJobOf(job: Job): FailedJob {
  return {
    id: job.id!,
    task: job.name,
    payload: job.data,
    attempts: job.attemptsMade,
    error: job.failedReason,
    failed_at: new Date(job.finishedOn ?? job.timestamp).toISOString(),
  }
}

export interface WorkerSettings {
  brokerUrl: string
  prefix: string
  queues: QueueName[]
  concurrency: number
  /** A running job's lock; a worker that dies loses its jobs to another one after this long. */
  lockDurationMs: number
}

export interface RunningWorkers {
  /** Stops taking jobs and waits for running ones; after `timeoutMs` they are left to another worker. */
  close(timeoutMs: number): Promise<void>
}

/** Consumes the given queues in this process, `concurrency` jobs at a time per queue. */
export function startWorkers(options: {
  settings: WorkerSettings
  defaults: QueueDefaults
  registry: TaskRegistry
  log: Logger
  onFinished?: (task: string, outcome: 'completed' | 'failed' | 'retried', seconds: number) => void
  onFailed?: TaskFailureHandler
}): RunningWorkers {
  const { settings, registry, log } = options
  const workers = settings.queues.map((name) => {
    const worker = new Worker(
      name,
      async (job: Job) => {
        const started = performance.now()
        const jobLog = log.child({ task: job.name, job_id: job.id, attempt: job.attemptsMade + 1, queue: name })
        try {
          const task = registry.get(job.name)
          await runAttempt(task, job.data, { id: job.id!, attempt: job.attemptsMade + 1, log: jobLog }, planOf(task, options.defaults).timeoutMs)
          options.onFinished?.(job.name, 'completed', (performance.now() - started) / 1000)
        } catch (err) {
          const final = isFinalFailure(err) || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
          jobLog[final ? 'error' : 'warn']({ err }, final ? 'task failed permanently' : 'task failed, will retry')
          options.onFinished?.(job.name, final ? 'failed' : 'retried', (performance.now() - started) / 1000)
          if (final) options.onFailed?.(job.name, err, { id: job.id!, attempts: job.attemptsMade + 1 })
          // BullMQ's own class makes it skip the remaining attempts.
          if (isFinalFailure(err)) throw new BullUnrecoverableError(err instanceof Error ? err.message : String(err))
          throw err
        }
      },
      {
        connection: { url: settings.brokerUrl, maxRetriesPerRequest: null },
        prefix: settings.prefix,
        concurrency: settings.concurrency,
        lockDuration: settings.lockDurationMs,
        stalledInterval: Math.max(500, Math.floor(settings.lockDurationMs / 2)),
      },
    )
    worker.on('error', (err) => log.warn({ err, queue: name }, 'worker connection problem'))
    return worker
  })
  log.info({ queues: settings.queues, concurrency: settings.concurrency }, 'workers started')
  return {
    async close(timeoutMs) {
      // Let running jobs finish; past the budget, close without waiting: their locks expire and another worker takes them.
      const graceful = Promise.all(workers.map((worker) => worker.close()))
      const expired = new Promise<'expired'>((resolve) => setTimeout(() => resolve('expired'), timeoutMs).unref())
      if ((await Promise.race([graceful, expired])) === 'expired') {
        log.warn({ timeout_ms: timeoutMs }, 'jobs still running at shutdown are left to another worker')
        await Promise.all(workers.map((worker) => worker.close(true)))
      }
    },
  }
}
