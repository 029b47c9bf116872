/**
 * The OpenSearch backend (used when ELASTICSEARCH_URL is set). Searches go to the alias
 * `<prefix>products`, which points at one concrete index, `<prefix>products-<timestamp>` (the
 * first one `<prefix>products-initial`). A full rebuild fills a new index, which meanwhile holds
 * the alias `<prefix>products-building`, then swaps the aliases in one `_aliases` call, so searches
 * never see a half-built index; single-product updates also write through the building alias, so
 * a change made during a rebuild is not lost by the swap.
 */
import { Client, errors } from '@opensearch-project/opensearch'
import type { Ctx } from '../../core/context.js'
import { DependencyUnavailableError, ValidationError } from '../../core/errors.js'
import type { Logger } from '../../core/logging.js'
import {
  PRICE_BUCKETS,
  type FacetCounts,
  type ProductFilters,
  type SearchBackend,
  type SearchDocument,
  type SearchDocumentSource,
  type SearchOrdering,
  type SearchQuery,
  type SearchResult,
} from './backend.js'

export interface OpenSearchBackendOptions {
  url: string
  source: SearchDocumentSource
  log: Logger
  /** Prepended to the alias and index names so deployments can share a cluster (e.g. the cache key prefix). */
  indexPrefix?: string
  /** Documents per bulk request (full rebuilds and large updates). */
  batchSize?: number
}

export type OpenSearchBackend = SearchBackend & { readonly alias: string; close(): Promise<void> }

/** OpenSearch refuses `from + size` beyond this (index.max_result_window). */
export const MAX_RESULT_WINDOW = 10_000
const CATEGORY_FACET_SIZE = 1_000
const ATTRIBUTE_FACET_SIZE = 500
/** Characters of a name highlighted whole, and of a description snippet. */
const NAME_MAX = 1_000
const SNIPPET_SIZE = 160
/** Joins an attribute's name and value in one keyword (a character no name or value contains). */
const PAIR_SEPARATOR = '\u001f'

/** Index settings and explicit mapping: unknown fields are refused (`dynamic: strict`). */
export const INDEX_BODY = {
  settings: {
    index: { number_of_shards: 1 },
    analysis: {
      filter: { prefix_edge: { type: 'edge_ngram', min_gram: 2, max_gram: 20 } },
      analyzer: {
        // Every prefix of every word (2–20 characters), for search-as-you-type.
        prefix_index: { type: 'custom', tokenizer: 'standard', filter: ['lowercase', 'asciifolding', 'prefix_edge'] },
        prefix_search: { type: 'custom', tokenizer: 'standard', filter: ['lowercase', 'asciifolding'] },
      },
      normalizer: { sortable: { type: 'custom', filter: ['lowercase', 'asciifolding'] } },
    },
  },
  mappings: {
    dynamic: 'strict',
    properties: {
      id: { type: 'keyword' },
      slug: { type: 'keyword' },
      name: {
        type: 'text',
        analyzer: 'english',
        fields: {
          prefix: { type: 'text', analyzer: 'prefix_index', search_analyzer: 'prefix_search' },
          keyword: { type: 'keyword', normalizer: 'sortable', ignore_above: 256 },
        },
      },
      category_names: {
        type: 'text',
        analyzer: 'english',
        fields: { prefix: { type: 'text', analyzer: 'prefix_index', search_analyzer: 'prefix_search' } },
      },
      attribute_values: {
        type: 'text',
        analyzer: 'english',
        fields: { prefix: { type: 'text', analyzer: 'prefix_index', search_analyzer: 'prefix_search' } },
      },
      /** `name<U+001F>value`: one keyword per attribute value, counted per product by a terms aggregation. */
      attribute_pairs: { type: 'keyword' },
      description: { type: 'text', analyzer: 'english' },
      category_ids: { type: 'keyword' },
      price: { type: 'integer' },
      in_stock: { type: 'boolean' },
      rating: { type: 'float' },
      created_at: { type: 'date' },
    },
  },
} as const

