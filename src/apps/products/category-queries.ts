/** Drizzle queries for categories: one statement each. */
import { asc, eq, inArray, sql } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { rowsOf, isUniqueViolation } from '../../core/db/index.js'
import { ConflictError } from '../../core/errors.js'
import { categories, products } from './tables.js'

export type CategoryRow = typeof categories.$inferSelect


/** Parents before children is not needed: the tree is assembled in memory; names sort siblings. */
export async function listCategories(db: Db): Promise<CategoryRow[]> {
  return db.select().from(categories).orderBy(asc(categories.name), asc(categories.id))
}

export async function findCategoryBySlug(db: Db, slug: string): Promise<CategoryRow | undefined> {
  const [row] = await db.select().from(categories).where(eq(categories.slug, slug))
  return row
}

export async function insertCategory(db: Db, values: typeof categories.$inferInsert): Promise<CategoryRow> {
  try {
    const [row] = await db.insert(categories).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('slug_taken', `The slug "${values.slug}" is already used.`)
    throw err
  }
}

export async function updateCategory(db: Db, id: string, patch: Partial<typeof categories.$inferInsert>): Promise<void> {
  try {
    await db.update(categories).set({ ...patch, updated_at: sql`now()` }).where(eq(categories.id, id))
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('slug_taken', `The slug "${patch.slug}" is already used.`)
    throw err
  }
}

export async function hasChildren(db: Db, id: string): Promise<boolean> {
  const [row] = await db.select({ id: categories.id }).from(categories).where(eq(categories.parent_id, id)).limit(1)
  return row !== undefined
}

export async function deleteCategory(db: Db, id: string): Promise<void> {
  await db.delete(categories).where(eq(categories.id, id))
}

/** The category's id and its descendants' ids (recursive, any depth). */
export async function subtreeIds(db: Db, rootId: string): Promise<string[]> {
  const result = await db.execute(sql`
    WITH RECURSIVE subtree AS (
      SELECT id FROM categories WHERE id = ${rootId}
      UNION ALL
      SELECT c.id FROM categories c JOIN subtree s ON c.parent_id = s.id
    )
    SELECT id FROM subtree`)
  return rowsOf<{ id: string }>(result).map((row) => row.id)
}

/** Ids of the products (deleted ones too: their documents must not keep a stale path) in these categories. */
export async function productIdsIn(db: Db, categoryIds: string[]): Promise<string[]> {
  if (categoryIds.length === 0) return []
  return (await db.select({ id: products.id }).from(products).where(inArray(products.category_id, categoryIds))).map((row) => row.id)
}
