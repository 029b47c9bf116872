/** Drizzle queries of the notifications app: one statement each. */
import { and, asc, desc, eq, gt, isNotNull, isNull, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { notificationPreferences, notifications, type NotificationChannel, type NotificationKind } from './tables.js'

export type NotificationRow = typeof notifications.$inferSelect
export type PreferenceRow = typeof notificationPreferences.$inferSelect

export async function preferencesOf(db: Db, userId: string): Promise<PreferenceRow[]> {
  return db.select().from(notificationPreferences).where(eq(notificationPreferences.user_id, userId))
}

export async function findPreference(db: Db, userId: string, channel: NotificationChannel, kind: NotificationKind): Promise<PreferenceRow | undefined> {
  const [row] = await db
    .select()
    .from(notificationPreferences)
    .where(and(eq(notificationPreferences.user_id, userId), eq(notificationPreferences.channel, channel), eq(notificationPreferences.kind, kind)))
  return row
}

/**
 * Stores a choice. `updated_at` moves only when the choice flips: for marketing email it is the
 * moment of consent, which saying yes again must not move.
 */
export async function upsertPreference(db: Db, values: { user_id: string; channel: NotificationChannel; kind: NotificationKind; enabled: boolean }): Promise<void> {
  await db
    .insert(notificationPreferences)
    .values(values)
    .onConflictDoUpdate({
      target: [notificationPreferences.user_id, notificationPreferences.channel, notificationPreferences.kind],
      set: { enabled: sql`excluded.enabled`, updated_at: sql`now()` },
      setWhere: sql`${notificationPreferences.enabled} IS DISTINCT FROM excluded.enabled`,
    })
}

/** Inserts the notification; undefined when this user already has one from the same event. */
export async function insertNotification(db: Db, values: typeof notifications.$inferInsert): Promise<NotificationRow | undefined> {
  const [row] = await db.insert(notifications).values(values).onConflictDoNothing({ target: [notifications.user_id, notifications.source_event_id] }).returning()
  return row
}

export interface NotificationFilter {
  userId: string
  /** true: only unread; false: only read; undefined: all. */
  unread?: boolean
  /** Keyset: rows strictly older than this (created_at, id) pair. */
  before?: { created_at: string; id: string }
  limit: number
}

const readFilter = (unread: boolean | undefined): SQL | undefined => (unread === undefined ? undefined : unread ? isNull(notifications.read_at) : isNotNull(notifications.read_at))

/** Newest first, one row more than `limit` (it tells whether a next page exists). */
export async function listNotifications(db: Db, filter: NotificationFilter) {
  const conditions = [eq(notifications.user_id, filter.userId), readFilter(filter.unread)]
  if (filter.before) conditions.push(sql`(${notifications.created_at}, ${notifications.id}) < (${filter.before.created_at}::timestamptz, ${filter.before.id}::uuid)`)
  return db
    .select({
      notification: notifications,
      // Microseconds: a JavaScript Date keeps milliseconds, and the keyset must match exactly.
      cursor_time: sql<string>`to_char(${notifications.created_at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
    })
    .from(notifications)
    .where(and(...conditions))
    .orderBy(desc(notifications.created_at), desc(notifications.id))
    .limit(filter.limit + 1)
}

/** All of the user's notifications and the unread ones, in one pass. */
export async function countNotifications(db: Db, userId: string): Promise<{ total: number; unread: number }> {
  const [row] = await db
    .select({ total: sql<number>`count(*)::int`, unread: sql<number>`(count(*) FILTER (WHERE ${notifications.read_at} IS NULL))::int` })
    .from(notifications)
    .where(eq(notifications.user_id, userId))
  return { total: Number(row?.total ?? 0), unread: Number(row?.unread ?? 0) }
}

/** Marks the user's notification read, keeping the first read time; undefined when the user has no such notification. */
export async function markRead(db: Db, userId: string, id: string): Promise<NotificationRow | undefined> {
  const [row] = await db
    .update(notifications)
    .set({ read_at: sql`coalesce(${notifications.read_at}, now())` })
    .where(and(eq(notifications.id, id), eq(notifications.user_id, userId)))
    .returning()
  return row
}

/** Marks every unread notification of the user read; answers how many. */
export async function markAllRead(db: Db, userId: string): Promise<number> {
  const rows = await db
    .update(notifications)
    .set({ read_at: sql`now()` })
    .where(and(eq(notifications.user_id, userId), isNull(notifications.read_at)))
    .returning({ id: notifications.id })
  return rows.length
}

const optedIn = (channel: NotificationChannel) =>
  and(eq(notificationPreferences.channel, channel), eq(notificationPreferences.kind, 'marketing'), eq(notificationPreferences.enabled, true))

/** Who turned marketing on for `channel`, by user id after `after` (keyset). */
export async function audienceIds(db: Db, channel: NotificationChannel, after: string | null, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: notificationPreferences.user_id })
    .from(notificationPreferences)
    .where(after ? and(optedIn(channel), gt(notificationPreferences.user_id, after)) : optedIn(channel))
    .orderBy(asc(notificationPreferences.user_id))
    .limit(limit)
  return rows.map((row) => row.id)
}

export async function countAudience(db: Db, channel: NotificationChannel): Promise<number> {
  return db.$count(notificationPreferences, optedIn(channel))
}