/** Weighted fields: name > category > attributes > description (typo-tolerant, stemmed). */
const TEXT_FIELDS = ['name^4', 'category_names^3', 'attribute_values^2', 'description']
/** The same weights over word prefixes ("sho" finds "shoes"). */
const PREFIX_FIELDS = ['name.prefix^4', 'category_names.prefix^3', 'attribute_values.prefix^2']

const SORT_FIELDS = { price: 'price', created_at: 'created_at', name: 'name.keyword', rating: 'rating' } as const

/** What is stored for one product: the document plus the derived attribute fields. */
export function indexedDocument(doc: SearchDocument) {
  return {
    id: doc.id,
    slug: doc.slug,
    name: doc.name,
    description: doc.description,
    category_ids: doc.category_ids,
    category_names: doc.category_names,
    attribute_values: doc.attributes.map((attribute) => attribute.value),
    attribute_pairs: [...new Set(doc.attributes.map((attribute) => `${attribute.name}${PAIR_SEPARATOR}${attribute.value}`))],
    price: doc.price,
    in_stock: doc.in_stock,
    rating: doc.rating,
    created_at: doc.created_at,
  }
}

/** The `_search` body for a query (exported for the exchange tests). */
export function searchBody(query: SearchQuery): Record<string, unknown> {
  const hasText = query.groups.length > 0
  const bool: Record<string, unknown> = {
    // Every group must match; any term of a group will do, in full (fuzzily) or as a prefix.
    must: query.groups.map((terms) => ({ bool: { should: terms.flatMap(termClauses), minimum_should_match: 1 } })),
    filter: filterClauses(query.filters),
  }
  if (hasText && query.text !== '') {
    // Optional clauses only add score: the exact name first, then the name as a phrase.
    bool.should = [
      { term: { 'name.keyword': { value: query.text.toLowerCase(), boost: 10 } } },
      { match_phrase: { name: { query: query.text, boost: 4 } } },
    ]
  }
  return {
    from: query.offset,
    size: query.limit,
    track_total_hits: true,
    _source: false,
    query: { bool },
    sort: sortOf(query.ordering),
    // The facets count the matching products, filters applied; a category counts its subtree.
    ...(query.facets === false ? {} : { aggs: facetAggregations() }),
    ...(hasText
      ? {
          highlight: {
            encoder: 'html',
            pre_tags: ['<mark>'],
            post_tags: ['</mark>'],
            // Like the PostgreSQL backend: the whole name, and a description snippet even without a match.
            fields: {
              name: { number_of_fragments: 0, no_match_size: NAME_MAX },
              'name.prefix': { number_of_fragments: 0, no_match_size: NAME_MAX },
              description: { fragment_size: SNIPPET_SIZE, number_of_fragments: 1, no_match_size: SNIPPET_SIZE },
            },
          },
        }
      : {}),
  }
}

/** Facets: products per category id (own and ancestors), per PRICE_BUCKETS range, per attribute value. */
function facetAggregations() {
  return {
    categories: { terms: { field: 'category_ids', size: CATEGORY_FACET_SIZE } },
    prices: {
      range: {
        field: 'price',
        ranges: PRICE_BUCKETS.map(([from, to], bucket) => (to === null ? { key: String(bucket), from } : { key: String(bucket), from, to })),
      },
    },
    attributes: { terms: { field: 'attribute_pairs', size: ATTRIBUTE_FACET_SIZE } },
  }
}

function termClauses(term: string) {
  return [
    { multi_match: { query: term, fields: TEXT_FIELDS, type: 'best_fields', operator: 'and', fuzziness: 'AUTO', prefix_length: 1 } },
    { multi_match: { query: term, fields: PREFIX_FIELDS, type: 'best_fields', operator: 'and' } },
  ]
}

