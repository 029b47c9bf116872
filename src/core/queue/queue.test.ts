import { Type } from 'typebox'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../logging.js'
import {
  createInProcessQueue,
  defineTask,
  TaskPayloadError,
  TaskRegistry,
  UnknownTaskError,
  UnrecoverableError,
  type InProcessQueueOptions,
  type JobContext,
  type TaskDefinition,
} from './index.js'

const log = createLogger({ log: { level: 'silent', pretty: false } })
const Payload = Type.Object({ n: Type.Integer() })

function queueWith(tasks: TaskDefinition[], settings: Partial<InProcessQueueOptions['settings']> = {}) {
  const registry = new TaskRegistry()
  for (const task of tasks) registry.register(task)
  return createInProcessQueue({ registry, log, settings: { backoffMs: 1, defaultAttempts: 3, defaultTimeoutMs: 1000, ...settings } })
}

/** A handler that records its calls and fails the first `failures` attempts. */
function recorder(failures = 0, error: () => Error = () => new Error('boom')) {
  const calls: Array<{ payload: unknown; job: JobContext; at: number }> = []
  const handler = async (payload: unknown, job: JobContext) => {
    calls.push({ payload, job, at: performance.now() })
    if (calls.length <= failures) throw error()
  }
  return { calls, handler }
}

