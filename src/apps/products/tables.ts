import { sql } from 'drizzle-orm'
import { type AnyPgColumn, boolean, check, customType, index, integer, jsonb, numeric, pgTable, smallint, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' })

export const categories = pgTable(
  'categories',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    slug: text('slug').notNull().unique(),
    parent_id: uuid('parent_id').references((): AnyPgColumn => categories.id, { onDelete: 'restrict' }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('categories_parent_idx').on(table.parent_id)],
)

export const products = pgTable(
  'products',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    slug: text('slug').notNull().unique(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    category_id: uuid('category_id').references(() => categories.id, { onDelete: 'set null' }),
    /** e.g. { "material": "cotton" }: what all variants share. */
    attributes: jsonb('attributes').$type<Record<string, string>>().notNull().default({}),
    is_active: boolean('is_active').notNull().default(true),
    /** Soft delete: the row stays for orders and reviews that point at it. */
    deleted_at: timestamp('deleted_at', { withTimezone: true }),
    rating: numeric('rating', { precision: 3, scale: 2 }),
    review_count: integer('review_count').notNull().default(0),
    /** Derived: the lowest price of the active variants (null without any), for lists and filters. */
    price: integer('price'),
    /** Derived: name (A) > category path (B) > attributes (C) > description (D), english stems. */
    search_vector: tsvector('search_vector'),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => {
    // Public lists read only visible products: partial indexes over exactly those rows serve each
    // ordering's keyset walk, and counts come from index-only scans.
    const visible = sql`${table.deleted_at} IS NULL AND ${table.is_active} AND ${table.price} IS NOT NULL`
    return [
      index('products_category_idx').on(table.category_id),
      index('products_list_created_idx').on(table.created_at, table.id).where(visible),
      index('products_list_price_idx').on(table.price, table.id).where(visible),
      index('products_list_name_idx').on(table.name, table.id).where(visible),
      index('products_list_rating_idx').on(sql`coalesce(${table.rating}, 0)`, table.id).where(visible),
      index('products_list_category_idx').on(table.category_id, table.price).where(visible),
      index('products_search_idx').using('gin', table.search_vector),
    ]
  },
)

export const variants = pgTable(
  'product_variants',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    product_id: uuid('product_id').notNull().references(() => products.id, { onDelete: 'cascade' }),
    sku: text('sku').notNull(),
    name: text('name').notNull().default(''),
    /** e.g. { "colour": "red", "size": "M" }. */
    attributes: jsonb('attributes').$type<Record<string, string>>().notNull().default({}),
    /** Minor units of the store currency. */
    price: integer('price').notNull(),
    compare_at_price: integer('compare_at_price'),
    currency: text('currency').notNull(),
    position: integer('position').notNull().default(0),
    /** A variant dropped from its product stays (orders and reservations point at it) but is not sold. */
    is_active: boolean('is_active').notNull().default(true),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    check('product_variants_compare_at_check', sql`${table.compare_at_price} IS NULL OR ${table.compare_at_price} >= 0`),
    uniqueIndex('product_variants_sku_idx').on(table.sku),
    index('product_variants_product_idx').on(table.product_id, table.position),
    check('product_variants_price_check', sql`${table.price} >= 0`),
  ],
)

/**
 * Stock of a variant. available = on_hand - reserved. The checks are the last line of defence:
 * the reservation functions never let them fail, but a bug cannot oversell either.
 */
export const stockLevels = pgTable(
  'stock_levels',
  {
    variant_id: uuid('variant_id').primaryKey().references(() => variants.id, { onDelete: 'cascade' }),
    on_hand: integer('on_hand').notNull().default(0),
    reserved: integer('reserved').notNull().default(0),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    check('stock_levels_on_hand_check', sql`${table.on_hand} >= 0`),
    check('stock_levels_reserved_check', sql`${table.reserved} >= 0 AND ${table.reserved} <= ${table.on_hand}`),
  ],
)

/** Every stock change: what moved, why, who did it and for what (an order, a staff correction). */
export const stockMovements = pgTable(
  'stock_movements',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    variant_id: uuid('variant_id').notNull().references(() => variants.id, { onDelete: 'cascade' }),
    delta_on_hand: integer('delta_on_hand').notNull().default(0),
    delta_reserved: integer('delta_reserved').notNull().default(0),
    reason: text('reason').notNull(),
    reference: text('reference'),
    /** "user:<id>", "service:<name>" or "system". */
    actor: text('actor').notNull(),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('stock_movements_variant_idx').on(table.variant_id, table.created_at)],
)

export const reservationStatuses = ['active', 'released', 'committed'] as const

/** Stock held for a reference (an order) until it is released or committed. */
export const reservations = pgTable(
  'stock_reservations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    reference: text('reference').notNull(),
    variant_id: uuid('variant_id').notNull().references(() => variants.id, { onDelete: 'restrict' }),
    quantity: integer('quantity').notNull(),
    status: text('status', { enum: reservationStatuses }).notNull().default('active'),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    // One active hold per reference and variant; after a release the same reference may hold again
    // (a payment arriving for a cancelled order re-reserves its goods).
    uniqueIndex('stock_reservations_active_idx').on(table.reference, table.variant_id).where(sql`${table.status} = 'active'`),
    check('stock_reservations_quantity_check', sql`${table.quantity} > 0`),
  ],
)

/** An uploaded product image; the URL is built from `key` at read time (local, S3 or CDN). */
export const productImages = pgTable(
  'product_images',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    product_id: uuid('product_id').notNull().references(() => products.id, { onDelete: 'cascade' }),
    /** Storage key, e.g. "products/<product id>/<image id>.webp". */
    key: text('key').notNull(),
    content_type: text('content_type').notNull(),
    size: integer('size').notNull(),
    width: integer('width'),
    height: integer('height'),
    alt: text('alt').notNull().default(''),
    position: integer('position').notNull().default(0),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('product_images_product_idx').on(table.product_id, table.position)],
)

/** One review per user per product; products.rating and review_count follow them. */
export const reviews = pgTable(
  'product_reviews',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    product_id: uuid('product_id').notNull().references(() => products.id, { onDelete: 'cascade' }),
    user_id: uuid('user_id').notNull(),
    rating: smallint('rating').notNull(),
    title: text('title').notNull().default(''),
    body: text('body').notNull().default(''),
    verified_purchase: boolean('verified_purchase').notNull().default(false),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('product_reviews_product_user_idx').on(table.product_id, table.user_id),
    index('product_reviews_product_created_idx').on(table.product_id, table.created_at, table.id),
    check('product_reviews_rating_check', sql`${table.rating} BETWEEN 1 AND 5`),
  ],
)

/** Words of product names, categories and attributes: the vocabulary typo correction picks from. */
export const searchWords = pgTable(
  'search_words',
  { word: text('word').primaryKey() },
  (table) => [index('search_words_trgm_idx').using('gin', sql`${table.word} gin_trgm_ops`)],
)
