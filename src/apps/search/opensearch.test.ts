/**
 * The OpenSearch backend against a local stand-in (OpenSearch cannot run here): each test scripts
 * the answers and asserts the exact HTTP exchanges the backend makes. No database is involved:
 * the documents come from an in-memory SearchDocumentSource.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createCtx } from '../../core/context.js'
import type { Db } from '../../core/db/index.js'
import { DependencyUnavailableError, ValidationError } from '../../core/errors.js'
import { createLogger } from '../../core/logging.js'
import { createInProcessQueue, TaskPayloadError, TaskRegistry } from '../../core/queue/index.js'
import {
  acknowledged,
  aliasesOf,
  bulkAnswer,
  clusterHealth,
  indexCreated,
  osError,
  startOpenSearchStandIn,
  type BulkAnswerOptions,
  type OpenSearchStandIn,
  type RecordedRequest,
} from '../../../test/opensearch-stand-in.js'
import type { SearchDocument, SearchDocumentSource, SearchQuery } from './backend.js'
import { BulkIndexingError, createOpenSearchBackend, type OpenSearchBackend } from './opensearch.js'
import { createSearchTasks, INDEX_PRODUCTS_TASK } from './tasks.js'

const log = createLogger({ log: { level: 'silent', pretty: false } })
// The backend hands ctx to the source only; these tests' source never reads the database.
const ctx = createCtx({ db: null as unknown as Db, log, requestId: 'test' })

const P1 = '00000000-0000-4000-8000-000000000001'
const P2 = '00000000-0000-4000-8000-000000000002'
const P3 = '00000000-0000-4000-8000-000000000003'
const GONE = '00000000-0000-4000-8000-0000000000ff'
const SHOES = '10000000-0000-4000-8000-000000000001'
const RUNNING = '10000000-0000-4000-8000-000000000002'

function doc(id: string, name: string, overrides: Partial<SearchDocument> = {}): SearchDocument {
  return {
    id,
    slug: name.toLowerCase().replace(/\W+/g, '-'),
    name,
    description: `${name} & more <b>`,
    category_ids: [SHOES, RUNNING],
    category_names: ['Shoes', 'Running'],
    attributes: [
      { name: 'colour', value: 'red' },
      { name: 'size', value: '42' },
    ],
    price: 4999,
    in_stock: true,
    rating: 4.5,
    created_at: '2025-06-01T10:00:00.000Z',
    ...overrides,
  }
}

const DOCS = [doc(P1, 'Red Running Shoes'), doc(P2, 'Blue Sneakers', { attributes: [], in_stock: false, price: 1999 }), doc(P3, 'Trail Boots')]

/** What the index stores for a document: the attribute fields flattened for search and facets. */
const stored = (d: SearchDocument) => ({
  id: d.id,
  slug: d.slug,
  name: d.name,
  description: d.description,
  category_ids: d.category_ids,
  category_names: d.category_names,
  attribute_values: d.attributes.map((a) => a.value),
  attribute_pairs: d.attributes.map((a) => `${a.name}\u001f${a.value}`),
  price: d.price,
  in_stock: d.in_stock,
  rating: d.rating,
  created_at: d.created_at,
})

/** An in-memory SearchDocumentSource that records how it was asked. */
function memorySource(docs: SearchDocument[]) {
  const calls: string[] = []
  const sorted = [...docs].sort((a, b) => a.id.localeCompare(b.id))
  const source: SearchDocumentSource = {
    documents: async (_ctx, ids) => {
      calls.push(`documents ${ids.join(',')}`)
      return sorted.filter((d) => ids.includes(d.id))
    },
    batch: async (_ctx, afterId, limit) => {
      calls.push(`batch ${afterId ?? 'start'} ${limit}`)
      return sorted.filter((d) => afterId === null || d.id > afterId).slice(0, limit)
    },
  }
  return { source, calls }
}

