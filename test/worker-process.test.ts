/**
 * The worker side of BullMQ as an operator runs it. `tsx src/worker.ts` as a real process: its
 * usage and configuration exits (64, 78) and, with PostgreSQL and Redis, a job taken from the
 * queues it was told to listen to, then a clean exit on SIGTERM. And the broker going down while
 * customers pay (a private redis-server, killed and started again): every request still succeeds,
 * the outbox keeps the events, and once the broker is back each order gets one confirmation email.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { Type } from 'typebox'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seedPricingDefaults } from '../src/apps/cart/pricing-queries.js'
import type { OrderDto } from '../src/apps/orders/service.js'
import type { PaymentDto } from '../src/apps/payments/service.js'
import { loadSettings, projectRoot } from '../src/config/index.js'
import { createMailer, createSendEmailTask } from '../src/core/email.js'
import { createLogger } from '../src/core/logging.js'
import { queuePrefixOf } from '../src/core/platform.js'
import { createBullmqQueue, startWorkers } from '../src/core/queue/bullmq.js'
import { defineTask, TaskRegistry } from '../src/core/queue/index.js'
import { QUEUE_NAMES } from '../src/core/queue/routing.js'
import { dropDatabase, testServerUrl, uniqueName, urlFor, withAdmin } from './database.js'
import { factories } from './factories.js'
import { createTestApp, suiteRedisUrl, usesPostgres, type TestApp } from './harness.js'
import { ADDRESS, cartWith } from './shopping.js'
import { isolatedEnv, NODE, tsArgs } from './run-ts.js'
import { freePort } from './free-port.js'

const SHUTDOWN_TIMEOUT_SECONDS = 5
const log = createLogger({ log: { level: 'silent', pretty: false } })

let scratch: string
const running = new Set<ChildProcess>()

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'shop-worker-'))
})
afterAll(async () => {
  // A failed test may leave a process running: end it and its children (its own process group).
  for (const child of running) killGroup(child, 'SIGKILL')
  await rm(scratch, { recursive: true, force: true })
})

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal)
  } catch {
    // already gone
  }
}

interface Proc {
  child: ChildProcess
  stdout(): string
  stderr(): string
  exited: Promise<number | null>
  /** Set once the process has exited. */
  exit: { code: number | null } | null
}

/** A program in its own process group, its output collected. */
function start(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string }): Proc {
  const child = spawn(command, args, { cwd: options.cwd ?? projectRoot, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let out = ''
  let err = ''
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()))
  const proc: Proc = {
    child,
    stdout: () => out,
    stderr: () => err,
    exit: null,
    exited: new Promise((resolve) =>
      child.once('close', (code) => {
        running.delete(child)
        proc.exit = { code }
        resolve(code)
      }),
    ),
  }
  return proc
}

/**
 * `tsx src/worker.ts` with only what a shell needs from this environment: every service variable
 * blank, so neither the suite's DATABASE_URL/REDIS_URL nor a developer's `.env` reaches it.
 */
function worker(args: string[], vars: Record<string, string>): Proc {
  const env = isolatedEnv({
    LOG_FORMAT: 'json',
    ...vars,
  })
  return start(NODE, tsArgs('src/worker.ts', args), { env })
}

