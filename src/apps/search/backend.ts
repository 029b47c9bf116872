/**
 * The interface both search backends implement (PostgreSQL full-text, OpenSearch). The search
 * service parses the query and expands synonyms before a backend sees it, so both backends get
 * the same `groups`: every group must match, any term of a group will do.
 */
import type { Ctx } from '../../core/context.js'
import type { SearchDocumentDto } from '../products/service.js'

/** Filters shared with the product list; categories already include their descendants. */
export interface ProductFilters {
  categoryIds?: string[]
  minPrice?: number
  maxPrice?: number
  inStock?: boolean
}

export type SearchOrdering = 'relevance' | 'price' | '-price' | 'created_at' | '-created_at' | 'name' | '-name' | 'rating' | '-rating'

export interface SearchQuery {
  /** The text as typed (trimmed), for exact-name boosts and highlighting. */
  text: string
  /** Lower-case terms: each inner array is one query word with its synonyms and typo corrections. */
  groups: string[][]
  filters: ProductFilters
  ordering: SearchOrdering
  offset: number
  limit: number
  /** Facet counts wanted (the product list's search needs none); default true. */
  facets?: boolean
}

export interface SearchHit {
  productId: string
  /** HTML-escaped text with the matches wrapped in <mark>…</mark>. */
  highlight: { name: string | null; description: string | null }
}

export interface FacetCounts {
  /**
   * Products per category id: in their own category only (the service rolls counts up the tree),
   * or also in every ancestor when the backend says `countsAncestors`.
   */
  categories: Array<{ categoryId: string; count: number }>
  /** Products per price bucket, buckets given by PRICE_BUCKETS. */
  prices: Array<{ bucket: number; count: number }>
  /** Products per attribute value (product or active variant attributes). */
  attributes: Array<{ name: string; value: string; count: number }>
}

export interface SearchResult {
  total: number
  hits: SearchHit[]
  facets: FacetCounts
}

/** What a search index holds for one product (OpenSearch documents; PostgreSQL reads its tables). */
export type SearchDocument = SearchDocumentDto

/** Price buckets in minor units: [lower bound inclusive, upper bound exclusive or null]. */
export const PRICE_BUCKETS: ReadonlyArray<readonly [number, number | null]> = [
  [0, 1_000],
  [1_000, 2_500],
  [2_500, 5_000],
  [5_000, 10_000],
  [10_000, 25_000],
  [25_000, null],
]

export interface SearchBackend {
  readonly name: 'postgres' | 'opensearch'
  /** Category facet counts already include every product of the subcategories. */
  readonly countsAncestors?: boolean
  search(ctx: Ctx, query: SearchQuery): Promise<SearchResult>
  /** Brings these products' index entries up to date (inactive or deleted ones are removed). */
  index(ctx: Ctx, productIds: string[]): Promise<void>
  /** A full rebuild without downtime; answers how many products were indexed. */
  reindexAll(ctx: Ctx): Promise<number>
  /** Throws when the backend does not answer (readiness). */
  ping(): Promise<void>
}

/** Where indexing reads documents from (the products service). */
export interface SearchDocumentSource {
  /** Documents of these ids that are active and not deleted (others are absent from the answer). */
  documents(ctx: Ctx, productIds: string[]): Promise<SearchDocument[]>
  /** Active products in id order after `afterId`, for a full rebuild in batches. */
  batch(ctx: Ctx, afterId: string | null, limit: number): Promise<SearchDocument[]>
}