/** The mapping every new index gets, spelled out: changing it must be deliberate. */
const MAPPING = {
  settings: {
    index: { number_of_shards: 1 },
    analysis: {
      filter: { prefix_edge: { type: 'edge_ngram', min_gram: 2, max_gram: 20 } },
      analyzer: {
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
      category_names: { type: 'text', analyzer: 'english', fields: { prefix: { type: 'text', analyzer: 'prefix_index', search_analyzer: 'prefix_search' } } },
      attribute_values: { type: 'text', analyzer: 'english', fields: { prefix: { type: 'text', analyzer: 'prefix_index', search_analyzer: 'prefix_search' } } },
      attribute_pairs: { type: 'keyword' },
      description: { type: 'text', analyzer: 'english' },
      category_ids: { type: 'keyword' },
      price: { type: 'integer' },
      in_stock: { type: 'boolean' },
      rating: { type: 'float' },
      created_at: { type: 'date' },
    },
  },
}

const exchanges = (requests: RecordedRequest[]) => requests.map((request) => `${request.method} ${request.path}`)
const NEW_INDEX = /^\/products-\d{17}$/

let standIn: OpenSearchStandIn
let backend: OpenSearchBackend | undefined

beforeAll(async () => {
  standIn = await startOpenSearchStandIn()
})
afterAll(() => standIn.close())
beforeEach(() => standIn.reset())
afterEach(async () => {
  await backend?.close()
  backend = undefined
})

function makeBackend(source: SearchDocumentSource, options: { batchSize?: number; indexPrefix?: string } = {}): OpenSearchBackend {
  const created = createOpenSearchBackend({ url: standIn.url, source, log, ...options })
  backend = created
  return created
}

describe('OpenSearch backend: index()', () => {
  it('creates the alias with its first index and the explicit mapping when the alias is missing', async () => {
    standIn
      .on('HEAD', '/_alias/products', { status: 404 })
      .on('PUT', '/products-initial', indexCreated('products-initial'))
      .on('HEAD', '/_alias/products-building', { status: 404 })
      .on('POST', '/_bulk', (request) => bulkAnswer(request))
    const { source } = memorySource(DOCS)

    await makeBackend(source).index(ctx, [P1])

    expect(exchanges(standIn.requests)).toEqual(['HEAD /_alias/products', 'PUT /products-initial', 'HEAD /_alias/products-building', 'POST /_bulk'])
    expect(standIn.requests[1]!.body).toEqual({ ...MAPPING, aliases: { products: {} } })
    expect(standIn.requests[1]!.headers['content-type']).toBe('application/json')
  })

  it('upserts the present products and deletes the absent ones in one NDJSON bulk without refresh', async () => {
    standIn
      .on('HEAD', '/_alias/products', { status: 200 })
      .on('HEAD', '/_alias/products-building', { status: 404 })
      .on('POST', '/_bulk', (request) => bulkAnswer(request, { missing: (id) => id === GONE }))
    const { source, calls } = memorySource(DOCS)

    await makeBackend(source).index(ctx, [P1, GONE, P2, P1])

    expect(calls).toEqual([`documents ${P1},${GONE},${P2}`])
    expect(exchanges(standIn.requests)).toEqual(['HEAD /_alias/products', 'HEAD /_alias/products-building', 'POST /_bulk'])
    const bulk = standIn.requests[2]!
    expect(bulk.query).toEqual({ refresh: 'false' })
    expect(bulk.headers['content-type']).toBe('application/x-ndjson')
    expect(bulk.body).toEqual([
      { index: { _index: 'products', _id: P1, require_alias: true } },
      stored(DOCS[0]!),
      { index: { _index: 'products', _id: P2, require_alias: true } },
      stored(DOCS[1]!),
      { delete: { _index: 'products', _id: GONE } },
    ])
  })

  it('writes through the building alias too while a rebuild runs, and tolerates that alias vanishing', async () => {
    standIn
      .on('HEAD', '/_alias/products', { status: 200 })
      .on('HEAD', '/_alias/products-building', { status: 200 })
      // The rebuild swapped its index in between: the building alias is gone.
      .on('POST', '/_bulk', (request) =>
        bulkAnswer(request, {
          fail: (_action, _id, index) => (index === 'products-building' ? { status: 404, type: 'index_not_found_exception', reason: 'no such index [products-building]' } : null),
          missing: (id) => id === GONE,
        }),
      )
    const { source } = memorySource(DOCS)

    await makeBackend(source).index(ctx, [P3, GONE])

    expect(standIn.requests[2]!.body).toEqual([
      { index: { _index: 'products', _id: P3, require_alias: true } },
      stored(DOCS[2]!),
      { delete: { _index: 'products', _id: GONE } },
      { index: { _index: 'products-building', _id: P3, require_alias: true } },
      stored(DOCS[2]!),
      { delete: { _index: 'products-building', _id: GONE } },
    ])
  })

  it('splits large updates into bulks of batchSize products', async () => {
    standIn
      .on('HEAD', '/_alias/products', { status: 200 })
      .on('HEAD', '/_alias/products-building', { status: 404 })
      .on('POST', '/_bulk', (request) => bulkAnswer(request))
    const { source, calls } = memorySource(DOCS)

    await makeBackend(source, { batchSize: 2 }).index(ctx, [P1, P2, P3])

    expect(calls).toEqual([`documents ${P1},${P2}`, `documents ${P3}`])
    expect(exchanges(standIn.requests)).toEqual(['HEAD /_alias/products', 'HEAD /_alias/products-building', 'POST /_bulk', 'POST /_bulk'])
    expect((standIn.requests[3]!.body as unknown[])[0]).toEqual({ index: { _index: 'products', _id: P3, require_alias: true } })
  })

  it('rejects with BulkIndexingError naming the failed items when the bulk answer has errors', async () => {
    standIn
      .on('HEAD', '/_alias/products', { status: 200 })
      .on('HEAD', '/_alias/products-building', { status: 404 })
      .on('POST', '/_bulk', (request) =>
        bulkAnswer(request, { fail: (_action, id) => (id === P2 ? { status: 400, type: 'mapper_parsing_exception', reason: 'failed to parse field [price]' } : null) }),
      )
    const { source } = memorySource(DOCS)

    const error = await makeBackend(source).index(ctx, [P1, P2]).catch((err: unknown) => err)

    expect(error).toBeInstanceOf(BulkIndexingError)
    expect((error as BulkIndexingError).failures).toEqual([
      { action: 'index', id: P2, index: 'products', status: 400, type: 'mapper_parsing_exception', reason: 'failed to parse field [price]' },
    ])
    expect((error as Error).message).toContain(`index ${P2} in products: 400 mapper_parsing_exception`)
  })

  it('checks the alias again on the next call when a write found it missing', async () => {
    let aliasExists = true
    standIn
      .on('HEAD', '/_alias/products', () => ({ status: aliasExists ? 200 : 404 }))
      .on('HEAD', '/_alias/products-building', { status: 404 })
      .on('PUT', '/products-initial', indexCreated('products-initial'))
      .on('POST', '/_bulk', (request) => {
        if (aliasExists) {
          aliasExists = false // deleted by hand after the check
          return bulkAnswer(request, { fail: () => ({ status: 404, type: 'index_not_found_exception', reason: 'no such index [products] and [require_alias] request flag is [true] and [products] is not an alias' }) })
        }
        return bulkAnswer(request)
      })
    const { source } = memorySource(DOCS)
    const target = makeBackend(source)

    await expect(target.index(ctx, [P1])).rejects.toBeInstanceOf(BulkIndexingError)
    await target.index(ctx, [P1])

    expect(exchanges(standIn.requests)).toEqual([
      'HEAD /_alias/products',
      'HEAD /_alias/products-building',
      'POST /_bulk',
      'HEAD /_alias/products',
      'PUT /products-initial',
      'HEAD /_alias/products-building',
      'POST /_bulk',
    ])
  })
})

const QUERY: SearchQuery = {
  text: 'Red shoes',
  groups: [['red'], ['shoes', 'sneakers']],
  filters: { categoryIds: [SHOES, RUNNING], minPrice: 1000, maxPrice: 5000, inStock: true },
  ordering: '-price',
  offset: 20,
  limit: 10,
}

const TEXT_FIELDS = ['name^4', 'category_names^3', 'attribute_values^2', 'description']
const PREFIX_FIELDS = ['name.prefix^4', 'category_names.prefix^3', 'attribute_values.prefix^2']
const termClauses = (term: string) => [
  { multi_match: { query: term, fields: TEXT_FIELDS, type: 'best_fields', operator: 'and', fuzziness: 'AUTO', prefix_length: 1 } },
  { multi_match: { query: term, fields: PREFIX_FIELDS, type: 'best_fields', operator: 'and' } },
]
const AGGREGATIONS = {
  categories: { terms: { field: 'category_ids', size: 1000 } },
  prices: {
    range: {
      field: 'price',
      ranges: [
        { key: '0', from: 0, to: 1000 },
        { key: '1', from: 1000, to: 2500 },
        { key: '2', from: 2500, to: 5000 },
        { key: '3', from: 5000, to: 10000 },
        { key: '4', from: 10000, to: 25000 },
        { key: '5', from: 25000 },
      ],
    },
  },
  attributes: { terms: { field: 'attribute_pairs', size: 500 } },
}

/** A `_search` answer as OpenSearch writes it (sorted by price, so no scores). */
const SEARCH_ANSWER = {
  took: 7,
  timed_out: false,
  _shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
  hits: {
    total: { value: 42, relation: 'eq' },
    max_score: null,
    hits: [
      {
        _index: 'products-20250601100000000',
        _id: P1,
        _score: null,
        sort: [4999, P1],
        highlight: {
          name: ['<mark>Red</mark> Running Shoes'],
          'name.prefix': ['<mark>Red</mark> Running <mark>Shoes</mark>'],
          description: ['Light &amp; fast <mark>shoes</mark> for &lt;10k runs'],
        },
      },
      {
        _index: 'products-20250601100000000',
        _id: P2,
        _score: null,
        sort: [1999, P2],
        // no_match_size: fields without a match come back whole (names) or as a snippet, unmarked.
        highlight: { name: ['Blue Sneakers'], 'name.prefix': ['Blue <mark>Sneakers</mark>'], description: ['Canvas upper, rubber sole &amp; laces'] },
      },
      // An empty description has no snippet at all.
      { _index: 'products-20250601100000000', _id: P3, _score: null, sort: [1500, P3], highlight: { name: ['Trail &lt;Boots&gt;'], 'name.prefix': ['Trail &lt;Boots&gt;'] } },
    ],
  },
  aggregations: {
    categories: { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets: [{ key: RUNNING, doc_count: 42 }, { key: SHOES, doc_count: 30 }] },
    prices: {
      buckets: [
        { key: '0', from: 0.0, to: 1000.0, doc_count: 0 },
        { key: '1', from: 1000.0, to: 2500.0, doc_count: 12 },
        { key: '2', from: 2500.0, to: 5000.0, doc_count: 30 },
        { key: '3', from: 5000.0, to: 10000.0, doc_count: 0 },
        { key: '4', from: 10000.0, to: 25000.0, doc_count: 0 },
        { key: '5', from: 25000.0, doc_count: 0 },
      ],
    },
    attributes: {
      doc_count_error_upper_bound: 0,
      sum_other_doc_count: 0,
      buckets: [
        { key: 'colour\u001fred', doc_count: 20 },
        { key: 'size\u001f42', doc_count: 7 },
      ],
    },
  },
}

describe('OpenSearch backend: search()', () => {
  it('sends weighted, typo-tolerant groups with prefixes, the filters, the order, the page, facets and highlights', async () => {
    standIn.on('HEAD', '/_alias/products', { status: 200 }).on('POST', '/products/_search', { status: 200, body: SEARCH_ANSWER })
    const { source } = memorySource([])

    await makeBackend(source).search(ctx, QUERY)

    expect(exchanges(standIn.requests)).toEqual(['HEAD /_alias/products', 'POST /products/_search'])
    expect(standIn.requests[1]!.body).toEqual({
      from: 20,
      size: 10,
      track_total_hits: true,
      _source: false,
      query: {
        bool: {
          must: [
            { bool: { should: termClauses('red'), minimum_should_match: 1 } },
            { bool: { should: [...termClauses('shoes'), ...termClauses('sneakers')], minimum_should_match: 1 } },
          ],
          filter: [{ terms: { category_ids: [SHOES, RUNNING] } }, { range: { price: { gte: 1000, lte: 5000 } } }, { term: { in_stock: true } }],
          should: [
            { term: { 'name.keyword': { value: 'red shoes', boost: 10 } } },
            { match_phrase: { name: { query: 'Red shoes', boost: 4 } } },
          ],
        },
      },
      sort: [{ price: { order: 'desc' } }, { id: { order: 'desc' } }],
      aggs: AGGREGATIONS,
      highlight: {
        encoder: 'html',
        pre_tags: ['<mark>'],
        post_tags: ['</mark>'],
        fields: {
          name: { number_of_fragments: 0, no_match_size: 1000 },
          'name.prefix': { number_of_fragments: 0, no_match_size: 1000 },
          description: { fragment_size: 160, number_of_fragments: 1, no_match_size: 160 },
        },
      },
    })
  })

  it('answers total, hits with merged escaped highlights and facets parsed from the response', async () => {
    standIn.on('HEAD', '/_alias/products', { status: 200 }).on('POST', '/products/_search', { status: 200, body: SEARCH_ANSWER })
    const { source } = memorySource([])

    const result = await makeBackend(source).search(ctx, QUERY)

    expect(result).toEqual({
      total: 42,
      hits: [
        {
          productId: P1,
          highlight: { name: '<mark>Red</mark> Running <mark>Shoes</mark>', description: 'Light &amp; fast <mark>shoes</mark> for &lt;10k runs' },
        },
        { productId: P2, highlight: { name: 'Blue <mark>Sneakers</mark>', description: 'Canvas upper, rubber sole &amp; laces' } },
        { productId: P3, highlight: { name: 'Trail &lt;Boots&gt;', description: null } },
      ],
      facets: {
        categories: [
          { categoryId: RUNNING, count: 42 },
          { categoryId: SHOES, count: 30 },
        ],
        prices: [
          { bucket: 1, count: 12 },
          { bucket: 2, count: 30 },
        ],
        attributes: [
          { name: 'colour', value: 'red', count: 20 },
          { name: 'size', value: '42', count: 7 },
        ],
      },
    })
  })

  it('browses by relevance then id without text clauses or highlights when there are no words', async () => {
    standIn
      .on('HEAD', '/_alias/shop-products', { status: 200 })
      .on('POST', '/shop-products/_search', { status: 200, body: { ...SEARCH_ANSWER, hits: { total: { value: 0, relation: 'eq' }, max_score: null, hits: [] } } })
    const { source } = memorySource([])

    const target = makeBackend(source, { indexPrefix: 'Shop:' })
    const result = await target.search(ctx, { text: '', groups: [], filters: { inStock: false }, ordering: 'relevance', offset: 0, limit: 24 })

    expect(target.alias).toBe('shop-products')
    expect(result.total).toBe(0)
    expect(standIn.requests[1]!.body).toEqual({
      from: 0,
      size: 24,
      track_total_hits: true,
      _source: false,
      query: { bool: { must: [], filter: [{ term: { in_stock: false } }] } },
      sort: [{ _score: { order: 'desc' } }, { id: { order: 'asc' } }],
      aggs: AGGREGATIONS,
    })
  })

  it('sorts by name on the lower-cased keyword, then id, in the same direction', async () => {
    standIn.on('HEAD', '/_alias/products', { status: 200 }).on('POST', '/products/_search', { status: 200, body: SEARCH_ANSWER })
    const { source } = memorySource([])

    await makeBackend(source).search(ctx, { ...QUERY, ordering: 'name', filters: {} })

    const body = standIn.requests[1]!.body as { sort: unknown; query: { bool: { filter: unknown } } }
    expect(body.sort).toEqual([{ 'name.keyword': { order: 'asc' } }, { id: { order: 'asc' } }])
    expect(body.query.bool.filter).toEqual([])
  })

  it('asks for no aggregations when the caller wants no facets', async () => {
    standIn
      .on('HEAD', '/_alias/products', { status: 200 })
      .on('POST', '/products/_search', { status: 200, body: { ...SEARCH_ANSWER, aggregations: undefined } })
    const { source } = memorySource([])

    const result = await makeBackend(source).search(ctx, { ...QUERY, facets: false })

    expect(standIn.requests[1]!.body).not.toHaveProperty('aggs')
    expect(result.facets).toEqual({ categories: [], prices: [], attributes: [] })
    expect(result.hits.map((hit) => hit.productId)).toEqual([P1, P2, P3])
  })

  it('refuses a page beyond the result window with a 422 before asking OpenSearch', async () => {
    const { source } = memorySource([])

    const error = await makeBackend(source).search(ctx, { ...QUERY, offset: 9_995, limit: 10 }).catch((err: unknown) => err)

    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).errors).toEqual({ offset: ['offset + limit must not exceed 10000.'] })
    expect(standIn.requests).toEqual([])
  })

  it('throws DependencyUnavailableError (503) when OpenSearch answers 503', async () => {
    standIn.on('HEAD', '/_alias/products', { status: 200 }).on('POST', '/products/_search', osError(503, 'cluster_block_exception', 'blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized]'))
    const { source } = memorySource([])

    const error = await makeBackend(source).search(ctx, QUERY).catch((err: unknown) => err)

    expect(error).toBeInstanceOf(DependencyUnavailableError)
    expect((error as DependencyUnavailableError).status).toBe(503)
  })
})

