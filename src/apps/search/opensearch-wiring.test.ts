/**
 * The OpenSearch backend wired into the running app (ELASTICSEARCH_URL set): catalog changes reach
 * the index after commit through the outbox and the `search.index_products` task, searches go to
 * the index and come back as products read from the database, an outage answers 503, and
 * `manage search_reindex` rebuilds the index as a real process. A local stand-in plays OpenSearch
 * (test/opensearch-stand-in.ts); the tests assert the exact HTTP exchanges it receives.
 *
 * Waiting is on real signals: `relay.flush()` resolves once every committed event has been handed
 * to the queue, `queue.drain()` once no job is waiting, running or due for a retry.
 *
 * The app keeps one OpenSearch client for the file, as a process does: the first indexing test
 * sees the alias created on first use, and later tests find it known. Run the file whole.
 */
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp, usesPostgres } from '../../../test/harness.js'
import { dropDatabase, testServerUrl, uniqueName, urlFor, withAdmin } from '../../../test/database.js'
import {
  acknowledged,
  aliasesOf,
  bulkAnswer,
  clusterHealth,
  indexCreated,
  osError,
  startOpenSearchStandIn,
  type OpenSearchStandIn,
  type RecordedRequest,
} from '../../../test/opensearch-stand-in.js'
import { expectProblem } from '../../../test/problems.js'
import { envNames } from '../../config/env.js'
import { loadSettings, projectRoot } from '../../config/index.js'
import { createMemoryCache } from '../../core/cache.js'
import { createCtx } from '../../core/context.js'
import { createDatabase } from '../../core/db/index.js'
import { createLogger } from '../../core/logging.js'
import { createCatalogCache } from '../products/catalog-cache.js'
import { createCatalog, type ProductDto, type ProductInput } from '../products/catalog.js'
import { createProductsService } from '../products/service.js'
import { INDEX_PRODUCTS_TASK } from './tasks.js'

/** The cache key prefix names the index family: `wiring_<hex>:` gives the alias `wiring_<hex>-products`. */
const PREFIX = `wiring_${randomBytes(4).toString('hex')}`
const ALIAS = `${PREFIX}-products`
const BUILDING = `${ALIAS}-building`
const INITIAL = `${ALIAS}-initial`
const SEARCH = `/${ALIAS}/_search`
const PAIR = '\u001f'

interface Category {
  id: string
  slug: string
  name: string
}

let standIn: OpenSearchStandIn
let t: TestApp
let f: ReturnType<typeof factories>
let staff: MadeUser
let clothing: Category
let shirts: Category
/** The alias exists once the app created its first index (the stand-in's cluster state). */
let aliasCreated = false

/** A cluster that answers what the app asks while indexing and probing. */
function scriptCluster(target: OpenSearchStandIn): void {
  target
    .on('HEAD', `/_alias/${ALIAS}`, () => ({ status: aliasCreated ? 200 : 404 }))
    .on('PUT', `/${INITIAL}`, () => {
      aliasCreated = true
      return indexCreated(INITIAL)
    })
    .on('HEAD', `/_alias/${BUILDING}`, { status: 404 })
    .on('POST', '/_bulk', (request) => bulkAnswer(request))
    .on('GET', '/_cluster/health', clusterHealth('green'))
}

/** Every committed change has gone through the outbox relay and the index task. */
async function settle(): Promise<void> {
  await t.app.platform.relay.flush()
  await t.app.platform.queue.drain()
}

const exchanges = (requests: RecordedRequest[] = standIn.requests) => requests.map((request) => `${request.method} ${request.path}`)
const bulkBodies = () => standIn.requests.filter((request) => request.path === '/_bulk').map((request) => request.body)
const forget = () => {
  standIn.requests.length = 0
}

async function asStaff(method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) {
  return t.request({ method, url, headers: await f.auth(staff), ...(payload ? { payload } : {}) })
}

async function createProduct(input: ProductInput): Promise<ProductDto> {
  const res = await asStaff('POST', '/api/products/', input)
  expect(res.statusCode, res.body).toBe(201)
  return res.json<ProductDto>()
}

async function createCategory(body: { name: string; parent?: string }): Promise<Category> {
  const res = await asStaff('POST', '/api/categories/', body)
  expect(res.statusCode, res.body).toBe(201)
  return res.json<Category>()
}

interface CategoryNode extends Category {
  children: CategoryNode[]
}

async function categoryTree(slug: string): Promise<CategoryNode> {
  const res = await t.request({ method: 'GET', url: `/api/categories/${slug}/` })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<CategoryNode>()
}

