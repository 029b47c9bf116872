import { sql } from 'drizzle-orm'
import { boolean, check, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

export const orderStatuses = ['pending_payment', 'paid', 'processing', 'shipped', 'delivered', 'cancelled', 'refunded', 'partially_refunded'] as const
export type OrderStatus = (typeof orderStatuses)[number]

export interface Address {
  name: string
  line1: string
  line2?: string
  city: string
  region?: string
  postal_code: string
  country: string
  phone?: string
}

/**
 * An order: what was bought at which prices (copied, never re-read from the catalog), where it
 * goes, and where it stands. Totals are integers in minor units of `currency`.
 */
export const orders = pgTable(
  'orders',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** ORD- and 8 random characters: not sequential, not guessable. */
    number: text('number').notNull().unique(),
    user_id: uuid('user_id'),
    email: text('email').notNull(),
    status: text('status', { enum: orderStatuses }).notNull().default('pending_payment'),
    currency: text('currency').notNull(),
    subtotal: integer('subtotal').notNull(),
    discount: integer('discount').notNull().default(0),
    shipping: integer('shipping').notNull().default(0),
    tax: integer('tax').notNull().default(0),
    total: integer('total').notNull(),
    prices_include_tax: boolean('prices_include_tax').notNull(),
    coupon_code: text('coupon_code'),
    shipping_method: text('shipping_method').notNull(),
    shipping_address: jsonb('shipping_address').$type<Address>().notNull(),
    billing_address: jsonb('billing_address').$type<Address>().notNull(),
    tracking_number: text('tracking_number'),
    /** Unpaid orders are cancelled and their stock released after this. */
    reservation_expires_at: timestamp('reservation_expires_at', { withTimezone: true }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    index('orders_user_created_idx').on(table.user_id, table.created_at, table.id),
    index('orders_created_idx').on(table.created_at, table.id),
    index('orders_email_idx').on(sql`lower(${table.email})`),
    index('orders_expiring_idx').on(table.reservation_expires_at).where(sql`${table.status} = 'pending_payment'`),
    check('orders_amounts_check', sql`${table.subtotal} >= 0 AND ${table.discount} >= 0 AND ${table.shipping} >= 0 AND ${table.tax} >= 0 AND ${table.total} >= 0`),
  ],
)

/** A line of an order, copied from the catalog at checkout. */
export const orderItems = pgTable(
  'order_items',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    order_id: uuid('order_id').notNull().references(() => orders.id, { onDelete: 'cascade' }),
    variant_id: uuid('variant_id').notNull(),
    /** For "did this customer buy this product" (verified reviews). */
    product_id: uuid('product_id').notNull(),
    sku: text('sku').notNull(),
    product_name: text('product_name').notNull(),
    variant_name: text('variant_name').notNull(),
    quantity: integer('quantity').notNull(),
    unit_price: integer('unit_price').notNull(),
    /** This line's share of the order discount. */
    discount: integer('discount').notNull().default(0),
    tax_rate_bp: integer('tax_rate_bp').notNull().default(0),
    tax: integer('tax').notNull().default(0),
    total: integer('total').notNull(),
  },
  (table) => [index('order_items_order_idx').on(table.order_id), index('order_items_product_idx').on(table.product_id), check('order_items_quantity_check', sql`${table.quantity} > 0`)],
)

/** Every move of an order (and notes): who, when, from what to what. */
export const orderEvents = pgTable(
  'order_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    order_id: uuid('order_id').notNull().references(() => orders.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    from_status: text('from_status'),
    to_status: text('to_status'),
    note: text('note'),
    /** "user:<id>", "service:<name>" or "system". */
    actor: text('actor').notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    index('order_events_order_idx').on(table.order_id, table.created_at),
    // Payments by time, for the sales figures (sales-queries.ts).
    index('order_events_paid_idx').on(table.created_at).where(sql`${table.to_status} = 'paid'`),
  ],
)