/** The process's exit code, or a failure once `ms` have passed. */
async function exitWithin(proc: Proc, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms\nstdout: ${proc.stdout()}\nstderr: ${proc.stderr()}`)), ms)
  })
  try {
    return await Promise.race([proc.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `check` until it answers true; another process's progress has no event to wait on here. */
async function eventually(check: () => Promise<boolean>, ms: number, what: () => string): Promise<void> {
  const deadline = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}


/** Every key under `prefix` on the suite's Redis. */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(suiteRedisUrl!)
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.del(...keys)
    }
  } finally {
    await redis.quit()
  }
}

describe.concurrent('src/worker.ts', () => {
  it('exits 78 naming CELERY_BROKER_URL when no broker is configured', async ({ expect }) => {
    const proc = worker([], {})
    expect(await exitWithin(proc, 20_000)).toBe(78)
    expect(proc.stderr()).toContain('npm run worker needs CELERY_BROKER_URL')
  }, 30_000)

  it('exits 64 naming the queues it knows when --queues names another', async ({ expect }) => {
    const proc = worker(['--queues', 'nope'], { CELERY_BROKER_URL: 'redis://127.0.0.1:1' })
    expect(await exitWithin(proc, 20_000)).toBe(64)
    expect(proc.stderr().trim()).toBe('--queues: expected some of high, default, low, got "nope"')
  }, 30_000)

  it('exits 64 when --concurrency is not a whole number of at least 1', async ({ expect }) => {
    const proc = worker(['--concurrency', '0'], { CELERY_BROKER_URL: 'redis://127.0.0.1:1' })
    expect(await exitWithin(proc, 20_000)).toBe(64)
    expect(proc.stderr()).toContain('--concurrency: expected a whole number of at least 1, got "0"')
  }, 30_000)
})

describe.runIf(usesPostgres && suiteRedisUrl)('src/worker.ts with PostgreSQL and Redis', () => {
  const serverUrl = testServerUrl()!
  const databases: string[] = []
  const prefixes: string[] = []
  afterAll(async () => {
    for (const name of databases) await dropDatabase(serverUrl, name)
    for (const prefix of prefixes) await deleteKeys(prefix)
  })

  it('runs core.send_email from the queues it listens to, leaves the others, serves its task metrics, and exits 0 on SIGTERM', async () => {
    const database = uniqueName('shop_worker')
    databases.push(database)
    await withAdmin(serverUrl, (client) => client.query(`CREATE DATABASE "${database}"`))
    const keyPrefix = `${uniqueName('worker')}:`
    prefixes.push(keyPrefix)
    const emails = await mkdtemp(join(scratch, 'emails-'))
    const metricsPort = await freePort()
    const vars = {
      WORKER_METRICS_PORT: String(metricsPort),
      METRICS_TOKEN: 'scrape-me',
      CELERY_BROKER_URL: suiteRedisUrl!,
      CACHE_KEY_PREFIX: keyPrefix,
      DATABASE_URL: urlFor(serverUrl, database),
      EMAIL_BACKEND: 'file',
      EMAIL_FILE_PATH: emails,
      SEED_DEMO_ON_START: 'false',
      SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_SECONDS),
    }

    // The producer an API process would be: same broker, same prefix (derived as the worker derives it).
    const settings = loadSettings({ ENVIRONMENT: 'test', ...vars })
    const registry = new TaskRegistry()
      .register(createSendEmailTask(createMailer(settings, log)))
      .register(defineTask({ name: 'cart.expire_carts', schema: Type.Object({}), handler: async () => undefined }))
    const producer = createBullmqQueue({ settings: { ...settings.queue, brokerUrl: suiteRedisUrl!, prefix: queuePrefixOf(settings) }, registry, log })
    try {
      const to = `worker-${randomUUID()}@example.com`
      await producer.enqueue('core.send_email', { to, subject: 'Sent by the worker process', text: 'Hello from a job.' })
      // Routed to low, which this worker does not listen to.
      await producer.enqueue('cart.expire_carts', {})

      const proc = worker(['--concurrency', '2', '--queues', 'high,default'], vars)
      const high = () => producer.queue('high').getJobCounts('waiting', 'active', 'completed', 'failed')
      await eventually(async () => {
        if (proc.exit) throw new Error(`the worker exited with ${proc.exit.code}\nstderr: ${proc.stderr()}`)
        return (await high()).completed === 1
      }, 45_000, () => `the email job completed\nstdout: ${proc.stdout()}\nstderr: ${proc.stderr()}`)
      expect(await high()).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 })
      expect(await producer.queue('low').getJobCounts('waiting', 'active', 'completed')).toEqual({ waiting: 1, active: 0, completed: 0 })

      const files = (await readdir(emails)).filter((name) => name.endsWith('.eml'))
      expect(files).toHaveLength(1)
      const raw = await readFile(join(emails, files[0]!), 'utf8')
      expect(raw).toContain(`To: ${to}`)
      expect(raw).toContain('Subject: Sent by the worker process')

      const logLines = proc.stdout().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)
      expect(logLines.find((line) => line.msg === 'workers started')).toMatchObject({ queues: ['high', 'default'], concurrency: 2 })

      // Its own task counters and durations, for Prometheus, behind METRICS_TOKEN like the API's.
      const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics/`
      expect((await fetch(metricsUrl)).status).toBe(401)
      const scraped = await (await fetch(metricsUrl, { headers: { authorization: 'Bearer scrape-me' } })).text()
      expect(scraped).toContain('tasks_total{task="core.send_email",outcome="completed"} 1')
      expect(scraped).toContain('task_duration_seconds_count{task="core.send_email"} 1')

      const stopping = performance.now()
      proc.child.kill('SIGTERM')
      expect(await exitWithin(proc, SHUTDOWN_TIMEOUT_SECONDS * 1000)).toBe(0)
      expect(performance.now() - stopping).toBeLessThan(SHUTDOWN_TIMEOUT_SECONDS * 1000)
    } finally {
      await producer.close()
    }
  }, 90_000)
})

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0