describe('OpenSearch backend: reindexAll()', () => {
  /** A cluster with the live index `products-initial`; the family lookup shows what was created since. */
  function scriptRebuild(options: { fail?: BulkAnswerOptions['fail']; abandoned?: string } = {}) {
    let created: string | null = null
    let abandoned = options.abandoned ?? null
    standIn
      .on('GET', '/products-*/_alias', () =>
        aliasesOf({
          'products-initial': ['products'],
          ...(abandoned ? { [abandoned]: ['products-building'] } : {}),
          ...(created ? { [created]: ['products-building'] } : {}),
        }),
      )
      .on('DELETE', /^\/products-\d+$/, (request) => {
        if (request.path === `/${abandoned}`) abandoned = null
        return acknowledged()
      })
      .on('PUT', NEW_INDEX, (request) => {
        created = request.path.slice(1)
        return indexCreated(created)
      })
      .on('POST', '/_bulk', (request) => bulkAnswer(request, options.fail ? { fail: options.fail } : {}))
      .on('GET', /^\/products-\d+\/_refresh$/, { status: 200, body: { _shards: { total: 2, successful: 1, failed: 0 } } })
      .on('POST', '/_aliases', acknowledged())
      .on('DELETE', '/products-initial', acknowledged())
  }

  it('fills a new index in batches, refreshes it, swaps the alias atomically and deletes the old index', async () => {
    scriptRebuild({ fail: (action, id) => (action === 'create' && id === P2 ? { status: 409, type: 'version_conflict_engine_exception', reason: `[${P2}]: version conflict, document already exists` } : null) })
    const { source, calls } = memorySource(DOCS)

    const count = await makeBackend(source, { batchSize: 2 }).reindexAll(ctx)

    expect(count).toBe(3)
    expect(calls).toEqual(['batch start 2', `batch ${P2} 2`])
    const index = standIn.requests[1]!.path.slice(1)
    expect(index).toMatch(/^products-\d{17}$/)
    expect(exchanges(standIn.requests)).toEqual([
      'GET /products-*/_alias',
      `PUT /${index}`,
      'POST /_bulk',
      'POST /_bulk',
      `GET /${index}/_refresh`,
      'GET /products-*/_alias',
      'POST /_aliases',
      'DELETE /products-initial',
    ])
    expect(standIn.requests[1]!.body).toEqual({ ...MAPPING, aliases: { 'products-building': {} } })
    // `create`: a product written meanwhile through the building alias is fresher (its 409 is fine).
    expect(standIn.requests[2]!.body).toEqual([
      { create: { _index: index, _id: P1 } },
      stored(DOCS[0]!),
      { create: { _index: index, _id: P2 } },
      stored(DOCS[1]!),
    ])
    expect(standIn.requests[3]!.body).toEqual([{ create: { _index: index, _id: P3 } }, stored(DOCS[2]!)])
    expect(standIn.requests[2]!.query).toEqual({ refresh: 'false' })
    expect(standIn.requests[6]!.body).toEqual({
      actions: [
        { remove: { index: 'products-initial', alias: 'products' } },
        { add: { index, alias: 'products' } },
        { remove: { index, alias: 'products-building' } },
      ],
    })
  })

  it('deletes the index of an interrupted rebuild before starting', async () => {
    scriptRebuild({ abandoned: 'products-20250101000000000' })
    const { source } = memorySource(DOCS)

    await makeBackend(source).reindexAll(ctx)

    expect(exchanges(standIn.requests).slice(0, 3)).toEqual(['GET /products-*/_alias', 'DELETE /products-20250101000000000', `PUT ${standIn.requests[2]!.path}`])
    expect(standIn.requests[2]!.path).toMatch(NEW_INDEX)
  })

  it('deletes its new index and leaves the alias alone when a bulk fails', async () => {
    scriptRebuild({ fail: (_action, id) => (id === P3 ? { status: 400, type: 'mapper_parsing_exception', reason: 'failed to parse field [created_at]' } : null) })
    const { source } = memorySource(DOCS)

    await expect(makeBackend(source, { batchSize: 2 }).reindexAll(ctx)).rejects.toBeInstanceOf(BulkIndexingError)

    const index = standIn.requests[1]!.path
    expect(exchanges(standIn.requests)).toEqual(['GET /products-*/_alias', `PUT ${index}`, 'POST /_bulk', 'POST /_bulk', `DELETE ${index}`])
  })
})

