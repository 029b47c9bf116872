/**
 * The default search backend: PostgreSQL full-text search over the products' weighted search
 * documents, which the catalog keeps current in the same transaction as every edit, so there is
 * nothing to index and nothing can lag behind.
 */
import type { Catalog } from '../products/catalog.js'
import { PRICE_BUCKETS, type SearchBackend, type SearchResult } from './backend.js'

export function createPostgresSearch(catalog: Catalog): SearchBackend {
  return {
    name: 'postgres',
    async search(ctx, query): Promise<SearchResult> {
      const { total, hits, facets } = await catalog.textSearch(ctx, { ...query, facets: query.facets ?? true, priceBuckets: PRICE_BUCKETS })
      return {
        total,
        hits: hits.map((hit) => ({ productId: hit.id, highlight: { name: hit.name_highlight, description: hit.description_highlight || null } })),
        facets: {
          categories: facets.filter((row) => row.kind === 'category').map((row) => ({ categoryId: row.key, count: row.count })),
          prices: facets.filter((row) => row.kind === 'price').map((row) => ({ bucket: Number(row.key), count: row.count })),
          attributes: facets.filter((row) => row.kind === 'attribute').map((row) => ({ name: row.key, value: row.value ?? '', count: row.count })),
        },
      }
    },
    // The documents are written with the products themselves.
    async index() {},
    async reindexAll(ctx) {
      await catalog.refreshAll(ctx)
      return (await catalog.list(ctx, { limit: 1 })).count ?? 0
    },
    async ping() {},
  }
}
