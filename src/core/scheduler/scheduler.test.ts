/**
 * The periodic scheduler on a real database and the app's real in-process queue. Enqueues are
 * counted by a recording wrapper around `platform.queue.enqueue`: it sees every call, where the
 * in-process queue keeps one job per jobId and so would hide a second enqueue of the same run.
 * Ticks take simulated times, so "due", "missed" and "downtime" need no waiting. Two schedulers
 * racing and the advisory-lock leadership run on PostgreSQL only (PGlite is one connection). The
 * last block starts `npm run beat` and `manage periodic` as real processes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eq, sql } from 'drizzle-orm'
import { Type } from 'typebox'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { dropDatabase, testServerUrl, uniqueName, urlFor, withAdmin } from '../../../test/database.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { projectRoot } from '../../config/index.js'
import { createDatabase, rowsOf, type Database } from '../db/index.js'
import { createLogger } from '../logging.js'
import { defineTask, type EnqueueOptions, type TaskQueue } from '../queue/index.js'
import {
  createScheduler,
  formatPeriodicTasks,
  listPeriodicTasks,
  periodicJobId,
  periodicTasks,
  SCHEDULER_LOCK_ID,
  setPeriodicTaskEnabled,
  type ScheduleEntry,
  type Scheduler,
  type SchedulerOptions,
} from './index.js'
import { isolatedEnv, NODE, tsArgs } from '../../../test/run-ts.js'

const T0 = new Date('2030-01-01T00:00:00.000Z')
/** T0 plus some seconds: the simulated clock. */
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000)

const TEST_TASK = 'test.periodic'

interface Enqueued {
  task: string
  payload: unknown
  jobId: string | undefined
}

/** The app's queue behind a wrapper that records every call and can play a broker that is down. */
function recordingQueue(inner: Pick<TaskQueue, 'enqueue'>) {
  const calls: Enqueued[] = []
  const waiters: Array<(call: Enqueued) => void> = []
  let outage: Error | null = null
  return {
    calls,
    brokerDown(err: Error) {
      outage = err
    },
    brokerUp() {
      outage = null
    },
    /** The next call that reaches the queue. */
    next: () => new Promise<Enqueued>((resolve) => waiters.push(resolve)),
    async enqueue(task: string, payload: unknown, options?: EnqueueOptions) {
      if (outage) throw outage
      const call = { task, payload, jobId: options?.jobId }
      calls.push(call)
      waiters.splice(0).forEach((resolve) => resolve(call))
      return inner.enqueue(task, payload, options)
    },
  }
}

