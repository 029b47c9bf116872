/**
 * Queries of products and variants. A page of products costs a fixed number of statements
 * whatever its size: the page itself, its variants, its images and (uncached) its count.
 */
import { and, asc, eq, inArray, isNull, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { isUniqueViolation, preparedFor, rowsOf } from '../../core/db/index.js'
import { ConflictError } from '../../core/errors.js'
import { toArray } from './derived-queries.js'
import { products, productImages, stockLevels, variants } from './tables.js'

export type ProductRow = typeof products.$inferSelect
export type VariantRow = typeof variants.$inferSelect


/** Filters of the public list and search; categories already include their descendants. */
export interface ListFilters {
  categoryIds?: string[]
  minPrice?: number
  maxPrice?: number
  inStock?: boolean
}

/** Query words: every group must match, any term within a group will do. */
export type TermGroups = string[][]

export type SortField = 'created_at' | 'price' | 'name' | 'rating'

/**
 * Sort expressions, their cursor values as text and the types those are cast back to. Timestamps
 * are written in one fixed UTC form (not the session's DateStyle), so a cursor can be checked
 * before it reaches the database (see catalog.ts).
 */
const SORT: Record<SortField, { expr: SQL; text: SQL; type: SQL }> = {
  created_at: { expr: sql`p.created_at`, text: sql`to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, type: sql`timestamptz` },
  price: { expr: sql`p.price`, text: sql`p.price::text`, type: sql`integer` },
  name: { expr: sql`p.name`, text: sql`p.name`, type: sql`text` },
  rating: { expr: sql`coalesce(p.rating, 0)`, text: sql`coalesce(p.rating, 0)::text`, type: sql`numeric` },
}

/** A tsquery for the term groups (english stems; single words also match as prefixes). */
export function tsQuery(groups: TermGroups): SQL {
  const group = (terms: string[]) =>
    sql.join(
      terms.map((term) => (/^[\p{L}\p{N}]+$/u.test(term) ? sql`to_tsquery('english', ${`${term}:*`})` : sql`plainto_tsquery('english', ${term})`)),
      sql` || `,
    )
  return sql`(${sql.join(
    groups.map((terms) => sql`(${group(terms)})`),
    sql` && `,
  )})`
}

/** The conditions every public read applies: visible products matching the filters and words. */
export function listConditions(filters: ListFilters, groups?: TermGroups): SQL {
  const conditions: SQL[] = [sql`p.deleted_at IS NULL`, sql`p.is_active`, sql`p.price IS NOT NULL`]
  if (filters.categoryIds) conditions.push(sql`p.category_id = ANY(${toArray(filters.categoryIds)}::uuid[])`)
  if (filters.minPrice !== undefined) conditions.push(sql`p.price >= ${filters.minPrice}`)
  if (filters.maxPrice !== undefined) conditions.push(sql`p.price <= ${filters.maxPrice}`)
  if (filters.inStock !== undefined) {
    const available = sql`EXISTS (SELECT 1 FROM product_variants v JOIN stock_levels s ON s.variant_id = v.id WHERE v.product_id = p.id AND v.is_active AND s.on_hand > s.reserved)`
    conditions.push(filters.inStock ? available : sql`NOT ${available}`)
  }
  if (groups && groups.length > 0) conditions.push(sql`p.search_vector @@ ${tsQuery(groups)}`)
  return sql.join(conditions, sql` AND `)
}

export interface PageRow extends ProductRow {
  sort_value: string
  category_slug: string | null
  category_name: string | null
}

/**
 * One keyset page: rows after (or, backwards, before) the cursor's (value, id) in the ordering,
 * `limit + 1` of them so the caller knows whether another page follows.
 */
export async function productPage(
  db: Db,
  options: { filters: ListFilters; groups?: TermGroups; sort: SortField; descending: boolean; after?: { value: string; id: string }; backwards: boolean; limit: number },
): Promise<PageRow[]> {
  const { expr, text, type } = SORT[options.sort]
  // Walking backwards flips the order; the caller reverses the rows again.
  const descending = options.descending !== options.backwards
  const direction = descending ? sql`DESC` : sql`ASC`
  const keyset = options.after
    ? descending
      ? sql`AND (${expr}, p.id) < (${options.after.value}::${type}, ${options.after.id}::uuid)`
      : sql`AND (${expr}, p.id) > (${options.after.value}::${type}, ${options.after.id}::uuid)`
    : sql``
  const result = await db.execute(sql`
    SELECT p.*, ${text} AS sort_value, c.slug AS category_slug, c.name AS category_name
    FROM products p LEFT JOIN categories c ON c.id = p.category_id
    WHERE ${listConditions(options.filters, options.groups)} ${keyset}
    ORDER BY ${expr} ${direction}, p.id ${direction}
    LIMIT ${options.limit + 1}`)
  return rowsOf<PageRow>(result)
}

export async function countProducts(db: Db, filters: ListFilters, groups?: TermGroups): Promise<number> {
  const result = await db.execute(sql`SELECT count(*)::int AS count FROM products p WHERE ${listConditions(filters, groups)}`)
  return rowsOf<{ count: number }>(result)[0]!.count
}

/** Products by id with their category, in no particular order (hydrating search hits). */
export async function productsByIds(db: Db, ids: string[]): Promise<PageRow[]> {
  if (ids.length === 0) return []
  const result = await db.execute(sql`
    SELECT p.*, '' AS sort_value, c.slug AS category_slug, c.name AS category_name
    FROM products p LEFT JOIN categories c ON c.id = p.category_id
    WHERE p.id = ANY(${toArray(ids)}::uuid[]) AND p.deleted_at IS NULL AND p.is_active`)
  return rowsOf<PageRow>(result)
}

export async function findProduct(db: Db, slug: string): Promise<PageRow | undefined> {
  const result = await db.execute(sql`
    SELECT p.*, '' AS sort_value, c.slug AS category_slug, c.name AS category_name
    FROM products p LEFT JOIN categories c ON c.id = p.category_id
    WHERE p.slug = ${slug} AND p.deleted_at IS NULL`)
  return rowsOf<PageRow>(result)[0]
}

export async function lockProduct(db: Db, slug: string): Promise<ProductRow | undefined> {
  const [row] = await db.select().from(products).where(and(eq(products.slug, slug), isNull(products.deleted_at))).for('update')
  return row
}

/** Variants of these products (active ones unless `all`), by product and position. */
export async function variantsOf(db: Db, productIds: string[], options: { all?: boolean } = {}): Promise<VariantRow[]> {
  if (productIds.length === 0) return []
  const conditions = [inArray(variants.product_id, productIds)]
  if (!options.all) conditions.push(eq(variants.is_active, true))
  return db
    .select()
    .from(variants)
    .where(and(...conditions))
    .orderBy(asc(variants.product_id), asc(variants.position), asc(variants.sku))
}

/** Every product read runs this one (stock is never cached): built once, prepared per connection. */
const preparedStock = new WeakMap<Db, ReturnType<typeof prepareStock>>()
const prepareStock = (db: Db) =>
  db
    .select({ id: stockLevels.variant_id, available: sql<number>`${stockLevels.on_hand} - ${stockLevels.reserved}` })
    .from(stockLevels)
    .where(sql`${stockLevels.variant_id} = ANY(${sql.placeholder('ids')}::uuid[])`)
    .prepare('products_available_stock')

/**
 * Available stock (on hand − reserved) per variant id, for ids given as an array literal
 * ("{id,id}"); variants without a stock row have none.
 */
export async function availableStock(db: Db, variantIdsLiteral: string): Promise<Map<string, number>> {
  if (variantIdsLiteral === '{}') return new Map()
  const rows = await preparedFor(preparedStock, db, prepareStock).execute({ ids: variantIdsLiteral })
  return new Map(rows.map((row) => [row.id, row.available]))
}

export async function imagesOf(db: Db, productIds: string[]) {
  if (productIds.length === 0) return []
  return db.select().from(productImages).where(inArray(productImages.product_id, productIds)).orderBy(asc(productImages.product_id), asc(productImages.position), asc(productImages.created_at))
}

export async function insertProduct(db: Db, values: typeof products.$inferInsert): Promise<ProductRow> {
  try {
    const [row] = await db.insert(products).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('slug_taken', `The slug "${values.slug}" is already used.`)
    throw err
  }
}

export async function updateProduct(db: Db, id: string, patch: Partial<typeof products.$inferInsert>): Promise<void> {
  try {
    await db.update(products).set({ ...patch, updated_at: sql`now()` }).where(eq(products.id, id))
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('slug_taken', `The slug "${patch.slug}" is already used.`)
    throw err
  }
}

export async function insertVariant(db: Db, values: typeof variants.$inferInsert): Promise<VariantRow> {
  try {
    const [row] = await db.insert(variants).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('sku_taken', `The SKU "${values.sku}" is already used.`)
    throw err
  }
}

export async function updateVariant(db: Db, id: string, patch: Partial<typeof variants.$inferInsert>): Promise<void> {
  await db.update(variants).set({ ...patch, updated_at: sql`now()` }).where(eq(variants.id, id))
}

/** Skus taken by other products (a SKU names one variant in the whole shop). */
export async function skusOfOtherProducts(db: Db, productId: string | null, skus: string[]): Promise<string[]> {
  if (skus.length === 0) return []
  const rows = await db.select({ sku: variants.sku, product_id: variants.product_id }).from(variants).where(inArray(variants.sku, skus))
  return rows.filter((row) => row.product_id !== productId).map((row) => row.sku)
}
