/** Drizzle queries of product images: one statement each. */
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { productImages, products } from './tables.js'

export type ImageRow = typeof productImages.$inferSelect
export type NewImage = Omit<typeof productImages.$inferInsert, 'position' | 'created_at'> & { id: string }

/** The id of a product that is not soft-deleted (inactive drafts count: staff prepare them). */
export async function findLiveProductId(db: Db, slug: string): Promise<string | undefined> {
  const [row] = await db.select({ id: products.id }).from(products).where(and(eq(products.slug, slug), isNull(products.deleted_at)))
  return row?.id
}

/**
 * Locks a live product's row for the rest of the transaction, so concurrent uploads to the same
 * product take positions one after the other, and a product deleted meanwhile is seen.
 */
export async function lockLiveProduct(db: Db, id: string): Promise<boolean> {
  const rows = await db.select({ id: products.id }).from(products).where(and(eq(products.id, id), isNull(products.deleted_at))).for('update')
  return rows.length > 0
}

/** Inserts the image after the product's last one. */
export async function insertImage(db: Db, image: NewImage): Promise<ImageRow> {
  const next = sql<number>`(SELECT coalesce(max(${productImages.position}) + 1, 0) FROM ${productImages} WHERE ${productImages.product_id} = ${image.product_id})`
  const [row] = await db.insert(productImages).values({ ...image, position: next }).returning()
  return row!
}

/** Deletes an image of a live product by the product's slug; answers the deleted row. */
export async function deleteImage(db: Db, slug: string, imageId: string): Promise<ImageRow | undefined> {
  const owner = db.select({ id: products.id }).from(products).where(and(eq(products.slug, slug), isNull(products.deleted_at)))
  const [row] = await db
    .delete(productImages)
    .where(and(eq(productImages.id, imageId), inArray(productImages.product_id, owner)))
    .returning()
  return row
}

/** The images of several products in one statement, each product's in display order. */
export async function findImagesOf(db: Db, productIds: string[]): Promise<ImageRow[]> {
  // Guard against running an invalid `IN ()` when there is nothing to look up.
  if (productIds.length === 0) return []
  return db
    .select()
    .from(productImages)
    .where(inArray(productImages.product_id, productIds))
    .orderBy(asc(productImages.product_id), asc(productImages.position), asc(productImages.created_at), asc(productImages.id))
}
