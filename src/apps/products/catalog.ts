/**
 * The catalog: products with their variants, staff writes and public reads.
 *
 * Reads are cached (see catalog-cache.ts) without their stock: a page's availability is read
 * live in one statement on every request, so checkouts never invalidate the cache and a shopper
 * never sees stock that is gone. Every write refreshes the product's derived columns (price,
 * search document) in its transaction and publishes `catalog.products_changed`.
 */
import { randomUUID } from 'node:crypto'
import type { Ctx } from '../../core/context.js'
import { NotFoundError, ValidationError } from '../../core/errors.js'
import { decodeCursor, encodeCursor } from '../../core/http/pagination.js'
import type { CatalogCache, Generation } from './catalog-cache.js'
import * as q from './catalog-queries.js'
import { isKeysetCursor } from './list-cursor.js'
import { fillStock, renderProducts, type RenderedProducts } from './rendered.js'
import type { ListFilters, PageRow, SortField, TermGroups, VariantRow } from './catalog-queries.js'
import { findCategoryBySlug, listCategories, subtreeIds } from './category-queries.js'
import * as search from './search-queries.js'
import type { Correction } from './search-queries.js'
import { toDocuments, type SearchDocumentDto } from './search-documents.js'
import { refreshDerived } from './derived-queries.js'
import type { ProductsEvents } from './events.js'
import { ensureStock, insertMovement, setOnHand } from './queries.js'
import { actorOf } from './service.js'
import { slugify } from './categories.js'
import { groupBy } from '../../core/collections.js'

export interface ImageDto {
  id: string
  url: string
  alt: string
  width: number | null
  height: number | null
}

export interface VariantDto {
  id: string
  sku: string
  name: string
  attributes: Record<string, string>
  price: number
  compare_at_price: number | null
  currency: string
  in_stock: boolean
  stock_available: number
}

export interface ProductDto {
  id: string
  slug: string
  name: string
  description: string
  category: { id: string; slug: string; name: string } | null
  images: ImageDto[]
  attributes: Record<string, string>
  price: number | null
  currency: string
  rating: number | null
  review_count: number
  is_active: boolean
  created_at: string
  updated_at: string
  variants: VariantDto[]
}

/** A product as cached: everything but the live stock figures. */
export type CachedProduct = Omit<ProductDto, 'variants'> & { variants: Array<Omit<VariantDto, 'in_stock' | 'stock_available'>> }

export interface VariantInput {
  sku: string
  name?: string
  attributes?: Record<string, string>
  price: number
  compare_at_price?: number | null
  /** Initial on-hand stock of a new variant (recorded in the ledger); later changes use the stock route. */
  stock?: number
}

export interface ProductInput {
  name: string
  slug?: string
  description?: string
  category?: string | null
  attributes?: Record<string, string>
  is_active?: boolean
  variants: VariantInput[]
}

export type Ordering = SortField | `-${SortField}`

export interface ListParams {
  category?: string
  min_price?: number
  max_price?: number
  in_stock?: boolean
  ordering?: Ordering
  limit?: number
  cursor?: string
}

export interface ProductPage {
  count: number | null
  next: string | null
  previous: string | null
  /** A JSON array of ProductDto (rendered once, cached, stock filled in per request). */
  results: string
}

const DEFAULT_ORDERING: Ordering = '-created_at'

/**
 * The slug a product gets when none is given. A name without Latin letters or digits (漢字,
 * Кириллица) slugifies to nothing, and slugify's shared fallback made every such product after
 * the first a 409: those get a random slug instead.
 */
function slugFromName(name: string): string {
  return /[a-z0-9]/i.test(name.normalize('NFKD')) ? slugify(name) : `product-${randomUUID().slice(0, 8)}`
}

export interface CatalogDeps {
  cache: CatalogCache
  currency: string
  /** The public URL of a stored media key (local, S3 or CDN). */
  mediaUrl: (key: string) => string
}

