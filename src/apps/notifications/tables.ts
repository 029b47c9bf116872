import { sql } from 'drizzle-orm'
import { boolean, index, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { users } from '../accounts/tables.js'

/** What a message is about. `account` and `order_updates` mail is transactional; `marketing` needs consent. */
export const notificationKinds = ['account', 'order_updates', 'marketing'] as const
export type NotificationKind = (typeof notificationKinds)[number]
export const notificationChannels = ['email', 'in_app'] as const
export type NotificationChannel = (typeof notificationChannels)[number]

/** In-app notifications, created from domain events (one per user and event). */
export const notifications = pgTable(
  'notifications',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    user_id: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: notificationKinds }).notNull(),
    /** What happened, for the client's icon and wording: `order.shipped`, `payment.failed`, … */
    type: text('type').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    /** Where the shop front end shows more (absolute URL), if anywhere. */
    link: text('link'),
    data: jsonb('data').notNull().default({}),
    /** The domain event it came from: an event delivered twice still makes one notification. */
    source_event_id: uuid('source_event_id'),
    read_at: timestamp('read_at', { withTimezone: true }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    index('notifications_user_created_idx').on(table.user_id, table.created_at.desc(), table.id.desc()),
    index('notifications_unread_idx').on(table.user_id).where(sql`${table.read_at} IS NULL`),
    uniqueIndex('notifications_source_idx').on(table.user_id, table.source_event_id),
  ],
)

/**
 * A user's choices per channel and kind; a missing row means the default (transactional on,
 * marketing off). `updated_at` of an enabled marketing row is when consent was given.
 */
export const notificationPreferences = pgTable(
  'notification_preferences',
  {
    user_id: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    channel: text('channel', { enum: notificationChannels }).notNull(),
    kind: text('kind', { enum: notificationKinds }).notNull(),
    enabled: boolean('enabled').notNull(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.user_id, table.channel, table.kind] })],
)