function filterClauses(filters: ProductFilters): unknown[] {
  const clauses: unknown[] = []
  if (filters.categoryIds !== undefined) clauses.push({ terms: { category_ids: filters.categoryIds } })
  if (filters.minPrice !== undefined || filters.maxPrice !== undefined) {
    clauses.push({ range: { price: { ...(filters.minPrice !== undefined ? { gte: filters.minPrice } : {}), ...(filters.maxPrice !== undefined ? { lte: filters.maxPrice } : {}) } } })
  }
  if (filters.inStock !== undefined) clauses.push({ term: { in_stock: filters.inStock } })
  return clauses
}

/** The requested order, then the id in the same direction, so pages never overlap. */
function sortOf(ordering: SearchOrdering): unknown[] {
  if (ordering === 'relevance') return [{ _score: { order: 'desc' } }, { id: { order: 'asc' } }]
  const order = ordering.startsWith('-') ? 'desc' : 'asc'
  const field = SORT_FIELDS[ordering.replace(/^-/, '') as keyof typeof SORT_FIELDS]
  return [{ [field]: { order } }, { id: { order } }]
}

interface SearchResponseBody {
  hits: {
    total: { value: number; relation: string } | number
    hits: Array<{ _id: string; highlight?: Record<string, string[] | undefined> }>
  }
  aggregations?: {
    categories?: { buckets: Array<{ key: string; doc_count: number }> }
    prices?: { buckets: Array<{ key: string; doc_count: number }> }
    attributes?: { buckets: Array<{ key: string; doc_count: number }> }
  }
}

/** Turns a `_search` answer into a SearchResult (exported for the exchange tests). */
export function parseSearchResponse(body: SearchResponseBody): SearchResult {
  const total = typeof body.hits.total === 'number' ? body.hits.total : body.hits.total.value
  const hits = body.hits.hits.map((hit) => {
    const name = mergeHighlights(hit.highlight?.name?.[0] ?? null, hit.highlight?.['name.prefix']?.[0] ?? null)
    return { productId: hit._id, highlight: { name, description: hit.highlight?.description?.[0] ?? null } }
  })
  const aggregations = body.aggregations ?? {}
  const facets: FacetCounts = {
    categories: (aggregations.categories?.buckets ?? []).map((bucket) => ({ categoryId: bucket.key, count: bucket.doc_count })),
    prices: (aggregations.prices?.buckets ?? []).filter((bucket) => bucket.doc_count > 0).map((bucket) => ({ bucket: Number(bucket.key), count: bucket.doc_count })),
    attributes: (aggregations.attributes?.buckets ?? []).map((bucket) => {
      const [name = '', value = ''] = bucket.key.split(PAIR_SEPARATOR)
      return { name, value, count: bucket.doc_count }
    }),
  }
  return { total, hits, facets }
}

const MARK = /<mark>|<\/mark>/g

/**
 * Unites two highlights of the same text (the name matched whole words, its prefix subfield
 * matched partly typed ones): the marked spans of both, adjacent spans joined.
 */
export function mergeHighlights(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return a ?? b
  const text = a.replace(MARK, '')
  if (b.replace(MARK, '') !== text) return a
  const marked = new Array<boolean>(text.length).fill(false)
  for (const highlighted of [a, b]) {
    let position = 0
    let inside = false
    for (const part of highlighted.split(/(<mark>|<\/mark>)/)) {
      if (part === '<mark>') inside = true
      else if (part === '</mark>') inside = false
      else {
        if (inside) marked.fill(true, position, position + part.length)
        position += part.length
      }
    }
  }
  let merged = ''
  for (let i = 0; i < text.length; i += 1) {
    if (marked[i] && !marked[i - 1]) merged += '<mark>'
    merged += text[i]
    if (marked[i] && !marked[i + 1]) merged += '</mark>'
  }
  return merged
}

