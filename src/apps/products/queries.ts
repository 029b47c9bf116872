/** Drizzle queries of the products app (inventory so far): one statement each. */
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm'
import { isUniqueViolation, type Db } from '../../core/db/index.js'
import { AlreadyReservedError } from './errors.js'
import { products, reservations, stockLevels, stockMovements, variants } from './tables.js'

export type VariantRow = typeof variants.$inferSelect
export type StockRow = typeof stockLevels.$inferSelect

/** Variants by SKU, with whether they are on sale (the variant and its product active, not deleted). */
export async function findVariantsBySku(db: Db, skus: string[]): Promise<Array<Pick<VariantRow, 'id' | 'sku'> & { for_sale: boolean }>> {
  if (skus.length === 0) return []
  return db
    .select({ id: variants.id, sku: variants.sku, for_sale: sql<boolean>`${variants.is_active} AND ${products.is_active} AND ${products.deleted_at} IS NULL` })
    .from(variants)
    .innerJoin(products, eq(products.id, variants.product_id))
    .where(inArray(variants.sku, skus))
}

export async function findStock(db: Db, variantId: string): Promise<StockRow | undefined> {
  const [row] = await db.select().from(stockLevels).where(eq(stockLevels.variant_id, variantId))
  return row
}

export async function lockStock(db: Db, variantId: string): Promise<StockRow | undefined> {
  const [row] = await db.select().from(stockLevels).where(eq(stockLevels.variant_id, variantId)).for('update')
  return row
}

/** Creates the stock row of a variant if it has none (a variant starts with nothing on hand). */
export async function ensureStock(db: Db, variantId: string): Promise<void> {
  await db.insert(stockLevels).values({ variant_id: variantId }).onConflictDoNothing()
}

export async function setOnHand(db: Db, variantId: string, onHand: number): Promise<StockRow> {
  const [row] = await db.update(stockLevels).set({ on_hand: onHand, updated_at: sql`now()` }).where(eq(stockLevels.variant_id, variantId)).returning()
  return row!
}

/**
 * Reserves in one conditional statement: it changes the row only when enough is available, so
 * no interleaving of concurrent reservations can take more than there is. Null when short.
 */
export async function reserveStock(db: Db, variantId: string, quantity: number): Promise<StockRow | null> {
  const [row] = await db
    .update(stockLevels)
    .set({ reserved: sql`${stockLevels.reserved} + ${quantity}`, updated_at: sql`now()` })
    .where(and(eq(stockLevels.variant_id, variantId), sql`${stockLevels.on_hand} - ${stockLevels.reserved} >= ${quantity}`))
    .returning()
  return row ?? null
}

export async function availableOf(db: Db, variantId: string): Promise<number> {
  const [row] = await db.select({ available: sql<number>`${stockLevels.on_hand} - ${stockLevels.reserved}` }).from(stockLevels).where(eq(stockLevels.variant_id, variantId))
  return row?.available ?? 0
}

/** Applies deltas to a stock row (release: reserved −q; commit: on_hand −q and reserved −q). */
export async function moveStock(db: Db, variantId: string, deltaOnHand: number, deltaReserved: number): Promise<StockRow> {
  const [row] = await db
    .update(stockLevels)
    .set({ on_hand: sql`${stockLevels.on_hand} + ${deltaOnHand}`, reserved: sql`${stockLevels.reserved} + ${deltaReserved}`, updated_at: sql`now()` })
    .where(eq(stockLevels.variant_id, variantId))
    .returning()
  return row!
}

export async function productIdsOfVariants(db: Db, variantIds: string[]): Promise<string[]> {
  const rows = await db.selectDistinct({ id: variants.product_id }).from(variants).where(inArray(variants.id, variantIds))
  return rows.map((row) => row.id)
}

export async function insertMovement(db: Db, values: typeof stockMovements.$inferInsert): Promise<void> {
  await db.insert(stockMovements).values(values)
}

export async function insertReservation(db: Db, values: typeof reservations.$inferInsert): Promise<void> {
  try {
    await db.insert(reservations).values(values)
  } catch (err) {
    if (isUniqueViolation(err)) throw new AlreadyReservedError(values.reference)
    throw err
  }
}

/** The active reservations of a reference, locked, in variant order (the lock order of reserve). */
export async function lockActiveReservations(db: Db, reference: string) {
  return db
    .select()
    .from(reservations)
    .where(and(eq(reservations.reference, reference), eq(reservations.status, 'active')))
    .orderBy(asc(reservations.variant_id))
    .for('update')
}

export async function setReservationStatus(db: Db, id: string, status: 'released' | 'committed'): Promise<void> {
  await db.update(reservations).set({ status, updated_at: sql`now()` }).where(eq(reservations.id, id))
}

export interface VariantForSaleRow {
  variant_id: string
  product_id: string
  sku: string
  product_name: string
  product_slug: string
  variant_name: string
  price: number
  currency: string
  available: number
  for_sale: boolean
}

/** What carts and checkout need of variants, found by id or by SKU, with live availability. One statement. */
export async function variantsForSale(db: Db, by: { ids: string[] } | { skus: string[] }): Promise<VariantForSaleRow[]> {
  const keys = 'ids' in by ? by.ids : by.skus
  if (keys.length === 0) return []
  return db
    .select({
      variant_id: variants.id,
      product_id: products.id,
      sku: variants.sku,
      product_name: products.name,
      product_slug: products.slug,
      variant_name: variants.name,
      price: variants.price,
      currency: variants.currency,
      available: sql<number>`coalesce(${stockLevels.on_hand} - ${stockLevels.reserved}, 0)`,
      for_sale: sql<boolean>`${variants.is_active} AND ${products.is_active} AND ${products.deleted_at} IS NULL`,
    })
    .from(variants)
    .innerJoin(products, eq(products.id, variants.product_id))
    .leftJoin(stockLevels, eq(stockLevels.variant_id, variants.id))
    .where('ids' in by ? inArray(variants.id, keys) : inArray(variants.sku, keys))
}

/** Variants for sale with `threshold` or fewer units available (never stocked: none), fewest first. */
export async function lowStock(db: Db, threshold: number, limit: number) {
  const available = sql<number>`coalesce(${stockLevels.on_hand} - ${stockLevels.reserved}, 0)`
  return db
    .select({ product_id: products.id, product_name: products.name, slug: products.slug, variant_id: variants.id, sku: variants.sku, variant_name: variants.name, on_hand: sql<number>`coalesce(${stockLevels.on_hand}, 0)`, available })
    .from(variants)
    .innerJoin(products, eq(products.id, variants.product_id))
    .leftJoin(stockLevels, eq(stockLevels.variant_id, variants.id))
    .where(and(eq(variants.is_active, true), eq(products.is_active, true), isNull(products.deleted_at), sql`${available} <= ${threshold}`))
    .orderBy(available, asc(variants.sku))
    .limit(limit)
}

/** Names and slugs by id, deleted products included (figures outlive them). */
export async function findProductNames(db: Db, ids: string[]): Promise<Array<{ id: string; slug: string; name: string }>> {
  if (ids.length === 0) return []
  return db.select({ id: products.id, slug: products.slug, name: products.name }).from(products).where(inArray(products.id, ids))
}

export async function findProductIdsBySlug(db: Db, slugs: string[]): Promise<Array<{ id: string; slug: string }>> {
  if (slugs.length === 0) return []
  return db.select({ id: products.id, slug: products.slug }).from(products).where(inArray(products.slug, slugs))
}
