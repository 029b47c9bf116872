import { sql } from 'drizzle-orm'
import { bigserial, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

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