const subtreeIds = (node: CategoryNode): string[] => [node.id, ...node.children.flatMap(subtreeIds)]

const sku = (label: string) => `${label}-${randomUUID().slice(0, 8)}`.toUpperCase()

beforeAll(async () => {
  standIn = await startOpenSearchStandIn()
  scriptCluster(standIn)
  t = await createTestApp({ env: { ELASTICSEARCH_URL: standIn.url, CACHE_KEY_PREFIX: `${PREFIX}:` } })
  f = factories(t)
  staff = await f.user({ role: 'staff' })
  clothing = await createCategory({ name: 'Clothing' })
  shirts = await createCategory({ name: 'Shirts', parent: clothing.slug })
  await settle()
})
afterAll(async () => {
  await t?.close()
  await standIn?.close()
})
afterEach(async () => {
  // The index task may retry, but every job must end up done.
  expect(await t.app.platform.queue.failed()).toEqual([])
})

describe('catalog changes reach OpenSearch after commit', () => {
  it('creates the alias with its first index on first use, then bulk-indexes the product staff created', async () => {
    forget()
    const product = await createProduct({
      name: 'Linen Shirt',
      description: 'Breathable <linen> & cotton',
      category: shirts.slug,
      attributes: { material: 'linen' },
      variants: [
        { sku: sku('LS-A'), price: 3000, stock: 2, attributes: { colour: 'white' } },
        { sku: sku('LS-B'), price: 2800 },
      ],
    })
    await settle()

    expect(exchanges()).toEqual([`HEAD /_alias/${ALIAS}`, `PUT /${INITIAL}`, `HEAD /_alias/${BUILDING}`, 'POST /_bulk'])
    expect(standIn.requests[1]!.body).toMatchObject({ aliases: { [ALIAS]: {} }, mappings: { dynamic: 'strict' } })
    const bulk = standIn.requests[3]!
    expect(bulk.query).toEqual({ refresh: 'false' })
    expect(bulk.headers['content-type']).toBe('application/x-ndjson')
    expect(bulk.body).toEqual([
      { index: { _index: ALIAS, _id: product.id, require_alias: true } },
      {
        id: product.id,
        slug: 'linen-shirt',
        name: 'Linen Shirt',
        description: 'Breathable <linen> & cotton',
        // The category and its ancestors: a filter on Clothing finds it.
        category_ids: [shirts.id, clothing.id],
        category_names: ['Shirts', 'Clothing'],
        attribute_values: ['linen', 'white'],
        attribute_pairs: [`material${PAIR}linen`, `colour${PAIR}white`],
        price: 2800,
        in_stock: true,
        rating: 0,
        created_at: product.created_at,
      },
    ])
  })

  it('re-indexes the products of a category with its new name when staff rename it', async () => {
    const knitwear = await createCategory({ name: 'Knitwear', parent: clothing.slug })
    const jumper = await createProduct({ name: 'Wool Jumper', category: knitwear.slug, variants: [{ sku: sku('WJ'), price: 5900, stock: 1 }] })
    await settle()
    forget()

    const res = await asStaff('PATCH', `/api/categories/${knitwear.slug}/`, { name: 'Knits' })
    expect(res.statusCode, res.body).toBe(200)
    await settle()

    expect(exchanges()).toEqual([`HEAD /_alias/${BUILDING}`, 'POST /_bulk'])
    expect(bulkBodies()).toEqual([
      [
        { index: { _index: ALIAS, _id: jumper.id, require_alias: true } },
        expect.objectContaining({ id: jumper.id, category_ids: [knitwear.id, clothing.id], category_names: ['Knits', 'Clothing'], in_stock: true }),
      ],
    ])
  })

  it('bulk-deletes the id of a product staff deleted', async () => {
    const product = await createProduct({ name: 'Short-lived Scarf', variants: [{ sku: sku('SS'), price: 1500 }] })
    await settle()
    forget()

    const res = await asStaff('DELETE', `/api/products/${product.slug}/`)
    expect(res.statusCode).toBe(204)
    await settle()

    expect(exchanges()).toEqual([`HEAD /_alias/${BUILDING}`, 'POST /_bulk'])
    expect(bulkBodies()).toEqual([[{ delete: { _index: ALIAS, _id: product.id } }]])
  })

  it('re-indexes in_stock when availability crosses zero (reserve, release, a count of 0) and sends nothing when it does not', async () => {
    const code = sku('CAP')
    const product = await createProduct({ name: 'Canvas Cap', variants: [{ sku: code, price: 1200, stock: 3 }] })
    await settle()
    const inventory = createProductsService({ cache: createCatalogCache(t.app.platform.cache) })
    const indexedStock = () => bulkBodies().map((body) => [(body as Array<{ in_stock?: boolean }>)[1]!.in_stock])

    forget()
    expect((await asStaff('PATCH', `/api/products/variants/${code}/stock/`, { quantity: 2 })).statusCode).toBe(200)
    await settle()
    expect(standIn.requests).toEqual([])

    const reference = `ORD-${randomUUID().slice(0, 8)}`
    await inventory.reserve(t.app.platform.context(), reference, [{ sku: code, quantity: 2 }])
    await settle()
    expect(exchanges()).toEqual([`HEAD /_alias/${BUILDING}`, 'POST /_bulk'])
    expect((bulkBodies()[0] as unknown[])[0]).toEqual({ index: { _index: ALIAS, _id: product.id, require_alias: true } })
    expect(indexedStock()).toEqual([[false]])

    forget()
    await inventory.release(t.app.platform.context(), reference)
    await settle()
    expect(indexedStock()).toEqual([[true]])

    forget()
    expect((await asStaff('PATCH', `/api/products/variants/${code}/stock/`, { quantity: 0 })).statusCode).toBe(200)
    await settle()
    expect(indexedStock()).toEqual([[false]])
  })
})

