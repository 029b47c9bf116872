import { sql } from 'drizzle-orm'
import { bigserial, boolean, check, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

export const deliveryStatuses = ['pending', 'succeeded', 'failed'] as const
export type DeliveryStatus = (typeof deliveryStatuses)[number]

/**
 * A receiver staff registered: where to POST and which public event types it wants (`*` for
 * all). The signing secret is stored sealed (core/secret-box). The lease makes one sender at a
 * time deliver the endpoint's queue, in order, without holding a row lock across the HTTP call.
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    url: text('url').notNull(),
    events: text('events').array().notNull(),
    /** AES-256-GCM under a key derived from SECRET_KEY. */
    secret_sealed: text('secret_sealed').notNull(),
    is_active: boolean('is_active').notNull().default(true),
    description: text('description'),
    /** Which sender holds the endpoint, until when; a dead sender's lease simply runs out. */
    lease_token: uuid('lease_token'),
    lease_until: timestamp('lease_until', { withTimezone: true }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('webhook_endpoints_created_idx').on(table.created_at.desc(), table.id.desc())],
)

/**
 * One event for one endpoint: the body is snapshotted when the row is written, so every attempt
 * and replay sends the same bytes; the row id is the Webhook-Id receivers dedupe on. Pending rows
 * of an endpoint are sent in (event_at, seq) order, each only after the one before it finished.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    endpoint_id: uuid('endpoint_id').notNull().references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    /** The domain event (outbox id): delivered at least once, so it is unique per endpoint. */
    event_id: uuid('event_id').notNull(),
    /** The public event type, e.g. `order.paid`. */
    event: text('event').notNull(),
    /** When the domain event happened; orders the endpoint's queue. */
    event_at: timestamp('event_at', { withTimezone: true }).notNull(),
    body: text('body').notNull(),
    status: text('status', { enum: deliveryStatuses }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    response_code: integer('response_code'),
    /** The first KB of the receiver's answer. */
    response_body: text('response_body'),
    last_error: text('last_error'),
    /** When a pending delivery may be tried (again); null once finished. */
    next_attempt_at: timestamp('next_attempt_at', { withTimezone: true }).defaultNow(),
    delivered_at: timestamp('delivered_at', { withTimezone: true }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('webhook_deliveries_event_idx').on(table.endpoint_id, table.event_id),
    uniqueIndex('webhook_deliveries_seq_idx').on(table.seq),
    // The log, newest first (keyset on seq), with or without a status filter.
    index('webhook_deliveries_log_idx').on(table.endpoint_id, table.seq.desc()),
    // An endpoint's queue head, and the sweep for due ones.
    index('webhook_deliveries_pending_idx').on(table.endpoint_id, table.event_at, table.seq).where(sql`${table.status} = 'pending'`),
    index('webhook_deliveries_due_idx').on(table.next_attempt_at).where(sql`${table.status} = 'pending'`),
    // Retention: finished rows by age.
    index('webhook_deliveries_finished_idx').on(table.updated_at).where(sql`${table.status} <> 'pending'`),
    check('webhook_deliveries_attempts_check', sql`${table.attempts} >= 0`),
  ],
)
