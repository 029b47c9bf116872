/**
 * Search: parses what the shopper typed, corrects typos against the catalog's vocabulary, expands
 * synonyms, asks the configured backend (PostgreSQL or OpenSearch), and turns hits into product
 * cards with highlights and facets. Results are cached like the catalog's other reads; stock is
 * read live.
 */
import type { Ctx } from '../../core/context.js'
import { decodeCursor, encodeCursor } from '../../core/http/pagination.js'
import type { CatalogCache, Generation } from '../products/catalog-cache.js'
import type { Catalog, ListParams, Ordering, ProductDto, ProductPage } from '../products/catalog.js'
import { renderProducts } from '../products/service.js'
import type { Categories, CategoryNode } from '../products/categories.js'
import { PRICE_BUCKETS, type FacetCounts, type SearchBackend, type SearchOrdering } from './backend.js'
import type { Synonyms } from './synonyms.js'

export interface SearchParams extends Omit<ListParams, 'ordering'> {
  q: string
  ordering?: SearchOrdering
}

export interface Facets {
  categories: Array<{ slug: string; name: string; count: number }>
  price_ranges: Array<{ min_price: number; max_price: number | null; count: number }>
  attributes: Array<{ name: string; values: Array<{ value: string; count: number }> }>
}

/** One result of /api/search/: a product card with its highlighted name and description. */
export type SearchResultItem = ProductDto & { highlight: { name: string | null; description: string | null } }

export interface SearchPage extends ProductPage {
  /** JSON array of SearchResultItem. */
  results: string
  facets: Facets
  /** Words that were not in the catalog and what was searched instead. */
  corrections: Record<string, string>
}

/** At most this many words of a query are used. */
const MAX_TERMS = 8
// A safe integer: a larger offset does not fit PostgreSQL's bigint OFFSET (it was a 500).
const isOffsetCursor = (value: unknown): value is { off: number } => typeof value === 'object' && value !== null && Number.isSafeInteger((value as { off: unknown }).off) && (value as { off: number }).off >= 0