describe('rolled-back changes send nothing to OpenSearch', () => {
  it('sends nothing for creates refused with 422 and 409, and indexes the committed edit that follows', async () => {
    const taken = sku('TAKEN')
    const existing = await createProduct({ name: 'Striped Tee', variants: [{ sku: taken, price: 1900 }] })
    await settle()
    forget()

    // Both fail inside the transaction, after the product row was inserted.
    expectProblem(await asStaff('POST', '/api/products/', { name: 'Copycat Tee', variants: [{ sku: taken, price: 100 }] }), 422, 'validation_error')
    expectProblem(await asStaff('POST', '/api/products/', { name: 'Slug Thief', slug: existing.slug, variants: [{ sku: sku('ST'), price: 100 }] }), 409)
    const edited = await asStaff('PATCH', `/api/products/${existing.slug}/`, { name: 'Striped Tee Classic' })
    expect(edited.statusCode, edited.body).toBe(200)
    await settle()

    expect(exchanges()).toEqual([`HEAD /_alias/${BUILDING}`, 'POST /_bulk'])
    expect(bulkBodies()).toEqual([[{ index: { _index: ALIAS, _id: existing.id, require_alias: true } }, expect.objectContaining({ name: 'Striped Tee Classic' })]])
  })

  it('sends nothing for a sell-out whose transaction the caller rolled back', async () => {
    const code = sku('SOCK')
    await createProduct({ name: 'Wool Socks', variants: [{ sku: code, price: 900, stock: 1 }] })
    await settle()
    forget()
    const inventory = createProductsService({ cache: createCatalogCache(t.app.platform.cache) })

    // Checkout reserves in its own transaction; a later failure there undoes the reservation and its event.
    const outcome = await t.app.platform
      .context()
      .tx(async (tx) => {
        await inventory.reserve(tx, `ORD-${randomUUID().slice(0, 8)}`, [{ sku: code, quantity: 1 }])
        throw new Error('payment refused')
      })
      .catch((err: unknown) => err)
    await settle()

    expect((outcome as Error).message).toBe('payment refused')
    expect(standIn.requests).toEqual([])
  })
})

const TEXT_FIELDS = ['name^4', 'category_names^3', 'attribute_values^2', 'description']
const PREFIX_FIELDS = ['name.prefix^4', 'category_names.prefix^3', 'attribute_values.prefix^2']
/** One query word with its alternatives: any of them, fuzzily or as a prefix. */
const group = (...terms: string[]) => ({
  bool: {
    should: terms.flatMap((term) => [
      { multi_match: { query: term, fields: TEXT_FIELDS, type: 'best_fields', operator: 'and', fuzziness: 'AUTO', prefix_length: 1 } },
      { multi_match: { query: term, fields: PREFIX_FIELDS, type: 'best_fields', operator: 'and' } },
    ]),
    minimum_should_match: 1,
  },
})
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
const HIGHLIGHT = {
  encoder: 'html',
  pre_tags: ['<mark>'],
  post_tags: ['</mark>'],
  fields: {
    name: { number_of_fragments: 0, no_match_size: 1000 },
    'name.prefix': { number_of_fragments: 0, no_match_size: 1000 },
    description: { fragment_size: 160, number_of_fragments: 1, no_match_size: 160 },
  },
}

