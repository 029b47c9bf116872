/**
 * The BullMQ backend against the suite's Redis (REDIS_URL): producer (`createBullmqQueue`) and
 * consumers (`startWorkers`) with the in-process runner's semantics. Two workers run a job once
 * and share many; retries back off exponentially; failed jobs are kept and retryable; an
 * unrecoverable error, a payload that no longer matches or an unknown task fails at once; a
 * timeout aborts the handler; routes pick the queue; stats count all three queues. A worker
 * killed mid-job (a child process, SIGKILL) loses the job to another one and the effect happens
 * once (PostgreSQL). With the broker unreachable, adding and pinging fail fast and /health/ says so.
 * Every test has a key prefix of its own, deleted afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import { Type } from 'typebox'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { dropDatabase, testServerUrl, uniqueName, urlFor, withAdmin } from '../../../test/database.js'
import { EFFECTS_TABLE_SQL, LOCK_DURATION_MS, RECORD_EFFECT_TASK, recordEffectTask } from '../../../test/fixtures/queue-worker.js'
import { createTestApp, suiteRedisUrl, usesPostgres } from '../../../test/harness.js'
import { projectRoot } from '../../config/index.js'
import { createLogger } from '../logging.js'
import { createBullmqQueue, startWorkers } from './bullmq.js'
import { defineTask, TaskPayloadError, TaskRegistry, UnrecoverableError, type JobContext, type QueueDefaults, type TaskDefinition, type TaskFailureHandler } from './index.js'
import { QUEUE_NAMES, type QueueName } from './routing.js'
import { freePort } from '../../../test/free-port.js'

const log = createLogger({ log: { level: 'silent', pretty: false } })
const Payload = Type.Object({ n: Type.Integer() })
const DEFAULTS: QueueDefaults = { backoffMs: 1, defaultAttempts: 3, defaultTimeoutMs: 5_000 }

/** Fails when `promise` has not settled within `ms` (an upper bound for what must not hang). */
async function within<T>(ms: number, promise: Promise<T>, what = 'promise'): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not settled within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `check` until it answers true; Redis state has no event to wait on. */
async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
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

function deferred<T = void>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

const registryOf = (tasks: TaskDefinition[]) => tasks.reduce((registry, task) => registry.register(task), new TaskRegistry())


/** Every key under `prefix` on the suite's Redis. */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(suiteRedisUrl!)
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.del(...keys)
    }
  } finally {
    await redis.quit()
  }
}

