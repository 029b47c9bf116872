import { sql } from 'drizzle-orm'
import { boolean, check, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { variants } from '../products/tables.js'

export const cartStatuses = ['open', 'checked_out', 'merged', 'expired'] as const

/**
 * A shopping cart: a guest's (found by the hash of its X-Cart-Token) or a user's (one open cart
 * each). Prices are never stored: they are read from the catalog whenever the cart is shown.
 */
export const carts = pgTable(
  'carts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** sha256 of the guest token; the token itself is shown once, when the cart is created. */
    token_hash: text('token_hash').unique(),
    user_id: uuid('user_id'),
    status: text('status', { enum: cartStatuses }).notNull().default('open'),
    coupon_code: text('coupon_code'),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /** Last activity: carts idle for CART_EXPIRY_DAYS expire. */
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('carts_open_user_idx').on(table.user_id).where(sql`${table.status} = 'open' AND ${table.user_id} IS NOT NULL`),
    index('carts_open_activity_idx').on(table.updated_at).where(sql`${table.status} = 'open'`),
  ],
)

export const cartItems = pgTable(
  'cart_items',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    cart_id: uuid('cart_id').notNull().references(() => carts.id, { onDelete: 'cascade' }),
    variant_id: uuid('variant_id').notNull().references(() => variants.id, { onDelete: 'cascade' }),
    quantity: integer('quantity').notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [uniqueIndex('cart_items_cart_variant_idx').on(table.cart_id, table.variant_id), check('cart_items_quantity_check', sql`${table.quantity} > 0`)],
)

export const couponKinds = ['percent', 'fixed'] as const

/** A discount code: a percentage or a fixed amount off the subtotal, within limits. */
export const coupons = pgTable(
  'coupons',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Stored upper case; codes are matched case-insensitively. */
    code: text('code').notNull().unique(),
    kind: text('kind', { enum: couponKinds }).notNull(),
    /** Percent (1–100) for `percent`, minor units for `fixed`. */
    value: integer('value').notNull(),
    min_subtotal: integer('min_subtotal').notNull().default(0),
    starts_at: timestamp('starts_at', { withTimezone: true }),
    ends_at: timestamp('ends_at', { withTimezone: true }),
    usage_limit: integer('usage_limit'),
    per_customer_limit: integer('per_customer_limit'),
    times_used: integer('times_used').notNull().default(0),
    is_active: boolean('is_active').notNull().default(true),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    check('coupons_value_check', sql`${table.value} > 0 AND (${table.kind} <> 'percent' OR ${table.value} <= 100)`),
    check('coupons_usage_check', sql`${table.usage_limit} IS NULL OR ${table.times_used} <= ${table.usage_limit}`),
  ],
)

/** One use of a coupon by an order; `customer` is "user:<id>" or "email:<address>" for per-customer limits. */
export const couponRedemptions = pgTable(
  'coupon_redemptions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    coupon_id: uuid('coupon_id').notNull().references(() => coupons.id, { onDelete: 'restrict' }),
    order_id: uuid('order_id').notNull(),
    customer: text('customer').notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [uniqueIndex('coupon_redemptions_order_idx').on(table.coupon_id, table.order_id), index('coupon_redemptions_customer_idx').on(table.coupon_id, table.customer)],
)

/** A way to ship, with a flat rate per destination country ('*' for everywhere else). */
export const shippingMethods = pgTable('shipping_methods', {
  id: uuid('id').primaryKey().defaultRandom(),
  code: text('code').notNull().unique(),
  name: text('name').notNull(),
  estimated_days_min: integer('estimated_days_min').notNull(),
  estimated_days_max: integer('estimated_days_max').notNull(),
  is_active: boolean('is_active').notNull().default(true),
})

export const shippingRates = pgTable(
  'shipping_rates',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    method_id: uuid('method_id').notNull().references(() => shippingMethods.id, { onDelete: 'cascade' }),
    /** ISO 3166-1 alpha-2, or '*' for every country without a rate of its own. */
    country: text('country').notNull(),
    price: integer('price').notNull(),
    /** Free when the discounted subtotal reaches this amount. */
    free_over: integer('free_over'),
  },
  (table) => [uniqueIndex('shipping_rates_method_country_idx').on(table.method_id, table.country), check('shipping_rates_price_check', sql`${table.price} >= 0`)],
)

/** Sales tax or VAT by destination: a country's rate, or a region's (a state, a province) where set. */
export const taxRates = pgTable(
  'tax_rates',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    country: text('country').notNull(),
    /** Empty for the whole country. */
    region: text('region').notNull().default(''),
    name: text('name').notNull(),
    /** Basis points: 2000 = 20 %. */
    rate_bp: integer('rate_bp').notNull(),
  },
  (table) => [uniqueIndex('tax_rates_country_region_idx').on(table.country, table.region), check('tax_rates_rate_check', sql`${table.rate_bp} >= 0 AND ${table.rate_bp} <= 10000`)],
)
