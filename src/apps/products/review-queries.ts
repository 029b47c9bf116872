/** Drizzle queries for product reviews and the rating they keep on products: one statement each. */
import { and, desc, eq, getTableColumns, isNull, sql } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { isUniqueViolation } from '../../core/db/index.js'
import { ConflictError } from '../../core/errors.js'
import { products, reviews } from './tables.js'

export type ReviewRow = typeof reviews.$inferSelect
/** A listed review with its exact position (created_at to the microsecond, as text) for the cursor. */
export type PositionedReviewRow = ReviewRow & { position: string }

/** Keyset position: reviews strictly older than this (created_at, id), newest first. */
export interface ReviewPosition {
  created_at: string
  id: string
}


// JavaScript dates keep milliseconds, the column microseconds: the cursor carries the exact text,
// or reviews created within the same millisecond would be skipped or repeated across pages.
const exactCreatedAt = sql<string>`to_char(${reviews.created_at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

const listed = and(eq(products.is_active, true), isNull(products.deleted_at))

/** A product that is on sale (active, not deleted): the only ones whose reviews can be read or written. */
export async function findListedProduct(db: Db, slug: string): Promise<{ id: string; review_count: number } | undefined> {
  const [row] = await db.select({ id: products.id, review_count: products.review_count }).from(products).where(and(eq(products.slug, slug), listed))
  return row
}

/**
 * The same, locked FOR UPDATE: every change to a product's reviews takes this lock first, so
 * changes to one product serialize and each recomputes the aggregate over committed rows only.
 */
export async function lockListedProduct(db: Db, slug: string): Promise<{ id: string } | undefined> {
  const [row] = await db.select({ id: products.id }).from(products).where(and(eq(products.slug, slug), listed)).for('update')
  return row
}

export async function listReviews(db: Db, productId: string, page: { limit: number; after?: ReviewPosition }): Promise<PositionedReviewRow[]> {
  const after = page.after ? sql`(${reviews.created_at}, ${reviews.id}) < (${page.after.created_at}::timestamptz, ${page.after.id}::uuid)` : undefined
  return db
    .select({ ...getTableColumns(reviews), position: exactCreatedAt })
    .from(reviews)
    .where(and(eq(reviews.product_id, productId), after))
    .orderBy(desc(reviews.created_at), desc(reviews.id))
    .limit(page.limit)
}

export async function findReview(db: Db, productId: string, id: string): Promise<ReviewRow | undefined> {
  const [row] = await db.select().from(reviews).where(and(eq(reviews.product_id, productId), eq(reviews.id, id)))
  return row
}

export async function findReviewByAuthor(db: Db, productId: string, userId: string): Promise<ReviewRow | undefined> {
  const [row] = await db.select().from(reviews).where(and(eq(reviews.product_id, productId), eq(reviews.user_id, userId)))
  return row
}

/**
 * A new review; a second one by the same user is a 409, decided by the unique index (so two
 * concurrent first reviews cannot both get in). The time is taken after the product lock
 * (clock_timestamp, not the transaction's start), so reviews of one product are created in commit
 * order and a reader paging by created_at never finds one appearing behind its cursor.
 */
export async function insertReview(db: Db, values: Pick<typeof reviews.$inferInsert, 'product_id' | 'user_id' | 'rating' | 'title' | 'body' | 'verified_purchase'>): Promise<ReviewRow> {
  try {
    const [row] = await db
      .insert(reviews)
      .values({ ...values, created_at: sql`clock_timestamp()`, updated_at: sql`clock_timestamp()` })
      .returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('review_exists', 'You have already reviewed this product: edit your review instead.', { cause: err })
    throw err
  }
}

export async function updateReviewByAuthor(
  db: Db,
  productId: string,
  userId: string,
  patch: Partial<Pick<typeof reviews.$inferInsert, 'rating' | 'title' | 'body' | 'verified_purchase'>>,
): Promise<ReviewRow | undefined> {
  const [row] = await db
    .update(reviews)
    .set({ ...patch, updated_at: sql`clock_timestamp()` })
    .where(and(eq(reviews.product_id, productId), eq(reviews.user_id, userId)))
    .returning()
  return row
}

/** Deletes a review; answers whether there was one. */
export async function deleteReview(db: Db, productId: string, id: string): Promise<boolean> {
  const rows = await db.delete(reviews).where(and(eq(reviews.product_id, productId), eq(reviews.id, id))).returning({ id: reviews.id })
  return rows.length > 0
}

/**
 * Recomputes the product's rating (average, two decimals; null without reviews) and review_count
 * from its reviews in one statement. Run under the product lock, after the change, in the same
 * transaction: the aggregate always matches the committed rows, whatever ran concurrently.
 */
export async function refreshRating(db: Db, productId: string): Promise<void> {
  await db.execute(sql`
    UPDATE products p SET rating = s.rating, review_count = s.review_count
    FROM (SELECT round(avg(r.rating), 2) AS rating, count(*)::int AS review_count FROM product_reviews r WHERE r.product_id = ${productId}) s
    WHERE p.id = ${productId}`)
}
