/**
 * The periodic task scheduler of `npm run beat`: Celery beat with django_celery_beat's
 * DatabaseScheduler. The schedule is the `periodic_tasks` table; the defaults the code ships are
 * inserted when missing and never overwrite an operator's change. Every second the leader
 * enqueues each enabled task that is due, once, and moves its next run forward.
 *
 * Each due row is handled in a transaction of its own: the row is locked (SKIP LOCKED, so a
 * second scheduler passes it by), the job is enqueued under a deterministic id
 * (`periodic:<name>:<due time>`, so even two schedulers acting at once produce one job), then the
 * row moves on. When the broker refuses the job the transaction rolls back and the next tick
 * tries again; a task this process does not know is logged and left for one that does.
 */
import { and, asc, eq, lte, sql } from 'drizzle-orm'
import type { Db } from '../db/index.js'
import type { Logger } from '../logging.js'
import type { Platform } from '../platform.js'
import type { TaskQueue, TaskRegistry } from '../queue/index.js'
import { advisoryLockLeadership, soleLeadership, type Leadership } from './leadership.js'
import { periodicTasks, type PeriodicTaskRow } from './tables.js'
import { checkSchedule, describeSchedule, firstRun, nextRunAfter, type Schedule } from './timing.js'

export { SCHEDULER_LOCK_ID } from './leadership.js'
export { periodicTasks, type PeriodicTaskRow } from './tables.js'
export { describeSchedule, nextRunAfter, type Schedule } from './timing.js'

/** A row of the default schedule: `name` is the row's key, `task` the registered task it runs. */
export type ScheduleEntry = { name: string; task: string; payload?: Record<string, unknown> } & Schedule

export interface SchedulerOptions {
  db: Db
  queue: Pick<TaskQueue, 'enqueue'>
  registry: Pick<TaskRegistry, 'names'>
  log: Logger
  defaults: readonly ScheduleEntry[]
  /** PostgreSQL: the database the leader's lock connection opens. null (PGlite): this process leads. */
  leaderLockUrl: string | null
  /** How often the leader looks for due tasks. */
  tickMs?: number
  /** How often a follower tries to take over, and the leader checks its lock connection. */
  leaderRetryMs?: number
}

export interface Scheduler {
  /** Inserts the default rows that are missing; resolves to their names. */
  ensureDefaults(now?: Date): Promise<string[]>
  /** Enqueues every enabled task due at `now` once and moves it on; resolves to the names enqueued. */
  tick(now?: Date): Promise<string[]>
  /** Takes leadership if free (or confirms it is still held); resolves to whether this scheduler leads. */
  lead(): Promise<boolean>
  readonly isLeader: boolean
  /** Leads (or waits to) and ticks on a timer that does not keep the process alive. */
  start(): void
  /** Stops the timer, waits for a running tick and gives leadership up. */
  stop(): Promise<void>
}

export const DEFAULT_TICK_MS = 1_000
export const DEFAULT_LEADER_RETRY_MS = 5_000

/** The job of the run due at `due`: the same for every scheduler, so the broker keeps one. */
export function periodicJobId(name: string, due: Date): string {
  return `periodic:${name}:${due.toISOString()}`
}

export function createScheduler(options: SchedulerOptions): Scheduler {
  const { db, queue, registry, log } = options
  const tickMs = options.tickMs ?? DEFAULT_TICK_MS
  const leaderRetryMs = options.leaderRetryMs ?? DEFAULT_LEADER_RETRY_MS
  const leadership: Leadership = options.leaderLockUrl ? advisoryLockLeadership({ url: options.leaderLockUrl, log }) : soleLeadership()
  const reports = createReports(log)
  let announced: 'leading' | 'waiting' | null = null
  let stopped = true
  let timer: NodeJS.Timeout | null = null
  let running: Promise<void> | null = null
  let nextLeadAttemptAt = 0

  const dueTasks = (now: Date) =>
    db
      .select({ name: periodicTasks.name, task: periodicTasks.task })
      .from(periodicTasks)
      .where(and(eq(periodicTasks.enabled, true), lte(periodicTasks.next_run_at, now)))
      .orderBy(asc(periodicTasks.next_run_at), asc(periodicTasks.name))

  /** One run of one task, in its own transaction; false when the row was no longer due or was taken. */
  const runIfDue = (name: string, now: Date): Promise<boolean> =>
    db.transaction(async (tx) => {
      const [row] = await tx
        .select()
        .from(periodicTasks)
        .where(and(eq(periodicTasks.name, name), eq(periodicTasks.enabled, true), lte(periodicTasks.next_run_at, now)))
        .for('update', { skipLocked: true })
      if (!row) return false
      const next = nextRunAfter(row, row.next_run_at, now)
      const jobId = periodicJobId(row.name, row.next_run_at)
      await queue.enqueue(row.task, row.payload, { jobId })
      await tx
        .update(periodicTasks)
        .set({ last_run_at: now, next_run_at: next, total_run_count: sql`${periodicTasks.total_run_count} + 1`, updated_at: now })
        .where(eq(periodicTasks.name, row.name))
      log.info({ periodic_task: row.name, task: row.task, job_id: jobId, next_run_at: next.toISOString() }, 'periodic task enqueued')
      return true
    })

  const tick = async (now = new Date()): Promise<string[]> => {
    const known = new Set(registry.names())
    const enqueued: string[] = []
    for (const due of await dueTasks(now)) {
      if (!known.has(due.task)) {
        reports.unknownTask(due.name, due.task)
        continue
      }
      try {
        if (await runIfDue(due.name, now)) {
          enqueued.push(due.name)
          reports.succeeded(due.name)
        }
      } catch (err) {
        reports.failed(due.name, due.task, err)
      }
    }
    return enqueued
  }

  const lead = async (): Promise<boolean> => {
    const leading = await leadership.acquire()
    const state = leading ? 'leading' : 'waiting'
    if (state !== announced) {
      announced = state
      log.info(leading ? 'scheduler leading' : 'scheduler waiting for the leader')
    }
    return leading
  }

  /** Leadership is tried (or confirmed) every leaderRetryMs; the leader ticks every tickMs. */
  const step = async () => {
    if (Date.now() >= nextLeadAttemptAt) {
      await lead()
      nextLeadAttemptAt = Date.now() + leaderRetryMs
    }
    if (leadership.isLeader) await tick()
  }

  const loop = () => {
    running = step()
      .catch((err: unknown) => log.error({ err }, 'scheduler tick failed'))
      .finally(() => {
        running = null
        if (stopped) return
        timer = setTimeout(loop, tickMs)
        // A timer must not keep a finished process alive; npm run beat holds itself open.
        timer.unref()
      })
  }

  return {
    ensureDefaults: (now = new Date()) => ensureDefaultSchedule(db, options.defaults, { now, log }),
    tick,
    lead,
    get isLeader() {
      return leadership.isLeader
    },
    start() {
      if (!stopped) return
      stopped = false
      nextLeadAttemptAt = 0
      loop()
    },
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      timer = null
      await running
      await leadership.release()
      announced = null
    },
  }
}