describe('OpenSearch backend: ping()', () => {
  it('resolves when the cluster health is green or yellow', async () => {
    standIn.on('GET', '/_cluster/health', clusterHealth('yellow'))
    const { source } = memorySource([])

    await makeBackend(source).ping()

    expect(exchanges(standIn.requests)).toEqual(['GET /_cluster/health'])
  })

  it('rejects at the first 503, without retrying', async () => {
    standIn.on('GET', '/_cluster/health', osError(503, 'master_not_discovered_exception', 'no cluster-manager'))
    const { source } = memorySource([])

    await expect(makeBackend(source).ping()).rejects.toThrow(/master_not_discovered_exception/)
    expect(exchanges(standIn.requests)).toEqual(['GET /_cluster/health'])
  })

  it('rejects when the cluster is red', async () => {
    standIn.on('GET', '/_cluster/health', clusterHealth('red'))
    const { source } = memorySource([])

    await expect(makeBackend(source).ping()).rejects.toThrow('search cluster status is red')
  })

  it('rejects when nothing listens at the URL', async () => {
    const gone = await startOpenSearchStandIn()
    await gone.close()
    const down = createOpenSearchBackend({ url: gone.url, source: memorySource([]).source, log })

    await expect(down.ping()).rejects.toThrow(/ECONNREFUSED|connect/i)
    await down.close()
    await down.close() // closing twice resolves too

  })
})

