/**
 * Housekeeping of core's own tables, run daily by the scheduler: idempotency keys past their
 * lifetime (a replay is answered only within it) and outbox events delivered more than
 * OUTBOX_KEEP_DAYS ago (kept a while to look into what happened; undelivered ones always stay).
 */
import { and, isNotNull, lt, sql } from 'drizzle-orm'
import { Type } from 'typebox'
import type { Settings } from '../config/index.js'
import { deleteInBatches, type Db } from './db/index.js'
import { outboxEvents } from './events/tables.js'
import { idempotencyKeys } from './idempotency/tables.js'
import { defineTask, type JobContext } from './queue/index.js'

export const CLEAN_EXPIRED_TASK = 'core.clean_expired'
export const OUTBOX_KEEP_DAYS = 7

export async function cleanExpired(db: Db, settings: Pick<Settings, 'idempotency'>): Promise<{ idempotency_keys: number; outbox_events: number }> {
  const keysBefore = new Date(Date.now() - settings.idempotency.ttlMs)
  return {
    idempotency_keys: await deleteInBatches(db, idempotencyKeys, lt(idempotencyKeys.created_at, keysBefore)),
    outbox_events: await deleteInBatches(db, outboxEvents, and(isNotNull(outboxEvents.published_at), lt(outboxEvents.published_at, sql`now() - make_interval(days => ${OUTBOX_KEEP_DAYS})`))!),
  }
}

/**
 * A periodic cleanup task (no payload): `clean` deletes and answers how many rows per table; the
 * run is logged when anything went. Every app's nightly cleanup is one of these.
 */
export function defineCleanupTask(name: string, clean: (job: JobContext) => Promise<Record<string, number>>) {
  return defineTask({
    name,
    schema: Type.Object({}),
    async handler(_payload, job) {
      const deleted = await clean(job)
      if (Object.values(deleted).some((count) => count > 0)) job.log.info({ deleted }, 'expired rows deleted')
    },
  })
}

export const createCleanExpiredTask = (db: Db, settings: Pick<Settings, 'idempotency'>) => defineCleanupTask(CLEAN_EXPIRED_TASK, () => cleanExpired(db, settings))