/** A `_search` answer as OpenSearch writes it: these hits, in this order. */
function searchAnswer(hits: Array<{ id: string; highlight?: Record<string, string[]> }>, total: number, aggregations?: Record<string, unknown>) {
  return {
    status: 200,
    body: {
      took: 4,
      timed_out: false,
      _shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
      hits: {
        total: { value: total, relation: 'eq' },
        max_score: 7.5,
        hits: hits.map((hit, i) => ({ _index: INITIAL, _id: hit.id, _score: 7.5 - i, sort: [7.5 - i, hit.id], ...(hit.highlight ? { highlight: hit.highlight } : {}) })),
      },
      ...(aggregations ? { aggregations } : {}),
    },
  }
}

interface SearchBody {
  count: number
  next: string | null
  previous: string | null
  results: Array<ProductDto & { highlight: { name: string | null; description: string | null } }>
  facets: unknown
  corrections: Record<string, string>
}

describe('GET /api/search/ through OpenSearch', () => {
  let shirt: ProductDto
  let trousers: ProductDto
  const gone = randomUUID()

  beforeAll(async () => {
    shirt = await createProduct({ name: 'Linen Shirt Relaxed', category: shirts.slug, variants: [{ sku: sku('LSR'), price: 3900, stock: 4 }] })
    trousers = await createProduct({ name: 'Linen Trousers', description: 'Wide <legs>', category: clothing.slug, variants: [{ sku: sku('LT'), price: 4500, stock: 0 }] })
    const synonyms = await asStaff('POST', '/api/search/synonyms/', { terms: ['trousers', 'pants'] })
    expect(synonyms.statusCode, synonyms.body).toBe(201)
    await settle()
  })

  it('sends the word groups, the category subtree and the price range, and answers database products in hit order with the index highlights and facets', async () => {
    forget()
    standIn.on(
      'POST',
      SEARCH,
      searchAnswer(
        [
          { id: trousers.id, highlight: { name: ['<mark>Linen</mark> <mark>Trousers</mark>'], description: ['Wide &lt;legs&gt;'] } },
          // Deleted from the database since it was indexed: skipped.
          { id: gone, highlight: { name: ['<mark>Linen</mark> Ghost'] } },
          { id: shirt.id, highlight: { name: ['<mark>Linen</mark> Shirt Relaxed'], 'name.prefix': ['Linen Shirt Relaxed'] } },
        ],
        42,
        {
          // OpenSearch counts a product under its category and every ancestor (countsAncestors).
          categories: { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets: [{ key: clothing.id, doc_count: 7 }, { key: shirts.id, doc_count: 5 }, { key: randomUUID(), doc_count: 1 }] },
          prices: { buckets: [{ key: '0', from: 0, to: 1000, doc_count: 0 }, { key: '1', from: 1000, to: 2500, doc_count: 3 }, { key: '2', from: 2500, to: 5000, doc_count: 4 }] },
          attributes: { doc_count_error_upper_bound: 0, sum_other_doc_count: 0, buckets: [{ key: `material${PAIR}linen`, doc_count: 5 }, { key: `colour${PAIR}white`, doc_count: 2 }, { key: `colour${PAIR}blue`, doc_count: 3 }] },
        },
      ),
    )

    const res = await t.request({ method: 'GET', url: `/api/search/?q=${encodeURIComponent('Linen Trousers')}&category=${clothing.slug}&min_price=1000&max_price=5000` })

    expect(res.statusCode, res.body).toBe(200)
    expect(exchanges()).toEqual([`POST ${SEARCH}`])
    const sent = standIn.requests[0]!.body as { query: { bool: { filter: Array<{ terms?: { category_ids: string[] } }> } } }
    // The category filter is the subtree of Clothing (Shirts and Knits too), in any order.
    const categoryIds = sent.query.bool.filter[0]!.terms!.category_ids
    expect([...categoryIds].sort()).toEqual(subtreeIds(await categoryTree(clothing.slug)).sort())
    expect(categoryIds).toEqual(expect.arrayContaining([clothing.id, shirts.id]))
    expect(sent).toEqual({
      from: 0,
      size: 20,
      track_total_hits: true,
      _source: false,
      query: {
        bool: {
          // Every word must match; "trousers" brings its synonym.
          must: [group('linen'), group('trousers', 'pants')],
          filter: [{ terms: { category_ids: categoryIds } }, { range: { price: { gte: 1000, lte: 5000 } } }],
          should: [{ term: { 'name.keyword': { value: 'linen trousers', boost: 10 } } }, { match_phrase: { name: { query: 'Linen Trousers', boost: 4 } } }],
        },
      },
      sort: [{ _score: { order: 'desc' } }, { id: { order: 'asc' } }],
      aggs: AGGREGATIONS,
      highlight: HIGHLIGHT,
    })

    const body = res.json<SearchBody>()
    expect(body.count).toBe(42)
    expect(body.next).toMatch(/cursor=/)
    expect(body.previous).toBeNull()
    expect(body.corrections).toEqual({})
    expect(body.results.map((item) => [item.id, item.name, item.price, item.category?.slug, item.variants.map((v) => [v.in_stock, v.stock_available]), item.highlight])).toEqual([
      [trousers.id, 'Linen Trousers', 4500, clothing.slug, [[false, 0]], { name: '<mark>Linen</mark> <mark>Trousers</mark>', description: 'Wide &lt;legs&gt;' }],
      [shirt.id, 'Linen Shirt Relaxed', 3900, shirts.slug, [[true, 4]], { name: '<mark>Linen</mark> Shirt Relaxed', description: null }],
    ])
    expect(body.facets).toEqual({
      // Taken as counted: rolled up again, Clothing would say 12.
      categories: [
        { slug: clothing.slug, name: 'Clothing', count: 7 },
        { slug: shirts.slug, name: 'Shirts', count: 5 },
      ],
      price_ranges: [
        { min_price: 1000, max_price: 2499, count: 3 },
        { min_price: 2500, max_price: 4999, count: 4 },
      ],
      attributes: [
        { name: 'colour', values: [{ value: 'blue', count: 3 }, { value: 'white', count: 2 }] },
        { name: 'material', values: [{ value: 'linen', count: 5 }] },
      ],
    })
  })

  it('serves /api/products/?search= without ordering from the index without facets, and with an ordering from PostgreSQL', async () => {
    forget()
    standIn.on('POST', SEARCH, searchAnswer([{ id: shirt.id }, { id: trousers.id }], 2))

    const ranked = await t.request({ method: 'GET', url: '/api/products/?search=linen&limit=5' })

    expect(ranked.statusCode, ranked.body).toBe(200)
    expect(exchanges()).toEqual([`POST ${SEARCH}`])
    const sent = standIn.requests[0]!.body as Record<string, unknown>
    expect(sent).not.toHaveProperty('aggs')
    expect(sent).toMatchObject({ from: 0, size: 5, query: { bool: { must: [group('linen')], filter: [] } } })
    expect(ranked.json<{ count: number; results: ProductDto[] }>()).toMatchObject({ count: 2, results: [{ id: shirt.id }, { id: trousers.id }] })

    forget()
    const ordered = await t.request({ method: 'GET', url: '/api/products/?search=linen&ordering=-price' })
    expect(ordered.statusCode, ordered.body).toBe(200)
    expect(standIn.requests).toEqual([])
    expect(ordered.json<{ results: ProductDto[] }>().results.map((p) => p.id)).toEqual(expect.arrayContaining([trousers.id, shirt.id]))
  })

  it('serves a repeated search from the cache until the index task has run, then asks OpenSearch again', async () => {
    standIn.on('POST', SEARCH, searchAnswer([{ id: shirt.id }], 1))
    const url = `/api/search/?q=${encodeURIComponent('relaxed shirt')}`
    forget()

    expect((await t.request({ method: 'GET', url })).statusCode).toBe(200)
    expect((await t.request({ method: 'GET', url })).statusCode).toBe(200)
    expect(exchanges()).toEqual([`POST ${SEARCH}`])

    await t.app.platform.queue.enqueue(INDEX_PRODUCTS_TASK, { product_ids: [shirt.id] })
    await settle()
    const again = await t.request({ method: 'GET', url })

    expect(again.statusCode).toBe(200)
    expect(again.json<SearchBody>().results.map((item) => item.id)).toEqual([shirt.id])
    expect(exchanges()).toEqual([`POST ${SEARCH}`, `HEAD /_alias/${BUILDING}`, 'POST /_bulk', `POST ${SEARCH}`])
  })
})