/** A scheduler on a platform's database, queue and tasks (what `npm run beat` and an API process use). */
export function schedulerFor(platform: Platform, defaults: readonly ScheduleEntry[], options: Pick<SchedulerOptions, 'tickMs' | 'leaderRetryMs'> = {}): Scheduler {
  const { db: dbSettings } = platform.settings
  return createScheduler({
    db: platform.database.db,
    queue: platform.queue,
    registry: platform.tasks,
    log: platform.log.child({ component: 'scheduler' }),
    defaults,
    leaderLockUrl: platform.database.kind === 'postgres' && dbSettings.kind === 'postgres' ? dbSettings.url : null,
    ...options,
  })
}

/**
 * Logs what goes wrong once per streak rather than every second: a task this process does not
 * know (left for a scheduler that does, e.g. during a deploy), and a run that could not be
 * enqueued (retried every tick until the broker takes it).
 */
function createReports(log: Logger) {
  const unknown = new Set<string>()
  const failing = new Set<string>()
  return {
    unknownTask(name: string, task: string) {
      if (unknown.has(`${name}\0${task}`)) return
      unknown.add(`${name}\0${task}`)
      log.error({ periodic_task: name, task }, 'periodic task skipped: no task of that name is registered')
    },
    failed(name: string, task: string, err: unknown) {
      if (failing.has(name)) return
      failing.add(name)
      log.error({ err, periodic_task: name, task }, 'periodic task not enqueued; retrying every tick')
    },
    succeeded(name: string) {
      if (failing.delete(name)) log.info({ periodic_task: name }, 'periodic task enqueued again')
    },
  }
}

/**
 * Inserts the entries whose name has no row yet, first run one interval (or the cron's next time)
 * from `now`. Existing rows are left exactly as they are: an operator's change wins.
 */
export async function ensureDefaultSchedule(db: Db, defaults: readonly ScheduleEntry[], options: { now?: Date; log?: Logger } = {}): Promise<string[]> {
  const now = options.now ?? new Date()
  const names = new Set<string>()
  const rows = defaults.map((entry) => {
    if (names.has(entry.name)) throw new Error(`The default schedule names "${entry.name}" twice`)
    names.add(entry.name)
    const schedule = { cron: entry.cron ?? null, every_seconds: entry.every_seconds ?? null }
    try {
      checkSchedule(schedule)
    } catch (err) {
      throw new Error(`Default schedule "${entry.name}": ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
    return { name: entry.name, task: entry.task, payload: entry.payload ?? {}, ...schedule, next_run_at: firstRun(schedule, now) }
  })
  if (rows.length === 0) return []
  const inserted = await db.insert(periodicTasks).values(rows).onConflictDoNothing({ target: periodicTasks.name }).returning({ name: periodicTasks.name })
  for (const { name } of inserted) options.log?.info({ periodic_task: name }, 'periodic task added to the schedule')
  return inserted.map((row) => row.name)
}

export async function listPeriodicTasks(db: Db): Promise<PeriodicTaskRow[]> {
  return db.select().from(periodicTasks).orderBy(asc(periodicTasks.name))
}

/** Switches a row on or off; false when no row has that name. */
export async function setPeriodicTaskEnabled(db: Db, name: string, enabled: boolean): Promise<boolean> {
  const rows = await db
    .update(periodicTasks)
    .set({ enabled, updated_at: sql`now()` })
    .where(eq(periodicTasks.name, name))
    .returning({ name: periodicTasks.name })
  return rows.length > 0
}

/** The schedule as an aligned text table, times in UTC. */
export function formatPeriodicTasks(rows: readonly PeriodicTaskRow[]): string {
  const header = ['NAME', 'TASK', 'SCHEDULE', 'ENABLED', 'LAST RUN', 'NEXT RUN']
  const lines = rows.map((row) => [row.name, row.task, describeSchedule(row), row.enabled ? 'yes' : 'no', utc(row.last_run_at), utc(row.next_run_at)])
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column]!.length)))
  return [header, ...lines].map((line) => line.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n')
}

function utc(at: Date | null): string {
  return at ? `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC` : 'never'
}