export function createCatalog(deps: CatalogDeps) {
  const { cache } = deps

  /** Products as cached DTOs (no stock), in the order of `rows`: three statements whatever the count. */
  const hydrate = async (ctx: Ctx, rows: PageRow[]): Promise<CachedProduct[]> => {
    const ids = rows.map((row) => row.id)
    const [variantRows, imageRows] = await Promise.all([q.variantsOf(ctx.db, ids), q.imagesOf(ctx.db, ids)])
    const variantsByProduct = groupBy(variantRows, (variant) => variant.product_id)
    const imagesByProduct = groupBy(imageRows, (image) => image.product_id)
    return rows.map((row) => ({
      id: row.id,
      slug: row.slug,
      name: row.name,
      description: row.description,
      category: row.category_id && row.category_slug ? { id: row.category_id, slug: row.category_slug, name: row.category_name ?? '' } : null,
      images: (imagesByProduct.get(row.id) ?? []).map((image) => ({ id: image.id, url: deps.mediaUrl(image.key), alt: image.alt, width: image.width, height: image.height })),
      attributes: row.attributes,
      price: row.price,
      currency: deps.currency,
      rating: row.rating === null ? null : Number(row.rating),
      review_count: row.review_count,
      is_active: row.is_active,
      created_at: new Date(row.created_at).toISOString(),
      updated_at: new Date(row.updated_at).toISOString(),
      variants: (variantsByProduct.get(row.id) ?? []).map(toVariant),
    }))
  }

  /** Fills rendered products with live stock: one statement for the whole page. */
  const withStock = async (ctx: Ctx, rendered: RenderedProducts): Promise<string> =>
    fillStock(rendered, await q.availableStock(ctx.db, rendered.variantIdsLiteral))

  /** The list's filters resolved: a category slug becomes its subtree's ids; an empty price range is a 422. */
  const resolveFilters = async (ctx: Ctx, params: ListParams): Promise<ListFilters> => {
    if (params.min_price !== undefined && params.max_price !== undefined && params.min_price > params.max_price) {
      throw new ValidationError('The price range is empty.', { min_price: ['min_price is above max_price.'] })
    }
    let categoryIds: string[] | undefined
    if (params.category !== undefined) {
      const category = await findCategoryBySlug(ctx.db, params.category)
      if (!category) throw new ValidationError('Unknown category.', { category: [`No category "${params.category}".`] })
      categoryIds = await subtreeIds(ctx.db, category.id)
    }
    return { categoryIds, minPrice: params.min_price, maxPrice: params.max_price, inStock: params.in_stock }
  }

  const resolveCategory = async (ctx: Ctx, slug: string | null | undefined): Promise<string | null | undefined> => {
    if (slug === undefined || slug === null) return slug
    const category = await findCategoryBySlug(ctx.db, slug)
    if (!category) throw new ValidationError('Unknown category.', { category: [`No category "${slug}".`] })
    return category.id
  }

  /** Writes a product's variants: listed SKUs are created or updated, the others stop being sold. */
  const writeVariants = async (tx: Ctx, productId: string, inputs: VariantInput[], existing: VariantRow[]) => {
    const duplicate = inputs.map((input) => input.sku).find((sku, i, skus) => skus.indexOf(sku) !== i)
    if (duplicate) throw new ValidationError('Each variant needs its own SKU.', { variants: [`The SKU "${duplicate}" is listed twice.`] })
    const taken = await q.skusOfOtherProducts(tx.db, productId, inputs.map((input) => input.sku))
    if (taken.length > 0) throw new ValidationError('SKUs already used by other products.', { variants: taken.map((sku) => `The SKU "${sku}" belongs to another product.`) })
    const bySku = new Map(existing.map((variant) => [variant.sku, variant]))
    for (const [position, input] of inputs.entries()) {
      const values = {
        name: input.name ?? '',
        attributes: input.attributes ?? {},
        price: input.price,
        compare_at_price: input.compare_at_price ?? null,
        position,
        is_active: true,
      }
      const current = bySku.get(input.sku)
      if (current) {
        if (input.stock !== undefined) throw new ValidationError('Stock of an existing variant changes through its stock route.', { variants: [`${input.sku}: use PATCH /api/products/variants/${input.sku}/stock/.`] })
        await q.updateVariant(tx.db, current.id, values)
        continue
      }
      const variant = await q.insertVariant(tx.db, { ...values, product_id: productId, sku: input.sku, currency: deps.currency })
      await ensureStock(tx.db, variant.id)
      if (input.stock) {
        await setOnHand(tx.db, variant.id, input.stock)
        await insertMovement(tx.db, { variant_id: variant.id, delta_on_hand: input.stock, reason: 'initial', actor: actorOf(tx) })
      }
    }
    const listed = new Set(inputs.map((input) => input.sku))
    for (const variant of existing) if (!listed.has(variant.sku) && variant.is_active) await q.updateVariant(tx.db, variant.id, { is_active: false })
  }

  /** Refreshes derived columns, records the change for the search index, and marks caches stale. */
  const changedInTx = async (tx: Ctx, productIds: string[]) => {
    await refreshDerived(tx.db, { productIds })
    await tx.events.publish('catalog.products_changed', { product_ids: productIds } satisfies ProductsEvents['catalog.products_changed'])
  }

  const bySlugForStaff = async (ctx: Ctx, slug: string): Promise<string> => {
    const row = await q.findProduct(ctx.db, slug)
    if (!row) throw new NotFoundError('Product', slug)
    return withStock(ctx, renderProducts(await hydrate(ctx, [row]), true))
  }

  return {
    /** A product page as JSON (ProductDto): active products for everyone, inactive ones too for staff. */
    async get(ctx: Ctx, slug: string, options: { staff?: boolean } = {}): Promise<string> {
      if (options.staff) return bySlugForStaff(ctx, slug)
      const cached = await cache.read(`product:${slug}`, ['catalog'], async () => {
        const row = await q.findProduct(ctx.db, slug)
        return row && row.is_active ? renderProducts(await hydrate(ctx, [row]), true) : null
      })
      if (!cached) throw new NotFoundError('Product', slug)
      return withStock(ctx, cached)
    },

    /** The public list: filters, ordering, keyset pages (`next`/`previous` are cursors, `results` JSON). */
    async list(ctx: Ctx, params: ListParams, groups?: TermGroups): Promise<ProductPage> {
      const cursor = params.cursor === undefined ? undefined : decodeCursor(params.cursor, isKeysetCursor)
      const ordering = params.ordering ?? DEFAULT_ORDERING
      if (cursor && cursor.o !== ordering) throw new ValidationError('The cursor belongs to another ordering.', { cursor: ['Invalid cursor for this ordering.'] })
      const limit = params.limit ?? 20
      const generations: Generation[] = params.in_stock === undefined ? ['catalog'] : ['catalog', 'stock']
      const key = `list:${JSON.stringify([params.category, params.min_price, params.max_price, params.in_stock, ordering, limit, params.cursor, groups])}`
      const page = await cache.read(key, generations, async () => {
        const filters = await resolveFilters(ctx, params)
        const sort = ordering.replace(/^-/, '') as SortField
        const rows = await q.productPage(ctx.db, {
          filters,
          groups,
          sort,
          descending: ordering.startsWith('-'),
          after: cursor ? { value: cursor.v, id: cursor.id } : undefined,
          backwards: cursor?.back === true,
          limit,
        })
        const more = rows.length > limit
        const pageRows = rows.slice(0, limit)
        if (cursor?.back) pageRows.reverse()
        const first = pageRows[0]
        const last = pageRows.at(-1)
        const at = (row: PageRow | undefined, back: boolean) => (row ? encodeCursor({ o: ordering, v: row.sort_value, id: row.id, ...(back ? { back: true } : {}) }) : null)
        return {
          count: cursor ? null : await q.countProducts(ctx.db, filters, groups),
          // Forwards: a next page when more rows followed; a previous one whenever we came from a cursor.
          next: cursor?.back ? at(last, false) : more ? at(last, false) : null,
          previous: cursor?.back ? (more ? at(first, true) : null) : cursor ? at(first, true) : null,
          results: renderProducts(await hydrate(ctx, pageRows)),
        }
      })
      return { ...page, results: await withStock(ctx, page.results) }
    },

    filters: resolveFilters,

    /** Active products by id in the given order (search hits), without stock: cacheable. */
    async byIds(ctx: Ctx, ids: string[]): Promise<CachedProduct[]> {
      const rows = await q.productsByIds(ctx.db, ids)
      const position = new Map(ids.map((id, i) => [id, i]))
      rows.sort((a, b) => position.get(a.id)! - position.get(b.id)!)
      return hydrate(ctx, rows)
    },

    /** Fills rendered products with live stock figures (one statement). */
    withStock,

    /** Rebuilds every product's derived columns and vocabulary (after a bulk load or a restore). */
    async refreshAll(ctx: Ctx): Promise<void> {
      await refreshDerived(ctx.db, 'all')
      await cache.changed(ctx)
    },

    /** Typo corrections of query terms from the catalog's vocabulary (PostgreSQL search). */
    async corrections(ctx: Ctx, terms: string[]): Promise<Correction[]> {
      return search.corrections(ctx.db, terms)
    },

    /** Ranked full-text hits, the total and facet counts (PostgreSQL search). */
    async textSearch(ctx: Ctx, query: TextSearch) {
      const filters: ListFilters = { categoryIds: query.filters.categoryIds, minPrice: query.filters.minPrice, maxPrice: query.filters.maxPrice, inStock: query.filters.inStock }
      const sort = query.ordering === 'relevance' ? 'relevance' : (query.ordering.replace(/^-/, '') as SortField)
      const [hits, facets] = await Promise.all([
        search.searchHits(ctx.db, { text: query.text, groups: query.groups, filters, sort, descending: query.ordering.startsWith('-'), offset: query.offset, limit: query.limit }),
        query.facets ? search.facetCounts(ctx.db, filters, query.groups, query.priceBuckets) : Promise.resolve([]),
      ])
      // The total rides on each hit; a page past the end has none to carry it.
      const total = hits[0]?.total ?? (query.offset > 0 ? await q.countProducts(ctx.db, filters, query.groups) : 0)
      return { total, hits, facets }
    },

    /** What a search index holds for these products (absent: inactive, deleted or without variants). */
    async searchDocuments(ctx: Ctx, ids: string[]): Promise<SearchDocumentDto[]> {
      return toDocuments(await search.documentRows(ctx.db, ids), await listCategories(ctx.db))
    },

    /** Visible products in id order after `afterId`, for a full index rebuild. */
    async searchDocumentBatch(ctx: Ctx, afterId: string | null, limit: number): Promise<SearchDocumentDto[]> {
      return toDocuments(await search.documentBatch(ctx.db, afterId, limit), await listCategories(ctx.db))
    },

    async create(ctx: Ctx, input: ProductInput): Promise<string> {
      const slug = input.slug ?? slugFromName(input.name)
      await ctx.tx(async (tx) => {
        const product = await q.insertProduct(tx.db, {
          name: input.name.trim(),
          slug,
          description: input.description ?? '',
          category_id: (await resolveCategory(tx, input.category)) ?? null,
          attributes: input.attributes ?? {},
          is_active: input.is_active ?? true,
        })
        await writeVariants(tx, product.id, input.variants, [])
        await changedInTx(tx, [product.id])
      })
      await cache.changed(ctx)
      return bySlugForStaff(ctx, slug)
    },

    /** Changes the fields given; `variants`, when given, is the full list (see writeVariants). */
    async update(ctx: Ctx, slug: string, patch: Partial<ProductInput>): Promise<string> {
      await ctx.tx(async (tx) => {
        const product = await q.lockProduct(tx.db, slug)
        if (!product) throw new NotFoundError('Product', slug)
        const category_id = await resolveCategory(tx, patch.category)
        await q.updateProduct(tx.db, product.id, {
          ...(patch.name !== undefined ? { name: patch.name.trim() } : {}),
          ...(patch.slug !== undefined ? { slug: patch.slug } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(category_id !== undefined ? { category_id } : {}),
          ...(patch.attributes !== undefined ? { attributes: patch.attributes } : {}),
          ...(patch.is_active !== undefined ? { is_active: patch.is_active } : {}),
        })
        if (patch.variants) await writeVariants(tx, product.id, patch.variants, await q.variantsOf(tx.db, [product.id], { all: true }))
        await changedInTx(tx, [product.id])
      })
      await cache.changed(ctx)
      return bySlugForStaff(ctx, patch.slug ?? slug)
    },

    /**
     * Soft delete: the row stays for the orders and reviews that point at it, its variants stop
     * being sold, and its slug is freed for a new product.
     */
    async remove(ctx: Ctx, slug: string): Promise<void> {
      await ctx.tx(async (tx) => {
        const product = await q.lockProduct(tx.db, slug)
        if (!product) throw new NotFoundError('Product', slug)
        await q.updateProduct(tx.db, product.id, { deleted_at: new Date(), is_active: false, slug: `${product.slug}--deleted-${product.id.slice(0, 8)}` })
        for (const variant of await q.variantsOf(tx.db, [product.id])) await q.updateVariant(tx.db, variant.id, { is_active: false })
        await changedInTx(tx, [product.id])
      })
      await cache.changed(ctx)
    },
  }
}

export type Catalog = ReturnType<typeof createCatalog>

export interface TextSearch {
  text: string
  groups: TermGroups
  filters: { categoryIds?: string[]; minPrice?: number; maxPrice?: number; inStock?: boolean }
  ordering: 'relevance' | Ordering
  offset: number
  limit: number
  facets: boolean
  priceBuckets: ReadonlyArray<readonly [number, number | null]>
}


function toVariant(row: VariantRow): CachedProduct['variants'][number] {
  return { id: row.id, sku: row.sku, name: row.name, attributes: row.attributes, price: row.price, compare_at_price: row.compare_at_price, currency: row.currency }
}

