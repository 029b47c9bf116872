import { index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core'

/** One row per (caller, key): the request's fingerprint and, once finished, its response. */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    scope: text('scope').notNull(),
    key: text('key').notNull(),
    request_hash: text('request_hash').notNull(),
    /** in_progress until the first response is stored, then completed. */
    state: text('state', { enum: ['in_progress', 'completed'] }).notNull(),
    response_status: integer('response_status'),
    response_headers: jsonb('response_headers').$type<Record<string, string>>(),
    response_body: text('response_body'),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    locked_at: timestamp('locked_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.scope, table.key] }), index('idempotency_keys_created_at_idx').on(table.created_at)],
)