function deferred() {
  let resolve!: () => void
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

describe(createInProcessQueue.name, () => {
  it('runs the handler with the payload when a job is enqueued', async () => {
    const { calls, handler } = recorder()
    const queue = queueWith([defineTask({ name: 'test.run', schema: Payload, handler })])
    const { id } = await queue.enqueue('test.run', { n: 7 })
    await queue.drain()
    expect(calls).toHaveLength(1)
    expect(calls[0]!.payload).toEqual({ n: 7 })
    expect(calls[0]!.job).toMatchObject({ id, attempt: 1 })
    expect((await queue.stats())).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 })
  })

  it('rejects with UnknownTaskError when the task is not registered', async () => {
    const queue = queueWith([])
    await expect(queue.enqueue('test.nobody', { n: 1 })).rejects.toBeInstanceOf(UnknownTaskError)
    expect((await queue.stats())).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 })
  })

  it('rejects with TaskPayloadError and never runs the handler when the payload misses the schema', async () => {
    const { calls, handler } = recorder()
    const queue = queueWith([defineTask({ name: 'test.strict', schema: Payload, handler })])
    await expect(queue.enqueue('test.strict', { n: 'one' })).rejects.toBeInstanceOf(TaskPayloadError)
    await expect(queue.enqueue('test.strict', {})).rejects.toThrow(/Invalid payload for task "test.strict"/)
    await queue.drain()
    expect(calls).toHaveLength(0)
    expect((await queue.stats())).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 })
  })

  it('retries and completes when the handler fails twice then succeeds', async () => {
    const { calls, handler } = recorder(2)
    const queue = queueWith([defineTask({ name: 'test.flaky', schema: Payload, handler })])
    const { id } = await queue.enqueue('test.flaky', { n: 1 })
    await queue.drain()
    expect(calls.map((call) => call.job.attempt)).toEqual([1, 2, 3])
    expect(new Set(calls.map((call) => call.job.id))).toEqual(new Set([id]))
    expect((await queue.stats())).toMatchObject({ completed: 1, failed: 0 })
    expect((await queue.failed())).toEqual([])
  })

  it('waits exponentially longer between retries when backoffMs is 20', async () => {
    const { calls, handler } = recorder(2)
    const queue = queueWith([defineTask({ name: 'test.backoff', schema: Payload, handler })], { backoffMs: 20 })
    await queue.enqueue('test.backoff', { n: 1 })
    await queue.drain()
    expect(calls).toHaveLength(3)
    const beforeSecond = calls[1]!.at - calls[0]!.at
    const beforeThird = calls[2]!.at - calls[1]!.at
    // Timers may fire late, never early: only lower bounds hold.
    expect(beforeSecond).toBeGreaterThanOrEqual(19)
    expect(beforeThird).toBeGreaterThanOrEqual(39)
    expect(beforeThird).toBeGreaterThanOrEqual(beforeSecond)
  })

  it('keeps the job as failed with its error when every attempt fails', async () => {
    const { calls, handler } = recorder(Infinity, () => new Error('smtp is down'))
    const queue = queueWith([defineTask({ name: 'test.doomed', schema: Payload, handler })])
    const { id } = await queue.enqueue('test.doomed', { n: 3 })
    await queue.drain()
    expect(calls).toHaveLength(3)
    expect((await queue.failed())).toEqual([
      { id, task: 'test.doomed', payload: { n: 3 }, attempts: 3, error: 'smtp is down', failed_at: expect.any(String) },
    ])
    expect(Number.isNaN(Date.parse((await queue.failed())[0]!.failed_at))).toBe(false)
    expect((await queue.stats())).toEqual({ waiting: 0, active: 0, completed: 0, failed: 1 })
  })

  it('fails after one attempt when the handler throws UnrecoverableError', async () => {
    const { calls, handler } = recorder(Infinity, () => new UnrecoverableError('address rejected'))
    const queue = queueWith([defineTask({ name: 'test.hopeless', schema: Payload, handler })])
    await queue.enqueue('test.hopeless', { n: 1 })
    await queue.drain()
    expect(calls).toHaveLength(1)
    expect((await queue.failed())).toMatchObject([{ task: 'test.hopeless', attempts: 1, error: 'address rejected' }])
  })

  it('fails with a timeout and aborts job.signal when the handler never resolves', async () => {
    const signals: AbortSignal[] = []
    const queue = queueWith([
      defineTask({
        name: 'test.stuck',
        schema: Payload,
        timeoutMs: 50,
        attempts: 1,
        handler: (_payload, job) => {
          signals.push(job.signal)
          return new Promise<void>(() => undefined)
        },
      }),
    ])
    await queue.enqueue('test.stuck', { n: 1 })
    await queue.drain()
    expect(signals).toHaveLength(1)
    expect(signals[0]!.aborted).toBe(true)
    expect((await queue.failed())).toMatchObject([{ task: 'test.stuck', attempts: 1, error: 'Task timed out after 50 ms' }])
  })

  it('runs a job once when two enqueues share a jobId', async () => {
    const { calls, handler } = recorder()
    const queue = queueWith([defineTask({ name: 'test.once', schema: Payload, handler })])
    const first = await queue.enqueue('test.once', { n: 1 }, { jobId: 'event-1:test.once' })
    const second = await queue.enqueue('test.once', { n: 1 }, { jobId: 'event-1:test.once' })
    await queue.drain()
    expect(first.id).toBe('event-1:test.once')
    expect(second.id).toBe(first.id)
    expect(calls).toHaveLength(1)
    expect((await queue.stats()).completed).toBe(1)
  })

  it('waits for a running job when closed, then refuses new jobs', async () => {
    const started = deferred()
    const gate = deferred()
    let finished = false
    const queue = queueWith([
      defineTask({
        name: 'test.slow',
        schema: Payload,
        async handler() {
          started.resolve()
          await gate.promise
          finished = true
        },
      }),
    ])
    await queue.enqueue('test.slow', { n: 1 })
    await started.promise
    let closed = false
    const closing = queue.close(5_000).then(() => {
      closed = true
    })
    // A macrotask turn: close must still be waiting on the job.
    await new Promise((resolve) => setImmediate(resolve))
    expect(closed).toBe(false)
    gate.resolve()
    await closing
    expect(finished).toBe(true)
    expect((await queue.stats())).toMatchObject({ active: 0, completed: 1 })
    await expect(queue.enqueue('test.slow', { n: 2 })).rejects.toThrow('The task queue is closed')
  })

  it('stops waiting for a running job when close times out', async () => {
    const started = deferred()
    const queue = queueWith([
      defineTask({
        name: 'test.forever',
        schema: Payload,
        timeoutMs: 200,
        handler: () => {
          started.resolve()
          return new Promise<void>(() => undefined)
        },
      }),
    ])
    await queue.enqueue('test.forever', { n: 1 })
    await started.promise
    await queue.close(20)
    // close returned while the job still ran: the wait is bounded.
    expect((await queue.stats()).active).toBe(1)
    await queue.drain()
    // A closed queue does not retry: the timed-out job is kept as failed after one attempt.
    expect((await queue.failed())).toMatchObject([{ task: 'test.forever', attempts: 1, error: 'Task timed out after 200 ms' }])
  })
})