describe(createSearchTasks.name, () => {
  function queueFor(target: OpenSearchBackend) {
    const registry = new TaskRegistry()
    for (const task of createSearchTasks(target, () => ctx)) registry.register(task)
    return createInProcessQueue({ registry, log, settings: { backoffMs: 1, defaultAttempts: 1, defaultTimeoutMs: 5_000 } })
  }

  it('indexes the products of a catalog.products_changed envelope and of a bare payload', async () => {
    standIn
      .on('HEAD', '/_alias/products', { status: 200 })
      .on('HEAD', '/_alias/products-building', { status: 404 })
      .on('POST', '/_bulk', (request) => bulkAnswer(request, { missing: (id) => id === GONE }))
    const queue = queueFor(makeBackend(memorySource(DOCS).source))

    await queue.enqueue(INDEX_PRODUCTS_TASK, { id: 'event-1', name: 'catalog.products_changed', occurred_at: '2025-06-01T10:00:00.000Z', payload: { product_ids: [P1] } })
    await queue.drain()
    await queue.enqueue(INDEX_PRODUCTS_TASK, { product_ids: [GONE] })
    await queue.drain()

    expect((await queue.stats())).toMatchObject({ completed: 2, failed: 0 })
    const bulks = standIn.requests.filter((request) => request.path === '/_bulk').map((request) => request.body)
    expect(bulks).toEqual([[{ index: { _index: 'products', _id: P1, require_alias: true } }, stored(DOCS[0]!)], [{ delete: { _index: 'products', _id: GONE } }]])
    await queue.close()
  })

  it('refuses a payload without product ids when enqueued', async () => {
    const queue = queueFor(makeBackend(memorySource(DOCS).source))

    await expect(queue.enqueue(INDEX_PRODUCTS_TASK, { ids: [P1] })).rejects.toBeInstanceOf(TaskPayloadError)
    await queue.close()
  })
})
