/**
 * Tasks: slow or retryable work (email, indexing, webhooks) runs outside the request.
 * Apps define tasks with a TypeBox payload schema and enqueue them by name. This file holds the
 * registry, what running one attempt means (`runAttempt`), how hard a task is tried (`planOf`,
 * from routing.ts), and the in-process runner used when no broker is configured. The BullMQ
 * backend (bullmq.ts) keeps the same semantics: payload validated on enqueue and on run, retries
 * with exponential backoff, a hard timeout, and failed jobs kept with their error, retryable.
 */
import { randomUUID } from 'node:crypto'
import type { Static, TSchema } from 'typebox'
import { Value } from 'typebox/value'
import type { Settings } from '../../config/index.js'
import type { Logger } from '../logging.js'
import { routeOf, type QueueName } from './routing.js'

export interface JobContext {
  id: string
  attempt: number
  /** Aborted when the job exceeds its timeout. */
  signal: AbortSignal
  log: Logger
}

export interface TaskDefinition<S extends TSchema = TSchema> {
  /** `<app>.<verb_object>`, e.g. `core.send_email`. */
  name: string
  schema: S
  handler: (payload: Static<S>, job: JobContext) => Promise<void>
  attempts?: number
  /** Base delay of the exponential backoff between attempts. */
  backoffMs?: number
  timeoutMs?: number
}

export function defineTask<S extends TSchema>(definition: TaskDefinition<S>): TaskDefinition<S> {
  return definition
}

export interface EnqueueOptions {
  delayMs?: number
  /** Jobs with the same id are enqueued once (dedupe for at-least-once producers). */
  jobId?: string
  attempts?: number
}

export interface FailedJob {
  id: string
  task: string
  payload: unknown
  attempts: number
  error: string
  failed_at: string
}

export interface QueueStats {
  waiting: number
  active: number
  completed: number
  failed: number
}

export interface TaskQueue {
  readonly backend: 'in-process' | 'bullmq'
  enqueue(task: string, payload: unknown, options?: EnqueueOptions): Promise<{ id: string }>
  /** Resolves when no job is waiting, running or due for a retry. */
  drain(): Promise<void>
  stats(): Promise<QueueStats>
  /** Jobs that used up their attempts (or failed for good), newest last. */
  failed(): Promise<FailedJob[]>
  /** Runs a failed job again from its first attempt; false when no failed job has this id. */
  retry(id: string): Promise<boolean>
  ping(): Promise<void>
  /** Stops taking jobs and waits (bounded) for running ones. */
  close(timeoutMs?: number): Promise<void>
}

/** A task name nobody registered. */
export class UnknownTaskError extends Error {
  constructor(name: string) {
    super(`Unknown task "${name}"`)
    this.name = 'UnknownTaskError'
  }
}

/** A payload that does not match the task's schema. */
export class TaskPayloadError extends Error {
  constructor(task: string, problems: string[]) {
    super(`Invalid payload for task "${task}": ${problems.join('; ')}`)
    this.name = 'TaskPayloadError'
  }
}

/** Thrown by a handler when retrying cannot help: the job fails at once. */
export class UnrecoverableError extends Error {
  override name = 'UnrecoverableError'
}

export class TaskRegistry {
  private readonly tasks = new Map<string, TaskDefinition>()
  private readonly subscriptions = new Map<string, string[]>()

  register<S extends TSchema>(task: TaskDefinition<S>): this {
    if (this.tasks.has(task.name)) throw new Error(`Task "${task.name}" is registered twice`)
    this.tasks.set(task.name, task as unknown as TaskDefinition)
    return this
  }

  /** Runs `task` for every `event` the outbox relay delivers; the payload is the event envelope. */
  subscribe(event: string, task: string): this {
    this.subscriptions.set(event, [...(this.subscriptions.get(event) ?? []), task])
    return this
  }

  get(name: string): TaskDefinition {
    const task = this.tasks.get(name)
    if (!task) throw new UnknownTaskError(name)
    return task
  }

  subscribers(event: string): readonly string[] {
    return this.subscriptions.get(event) ?? []
  }

  names(): string[] {
    return [...this.tasks.keys()]
  }
}

/** How a task is run: its queue and priority, attempts, backoff and timeout (routing table, then definition, then settings). */
export interface TaskPlan {
  queue: QueueName
  priority?: number
  attempts: number
  backoffMs: number
  timeoutMs: number
}

export type QueueDefaults = Pick<Settings['queue'], 'backoffMs' | 'defaultAttempts' | 'defaultTimeoutMs'>

export function planOf(task: TaskDefinition, defaults: QueueDefaults): TaskPlan {
  const route = routeOf(task.name)
  return {
    queue: route.queue,
    ...(route.priority !== undefined ? { priority: route.priority } : {}),
    attempts: route.attempts ?? task.attempts ?? defaults.defaultAttempts,
    backoffMs: task.backoffMs ?? defaults.backoffMs,
    timeoutMs: route.timeoutMs ?? task.timeoutMs ?? defaults.defaultTimeoutMs,
  }
}

/** Whether a failure ends the job at once: retrying cannot help. */
export function isFinalFailure(err: unknown): boolean {
  return err instanceof UnrecoverableError || err instanceof TaskPayloadError || err instanceof UnknownTaskError
}