export function createSearchService(deps: { catalog: Catalog; categories: Categories; synonyms: Synonyms; backend: SearchBackend; cache: CatalogCache }) {
  const { catalog, backend, cache } = deps

  /** Words of the query with their corrections and synonyms: each group is one word's alternatives. */
  const analyse = async (ctx: Ctx, text: string): Promise<{ groups: string[][]; corrections: Record<string, string> }> => {
    const words = [
      ...new Set(
        text
          .normalize('NFKC')
          .toLowerCase()
          .split(/\s+/)
          .map((word) => word.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ''))
          .filter(Boolean),
      ),
    ].slice(0, MAX_TERMS)
    const plain = words.filter((word) => /^[\p{L}\p{N}]+$/u.test(word))
    const [found, expansions] = await Promise.all([catalog.corrections(ctx, plain), deps.synonyms.expansions(ctx)])
    const correctionOf = new Map(found.filter((row) => !row.known && row.nearest).map((row) => [row.term, row.nearest!]))
    const groups = words.map((word) => {
      const correction = correctionOf.get(word)
      const terms = [word, ...(correction ? [correction] : []), ...(expansions.get(word) ?? []), ...(correction ? (expansions.get(correction) ?? []) : [])]
      return [...new Set(terms)]
    })
    return { groups, corrections: Object.fromEntries(correctionOf) }
  }

  /** Hits for a query: cached without stock, the same way product lists are. */
  const run = async (ctx: Ctx, params: SearchParams, options: { facets: boolean }) => {
    const text = params.q.trim()
    const offset = params.cursor === undefined ? 0 : decodeCursor(params.cursor, isOffsetCursor).off
    const limit = params.limit ?? 20
    const generations: Generation[] = params.in_stock === undefined ? ['catalog'] : ['catalog', 'stock']
    const key = `search:${JSON.stringify([text, params.category, params.min_price, params.max_price, params.in_stock, params.ordering, offset, limit, options.facets])}`
    return cache.read(key, generations, async () => {
      const { groups, corrections } = await analyse(ctx, text)
      const filters = await catalog.filters(ctx, { ...params, ordering: undefined })
      const empty = groups.length === 0
      const result = empty
        ? { total: 0, hits: [], facets: { categories: [], prices: [], attributes: [] } }
        : await backend.search(ctx, { text, groups, filters, ordering: params.ordering ?? 'relevance', offset, limit, facets: options.facets })
      const products = await catalog.byIds(
        ctx,
        result.hits.map((hit) => hit.productId),
      )
      const highlights = new Map(result.hits.map((hit) => [hit.productId, hit.highlight]))
      return {
        count: result.total,
        next: offset + limit < result.total ? encodeCursor({ off: offset + limit }) : null,
        previous: offset > 0 ? encodeCursor({ off: Math.max(0, offset - limit) }) : null,
        results: renderProducts(products.map((product) => ({ ...product, highlight: highlights.get(product.id) ?? { name: null, description: null } }))),
        facets: options.facets ? facetsOf(result.facets, await deps.categories.tree(ctx), backend.countsAncestors === true) : emptyFacets(),
        corrections,
      }
    })
  }

  return {
    /** GET /api/search/: ranked hits with highlights, facets and corrections. */
    async search(ctx: Ctx, params: SearchParams): Promise<SearchPage> {
      const page = await run(ctx, params, { facets: true })
      return { ...page, results: await catalog.withStock(ctx, page.results) }
    },

    /**
     * The product list's `search` filter: ranked by relevance (offset pages) unless an ordering
     * is asked for, which keeps the list's keyset pages.
     */
    async productList(ctx: Ctx, params: ListParams & { search: string }): Promise<ProductPage> {
      if (params.ordering) {
        const { groups } = await analyse(ctx, params.search)
        return catalog.list(ctx, params, groups.length > 0 ? groups : undefined)
      }
      const { count, next, previous, results } = await run(ctx, { ...params, q: params.search, ordering: 'relevance' }, { facets: false })
      return { count, next, previous, results: await catalog.withStock(ctx, results) }
    },

    async reindex(ctx: Ctx): Promise<number> {
      const indexed = await backend.reindexAll(ctx)
      await cache.changed(ctx)
      return indexed
    },

    backend,
  }
}

export type SearchService = ReturnType<typeof createSearchService>

function emptyFacets(): Facets {
  return { categories: [], price_ranges: [], attributes: [] }
}

/**
 * Category counts as the category filter would list them (subcategories included): rolled up
 * the tree here unless the backend already counted every product under its ancestors too.
 */
function facetsOf(counts: FacetCounts, tree: CategoryNode[], countsAncestors: boolean): Facets {
  const own = new Map(counts.categories.map((row) => [row.categoryId, row.count]))
  const categories: Facets['categories'] = []
  const visit = (node: CategoryNode): number => {
    const below = node.children.reduce((sum, child) => sum + visit(child), 0)
    const total = (own.get(node.id) ?? 0) + (countsAncestors ? 0 : below)
    if (total > 0) categories.push({ slug: node.slug, name: node.name, count: total })
    return total
  }
  tree.forEach(visit)
  categories.sort((a, b) => b.count - a.count || a.name.localeCompare(b.name))

  const price_ranges = counts.prices
    .filter((row) => PRICE_BUCKETS[row.bucket] && row.count > 0)
    .sort((a, b) => a.bucket - b.bucket)
    .map((row) => {
      const [low, high] = PRICE_BUCKETS[row.bucket]!
      return { min_price: low, max_price: high === null ? null : high - 1, count: row.count }
    })

  const byName = new Map<string, Array<{ value: string; count: number }>>()
  for (const row of counts.attributes) {
    const values = byName.get(row.name) ?? []
    values.push({ value: row.value, count: row.count })
    byName.set(row.name, values)
  }
  const attributes = [...byName]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, values]) => ({ name, values: values.sort((a, b) => b.count - a.count || a.value.localeCompare(b.value)) }))
  return { categories, price_ranges, attributes }
}

export type { Ordering }