describe('credentials in ELASTICSEARCH_URL', () => {
  let secured: TestApp
  let guarded: OpenSearchStandIn
  const password = 'p@ss:w0rd/secret'
  const authorization = `Basic ${Buffer.from(`search-user:${password}`).toString('base64')}`

  beforeAll(async () => {
    guarded = await startOpenSearchStandIn()
    guarded
      .on('HEAD', '/_alias/creds-products', { status: 200 })
      .on('POST', '/creds-products/_search', searchAnswer([], 0))
      .on('GET', '/_cluster/health', clusterHealth('green'))
    const url = new URL(guarded.url)
    url.username = 'search-user'
    url.password = password
    secured = await createTestApp({ env: { ELASTICSEARCH_URL: url.toString(), CACHE_KEY_PREFIX: 'creds:' }, redis: false })
  })
  afterAll(async () => {
    await secured?.close()
    await guarded?.close()
  })

  it('sends them as Basic auth with searches and with the readiness probe', async () => {
    const ready = await secured.request({ method: 'GET', url: '/health/ready/' })
    const search = await secured.request({ method: 'GET', url: '/api/search/?q=anything' })

    expect(ready.statusCode, ready.body).toBe(200)
    expect(search.statusCode, search.body).toBe(200)
    expect(exchanges(guarded.requests).sort()).toEqual(['GET /_cluster/health', 'HEAD /_alias/creds-products', 'POST /creds-products/_search'])
    for (const request of guarded.requests) expect(request.headers.authorization, `${request.method} ${request.path}`).toBe(authorization)
    expect(ready.body).not.toContain(password)
  })
})

