import { sql } from 'drizzle-orm'
import { bigint, check, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { orders } from '../orders/tables.js'

export const paymentStatuses = ['pending', 'processing', 'succeeded', 'failed', 'canceled'] as const
export type PaymentStatus = (typeof paymentStatuses)[number]
export const refundStatuses = ['pending', 'succeeded', 'failed'] as const
export type RefundStatus = (typeof refundStatuses)[number]

/**
 * One payment attempt of an order: a Stripe PaymentIntent (or a dummy one). Amounts are integers
 * in minor units. No card data is stored: the card goes from the browser to Stripe.
 */
export const payments = pgTable(
  'payments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    order_id: uuid('order_id').notNull().references(() => orders.id, { onDelete: 'restrict' }),
    provider: text('provider').notNull(),
    /** The provider's id (pi_…). */
    provider_ref: text('provider_ref').notNull(),
    /** Stripe's client secret, handed to the paying customer's browser. */
    client_secret: text('client_secret'),
    status: text('status', { enum: paymentStatuses }).notNull().default('pending'),
    amount: integer('amount').notNull(),
    currency: text('currency').notNull(),
    amount_refunded: integer('amount_refunded').notNull().default(0),
    /** Why the payment needs a person (an amount that does not match the order, a dispute). */
    flagged: text('flagged'),
    failure_message: text('failure_message'),
    /** Unix time of the newest provider event applied: an older one never moves the status back. */
    status_at: bigint('status_at', { mode: 'number' }).notNull().default(0),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('payments_provider_ref_idx').on(table.provider, table.provider_ref),
    index('payments_order_idx').on(table.order_id, table.created_at),
    // The reconciliation task looks for these.
    index('payments_unsettled_idx').on(table.updated_at).where(sql`${table.status} IN ('pending', 'processing')`),
    check('payments_amounts_check', sql`${table.amount} >= 0 AND ${table.amount_refunded} >= 0 AND ${table.amount_refunded} <= ${table.amount}`),
  ],
)

/** Money given back, whole or in part; executed at the provider with the row id as idempotency key. */
export const refunds = pgTable(
  'payment_refunds',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    payment_id: uuid('payment_id').notNull().references(() => payments.id, { onDelete: 'restrict' }),
    amount: integer('amount').notNull(),
    status: text('status', { enum: refundStatuses }).notNull().default('pending'),
    /** requested_by_customer, duplicate, fraudulent, order_cancelled, order_unavailable, external (made at the provider). */
    reason: text('reason').notNull(),
    note: text('note'),
    provider_ref: text('provider_ref'),
    failure_message: text('failure_message'),
    /** "user:<id>", "system", or "provider" (an external refund). */
    requested_by: text('requested_by').notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    index('payment_refunds_payment_idx').on(table.payment_id, table.created_at),
    index('payment_refunds_pending_idx').on(table.created_at).where(sql`${table.status} = 'pending'`),
    // A succeeded refund is never updated again: its updated_at is when it succeeded (sales figures).
    index('payment_refunds_succeeded_idx').on(table.updated_at).where(sql`${table.status} = 'succeeded'`),
    check('payment_refunds_amount_check', sql`${table.amount} > 0`),
  ],
)

/**
 * The webhook inbox: one row per provider event id. Inserted in the transaction that applies the
 * event, so its primary key makes each event take effect exactly once. Only a summary is kept.
 */
export const webhookEvents = pgTable('payment_webhook_events', {
  id: text('id').primaryKey(),
  type: text('type').notNull(),
  /** The provider's object (pi_…, ch_…, dp_…). */
  object_ref: text('object_ref'),
  payment_id: uuid('payment_id'),
  /** applied, stale, flagged, duplicate_payment, unmatched, ignored. */
  outcome: text('outcome').notNull(),
  /** When the provider created the event (Unix seconds). */
  created: bigint('created', { mode: 'number' }).notNull(),
  received_at: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
})