describe('periodic scheduler', () => {
  let t: TestApp
  /** What the test task received, after the queue ran it. */
  const ran: Array<{ payload: unknown; jobId: string }> = []
  let queue: ReturnType<typeof recordingQueue>
  const db = () => t.app.platform.database.db

  beforeAll(async () => {
    t = await createTestApp({
      captureLogs: true,
      setup(app) {
        app.platform.tasks.register(
          defineTask({
            name: TEST_TASK,
            schema: Type.Object({ label: Type.Optional(Type.String()) }),
            async handler(payload, job) {
              ran.push({ payload, jobId: job.id })
            },
          }),
        )
      },
    })
  })
  afterAll(() => t?.close())
  beforeEach(async () => {
    await db().delete(periodicTasks)
    ran.length = 0
    t.logs.length = 0
    queue = recordingQueue(t.app.platform.queue)
  })

  function scheduler(defaults: readonly ScheduleEntry[], options: Partial<SchedulerOptions> = {}): Scheduler {
    return createScheduler({ db: db(), queue, registry: t.app.platform.tasks, log: t.app.platform.log, defaults, leaderLockUrl: null, ...options })
  }

  async function rowOf(name: string) {
    const [row] = await db().select().from(periodicTasks).where(eq(periodicTasks.name, name))
    return row!
  }

  const logsSaying = (msg: string) => t.logs.filter((line) => line.msg === msg)

  describe('default schedule', () => {
    // The app's own list (src/apps/schedule.ts) is checked beside it, in src/apps/schedule.test.ts.
    const defaults: ScheduleEntry[] = [
      { name: 'minutely', task: TEST_TASK, every_seconds: 60 },
      { name: 'hourly', task: TEST_TASK, payload: { label: 'h' }, every_seconds: 3_600 },
      { name: 'nightly', task: TEST_TASK, cron: '0 3 * * *' },
    ]

    it('inserts the missing rows once, first run one interval (or the cron) away, and keeps what an operator changed', async () => {
      const beat = scheduler(defaults)
      expect((await beat.ensureDefaults(T0)).sort()).toEqual(['hourly', 'minutely', 'nightly'])
      expect(await rowOf('minutely')).toMatchObject({ task: TEST_TASK, payload: {}, cron: null, every_seconds: 60, enabled: true, next_run_at: at(60), last_run_at: null, total_run_count: 0 })
      expect(await rowOf('hourly')).toMatchObject({ payload: { label: 'h' }, next_run_at: at(3_600) })
      expect(await rowOf('nightly')).toMatchObject({ cron: '0 3 * * *', every_seconds: null, next_run_at: at(3 * 3_600) })

      // The operator: nightly off, hourly every two hours with another payload, minutely removed altogether.
      expect(await setPeriodicTaskEnabled(db(), 'nightly', false)).toBe(true)
      await db().update(periodicTasks).set({ every_seconds: 7_200, payload: { label: 'mine' }, next_run_at: at(10) }).where(eq(periodicTasks.name, 'hourly'))
      await db().delete(periodicTasks).where(eq(periodicTasks.name, 'minutely'))

      expect(await beat.ensureDefaults(at(500))).toEqual(['minutely'])
      expect(await rowOf('nightly')).toMatchObject({ enabled: false, cron: '0 3 * * *' })
      expect(await rowOf('hourly')).toMatchObject({ every_seconds: 7_200, payload: { label: 'mine' }, next_run_at: at(10) })
      expect((await rowOf('minutely')).next_run_at).toEqual(at(560))
      expect(await beat.ensureDefaults(at(900))).toEqual([])
      expect(await db().$count(periodicTasks)).toBe(3)
    })

    it('refuses a default with both schedules or a cron expression that does not parse', async () => {
      const both = { name: 'both', task: TEST_TASK, every_seconds: 5, cron: '* * * * *' } as unknown as ScheduleEntry
      await expect(scheduler([both]).ensureDefaults(T0)).rejects.toThrow(/either cron or every_seconds/)
      await expect(scheduler([{ name: 'bad', task: TEST_TASK, cron: 'every tuesday' }]).ensureDefaults(T0)).rejects.toThrow(/Default schedule "bad"/)
      expect(await db().$count(periodicTasks)).toBe(0)
    })

    it('is refused by the table when a row has both schedules or neither', async () => {
      const row = { name: 'x', task: TEST_TASK, next_run_at: T0 }
      await expect(db().insert(periodicTasks).values({ ...row, cron: '* * * * *', every_seconds: 5 })).rejects.toThrow()
      await expect(db().insert(periodicTasks).values(row)).rejects.toThrow()
      await expect(db().insert(periodicTasks).values({ ...row, every_seconds: 0 })).rejects.toThrow()
    })
  })

  describe('tick', () => {
    it('enqueues an interval task once when due, with its payload and a deterministic job id, and moves it one interval on', async () => {
      const beat = scheduler([{ name: 'every-minute', task: TEST_TASK, payload: { label: 'hello' }, every_seconds: 60 }])
      await beat.ensureDefaults(T0)

      expect(await beat.tick(at(59.999))).toEqual([])
      expect(await beat.tick(at(60))).toEqual(['every-minute'])
      expect(await beat.tick(at(60))).toEqual([])
      expect(await beat.tick(at(61))).toEqual([])
      expect(queue.calls).toEqual([{ task: TEST_TASK, payload: { label: 'hello' }, jobId: `periodic:every-minute:${at(60).toISOString()}` }])
      expect(await rowOf('every-minute')).toMatchObject({ last_run_at: at(60), next_run_at: at(120), total_run_count: 1 })

      // A tick a little late keeps the phase: the next run is still on the minute.
      expect(await beat.tick(at(125))).toEqual(['every-minute'])
      expect(await rowOf('every-minute')).toMatchObject({ last_run_at: at(125), next_run_at: at(180), total_run_count: 2 })
      expect(queue.calls.map((call) => call.jobId)).toEqual([periodicJobId('every-minute', at(60)), periodicJobId('every-minute', at(120))])

      await t.settle()
      expect(ran).toEqual([
        { payload: { label: 'hello' }, jobId: periodicJobId('every-minute', at(60)) },
        { payload: { label: 'hello' }, jobId: periodicJobId('every-minute', at(120)) },
      ])
    })

    it('enqueues a cron task at its times (UTC) and moves it to the next one', async () => {
      const beat = scheduler([{ name: 'five-past', task: TEST_TASK, cron: '5 * * * *' }])
      await beat.ensureDefaults(at(10))
      expect((await rowOf('five-past')).next_run_at).toEqual(at(300))

      expect(await beat.tick(at(299))).toEqual([])
      expect(await beat.tick(at(300))).toEqual(['five-past'])
      expect(await beat.tick(at(301))).toEqual([])
      expect(await rowOf('five-past')).toMatchObject({ last_run_at: at(300), next_run_at: at(3_600 + 300), total_run_count: 1 })
      expect(queue.calls).toEqual([{ task: TEST_TASK, payload: {}, jobId: periodicJobId('five-past', at(300)) }])
    })

    it('runs once after downtime of ten intervals, not ten times, and stays on its phase', async () => {
      const beat = scheduler([
        { name: 'interval', task: TEST_TASK, every_seconds: 60 },
        { name: 'cron', task: TEST_TASK, cron: '* * * * *' },
      ])
      await beat.ensureDefaults(T0)
      // Due at 60 s; nothing ticked until 10.5 intervals later.
      const back = 60 + 10 * 60 + 30
      expect((await beat.tick(at(back))).sort()).toEqual(['cron', 'interval'])
      expect(await beat.tick(at(back))).toEqual([])
      expect(queue.calls.map((call) => call.jobId).sort()).toEqual([periodicJobId('cron', at(60)), periodicJobId('interval', at(60))])
      expect(await rowOf('interval')).toMatchObject({ next_run_at: at(60 * 12), total_run_count: 1 })
      expect(await rowOf('cron')).toMatchObject({ next_run_at: at(60 * 12), total_run_count: 1 })
    })

    it('skips a disabled task until it is enabled again', async () => {
      const beat = scheduler([{ name: 'switchable', task: TEST_TASK, every_seconds: 30 }])
      await beat.ensureDefaults(T0)
      expect(await setPeriodicTaskEnabled(db(), 'switchable', false)).toBe(true)
      expect(await beat.tick(at(30))).toEqual([])
      expect(await beat.tick(at(95))).toEqual([])
      expect(queue.calls).toEqual([])
      expect(await rowOf('switchable')).toMatchObject({ enabled: false, next_run_at: at(30), total_run_count: 0 })

      expect(await setPeriodicTaskEnabled(db(), 'switchable', true)).toBe(true)
      expect(await beat.tick(at(95))).toEqual(['switchable'])
      expect(await rowOf('switchable')).toMatchObject({ next_run_at: at(120), total_run_count: 1 })
      expect(await setPeriodicTaskEnabled(db(), 'no-such-row', true)).toBe(false)
    })

    it('logs a task nobody registered once, leaves its row for a scheduler that knows it, and runs the others', async () => {
      const beat = scheduler([
        { name: 'ghost', task: 'test.nobody_registered_this', every_seconds: 60 },
        { name: 'real', task: TEST_TASK, every_seconds: 60 },
      ])
      await beat.ensureDefaults(T0)
      expect(await beat.tick(at(60))).toEqual(['real'])
      expect(await beat.tick(at(120))).toEqual(['real'])
      expect(queue.calls.map((call) => call.task)).toEqual([TEST_TASK, TEST_TASK])
      expect(await rowOf('ghost')).toMatchObject({ next_run_at: at(60), last_run_at: null, total_run_count: 0 })
      const skipped = logsSaying('periodic task skipped: no task of that name is registered')
      expect(skipped).toHaveLength(1)
      expect(skipped[0]).toMatchObject({ level: 50, periodic_task: 'ghost', task: 'test.nobody_registered_this' })
    })

    it('rolls a run back when the broker refuses it and enqueues that same run on the next tick', async () => {
      const beat = scheduler([{ name: 'flaky', task: TEST_TASK, every_seconds: 60 }])
      await beat.ensureDefaults(T0)
      queue.brokerDown(new Error('connect ECONNREFUSED 127.0.0.1:6379'))
      expect(await beat.tick(at(60))).toEqual([])
      expect(await beat.tick(at(61))).toEqual([])
      expect(await rowOf('flaky')).toMatchObject({ next_run_at: at(60), last_run_at: null, total_run_count: 0 })
      const refused = logsSaying('periodic task not enqueued; retrying every tick')
      expect(refused).toHaveLength(1)
      expect(refused[0]).toMatchObject({ periodic_task: 'flaky', err: expect.objectContaining({ message: 'connect ECONNREFUSED 127.0.0.1:6379' }) })

      queue.brokerUp()
      expect(await beat.tick(at(62))).toEqual(['flaky'])
      expect(queue.calls).toEqual([{ task: TEST_TASK, payload: {}, jobId: periodicJobId('flaky', at(60)) }])
      expect(await rowOf('flaky')).toMatchObject({ last_run_at: at(62), next_run_at: at(120), total_run_count: 1 })
      expect(logsSaying('periodic task enqueued again')).toHaveLength(1)
    })

    it('rolls back and retries a row whose cron expression an operator broke, without stopping the others', async () => {
      const beat = scheduler([
        { name: 'broken', task: TEST_TASK, cron: '* * * * *' },
        { name: 'fine', task: TEST_TASK, every_seconds: 60 },
      ])
      await beat.ensureDefaults(T0)
      await db().update(periodicTasks).set({ cron: 'not a cron' }).where(eq(periodicTasks.name, 'broken'))
      expect(await beat.tick(at(60))).toEqual(['fine'])
      expect(await rowOf('broken')).toMatchObject({ next_run_at: at(60), total_run_count: 0 })
      expect(logsSaying('periodic task not enqueued; retrying every tick')[0]).toMatchObject({ periodic_task: 'broken' })
    })
  })

  describe('start and stop', () => {
    it('leads (PGlite or the only scheduler), enqueues a due task on its own timer and gives leadership up on stop', async () => {
      const beat = scheduler([{ name: 'soon', task: TEST_TASK, every_seconds: 1 }], t.settings.db.kind === 'postgres' ? { leaderLockUrl: t.settings.db.url } : {})
      // Due at once by the real clock.
      await beat.ensureDefaults(new Date(Date.now() - 5_000))
      const enqueued = queue.next()
      beat.start()
      expect(await enqueued).toMatchObject({ task: TEST_TASK, jobId: expect.stringMatching(/^periodic:soon:/) })
      expect(beat.isLeader).toBe(true)
      await beat.stop()
      expect(beat.isLeader).toBe(false)
      expect(logsSaying('scheduler leading')).toHaveLength(1)
      expect((await rowOf('soon')).total_run_count).toBeGreaterThanOrEqual(1)
    })
  })

  describe('manage periodic list', () => {
    it('shows name, task, schedule, enabled, last and next run as an aligned table', async () => {
      const beat = scheduler([
        { name: 'b-cron', task: TEST_TASK, cron: '0 3 * * *' },
        { name: 'a-interval', task: TEST_TASK, every_seconds: 90 },
      ])
      await beat.ensureDefaults(T0)
      await setPeriodicTaskEnabled(db(), 'b-cron', false)
      await beat.tick(at(90))
      expect(formatPeriodicTasks(await listPeriodicTasks(db())).split('\n')).toEqual([
        'NAME        TASK           SCHEDULE        ENABLED  LAST RUN                 NEXT RUN',
        'a-interval  test.periodic  every 90 s      yes      2030-01-01 00:01:30 UTC  2030-01-01 00:03:00 UTC',
        'b-cron      test.periodic  cron 0 3 * * *  no       never                    2030-01-01 03:00:00 UTC',
      ])
    })
  })

  describe.runIf(usesPostgres)('two schedulers on one database (PostgreSQL)', () => {
    let other: Database

    beforeAll(async () => {
      // A pool of its own, as a second process would have.
      other = await createDatabase(t.settings, createLogger({ log: { level: 'silent', pretty: false } }))
    })
    afterAll(() => other?.close())

    it('enqueues every due run exactly once in total when both tick at the same simulated times', async () => {
      const defaults: ScheduleEntry[] = [
        { name: 'every-1', task: TEST_TASK, every_seconds: 1 },
        { name: 'every-2', task: TEST_TASK, every_seconds: 2 },
        { name: 'every-3', task: TEST_TASK, every_seconds: 3 },
        { name: 'every-7', task: TEST_TASK, every_seconds: 7 },
        { name: 'cron-every-2s', task: TEST_TASK, cron: '*/2 * * * * *' },
      ]
      const first = scheduler(defaults)
      const second = createScheduler({ db: other.db, queue, registry: t.app.platform.tasks, log: t.app.platform.log, defaults, leaderLockUrl: null })
      await Promise.all([first.ensureDefaults(T0), second.ensureDefaults(T0)])

      const rounds = 60
      const byScheduler = { first: 0, second: 0 }
      for (let round = 1; round <= rounds; round += 1) {
        const [a, b] = await Promise.all([first.tick(at(round)), second.tick(at(round))])
        byScheduler.first += a.length
        byScheduler.second += b.length
      }

      const expected = defaults.flatMap((entry) => {
        const every = entry.every_seconds ?? 2
        return Array.from({ length: Math.floor(rounds / every) }, (_, i) => periodicJobId(entry.name, at((i + 1) * every)))
      })
      const jobIds = queue.calls.map((call) => call.jobId)
      expect(jobIds).toHaveLength(expected.length)
      expect(new Set(jobIds).size).toBe(jobIds.length)
      expect([...jobIds].sort()).toEqual([...expected].sort())
      expect(byScheduler.first + byScheduler.second).toBe(expected.length)
      const rows = await listPeriodicTasks(db())
      expect(Object.fromEntries(rows.map((row) => [row.name, row.total_run_count]))).toEqual({ 'every-1': 60, 'every-2': 30, 'every-3': 20, 'every-7': 8, 'cron-every-2s': 30 })
    })

    describe('leadership', () => {
      const lockUrl = () => (t.settings.db.kind === 'postgres' ? t.settings.db.url : '')
      const schedulers: Scheduler[] = []
      const leaderCandidate = () => {
        const candidate = scheduler([], { leaderLockUrl: lockUrl() })
        schedulers.push(candidate)
        return candidate
      }
      afterAll(async () => {
        for (const candidate of schedulers) await candidate.stop()
      })

      it('lets one scheduler lead; the other stays a follower until the leader stops', async () => {
        const leader = leaderCandidate()
        const follower = leaderCandidate()
        expect(await leader.lead()).toBe(true)
        expect(await follower.lead()).toBe(false)
        expect(await leader.lead()).toBe(true)
        expect(await follower.lead()).toBe(false)
        expect([leader.isLeader, follower.isLeader]).toEqual([true, false])
        expect(logsSaying('scheduler waiting for the leader')).toHaveLength(1)

        await leader.stop()
        expect(leader.isLeader).toBe(false)
        expect(await follower.lead()).toBe(true)
        expect(follower.isLeader).toBe(true)
        await follower.stop()
      })

      it('hands leadership over when the leader connection dies, and the old leader notices', async () => {
        const leader = leaderCandidate()
        const follower = leaderCandidate()
        expect(await leader.lead()).toBe(true)
        expect(await follower.lead()).toBe(false)

        const holders = rowsOf<{ pid: number }>(
          await db().execute(sql`
            SELECT pid FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = ${SCHEDULER_LOCK_ID}
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`),
        )
        expect(holders).toHaveLength(1)
        // Waits until the backend has exited, so its session lock is gone.
        const [ended] = rowsOf<{ ended: boolean }>(await db().execute(sql`SELECT pg_terminate_backend(${holders[0]!.pid}, 10000) AS ended`))
        expect(ended!.ended).toBe(true)

        expect(await follower.lead()).toBe(true)
        expect(await leader.lead()).toBe(false)
        expect([leader.isLeader, follower.isLeader]).toEqual([false, true])
      })
    })
  })
})

