/** Drizzle queries of the analytics app. */
import { and, eq, isNull, lt, sql } from 'drizzle-orm'
import { deleteInBatches, type Db } from '../../core/db/index.js'
import { analyticsEvents } from './tables.js'

export type NewAnalyticsEvent = typeof analyticsEvents.$inferInsert

/** One multi-row INSERT; a server-side event already recorded (same source event) is skipped. */
export async function insertEvents(db: Db, rows: NewAnalyticsEvent[]): Promise<number> {
  if (rows.length === 0) return 0
  const inserted = await db.insert(analyticsEvents).values(rows).onConflictDoNothing({ target: analyticsEvents.source_event_id }).returning({ id: analyticsEvents.id })
  return inserted.length
}

/** The anonymous events of a session become the user's once they are known to be theirs. */
export async function joinSessionToUser(db: Db, sessionId: string, userId: string): Promise<void> {
  await db.update(analyticsEvents).set({ user_id: userId }).where(and(eq(analyticsEvents.session_id, sessionId), isNull(analyticsEvents.user_id)))
}

export async function deleteEventsBefore(db: Db, days: number): Promise<number> {
  return deleteInBatches(db, analyticsEvents, lt(analyticsEvents.occurred_at, sql`now() - make_interval(days => ${days})`))
}