/**
 * One attempt of a job: the payload checked again (it may have waited in the broker across a
 * deploy), the handler raced against the hard timeout, whose signal tells it to stop.
 */
export async function runAttempt(task: TaskDefinition, payload: unknown, job: Omit<JobContext, 'signal'>, timeoutMs: number): Promise<void> {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  try {
    validatePayload(task, payload)
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort()
        reject(new Error(`Task timed out after ${timeoutMs} ms`))
      }, timeoutMs)
    })
    await Promise.race([task.handler(payload as never, { ...job, signal: controller.signal }), timeout])
  } finally {
    clearTimeout(timer)
  }
}

export function validatePayload(task: TaskDefinition, payload: unknown): void {
  if (Value.Check(task.schema, payload)) return
  const problems = [...Value.Errors(task.schema, payload)].slice(0, 5).map((error) => `${error.instancePath || '/'} ${error.message}`)
  throw new TaskPayloadError(task.name, problems)
}

export interface InProcessQueueOptions {
  registry: TaskRegistry
  settings: QueueDefaults
  log: Logger
  onFinished?: (task: string, outcome: 'completed' | 'failed', seconds: number) => void
  /** A job that failed for good (error reporting). */
  onFailed?: TaskFailureHandler
}

export type TaskFailureHandler = (task: string, err: unknown, job: { id: string; attempts: number }) => void

/** Runs jobs in this process, on the event loop. Jobs still waiting at exit are lost: use a broker in production. */
export function createInProcessQueue(options: InProcessQueueOptions): TaskQueue {
  const { registry, settings, log } = options
  const timers = new Set<NodeJS.Timeout>()
  const running = new Set<Promise<void>>()
  const seenJobIds = new Set<string>()
  const failedJobs: FailedJob[] = []
  const idleWaiters: Array<() => void> = []
  let completed = 0
  let closed = false

  const notifyIfIdle = () => {
    if (timers.size === 0 && running.size === 0) idleWaiters.splice(0).forEach((resolve) => resolve())
  }

  const schedule = (delayMs: number, run: () => Promise<void>) => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      const job = run().finally(() => {
        running.delete(job)
        notifyIfIdle()
      })
      running.add(job)
    }, delayMs)
    timers.add(timer)
  }

  const attempt = async (id: string, task: TaskDefinition, payload: unknown, number: number, plan: TaskPlan) => {
    const started = performance.now()
    const jobLog = log.child({ task: task.name, job_id: id, attempt: number })
    try {
      await runAttempt(task, payload, { id, attempt: number, log: jobLog }, plan.timeoutMs)
      completed += 1
      options.onFinished?.(task.name, 'completed', (performance.now() - started) / 1000)
    } catch (err) {
      const final = number >= plan.attempts || isFinalFailure(err)
      if (!final && !closed) {
        const delay = plan.backoffMs * 2 ** (number - 1)
        jobLog.warn({ err, retry_in_ms: delay }, 'task failed, will retry')
        schedule(delay, () => attempt(id, task, payload, number + 1, plan))
        return
      }
      jobLog.error({ err }, 'task failed permanently')
      failedJobs.push({ id, task: task.name, payload, attempts: number, error: err instanceof Error ? err.message : String(err), failed_at: new Date().toISOString() })
      options.onFinished?.(task.name, 'failed', (performance.now() - started) / 1000)
      options.onFailed?.(task.name, err, { id, attempts: number })
    }
  }

  return {
    backend: 'in-process',
    async enqueue(name, payload, enqueueOptions = {}) {
      if (closed) throw new Error('The task queue is closed')
      const task = registry.get(name)
      validatePayload(task, payload)
      const id = enqueueOptions.jobId ?? randomUUID()
      if (enqueueOptions.jobId) {
        if (seenJobIds.has(id)) return { id }
        seenJobIds.add(id)
      }
      const plan = planOf(task, settings)
      if (enqueueOptions.attempts !== undefined) plan.attempts = enqueueOptions.attempts
      schedule(enqueueOptions.delayMs ?? 0, () => attempt(id, task, payload, 1, plan))
      return { id }
    },
    drain: () => new Promise<void>((resolve) => {
      idleWaiters.push(resolve)
      notifyIfIdle()
    }),
    stats: async () => ({ waiting: timers.size, active: running.size, completed, failed: failedJobs.length }),
    failed: async () => [...failedJobs],
    async retry(id) {
      const index = failedJobs.findIndex((job) => job.id === id)
      if (index < 0 || closed) return false
      const [job] = failedJobs.splice(index, 1)
      const task = registry.get(job!.task)
      schedule(0, () => attempt(id, task, job!.payload, 1, planOf(task, settings)))
      return true
    },
    ping: async () => undefined,
    async close(timeoutMs = 10_000) {
      closed = true
      const pending = Promise.allSettled([...running])
      await Promise.race([pending, new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())])
      for (const timer of timers) clearTimeout(timer)
      if (timers.size > 0) log.warn({ dropped: timers.size }, 'in-process jobs not yet started were dropped at shutdown')
      timers.clear()
      notifyIfIdle()
    },
  }
}