export interface BulkFailure {
  action: string
  id: string
  /** The `_index` the action named (an alias or an index). */
  index: string
  status: number
  type: string
  reason: string
}

/** An answer of `_bulk` with `errors: true`: which items failed and why. */
export class BulkIndexingError extends Error {
  override name = 'BulkIndexingError'
  constructor(readonly failures: BulkFailure[]) {
    const shown = failures.slice(0, 3).map((failure) => `${failure.action} ${failure.id} in ${failure.index}: ${failure.status} ${failure.type} (${failure.reason})`)
    super(`OpenSearch refused ${failures.length} bulk item(s): ${shown.join('; ')}`)
  }
}

interface BulkResponseBody {
  errors: boolean
  items: Array<Record<string, { _index: string; _id: string; status: number; error?: { type: string; reason: string } }>>
}

/** The action lines of a bulk body (each but `delete` is followed by its document). */
function actionsOf(lines: unknown[]): Array<{ action: string; index: string; id: string }> {
  const actions: Array<{ action: string; index: string; id: string }> = []
  for (let position = 0; position < lines.length; position += 1) {
    const [action, meta] = Object.entries(lines[position] as Record<string, { _index: string; _id: string }>)[0]!
    actions.push({ action, index: meta._index, id: meta._id })
    if (action !== 'delete') position += 1
  }
  return actions
}

/**
 * Throws BulkIndexingError for failed items, except `tolerated` ones. Items answer the actions
 * in order; a failure names the index or alias the action targeted.
 */
function checkBulk(sent: unknown[], body: BulkResponseBody, tolerated: (failure: BulkFailure) => boolean = () => false): void {
  if (!body.errors) return
  const actions = actionsOf(sent)
  const failures: BulkFailure[] = []
  body.items.forEach((item, position) => {
    const [action, result] = Object.entries(item)[0]!
    if (!result.error) return
    const failure = { action, id: result._id, index: actions[position]?.index ?? result._index, status: result.status, type: result.error.type, reason: result.error.reason }
    if (!tolerated(failure)) failures.push(failure)
  })
  if (failures.length > 0) throw new BulkIndexingError(failures)
}

/**
 * A search the cluster could not answer, or refused us (credentials), or without its index, is a
 * 503, not a 500.
 */
function unavailable(err: unknown, message = 'Search is unavailable, try again shortly.'): unknown {
  const down =
    err instanceof errors.ConnectionError ||
    err instanceof errors.TimeoutError ||
    err instanceof errors.NoLivingConnectionsError ||
    (err instanceof errors.ResponseError && (err.statusCode >= 500 || err.statusCode === 429 || err.statusCode === 401 || err.statusCode === 403)) ||
    errorType(err) === 'index_not_found_exception'
  return down ? new DependencyUnavailableError(message, { dependency: 'search' }, { cause: err }) : err
}

/**
 * What a failed search throws. Any other answer OpenSearch refused is our bug: a 500, and never
 * OpenSearch's own status and message (its `statusCode` would reach the client as a 400 or 404).
 */
function searchFailure(err: unknown): unknown {
  const mapped = unavailable(err)
  if (mapped !== err || !(err instanceof errors.OpenSearchClientError)) return mapped
  return new Error(`OpenSearch refused the search: ${err.message}`, { cause: err })
}

function errorType(err: unknown): string | undefined {
  return err instanceof errors.ResponseError ? (err.body as { error?: { type?: string } } | undefined)?.error?.type : undefined
}

/** Index names are lower case without `\ / * ? " < > | , # :` or spaces. */
function indexNamePrefix(prefix: string): string {
  return prefix.toLowerCase().replace(/[^a-z0-9_.-]/g, '-').replace(/^[-_.+]+/, '')
}

function timestamp(): string {
  return new Date().toISOString().replace(/\D/g, '')
}

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = []
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size))
  return result
}

