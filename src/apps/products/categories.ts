/**
 * Categories: a tree of any depth. Tree changes (create under a parent, move, delete) take one
 * transaction-scoped advisory lock, so two concurrent moves cannot build a cycle between them.
 */
import { sql } from 'drizzle-orm'
import type { Ctx } from '../../core/context.js'
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors.js'
import type { CatalogCache } from './catalog-cache.js'
import * as q from './category-queries.js'
import type { CategoryRow } from './category-queries.js'
import { refreshDerived } from './derived-queries.js'

export interface CategoryNode {
  id: string
  name: string
  slug: string
  /** Slug of the parent, or null at the top. */
  parent: string | null
  children: CategoryNode[]
}

const TREE_LOCK = 724_311_101

export function createCategories(deps: { cache: CatalogCache }) {
  const lockTree = (tx: Ctx) => tx.db.execute(sql`SELECT pg_advisory_xact_lock(${TREE_LOCK})`)

  /**
   * A category's name or place changed: its products' search documents hold the category path,
   * so they are refreshed in the same transaction and announced to the search index.
   */
  const productsMoved = async (tx: Ctx, categoryIds: string[]) => {
    const productIds = await q.productIdsIn(tx.db, categoryIds)
    if (productIds.length === 0) return
    await refreshDerived(tx.db, { productIds })
    await tx.events.publish('catalog.products_changed', { product_ids: productIds })
  }

  const bySlug = async (ctx: Ctx, slug: string): Promise<CategoryRow> => {
    const row = await q.findCategoryBySlug(ctx.db, slug)
    if (!row) throw new NotFoundError('Category', slug)
    return row
  }

  const parentId = async (ctx: Ctx, parent: string | null | undefined): Promise<string | null | undefined> => {
    if (parent === undefined || parent === null) return parent
    const row = await q.findCategoryBySlug(ctx.db, parent)
    if (!row) throw new ValidationError('The parent category does not exist.', { parent: [`No category "${parent}".`] })
    return row.id
  }

  return {
    /** The whole tree, top-level categories first, children by name. One query. */
    async tree(ctx: Ctx): Promise<CategoryNode[]> {
      return buildTree(await q.listCategories(ctx.db))
    },

    async get(ctx: Ctx, slug: string): Promise<CategoryNode> {
      const rows = await q.listCategories(ctx.db)
      const node = findNode(buildTree(rows), slug)
      if (!node) throw new NotFoundError('Category', slug)
      return node
    },

    async create(ctx: Ctx, input: { name: string; slug?: string; parent?: string | null }): Promise<CategoryNode> {
      const node = await ctx.tx(async (tx) => {
        await lockTree(tx)
        const parent_id = (await parentId(tx, input.parent)) ?? null
        const row = await q.insertCategory(tx.db, { name: input.name.trim(), slug: input.slug ?? slugify(input.name), parent_id })
        return { ...toNode(row, input.parent ?? null), children: [] }
      })
      await deps.cache.changed(ctx)
      return node
    },

    /** Renames or moves a category; a move under itself or one of its descendants is a 409. */
    async update(ctx: Ctx, slug: string, input: { name?: string; slug?: string; parent?: string | null }): Promise<CategoryNode> {
      await ctx.tx(async (tx) => {
        await lockTree(tx)
        const category = await bySlug(tx, slug)
        const parent_id = await parentId(tx, input.parent)
        if (parent_id && (parent_id === category.id || (await isDescendant(tx, parent_id, category.id)))) {
          throw new ConflictError('category_cycle', 'A category cannot move under itself or one of its descendants.')
        }
        await q.updateCategory(tx.db, category.id, {
          ...(input.name !== undefined ? { name: input.name.trim() } : {}),
          ...(input.slug !== undefined ? { slug: input.slug } : {}),
          ...(parent_id !== undefined ? { parent_id } : {}),
        })
        if (input.name !== undefined || parent_id !== undefined) await productsMoved(tx, await q.subtreeIds(tx.db, category.id))
      })
      await deps.cache.changed(ctx)
      return this.get(ctx, input.slug ?? slug)
    },

    /** Deletes a category without subcategories; its products keep existing, uncategorised. */
    async remove(ctx: Ctx, slug: string): Promise<void> {
      await ctx.tx(async (tx) => {
        await lockTree(tx)
        const category = await bySlug(tx, slug)
        if (await q.hasChildren(tx.db, category.id)) throw new ConflictError('category_has_children', 'Move or delete its subcategories first.')
        const productIds = await q.productIdsIn(tx.db, [category.id])
        await q.deleteCategory(tx.db, category.id)
        if (productIds.length > 0) {
          await refreshDerived(tx.db, { productIds })
          await tx.events.publish('catalog.products_changed', { product_ids: productIds })
        }
      })
      await deps.cache.changed(ctx)
    },

    /** The category and every category below it (for "category includes descendants" filters). */
    async subtreeIds(ctx: Ctx, slug: string): Promise<string[]> {
      const root = await bySlug(ctx, slug)
      return q.subtreeIds(ctx.db, root.id)
    },
  }
}

export type Categories = ReturnType<typeof createCategories>

async function isDescendant(ctx: Ctx, candidate: string, ancestor: string): Promise<boolean> {
  return (await q.subtreeIds(ctx.db, ancestor)).includes(candidate)
}

export function slugify(name: string): string {
  return (
    name
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, 80)
      .replace(/^-+|-+$/g, '') || 'category'
  )
}

function toNode(row: CategoryRow, parentSlug: string | null): Omit<CategoryNode, 'children'> {
  return { id: row.id, name: row.name, slug: row.slug, parent: parentSlug }
}

function buildTree(rows: CategoryRow[]): CategoryNode[] {
  const slugOf = new Map(rows.map((row) => [row.id, row.slug]))
  const nodes = new Map(rows.map((row) => [row.id, { ...toNode(row, row.parent_id ? (slugOf.get(row.parent_id) ?? null) : null), children: [] as CategoryNode[] }]))
  const roots: CategoryNode[] = []
  for (const row of rows) {
    const node = nodes.get(row.id)!
    const parent = row.parent_id ? nodes.get(row.parent_id) : undefined
    if (parent) parent.children.push(node)
    else roots.push(node)
  }
  return roots
}

function findNode(nodes: CategoryNode[], slug: string): CategoryNode | undefined {
  for (const node of nodes) {
    if (node.slug === slug) return node
    const found = findNode(node.children, slug)
    if (found) return found
  }
  return undefined
}

