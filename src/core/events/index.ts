/**
 * Domain events through the transactional outbox. `publish` writes a row in the caller's
 * transaction, so an event exists exactly when the change that caused it committed. After commit
 * the relay hands unpublished rows, oldest first, to the tasks subscribed to them (at least once,
 * in order: one relay acts at a time, even with several processes).
 */
import { asc, inArray, isNull, sql } from 'drizzle-orm'
import { Type, type TSchema } from 'typebox'
import type { Db } from '../db/index.js'
import type { Logger } from '../logging.js'
import type { TaskQueue, TaskRegistry } from '../queue/index.js'
import { outboxEvents } from './tables.js'

/** Every app adds its events here (declaration merging from its events.ts). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface DomainEvents {}

export type EventName = keyof DomainEvents & string

/** What a subscribed task receives. Handlers dedupe on `id`. */
export interface EventEnvelope<P = unknown> {
  id: string
  name: string
  occurred_at: string
  payload: P
}

/** The payload schema of a task subscribed to an event: the envelope around the event's payload. */
export const envelopeOf = <T extends TSchema>(payload: T) => Type.Object({ id: Type.String(), name: Type.String(), occurred_at: Type.String(), payload })

/** Writes an outbox row with `db`, which should be the transaction of the change. */
export async function insertEvent(db: Db, name: string, payload: object): Promise<string> {
  const aggregate = (payload as { id?: unknown }).id ?? Object.values(payload).find((value) => typeof value === 'string')
  const [row] = await db
    .insert(outboxEvents)
    .values({ name, payload, aggregate_id: typeof aggregate === 'string' ? aggregate : null })
    .returning({ id: outboxEvents.id })
  return row!.id
}

const BATCH = 100
/** The advisory lock the relays of every process share. */
const RELAY_LOCK = 724_311_401

export interface OutboxRelay {
  /** Delivers every unpublished event; concurrent calls share one run. */
  flush(): Promise<number>
  start(): void
  stop(): Promise<void>
  backlog(): Promise<{ count: number; oldest_age_seconds: number }>
}

export function createOutboxRelay(deps: { db: Db; queue: TaskQueue; registry: TaskRegistry; log: Logger; pollMs: number }): OutboxRelay {
  const { db, queue, registry, log } = deps
  let running: Promise<number> | null = null
  let again = false
  let timer: NodeJS.Timeout | null = null

  /** One batch. After an event that could not be enqueued the rest waits, to keep their order. */
  const deliverBatch = async (): Promise<{ delivered: number; more: boolean }> =>
    db.transaction(async (tx) => {
      // One relay at a time across processes, so events reach the queue in commit order (per
      // aggregate above all); a second relay waits for this batch and then sees it published.
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${RELAY_LOCK})`)
      const rows = await tx
        .select()
        .from(outboxEvents)
        .where(isNull(outboxEvents.published_at))
        .orderBy(asc(outboxEvents.seq))
        .limit(BATCH)
      const delivered: string[] = []
      for (const row of rows) {
        const envelope: EventEnvelope = { id: row.id, name: row.name, occurred_at: row.created_at.toISOString(), payload: row.payload }
        try {
          for (const task of registry.subscribers(row.name)) {
            await queue.enqueue(task, envelope, { jobId: `${row.id}:${task}` })
          }
          delivered.push(row.id)
        } catch (err) {
          // Keep order per aggregate: stop at the first failure, the rest waits for the next run.
          log.error({ err, event_id: row.id, event: row.name }, 'outbox event could not be enqueued')
          await tx
            .update(outboxEvents)
            .set({ attempts: sql`${outboxEvents.attempts} + 1`, last_error: err instanceof Error ? err.message : String(err) })
            .where(inArray(outboxEvents.id, [row.id]))
          break
        }
      }
      if (delivered.length > 0) {
        await tx.update(outboxEvents).set({ published_at: sql`now()` }).where(inArray(outboxEvents.id, delivered))
      }
      const blocked = delivered.length < rows.length
      return { delivered: delivered.length, more: !blocked && rows.length === BATCH }
    })

  const run = async (): Promise<number> => {
    let total = 0
    for (let more = true; more; ) {
      const batch = await deliverBatch()
      total += batch.delivered
      more = batch.more
    }
    return total
  }

  const flush = (): Promise<number> => {
    if (running) {
      again = true
      return running
    }
    running = (async () => {
      let total = 0
      do {
        again = false
        total += await run()
      } while (again)
      return total
    })().finally(() => {
      running = null
    })
    return running
  }

  return {
    flush,
    start() {
      if (deps.pollMs <= 0 || timer) return
      timer = setInterval(() => {
        flush().catch((err: unknown) => log.error({ err }, 'outbox relay failed'))
      }, deps.pollMs)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = null
      await running?.catch(() => undefined)
    },
    async backlog() {
      const [row] = await db
        .select({
          count: sql<number>`count(*)::int`,
          oldest: sql<number | null>`extract(epoch from now() - min(${outboxEvents.created_at}))::float8`,
        })
        .from(outboxEvents)
        .where(isNull(outboxEvents.published_at))
      return { count: row?.count ?? 0, oldest_age_seconds: row?.oldest ?? 0 }
    },
  }
}