describe('OpenSearch down', () => {
  const ready = () => t.request({ method: 'GET', url: '/health/ready/' })
  const search = (q: string) => t.request({ method: 'GET', url: `/api/search/?q=${encodeURIComponent(q)}` })

  it('answers 503 problem+json to searches and readiness (naming search) while OpenSearch answers 503, and 200 once it recovers', async () => {
    standIn
      .on('POST', SEARCH, osError(503, 'cluster_block_exception', 'blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized]'))
      .on('GET', '/_cluster/health', osError(503, 'master_not_discovered_exception', 'no cluster-manager'))
    forget()

    const failed = expectProblem(await search('linen outage'), 503, 'dependency_unavailable')
    // A web request retries once, then gives up.
    expect(exchanges()).toEqual([`POST ${SEARCH}`, `POST ${SEARCH}`])
    expect(failed.detail).toBe('Search is unavailable, try again shortly.')
    const notReady = expectProblem(await ready(), 503, 'dependency_unavailable')
    expect(notReady.failed).toEqual(['search'])
    expect(notReady.checks).toMatchObject({ search: { status: 'error', backend: 'opensearch', error: 'search answered 503' }, database: { status: 'ok' } })

    standIn.on('POST', SEARCH, searchAnswer([], 0)).on('GET', '/_cluster/health', clusterHealth('yellow'))
    forget()
    expect((await search('linen outage')).statusCode).toBe(200)
    expect((await ready()).statusCode).toBe(200)
    expect(exchanges()).toEqual([`POST ${SEARCH}`, 'GET /_cluster/health'])
  })

  it('retries the index task until a bulk goes through after OpenSearch answered 503', async () => {
    const product = await createProduct({ name: 'Rain Jacket', variants: [{ sku: sku('RJ'), price: 8900 }] })
    await settle()
    forget()
    let refused = 0
    standIn.on('POST', '/_bulk', (request) => (refused++ < 3 ? osError(503, 'unavailable_shards_exception', 'primary shard is not active') : bulkAnswer(request)))

    expect((await asStaff('PATCH', `/api/products/${product.slug}/`, { name: 'Rain Jacket Pro' })).statusCode).toBe(200)
    await settle()

    // The client retries a 503 twice itself; then the task fails its first attempt and runs again.
    expect(exchanges()).toEqual([`HEAD /_alias/${BUILDING}`, 'POST /_bulk', 'POST /_bulk', 'POST /_bulk', `HEAD /_alias/${BUILDING}`, 'POST /_bulk'])
    expect(bulkBodies().at(-1)).toEqual([{ index: { _index: ALIAS, _id: product.id, require_alias: true } }, expect.objectContaining({ name: 'Rain Jacket Pro' })])
    standIn.on('POST', '/_bulk', (request) => bulkAnswer(request))
  })

  it('answers 503 when OpenSearch refuses the credentials, and a 500 without its message when it refuses the query', async () => {
    standIn.on('POST', SEARCH, osError(401, 'security_exception', 'missing authentication credentials for REST request [/_search]'))
    expectProblem(await search('linen refused'), 503, 'dependency_unavailable')

    standIn.on('POST', SEARCH, osError(400, 'search_phase_execution_exception', 'all shards failed: failed to create query: [internal_detail]'))
    const refused = expectProblem(await search('linen refused'), 500, 'internal_error')
    expect(refused.detail).not.toContain('internal_detail')
  })

  it('creates the alias again and answers when the index went missing under a running app (a wiped cluster)', async () => {
    let wiped = true
    standIn
      .on('POST', SEARCH, () => (wiped ? osError(404, 'index_not_found_exception', `no such index [${ALIAS}]`) : searchAnswer([], 0)))
      .on('HEAD', `/_alias/${ALIAS}`, { status: 404 })
      .on('PUT', `/${INITIAL}`, () => {
        wiped = false
        return indexCreated(INITIAL)
      })
    forget()

    const res = await search('linen wiped')

    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<SearchBody>()).toMatchObject({ count: 0, results: [] })
    expect(exchanges()).toEqual([`POST ${SEARCH}`, `HEAD /_alias/${ALIAS}`, `PUT /${INITIAL}`, `POST ${SEARCH}`])
    expect(standIn.requests[2]!.body).toMatchObject({ aliases: { [ALIAS]: {} }, mappings: { dynamic: 'strict' } })
    scriptCluster(standIn)
  })

  it('answers 503 while nothing listens at ELASTICSEARCH_URL, and 200 once OpenSearch is back at the same address', async () => {
    const port = Number(new URL(standIn.url).port)
    await standIn.close()

    expectProblem(await search('linen closed'), 503, 'dependency_unavailable')
    const notReady = expectProblem(await ready(), 503, 'dependency_unavailable')
    expect(notReady.failed).toEqual(['search'])

    standIn = await startOpenSearchStandIn({ port })
    scriptCluster(standIn)
    standIn.on('POST', SEARCH, searchAnswer([], 0))
    expect((await search('linen closed')).statusCode).toBe(200)
    expect((await ready()).statusCode).toBe(200)
    expect(exchanges()).toEqual([`POST ${SEARCH}`, 'GET /_cluster/health'])
  })
})