/** A redis-server of its own on `port`, nothing persisted: stopping it loses everything it held. */
async function privateRedis(port: number): Promise<{ stop(): Promise<void> }> {
  const proc = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { env: { PATH: process.env.PATH }, cwd: scratch })
  await eventually(async () => {
    if (proc.exit) throw new Error(`redis-server exited with ${proc.exit.code}: ${proc.stdout()} ${proc.stderr()}`)
    return proc.stdout().includes('Ready to accept connections')
  }, 10_000, () => `redis-server ready\n${proc.stdout()}`)
  return {
    async stop() {
      // A crash, not a shutdown.
      killGroup(proc.child, 'SIGKILL')
      await proc.exited
    },
  }
}

describe.runIf(suiteRedisUrl && hasRedisServer)('the broker down while customers pay', () => {
  let t: TestApp
  let brokerUrl: string
  let port: number
  let redis: { stop(): Promise<void> } | null = null
  const stops: Array<() => Promise<void>> = []

  beforeAll(async () => {
    port = await freePort()
    brokerUrl = `redis://127.0.0.1:${port}`
    redis = await privateRedis(port)
    // The cache stays on the suite's Redis: only the broker goes down.
    t = await createTestApp({ env: { CELERY_BROKER_URL: brokerUrl }, settings: { queue: { enqueueTimeoutMs: 500 } } })
    await seedPricingDefaults(t.app.platform.database.db)
  })
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await t?.close()
    await redis?.stop()
  })

  /** A guest checks out one unit of a new product and pays with the dummy provider. */
  async function placeAndPay(): Promise<{ order: OrderDto; email: string }> {
    const { skus } = await factories(t).product({ stock: [3] })
    const cart = await cartWith(t, [[skus[0]!, 1]])
    const email = `guest-${randomUUID()}@example.com`
    const checkout = await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...cart, 'idempotency-key': randomUUID() }, payload: { email, shipping_address: ADDRESS, shipping_method: 'standard' } })
    expect(checkout.statusCode, checkout.body).toBe(201)
    const order = checkout.json<OrderDto>()
    const confirmed = await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/?email=${encodeURIComponent(email)}` })
    expect(confirmed.statusCode, confirmed.body).toBe(200)
    expect(confirmed.json<PaymentDto>().status).toBe('succeeded')
    return { order, email }
  }

  it('keeps every event in the outbox, then hands them over once it is back: one confirmation email per order', async () => {
    const { relay, queue, mailer } = t.app.platform
    await queue.ping()
    await redis!.stop()
    redis = null

    const placed: Array<{ order: OrderDto; email: string }> = []
    const backlog: number[] = []
    for (let i = 0; i < 3; i += 1) {
      placed.push(await placeAndPay())
      backlog.push((await relay.backlog()).count)
    }
    // Each order added events the relay could not hand over.
    expect(backlog[0]).toBeGreaterThan(0)
    expect(backlog[1]).toBeGreaterThan(backlog[0]!)
    expect(backlog[2]).toBeGreaterThan(backlog[1]!)
    expect(await relay.flush()).toBe(0)
    expect((await relay.backlog()).count).toBe(backlog[2])
    await expect(queue.ping()).rejects.toThrow()

    redis = await privateRedis(port)
    // The producer reconnects on its own schedule: wait until it answers again.
    await eventually(() => queue.ping().then(() => true, () => false), 20_000, () => 'the producer reconnected')
    expect(await relay.flush()).toBe(backlog[2])
    expect((await relay.backlog()).count).toBe(0)

    const workers = startWorkers({
      settings: { brokerUrl, prefix: queuePrefixOf(t.settings), queues: [...QUEUE_NAMES], concurrency: 2, lockDurationMs: 5_000 },
      defaults: t.settings.queue,
      registry: t.app.platform.tasks,
      log,
    })
    stops.push(() => workers.close(2_000))
    await t.settle()

    for (const { order, email } of placed) {
      const confirmations = mailer.outbox.filter((message) => message.to === email && message.subject.includes(order.number))
      expect(confirmations, `order ${order.number}`).toHaveLength(1)
    }
    expect(await queue.failed()).toEqual([])
    expect(await queue.stats()).toMatchObject({ waiting: 0, active: 0, failed: 0 })
  }, 90_000)
})