/**
 * `npm run beat` and `manage periodic` as an operator runs them: every service variable blank, the
 * database a PGlite directory, or on the PostgreSQL suite a fresh database of its own.
 */
describe('npm run beat and manage periodic (real processes)', () => {
  let scratch: string
  let databaseEnv: Record<string, string>
  const serverUrl = testServerUrl()
  const databaseName = uniqueName('shop_beat')
  const running = new Set<ChildProcess>()
  const broker = process.env.REDIS_URL

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'shop-beat-'))
    if (usesPostgres) {
      await withAdmin(serverUrl!, (client) => client.query(`CREATE DATABASE "${databaseName}"`))
      databaseEnv = { DATABASE_URL: urlFor(serverUrl!, databaseName) }
    } else {
      databaseEnv = { PGLITE_DATA_DIR: join(scratch, 'pglite') }
    }
  })
  afterAll(async () => {
    // A failed test may leave a process running: end it and its children (its own process group).
    for (const child of running) kill(child, 'SIGKILL')
    if (usesPostgres) await dropDatabase(serverUrl!, databaseName)
    await rm(scratch, { recursive: true, force: true })
  })

  function kill(child: ChildProcess, signal: NodeJS.Signals) {
    try {
      process.kill(-child.pid!, signal)
    } catch {
      // already gone
    }
  }

  function env(): NodeJS.ProcessEnv {
    return isolatedEnv({
      LOG_FORMAT: 'json',
      MEDIA_ROOT: join(scratch, 'media'),
      STATIC_ROOT: join(scratch, 'static'),
      EMAIL_FILE_PATH: join(scratch, 'emails'),
      ...databaseEnv,
      // beat schedules onto the broker; without one the API process keeps the schedule.
      ...(broker ? { CELERY_BROKER_URL: broker, CACHE_KEY_PREFIX: `${databaseName}:` } : {}),
    })
  }

  /** A process in a group of its own; `said(msg)` resolves at the first JSON log line with that message. */
  function start(script: string, args: string[] = []) {
    const child = spawn(NODE, tsArgs(script, args), { cwd: projectRoot, env: env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(child)
    let stdout = ''
    let stderr = ''
    const listeners = new Set<() => void>()
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      listeners.forEach((listener) => listener())
    })
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<number | null>((resolve) =>
      child.once('close', (code) => {
        running.delete(child)
        listeners.forEach((listener) => listener())
        resolve(code)
      }),
    )
    const lines = () =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { msg?: string })
    const said = (msg: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (lines().some((line) => line.msg === msg)) {
            listeners.delete(check)
            resolve()
          } else if (child.exitCode !== null || child.signalCode !== null) {
            listeners.delete(check)
            reject(new Error(`${script} exited before saying "${msg}"\nstdout: ${stdout}\nstderr: ${stderr}`))
          }
        }
        listeners.add(check)
        check()
      })
    return { child, said, exited, output: () => ({ stdout, stderr }) }
  }

  async function manage(...args: string[]) {
    const proc = start('src/manage.ts', args)
    const code = await proc.exited
    return { code, ...proc.output() }
  }

  it('beat migrates, adds the default schedule, leads, and exits 0 on SIGTERM (78 without a broker); manage lists and switches the rows', async () => {
    // Refused at the arguments, before the database is opened: it runs beside the others.
    const badSubcommand = manage('periodic', 'pause', 'x')
    const beat = start('src/scheduler.ts')
    if (broker) {
      await beat.said('scheduler leading')
      kill(beat.child, 'SIGTERM')
      expect(await beat.exited).toBe(0)
    } else {
      expect(await beat.exited).toBe(78)
      expect(beat.output().stderr).toMatch(/npm run beat needs CELERY_BROKER_URL/)
      // It refused before touching the database: migrate it as an operator would.
      expect((await manage('migrate')).code).toBe(0)
    }

    const listed = await manage('periodic', 'list')
    expect(listed.code).toBe(0)
    const table = listed.stdout.trim().split('\n')
    expect(table[0]).toMatch(/^NAME\s+TASK\s+SCHEDULE\s+ENABLED\s+LAST RUN\s+NEXT RUN$/)
    expect(table.slice(1).map((line) => line.split(/\s{2,}/).slice(0, 4))).toEqual([
      ['accounts.clean_spent_tokens', 'accounts.clean_spent_tokens', 'cron 20 3 * * *', 'yes'],
      ['analytics.prune_events', 'analytics.prune_events', 'cron 50 3 * * *', 'yes'],
      ['analytics.rollup', 'analytics.rollup', 'every 15 min', 'yes'],
      ['cart.expire_carts', 'cart.expire_carts', 'every 1 h', 'yes'],
      ['core.clean_expired', 'core.clean_expired', 'cron 10 3 * * *', 'yes'],
      ['orders.expire_reservations', 'orders.expire_reservations', 'every 1 min', 'yes'],
      ['payments.prune_webhook_events', 'payments.prune_webhook_events', 'cron 30 3 * * *', 'yes'],
      ['payments.reconcile', 'payments.reconcile', 'every 5 min', 'yes'],
      ['webhooks.deliver_due', 'webhooks.deliver_due', 'every 1 min', 'yes'],
      ['webhooks.prune_deliveries', 'webhooks.prune_deliveries', 'cron 40 3 * * *', 'yes'],
    ])

    const disabled = await manage('periodic', 'disable', 'payments.reconcile')
    expect(disabled).toMatchObject({ code: 0, stdout: 'Periodic task payments.reconcile disabled.\n' })
    const unknown = await manage('periodic', 'enable', 'payments.reconcile_all')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe('No periodic task named "payments.reconcile_all"; the schedule has: accounts.clean_spent_tokens, analytics.prune_events, analytics.rollup, cart.expire_carts, core.clean_expired, orders.expire_reservations, payments.prune_webhook_events, payments.reconcile, webhooks.deliver_due, webhooks.prune_deliveries.\n')
    expect(await badSubcommand).toMatchObject({ code: 2, stderr: 'Unknown subcommand "pause": periodic list | enable NAME | disable NAME.\n' })
    const after = await manage('periodic', 'list')
    expect(after.stdout).toMatch(/^payments\.reconcile\s+payments\.reconcile\s+every 5 min\s+no\s/m)
  }, 120_000)

  it.runIf(usesPostgres && broker)('a second beat waits for the leader and takes over when the leader stops', async () => {
    const first = start('src/scheduler.ts')
    await first.said('scheduler leading')
    const second = start('src/scheduler.ts')
    await second.said('scheduler waiting for the leader')
    kill(first.child, 'SIGTERM')
    expect(await first.exited).toBe(0)
    await second.said('scheduler leading')
    kill(second.child, 'SIGTERM')
    expect(await second.exited).toBe(0)
  }, 120_000)
})