describe('manage search_reindex as a process', () => {
  const STACK_LINE = /^\s{4}at /m
  const ALIAS_SHOP = 'shop-products'
  let scratch: string
  let dbEnv: Record<string, string>
  let dropDb: () => Promise<void> = async () => undefined
  let created: ProductDto[]

  /** Only what a shell needs; every known variable blank (blank means unset), so no `.env` or suite setting leaks in. */
  const processEnv = (vars: Record<string, string>): NodeJS.ProcessEnv => ({
    ...Object.fromEntries(['PATH', 'HOME', 'LANG', 'TMPDIR', 'TZ'].filter((name) => process.env[name]).map((name) => [name, process.env[name]])),
    ...Object.fromEntries(envNames.map((name) => [name, ''])),
    MEDIA_ROOT: join(scratch, 'media'),
    STATIC_ROOT: join(scratch, 'static'),
    EMAIL_FILE_PATH: join(scratch, 'emails'),
    ...dbEnv,
    ...vars,
  })

  function reindex(searchUrl: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/manage.ts', 'search_reindex'], {
        cwd: projectRoot,
        env: processEnv({ ELASTICSEARCH_URL: searchUrl }),
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      // Bounds a hung process; the command exits on its own.
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`search_reindex still running\nstdout: ${stdout}\nstderr: ${stderr}`))
      }, 45_000)
      child.once('error', reject)
      child.once('close', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
    })
  }

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'shop-reindex-'))
    const server = testServerUrl()
    if (usesPostgres && server) {
      const name = uniqueName('shop_reindex')
      await withAdmin(server, (client) => client.query(`CREATE DATABASE "${name}"`))
      dbEnv = { DATABASE_URL: urlFor(server, name) }
      dropDb = () => dropDatabase(server, name)
    } else {
      dbEnv = { PGLITE_DATA_DIR: join(scratch, 'pglite') }
    }
    // A catalog written by the real code, then closed: the command's process opens the database next.
    const settings = loadSettings({ ENVIRONMENT: 'test', ...dbEnv })
    const log = createLogger(settings)
    const database = await createDatabase(settings, log)
    try {
      await database.migrate()
      const catalog = createCatalog({ cache: createCatalogCache(createMemoryCache()), currency: settings.currency, mediaUrl: (key) => key })
      const ctx = createCtx({ db: database.db, log, requestId: 'test' })
      const inputs: ProductInput[] = [
        { name: 'Harbour Coat', variants: [{ sku: 'HC-1', price: 12900, stock: 2 }] },
        { name: 'Pier Boots', description: 'Leather', attributes: { material: 'leather' }, variants: [{ sku: 'PB-1', price: 9900 }] },
        { name: 'Dock Hat', variants: [{ sku: 'DH-1', price: 2500, stock: 1 }] },
        // Inactive: not in the index.
        { name: 'Draft Gloves', is_active: false, variants: [{ sku: 'DG-1', price: 1500 }] },
      ]
      created = []
      for (const input of inputs) created.push(JSON.parse(await catalog.create(ctx, input)) as ProductDto)
    } finally {
      await database.close()
    }
  })
  afterAll(async () => {
    await dropDb()
    if (scratch) await rm(scratch, { recursive: true, force: true })
  })

  it('rebuilds the index: new index, bulk, refresh, atomic alias swap, old index deleted; prints the count', async () => {
    const cluster = await startOpenSearchStandIn()
    let building: string | null = null
    cluster
      .on('GET', `/${ALIAS_SHOP}-*/_alias`, () => aliasesOf({ [`${ALIAS_SHOP}-initial`]: [ALIAS_SHOP], ...(building ? { [building]: [`${ALIAS_SHOP}-building`] } : {}) }))
      .on('PUT', /^\/shop-products-\d{17}$/, (request) => {
        building = request.path.slice(1)
        return indexCreated(building)
      })
      .on('POST', '/_bulk', (request) => bulkAnswer(request))
      .on('GET', /^\/shop-products-\d{17}\/_refresh$/, { status: 200, body: { _shards: { total: 2, successful: 1, failed: 0 } } })
      .on('POST', '/_aliases', acknowledged())
      .on('DELETE', `/${ALIAS_SHOP}-initial`, acknowledged())

    const run = await reindex(cluster.url).finally(() => cluster.close())

    expect(run.code, `stdout: ${run.stdout}\nstderr: ${run.stderr}`).toBe(0)
    expect(run.stdout).toMatch(/^Indexed 3 products \(opensearch\) in \d+\.\d s\.$/m)
    expect(run.stderr).toBe('')
    const index = building!
    expect(exchanges(cluster.requests)).toEqual([
      `GET /${ALIAS_SHOP}-*/_alias`,
      `PUT /${index}`,
      'POST /_bulk',
      `GET /${index}/_refresh`,
      `GET /${ALIAS_SHOP}-*/_alias`,
      'POST /_aliases',
      `DELETE /${ALIAS_SHOP}-initial`,
    ])
    expect(cluster.requests[1]!.body).toMatchObject({ aliases: { [`${ALIAS_SHOP}-building`]: {} }, mappings: { dynamic: 'strict' } })
    const visible = created.filter((product) => product.is_active).sort((a, b) => a.id.localeCompare(b.id))
    expect(cluster.requests[2]!.body).toEqual(
      visible.flatMap((product) => [
        { create: { _index: index, _id: product.id } },
        {
          id: product.id,
          slug: product.slug,
          name: product.name,
          description: product.description,
          category_ids: [],
          category_names: [],
          attribute_values: Object.values(product.attributes),
          attribute_pairs: Object.entries(product.attributes).map(([name, value]) => `${name}${PAIR}${value}`),
          price: product.price,
          in_stock: product.name !== 'Pier Boots',
          rating: 0,
          created_at: product.created_at,
        },
      ]),
    )
    expect(cluster.requests[5]!.body).toEqual({
      actions: [
        { remove: { index: `${ALIAS_SHOP}-initial`, alias: ALIAS_SHOP } },
        { add: { index, alias: ALIAS_SHOP } },
        { remove: { index, alias: `${ALIAS_SHOP}-building` } },
      ],
    })
  }, 60_000)

  it('exits 1 with a one-line error and no stack trace when nothing listens at ELASTICSEARCH_URL', async () => {
    const gone = await startOpenSearchStandIn()
    await gone.close()

    const run = await reindex(gone.url)

    expect(run.code, `stdout: ${run.stdout}\nstderr: ${run.stderr}`).toBe(1)
    expect(run.stderr).toMatch(/^Search reindex failed: OpenSearch is unavailable \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)\n$/)
    expect(run.stdout).not.toMatch(/^Indexed/m)
  }, 60_000)

  it('exits 1 with a one-line error when OpenSearch answers 503, and changes nothing', async () => {
    const sick = await startOpenSearchStandIn()
    sick.on('GET', `/${ALIAS_SHOP}-*/_alias`, osError(503, 'master_not_discovered_exception', 'no cluster-manager'))

    const run = await reindex(sick.url).finally(() => sick.close())

    expect(run.code, `stdout: ${run.stdout}\nstderr: ${run.stderr}`).toBe(1)
    expect(run.stderr).toMatch(/^Search reindex failed: OpenSearch is unavailable \(.*master_not_discovered_exception.*\)\n$/)
    expect(run.stderr).not.toMatch(STACK_LINE)
    // The client retries a 503 twice; nothing was created, swapped or deleted.
    expect(exchanges(sick.requests)).toEqual([`GET /${ALIAS_SHOP}-*/_alias`, `GET /${ALIAS_SHOP}-*/_alias`, `GET /${ALIAS_SHOP}-*/_alias`])
  }, 60_000)
})
