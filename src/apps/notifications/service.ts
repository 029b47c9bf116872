/**
 * Notifications: the in-app inbox of each user (created from domain events by tasks.ts, one per
 * user and event) and the per-user preferences every channel respects. Account and order-update
 * email is transactional and always sent; marketing goes out only with consent, whose time is
 * kept. This service publishes nothing; its tasks consume order.status_changed, payment.failed
 * and payment.refunded.
 *
 * Other apps (and the marketing mail) use `allows`, `setPreference` and `notify`.
 */
import type { Ctx } from '../../core/context.js'
import { NotFoundError, UnauthorizedError } from '../../core/errors.js'
import { decodeCursor, encodeCursor } from '../../core/http/pagination.js'
import { assertNotLockedOff, changesOf, effectivePreferences, isLocked, type PreferencesDto, type PreferencesPatch } from './preferences.js'
import * as q from './queries.js'
import type { NotificationRow } from './queries.js'
import type { NotificationChannel, NotificationKind } from './tables.js'

export type { NotificationChannel, NotificationKind } from './tables.js'
export type { PreferencesDto, PreferencesPatch } from './preferences.js'

export interface NotificationDto {
  id: string
  kind: NotificationKind
  type: string
  title: string
  body: string
  link: string | null
  data: Record<string, unknown>
  read: boolean
  read_at: string | null
  created_at: string
}

export interface NewNotification {
  user_id: string
  kind: NotificationKind
  /** What happened, for the client's icon and wording: `order.shipped`, `payment.failed`, … */
  type: string
  title: string
  body: string
  link?: string | null
  data?: Record<string, unknown>
  /** The domain event it comes from: a second delivery of the event adds nothing. */
  source_event_id?: string
}

export interface NotificationPage {
  results: NotificationDto[]
  /** How many match the filter, and how many of all the user's are unread. */
  count: number
  unread_count: number
  next_cursor: string | null
}

const toDto = (row: NotificationRow): NotificationDto => ({
  id: row.id,
  kind: row.kind,
  type: row.type,
  title: row.title,
  body: row.body,
  link: row.link,
  data: row.data as Record<string, unknown>,
  read: row.read_at !== null,
  read_at: row.read_at?.toISOString() ?? null,
  created_at: row.created_at.toISOString(),
})

const isCursor = (value: unknown): value is { t: string; id: string } =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { t: unknown }).t === 'string' &&
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test((value as { t: string }).t) &&
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(String((value as { id: unknown }).id))

/** The signed-in user acting; the inbox and its preferences belong to users only. */
export function signedInUser(ctx: Ctx): string {
  if (ctx.actor?.kind !== 'user') throw new UnauthorizedError()
  return ctx.actor.id
}

export function createNotificationsService() {
  const allows = async (ctx: Ctx, userId: string, channel: NotificationChannel, kind: NotificationKind): Promise<boolean> => {
    if (isLocked(channel, kind)) return true
    const stored = await q.findPreference(ctx.db, userId, channel, kind)
    return stored?.enabled ?? effectivePreferences([])[channel][kind]
  }

  const getPreferences = async (ctx: Ctx, userId: string): Promise<PreferencesDto> => effectivePreferences(await q.preferencesOf(ctx.db, userId))

  return {
    getPreferences,

    /** Applies a partial change in one transaction; turning transactional email off is a 422 and changes nothing. */
    async updatePreferences(ctx: Ctx, userId: string, patch: PreferencesPatch): Promise<PreferencesDto> {
      const changes = changesOf(patch)
      return ctx.tx(async (tx) => {
        for (const change of changes) await q.upsertPreference(tx.db, { user_id: userId, ...change })
        return getPreferences(tx, userId)
      })
    },

    /** One choice, e.g. from an unsubscribe link. Turning a locked one off is a 422. */
    async setPreference(ctx: Ctx, userId: string, channel: NotificationChannel, kind: NotificationKind, enabled: boolean): Promise<void> {
      assertNotLockedOff([{ channel, kind, enabled }])
      if (!isLocked(channel, kind)) await q.upsertPreference(ctx.db, { user_id: userId, channel, kind, enabled })
    },

    /** Whether the user receives this kind on this channel (transactional email always). */
    allows,

    /**
     * Adds a notification to the user's inbox unless they turned that kind off in the app. Null
     * when nothing was added: turned off, or the same event already made one.
     */
    async notify(ctx: Ctx, input: NewNotification): Promise<NotificationDto | null> {
      if (!(await allows(ctx, input.user_id, 'in_app', input.kind))) return null
      const row = await q.insertNotification(ctx.db, {
        user_id: input.user_id,
        kind: input.kind,
        type: input.type,
        title: input.title,
        body: input.body,
        link: input.link ?? null,
        data: input.data ?? {},
        source_event_id: input.source_event_id ?? null,
      })
      return row ? toDto(row) : null
    },

    /** The signed-in user's notifications, newest first (`unread`: only unread, or only read ones). */
    async list(ctx: Ctx, params: { unread?: boolean; cursor?: string; limit?: number }): Promise<NotificationPage> {
      const userId = signedInUser(ctx)
      const limit = params.limit ?? 20
      const before = params.cursor === undefined ? undefined : decodeCursor(params.cursor, isCursor)
      const [rows, counts] = await Promise.all([
        q.listNotifications(ctx.db, { userId, unread: params.unread, before: before && { created_at: before.t, id: before.id }, limit }),
        q.countNotifications(ctx.db, userId),
      ])
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      const count = params.unread === undefined ? counts.total : params.unread ? counts.unread : counts.total - counts.unread
      return {
        results: page.map((row) => toDto(row.notification)),
        count,
        unread_count: counts.unread,
        next_cursor: rows.length > limit && last ? encodeCursor({ t: last.cursor_time, id: last.notification.id }) : null,
      }
    },

    /** Marks one of the signed-in user's notifications read (again: no change). Anyone else's is a 404. */
    async markRead(ctx: Ctx, id: string): Promise<NotificationDto> {
      const row = await q.markRead(ctx.db, signedInUser(ctx), id)
      if (!row) throw new NotFoundError('Notification', id)
      return toDto(row)
    },

    /** Marks all of the signed-in user's notifications read; answers how many were unread. */
    async markAllRead(ctx: Ctx): Promise<{ updated: number }> {
      return { updated: await q.markAllRead(ctx.db, signedInUser(ctx)) }
    },
  }
}

export type NotificationsService = ReturnType<typeof createNotificationsService>
