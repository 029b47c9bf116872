import { sql } from 'drizzle-orm'
import { bigint, bigserial, date, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

/** What shoppers' clients report (POST /api/analytics/events/). */
export const clientEventTypes = ['product_view', 'add_to_cart', 'checkout_started', 'search'] as const
/** What the server records itself, from the domain events. */
export const serverEventTypes = ['order_placed', 'order_paid', 'refund'] as const
export const analyticsEventTypes = [...clientEventTypes, ...serverEventTypes] as const
export type AnalyticsEventType = (typeof analyticsEventTypes)[number]

/**
 * Raw analytics events, appended in batches and pruned after ANALYTICS_RETENTION_DAYS. No foreign
 * keys: an event outlives the product or account it names, and inserts stay cheap.
 */
export const analyticsEvents = pgTable(
  'analytics_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    type: text('type', { enum: analyticsEventTypes }).notNull(),
    product_id: uuid('product_id'),
    query: text('query'),
    result_count: integer('result_count'),
    /** The shopper's anonymous session (chosen by the client); joined to user_id after sign-in. */
    session_id: text('session_id'),
    user_id: uuid('user_id'),
    order_id: uuid('order_id'),
    /** Minor units of the shop currency: the order total, or the refund. */
    amount: integer('amount'),
    /** The domain event a server-side event came from: delivered twice, recorded once. */
    source_event_id: uuid('source_event_id'),
    occurred_at: timestamp('occurred_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    index('analytics_events_occurred_idx').on(table.occurred_at),
    index('analytics_events_session_idx').on(table.session_id).where(sql`${table.session_id} IS NOT NULL AND ${table.user_id} IS NULL`),
    uniqueIndex('analytics_events_source_idx').on(table.source_event_id),
  ],
)

/*
 * Daily rollups (rollup.ts): figures per shop day (TIME_ZONE), rewritten whole for each day the
 * rollup task covers, so running a day again changes nothing. They outlive the raw events.
 */

/** One row per day rolled up, quiet days included: the newest row is how far the rollup has come. */
export const dailyTotals = pgTable('analytics_daily', {
  day: date('day', { mode: 'string' }).primaryKey(),
  /** Distinct session_id values sent with events that day. */
  sessions: integer('sessions').notNull(),
  /** Orders first paid that day, and their totals (minor units). */
  orders: integer('orders').notNull(),
  revenue: bigint('revenue', { mode: 'number' }).notNull(),
  units_sold: integer('units_sold').notNull(),
  /** Money refunded that day (the day each refund succeeded). */
  refunds: bigint('refunds', { mode: 'number' }).notNull(),
  rolled_up_at: timestamp('rolled_up_at', { withTimezone: true }).notNull().defaultNow(),
})

/** Per product and day; a product appears on a day something happened to it. */
export const productDaily = pgTable(
  'analytics_product_daily',
  {
    day: date('day', { mode: 'string' }).notNull(),
    product_id: uuid('product_id').notNull(),
    views: integer('views').notNull(),
    cart_adds: integer('cart_adds').notNull(),
    units_sold: integer('units_sold').notNull(),
    /** Its lines' totals in orders first paid that day. */
    revenue: bigint('revenue', { mode: 'number' }).notNull(),
    /** Its share of the day's refunds (each refund shared among its order's lines by their totals). */
    refunds: bigint('refunds', { mode: 'number' }).notNull(),
  },
  (table) => [primaryKey({ columns: [table.day, table.product_id] })],
)

/** Searches the API answered with no product, per normalized query and day. */
export const zeroResultSearchesDaily = pgTable(
  'analytics_zero_result_searches',
  {
    day: date('day', { mode: 'string' }).notNull(),
    query: text('query').notNull(),
    searches: integer('searches').notNull(),
  },
  (table) => [primaryKey({ columns: [table.day, table.query] })],
)