describe.runIf(suiteRedisUrl)('BullMQ task queue', () => {
  const brokerUrl = suiteRedisUrl!
  const prefixes: string[] = []
  const closers: Array<() => Promise<void>> = []

  afterEach(async () => {
    // Workers first (opened last), then producers, then the keys.
    for (const close of closers.splice(0).reverse()) await close()
  })
  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeys(prefix)
  })

  /** A producer for `tasks` under a prefix of its own, and a way to start workers on it. */
  function broker(tasks: TaskDefinition[], defaults: Partial<QueueDefaults> = {}) {
    const prefix = uniqueName('bulltest')
    prefixes.push(prefix)
    const settings = { ...DEFAULTS, ...defaults }
    const registry = registryOf(tasks)
    const queue = createBullmqQueue({ settings: { ...settings, brokerUrl, prefix, enqueueTimeoutMs: 5_000 }, registry, log })
    closers.push(() => queue.close())
    const work = (options: { registry?: TaskRegistry; queues?: QueueName[]; concurrency?: number; lockDurationMs?: number; onFinished?: (task: string, outcome: string) => void; onFailed?: TaskFailureHandler } = {}) => {
      const workers = startWorkers({
        settings: { brokerUrl, prefix, queues: options.queues ?? [...QUEUE_NAMES], concurrency: options.concurrency ?? 1, lockDurationMs: options.lockDurationMs ?? 5_000 },
        defaults: settings,
        registry: options.registry ?? registry,
        log,
        ...(options.onFinished ? { onFinished: options.onFinished } : {}),
        ...(options.onFailed ? { onFailed: options.onFailed } : {}),
      })
      closers.push(() => workers.close(2_000))
      return workers
    }
    return { prefix, queue, work }
  }

  describe('two workers', () => {
    /** The same task for two workers, each recording which of them ran what. */
    function twoWorkers(handler: (payload: { n: number }, job: JobContext) => Promise<void> = async () => undefined) {
      const runs: Array<{ worker: string; n: number; id: string }> = []
      const taskFor = (worker: string) =>
        defineTask({
          name: 'test.shared',
          schema: Payload,
          async handler(payload, job) {
            runs.push({ worker, n: payload.n, id: job.id })
            await handler(payload, job)
          },
        })
      const b = broker([taskFor('producer')])
      b.work({ registry: registryOf([taskFor('a')]), concurrency: 1 })
      b.work({ registry: registryOf([taskFor('b')]), concurrency: 1 })
      return { ...b, runs }
    }

    it('runs a job exactly once when two workers listen', async () => {
      const { queue, runs } = twoWorkers()
      const { id } = await queue.enqueue('test.shared', { n: 1 })
      await queue.drain()
      expect(runs).toEqual([{ worker: expect.stringMatching(/^[ab]$/), n: 1, id }])
      expect(await queue.stats()).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 })
    })

    it('spreads many jobs over both workers and runs each exactly once', async () => {
      // The first two jobs meet: with one job at a time per worker, they can only meet on two workers.
      let arrived = 0
      const met = deferred()
      const { queue, runs } = twoWorkers(async ({ n }) => {
        if (n >= 2) return
        arrived += 1
        if (arrived === 2) met.resolve()
        await met.promise
      })
      const total = 20
      for (let n = 0; n < total; n += 1) await queue.enqueue('test.shared', { n })
      await queue.drain()
      expect(runs.map((run) => run.n).sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, n) => n))
      expect(new Set(runs.map((run) => run.id)).size).toBe(total)
      expect(new Set(runs.filter((run) => run.n < 2).map((run) => run.worker))).toEqual(new Set(['a', 'b']))
      expect(await queue.stats()).toEqual({ waiting: 0, active: 0, completed: total, failed: 0 })
    })

    it('runs a job once when two enqueues share a jobId, whose ":" BullMQ refuses', async () => {
      const { queue, runs } = twoWorkers()
      const first = await queue.enqueue('test.shared', { n: 1 }, { jobId: 'event-1:test.shared' })
      const second = await queue.enqueue('test.shared', { n: 1 }, { jobId: 'event-1:test.shared' })
      await queue.drain()
      expect(first.id).toBe('event-1|test.shared')
      expect(second.id).toBe(first.id)
      expect(runs).toHaveLength(1)
      expect((await queue.stats()).completed).toBe(1)
    })
  })

  describe('retries and failures', () => {
    it('completes on the third attempt, waiting exponentially longer between attempts, when the handler fails twice', async () => {
      const backoffMs = 100
      const { calls, handler } = recorder(2)
      const { queue, work } = broker([defineTask({ name: 'test.flaky', schema: Payload, attempts: 5, handler })], { backoffMs })
      work()
      const { id } = await queue.enqueue('test.flaky', { n: 1 })
      await queue.drain()
      expect(calls.map((call) => call.job.attempt)).toEqual([1, 2, 3])
      expect(new Set(calls.map((call) => call.job.id))).toEqual(new Set([id]))
      const beforeSecond = calls[1]!.at - calls[0]!.at
      const beforeThird = calls[2]!.at - calls[1]!.at
      // Delays are lower bounds (the broker may hand a due job over late); 1 ms for clock rounding.
      expect(beforeSecond).toBeGreaterThanOrEqual(backoffMs - 1)
      expect(beforeThird).toBeGreaterThanOrEqual(2 * backoffMs - 1)
      expect(beforeThird).toBeGreaterThan(beforeSecond)
      expect(await queue.stats()).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 })
      expect(await queue.failed()).toEqual([])
    })

    it('keeps a job that failed every attempt with its error (reported once, after the last), and retry(id) runs it again from its first attempt', async () => {
      let broken = true
      const calls: JobContext[] = []
      const reported: Array<[string, string, { id: string; attempts: number }]> = []
      const { queue, work } = broker([
        defineTask({
          name: 'test.doomed',
          schema: Payload,
          attempts: 3,
          async handler(_payload, job) {
            calls.push(job)
            if (broken) throw new Error('smtp is down')
          },
        }),
      ])
      work({ onFailed: (task, err, job) => reported.push([task, (err as Error).message, job]) })
      const { id } = await queue.enqueue('test.doomed', { n: 3 })
      await queue.drain()
      expect(calls.map((job) => job.attempt)).toEqual([1, 2, 3])
      expect(reported).toEqual([['test.doomed', 'smtp is down', { id, attempts: 3 }]])
      const [failed, ...others] = await queue.failed()
      expect(others).toEqual([])
      expect(failed).toEqual({ id, task: 'test.doomed', payload: { n: 3 }, attempts: 3, error: 'smtp is down', failed_at: expect.any(String) })
      expect(Date.now() - Date.parse(failed!.failed_at)).toBeLessThan(60_000)
      expect(await queue.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 1 })

      broken = false
      expect(await queue.retry(id)).toBe(true)
      await queue.drain()
      expect(calls.map((job) => job.attempt)).toEqual([1, 2, 3, 1])
      expect(await queue.failed()).toEqual([])
      expect(await queue.stats()).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 })
      // Neither a completed job nor an id nobody used is a failed job.
      expect(await queue.retry(id)).toBe(false)
      expect(await queue.retry('no-such-job')).toBe(false)
    })

    it('tries a retried job as many times as a new one', async () => {
      const { calls, handler } = recorder(4)
      const { queue, work } = broker([defineTask({ name: 'test.twice', schema: Payload, attempts: 2, handler })])
      work()
      const { id } = await queue.enqueue('test.twice', { n: 1 })
      await queue.drain()
      expect(await queue.failed()).toMatchObject([{ id, attempts: 2 }])
      // Two more attempts after the retry (both fail), not one: the count starts again.
      expect(await queue.retry(id)).toBe(true)
      await queue.drain()
      expect(calls.map((call) => call.job.attempt)).toEqual([1, 2, 1, 2])
      expect(await queue.failed()).toMatchObject([{ id, attempts: 2, error: 'boom' }])
    })

    it('fails after one attempt when the handler throws UnrecoverableError', async () => {
      const { calls, handler } = recorder(Infinity, () => new UnrecoverableError('address rejected'))
      const { queue, work } = broker([defineTask({ name: 'test.hopeless', schema: Payload, attempts: 5, handler })])
      work()
      const { id } = await queue.enqueue('test.hopeless', { n: 1 })
      await queue.drain()
      expect(calls).toHaveLength(1)
      expect(await queue.failed()).toMatchObject([{ id, task: 'test.hopeless', attempts: 1, error: 'address rejected' }])
    })

    it('refuses an invalid payload on enqueue, and fails at once a job whose payload no longer matches or whose task is unknown', async () => {
      const { calls, handler } = recorder()
      const { queue, work } = broker([defineTask({ name: 'test.strict', schema: Payload, attempts: 5, handler })])
      await expect(queue.enqueue('test.strict', { n: 'one' })).rejects.toBeInstanceOf(TaskPayloadError)
      expect(await queue.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 })

      // What an older deploy left in Redis: a payload the schema no longer accepts, a task since removed.
      const stale = await queue.queue('default').add('test.strict', { n: 'one' }, { attempts: 5 })
      const orphan = await queue.queue('default').add('test.removed', { n: 1 }, { attempts: 5 })
      work()
      await queue.drain()
      expect(calls).toHaveLength(0)
      const failed = await queue.failed()
      expect(failed).toHaveLength(2)
      expect(failed.find((job) => job.id === stale.id)).toMatchObject({ attempts: 1, error: expect.stringMatching(/^Invalid payload for task "test.strict": \/n /) })
      expect(failed.find((job) => job.id === orphan.id)).toMatchObject({ attempts: 1, error: 'Unknown task "test.removed"' })
    })

    it('fails the attempt with a timeout and aborts its signal when the handler never resolves', async () => {
      const signals: AbortSignal[] = []
      const { queue, work } = broker([
        defineTask({
          name: 'test.stuck',
          schema: Payload,
          timeoutMs: 100,
          attempts: 1,
          handler: (_payload, job) => {
            signals.push(job.signal)
            return new Promise<void>(() => undefined)
          },
        }),
      ])
      work()
      const { id } = await queue.enqueue('test.stuck', { n: 1 })
      await queue.drain()
      expect(signals).toHaveLength(1)
      expect(signals[0]!.aborted).toBe(true)
      expect(await queue.failed()).toMatchObject([{ id, task: 'test.stuck', attempts: 1, error: 'Task timed out after 100 ms' }])
    })
  })

  describe('routing and stats', () => {
    // Names from the routing table: core.send_email → high, accounts.send_password_reset_email → high
    // with priority 1, cart.expire_carts → low; any other name → default.
    const noop = (name: string) => defineTask({ name, schema: Type.Object({}), handler: async () => undefined })

    it('adds a task to the queue of its route, and a worker takes only the queues it listens to', async () => {
      const { queue, work } = broker([noop('core.send_email'), noop('accounts.send_password_reset_email'), noop('cart.expire_carts'), noop('test.elsewhere')])
      await queue.enqueue('core.send_email', {})
      await queue.enqueue('accounts.send_password_reset_email', {})
      await queue.enqueue('cart.expire_carts', {})
      await queue.enqueue('test.elsewhere', {})
      const counts = async (name: QueueName) => queue.queue(name).getJobCounts('waiting', 'prioritized', 'completed')
      expect(await counts('high')).toEqual({ waiting: 1, prioritized: 1, completed: 0 })
      expect(await counts('default')).toEqual({ waiting: 1, prioritized: 0, completed: 0 })
      expect(await counts('low')).toEqual({ waiting: 1, prioritized: 0, completed: 0 })
      expect(await queue.stats()).toEqual({ waiting: 4, active: 0, completed: 0, failed: 0 })

      const finished = deferred()
      work({ queues: ['default'], onFinished: () => finished.resolve() })
      await within(10_000, finished.promise, 'the default job')
      await eventually(async () => (await counts('default')).completed === 1, 5_000, 'default job completed')
      // high and low have no worker: their jobs still wait.
      expect(await counts('high')).toEqual({ waiting: 1, prioritized: 1, completed: 0 })
      expect(await counts('low')).toEqual({ waiting: 1, prioritized: 0, completed: 0 })
    })

    it('counts waiting, active, completed and failed jobs across the three queues', async () => {
      const entered = deferred()
      const release = deferred()
      const { queue, work } = broker([
        defineTask({
          name: 'core.send_email',
          schema: Type.Object({}),
          async handler() {
            entered.resolve()
            await release.promise
          },
        }),
        noop('test.fine'),
        defineTask({
          name: 'cart.expire_carts',
          schema: Type.Object({}),
          async handler() {
            throw new UnrecoverableError('not today')
          },
        }),
      ])
      await queue.enqueue('core.send_email', {})
      await queue.enqueue('test.fine', {})
      await queue.enqueue('test.fine', {}, { delayMs: 60_000 })
      await queue.enqueue('cart.expire_carts', {})
      // A delayed job waits too.
      expect(await queue.stats()).toEqual({ waiting: 4, active: 0, completed: 0, failed: 0 })

      work()
      await within(10_000, entered.promise, 'the high job')
      await eventually(async () => {
        const { waiting, active, completed, failed } = await queue.stats()
        return waiting === 1 && active === 1 && completed === 1 && failed === 1
      }, 10_000, 'one waiting (delayed), one active, one completed, one failed')
      release.resolve()
      await eventually(async () => (await queue.stats()).completed === 2, 10_000, 'the high job completed')
      expect(await queue.stats()).toEqual({ waiting: 1, active: 0, completed: 2, failed: 1 })
      expect(await queue.queue('low').getJobCounts('failed')).toEqual({ failed: 1 })
    })
  })

  describe('the broker unreachable', () => {
    it('rejects enqueue and ping within enqueueTimeoutMs instead of hanging', async () => {
      const deadUrl = `redis://127.0.0.1:${await freePort()}`
      const enqueueTimeoutMs = 300
      const queue = createBullmqQueue({
        settings: { ...DEFAULTS, brokerUrl: deadUrl, prefix: uniqueName('bulltest'), enqueueTimeoutMs },
        registry: registryOf([defineTask({ name: 'test.any', schema: Payload, handler: async () => undefined })]),
        log,
      })
      closers.push(() => within(5_000, queue.close(), 'close'))
      const started = performance.now()
      await expect(within(5_000, queue.enqueue('test.any', { n: 1 }))).rejects.toThrow(`The task broker did not answer within ${enqueueTimeoutMs} ms`)
      const took = performance.now() - started
      expect(took).toBeGreaterThanOrEqual(enqueueTimeoutMs - 1)
      expect(took).toBeLessThan(enqueueTimeoutMs + 1_000)
      await expect(within(5_000, queue.ping())).rejects.toThrow('The task broker did not answer')
      // Still refused (not queued in memory) once the connection has been tried a while.
      await expect(within(5_000, queue.enqueue('test.any', { n: 2 }))).rejects.toThrow(/did not answer|writeable|Connection/)
    })

    it('reports the queue as failed on /health/ and -1 on /metrics/, in time, while readiness (database, cache) stays ok', async () => {
      const t = await createTestApp({ env: { CELERY_BROKER_URL: `redis://127.0.0.1:${await freePort()}` }, settings: { queue: { enqueueTimeoutMs: 300 } } })
      closers.push(() => within(10_000, t.close(), 'app close'))
      const res = await t.request({ method: 'GET', url: '/health/' })
      expect(res.statusCode, res.body).toBe(503)
      const body = res.json<{ failed: string[]; checks: Record<string, { status: string; backend: string; error?: string }> }>()
      expect(body.failed).toEqual(['queue'])
      // The queue's own bound (300 ms), before the health check's (HEALTH_CHECK_TIMEOUT_MS).
      expect(body.checks.queue).toMatchObject({ status: 'error', backend: 'bullmq', error: 'The task broker did not answer within 300 ms' })
      expect((await t.request({ method: 'GET', url: '/health/ready/' })).statusCode).toBe(200)

      const scraped = await within(5_000, t.request({ method: 'GET', url: '/metrics/' }), '/metrics/')
      expect(scraped.statusCode).toBe(200)
      expect(scraped.body).toMatch(/^task_queue_waiting -1$/m)
    })
  })

  describe.runIf(usesPostgres)('a worker killed mid-job', () => {
    const serverUrl = testServerUrl()!
    const databases: string[] = []
    const children = new Set<ChildProcess>()
    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL')
      for (const name of databases) await dropDatabase(serverUrl, name)
    })

    /** A database of its own with the effects table. */
    async function effectsDatabase(): Promise<{ url: string; pool: pg.Pool }> {
      const name = uniqueName('queue_effects')
      databases.push(name)
      await withAdmin(serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`))
      const url = urlFor(serverUrl, name)
      const pool = new pg.Pool({ connectionString: url, max: 2 })
      closers.push(() => pool.end())
      await pool.query(EFFECTS_TABLE_SQL)
      return { url, pool }
    }

    /** test/fixtures/queue-worker.ts as a process: resolves with the job id it printed once the effect is done. */
    function doomedWorker(env: Record<string, string>): { child: ChildProcess; started: Promise<string>; exited: Promise<NodeJS.Signals | number | null> } {
      const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'fixtures', 'queue-worker.ts')], {
        cwd: projectRoot,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      children.add(child)
      let out = ''
      let err = ''
      child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()))
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
        child.once('close', (code, signal) => {
          children.delete(child)
          resolve(signal ?? code)
        }),
      )
      const started = new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString()
          const match = /^started (.+)$/m.exec(out)
          if (match) resolve(match[1]!)
        })
        void exited.then((how) => reject(new Error(`the worker exited (${how}) before starting the job\nstdout: ${out}\nstderr: ${err}`)))
      })
      return { child, started, exited }
    }

    it('hands the job to another worker once the lock expires, and its effect happens once', async () => {
      const { url, pool } = await effectsDatabase()
      const { prefix, queue, work } = broker([recordEffectTask(pool, 'producer')])
      const key = uniqueName('effect')
      const { id } = await queue.enqueue(RECORD_EFFECT_TASK, { key })

      const doomed = doomedWorker({ BROKER_URL: brokerUrl, QUEUE_PREFIX: prefix, DATABASE_URL: url })
      expect(await within(20_000, doomed.started, 'the child worker starting the job')).toBe(id)
      expect(await queue.stats()).toMatchObject({ active: 1, completed: 0 })
      doomed.child.kill('SIGKILL')
      expect(await within(5_000, doomed.exited, 'the child worker exiting')).toBe('SIGKILL')

      const rescuerRuns: string[] = []
      const completed = deferred<string>()
      work({
        queues: ['default'],
        lockDurationMs: LOCK_DURATION_MS,
        registry: registryOf([recordEffectTask(pool, 'rescuer', async (job) => void rescuerRuns.push(job.id))]),
        onFinished: (_task, outcome) => completed.resolve(outcome),
      })
      expect(await within(15_000, completed.promise, 'the stalled job run by the second worker')).toBe('completed')
      expect(rescuerRuns).toEqual([id])
      await eventually(async () => (await queue.queue('default').getJobState(id)) === 'completed', 5_000, 'job completed')
      // The effect happened once, by the worker that died after doing it.
      const { rows } = await pool.query('SELECT key, worker, job_id FROM effects')
      expect(rows).toEqual([{ key, worker: 'doomed', job_id: id }])
      expect(await queue.stats()).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 })
    }, 60_000)
  })
})