export function createOpenSearchBackend(options: OpenSearchBackendOptions): OpenSearchBackend {
  const { source, log } = options
  const alias = `${indexNamePrefix(options.indexPrefix ?? '')}products`
  /** Held by the index a rebuild is filling: single-product writes go there too. */
  const buildingAlias = `${alias}-building`
  // The first index has a fixed name: processes that find no alias at the same time all create
  // the same index (the losers get resource_already_exists), never one index each under the alias.
  const initialIndex = `${alias}-initial`
  const batchSize = options.batchSize ?? 500
  const client = new Client({ node: options.url, maxRetries: 2, requestTimeout: 10_000 })
  let ensured: Promise<void> | null = null
  let closed: Promise<void> | null = null

  /** Each index of the family (`<alias>-*`) with the aliases it holds. */
  const family = async (): Promise<Array<{ index: string; aliases: string[] }>> => {
    const { body } = await client.indices.getAlias({ index: `${alias}-*` })
    return Object.entries(body as Record<string, { aliases?: Record<string, unknown> }>)
      .map(([index, value]) => ({ index, aliases: Object.keys(value.aliases ?? {}) }))
      .sort((a, b) => a.index.localeCompare(b.index))
  }

  /** Creates the alias and its first index when there is none (first use); once per process. */
  const ensureIndex = (): Promise<void> => {
    ensured ??= (async () => {
      const { body: exists } = await client.indices.existsAlias({ name: alias })
      if (exists) return
      try {
        await client.indices.create({ index: initialIndex, body: { ...INDEX_BODY, aliases: { [alias]: {} } } as never })
        log.info({ index: initialIndex, alias }, 'search index created')
      } catch (err) {
        if (errorType(err) !== 'resource_already_exists_exception') throw err
      }
    })().catch((err: unknown) => {
      ensured = null
      throw err
    })
    return ensured
  }

  const bulk = async (body: unknown[], tolerated?: (failure: BulkFailure) => boolean): Promise<void> => {
    if (body.length === 0) return
    const response = await client.bulk({ body: body as never, refresh: false })
    checkBulk(body, response.body as unknown as BulkResponseBody, tolerated)
  }

  return {
    name: 'opensearch',
    countsAncestors: true,
    alias,

    async search(_ctx: Ctx, query: SearchQuery): Promise<SearchResult> {
      if (query.offset + query.limit > MAX_RESULT_WINDOW) {
        throw new ValidationError('The search goes too deep: narrow it down instead.', { offset: [`offset + limit must not exceed ${MAX_RESULT_WINDOW}.`] })
      }
      const run = async () => {
        await ensureIndex()
        // A web request waits at most ~10 s: one retry (another node, or a 502/503/504), 5 s each.
        const response = await client.search({ index: alias, body: searchBody(query) as never }, { requestTimeout: 5_000, maxRetries: 1 })
        return parseSearchResponse(response.body as unknown as SearchResponseBody)
      }
      try {
        return await run().catch((err: unknown) => {
          if (errorType(err) !== 'index_not_found_exception') throw err
          // The alias is gone under a running process (a wiped or replaced cluster): create it again.
          ensured = null
          return run()
        })
      } catch (err) {
        throw searchFailure(err)
      }
    },

    async index(ctx: Ctx, productIds: string[]): Promise<void> {
      const ids = [...new Set(productIds)]
      if (ids.length === 0) return
      await ensureIndex()
      // A rebuild started after this check reads the products after this change committed.
      const { body: rebuilding } = await client.indices.existsAlias({ name: buildingAlias })
      const targets = rebuilding ? [alias, buildingAlias] : [alias]
      for (const chunk of chunks(ids, batchSize)) {
        const documents = await source.documents(ctx, chunk)
        const present = new Set(documents.map((doc) => doc.id))
        const absent = chunk.filter((id) => !present.has(id))
        const body: unknown[] = []
        for (const target of targets) {
          // require_alias: a write never auto-creates an index under the alias's name.
          for (const doc of documents) body.push({ index: { _index: target, _id: doc.id, require_alias: true } }, indexedDocument(doc))
          // Inactive or deleted products; deleting an id the index lacks answers not_found, no error.
          for (const id of absent) body.push({ delete: { _index: target, _id: id } })
        }
        try {
          // The rebuild may finish (and drop its alias) meanwhile: then the live alias has the write.
          await bulk(body, (failure) => failure.index === buildingAlias && failure.type === 'index_not_found_exception')
        } catch (err) {
          // The alias went away (deleted by hand): recreate it on the retry.
          if (err instanceof BulkIndexingError && err.failures.some((failure) => failure.type === 'index_not_found_exception')) ensured = null
          throw err
        }
      }
      ctx.log.debug({ products: ids.length, targets }, 'search index updated')
    },

    async reindexAll(ctx: Ctx): Promise<number> {
      // A cluster that is down is a typed 503 the operator's command can report in one line.
      return rebuild(ctx).catch((err: unknown) => {
        throw unavailable(err, 'OpenSearch is unavailable')
      })
    },

    async ping(): Promise<void> {
      const { body } = await client.cluster.health({}, { maxRetries: 0, requestTimeout: 5_000 })
      if ((body as { status?: string }).status === 'red') throw new Error('search cluster status is red')
    },

    /** Idempotent: the client's own close never resolves a second time. */
    close: () => (closed ??= client.close()),
  }

  /** A full rebuild into a new index, swapped in under the alias at the end. */
  async function rebuild(ctx: Ctx): Promise<number> {
    // A rebuild that died (or still runs elsewhere) left an index holding the building alias:
    // the newest rebuild wins, the other fails at its alias check below.
    const abandoned = (await family()).filter((entry) => entry.aliases.includes(buildingAlias)).map((entry) => entry.index)
    if (abandoned.length > 0) {
      log.warn({ indices: abandoned }, 'deleting the index of an unfinished search rebuild')
      await client.indices.delete({ index: abandoned.join(',') })
    }
    const index = `${alias}-${timestamp()}`
    await client.indices.create({ index, body: { ...INDEX_BODY, aliases: { [buildingAlias]: {} } } as never })
    let count = 0
    let live: string[]
    try {
      let afterId: string | null = null
      for (;;) {
        const documents = await source.batch(ctx, afterId, batchSize)
        // `create`, not `index`: a product index() wrote meanwhile is fresher than this batch.
        await bulk(
          documents.flatMap((doc) => [{ create: { _index: index, _id: doc.id } }, indexedDocument(doc)]),
          (failure) => failure.action === 'create' && failure.status === 409,
        )
        count += documents.length
        if (documents.length < batchSize) break
        afterId = documents[documents.length - 1]!.id
      }
      await client.indices.refresh({ index })
      const indices = await family()
      if (!indices.some((entry) => entry.index === index && entry.aliases.includes(buildingAlias))) {
        throw new Error(`Search rebuild into ${index} was superseded by a newer one`)
      }
      live = indices.filter((entry) => entry.aliases.includes(alias)).map((entry) => entry.index)
    } catch (err) {
      await client.indices.delete({ index }).catch((cleanupErr: unknown) => log.error({ err: cleanupErr, index }, 'could not delete the unfinished search index'))
      throw err
    }
    // One atomic step: searches see the old index or the new one, never neither.
    await client.indices.updateAliases({
      body: {
        actions: [
          ...live.map((old) => ({ remove: { index: old, alias } })),
          { add: { index, alias } },
          { remove: { index, alias: buildingAlias } },
        ],
      },
    })
    ensured = Promise.resolve()
    if (live.length > 0) await client.indices.delete({ index: live.join(',') })
    log.info({ index, alias, products: count, deleted: live }, 'search index rebuilt and swapped in')
    return count
  }
}
