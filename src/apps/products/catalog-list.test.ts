/**
 * GET /api/products/ and the reads behind the product page: every filter and ordering, keyset
 * pages (stable while products are added, walkable backwards), a constant number of SQL
 * statements whatever a page holds, and the cache (Redis when the suite has it, and memory):
 * used on a repeated read, stale never once a change has answered.
 *
 * Tests share the file's database: each one works inside categories of its own (the category
 * filter) or on words of its own (the search filter).
 */
import { randomUUID } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, suiteRedisUrl, type TestApp, type TestAppOptions } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { createCatalogCache } from './catalog-cache.js'
import type { ProductDto, ProductInput, ProductPage } from './catalog.js'
import { createProductsService } from './service.js'
import { productImages, products } from './tables.js'

type Headers = Record<string, string>
interface Page extends Omit<ProductPage, 'results'> {
  results: ProductDto[]
}

/** A fresh lowercase suffix for names, slugs and SKUs. */
const uid = () => randomUUID().slice(0, 8)
/** A fresh word of letters only (full-text search treats digits as separate tokens). */
const word = () => `w${randomUUID().replace(/[^a-f]/g, '').slice(0, 10)}`.padEnd(8, 'q')
/** The path and query of a `next`/`previous` link. */
const path = (link: string) => link.replace(/^https?:\/\/[^/]+/, '')
const ids = (items: Array<{ id: string }>) => items.map((item) => item.id)

/** Requests against one test app, as a shopper and as staff. */
function catalogClient(t: TestApp, staff: Headers) {
  const settle = async () => {
    // Events committed by earlier writes are relayed in the background: let that finish so it
    // does not count as statements of the request measured next.
    await t.app.platform.relay.flush()
    await t.app.platform.queue.drain()
  }
  const client = {
    t,
    staff,
    async page(url: string): Promise<Page> {
      const res = await t.request({ method: 'GET', url })
      expect(res.statusCode, res.body).toBe(200)
      return res.json<Page>()
    },
    async list(query: string): Promise<Page> {
      return client.page(`/api/products/?${query}`)
    },
    async detail(slug: string, headers: Headers = {}): Promise<ProductDto> {
      const res = await t.request({ method: 'GET', url: `/api/products/${slug}/`, headers })
      expect(res.statusCode, res.body).toBe(200)
      return res.json<ProductDto>()
    },
    /** A GET and how many SQL statements it ran. */
    async measured<T>(url: string, headers: Headers = {}): Promise<{ body: T; statements: number }> {
      await settle()
      const before = t.app.platform.database.queryCount()
      const res = await t.request({ method: 'GET', url, headers })
      const statements = t.app.platform.database.queryCount() - before
      expect(res.statusCode, res.body).toBe(200)
      return { body: res.json<T>(), statements }
    },
    async category(name: string, parent?: string): Promise<{ id: string; slug: string; name: string }> {
      const res = await t.request({ method: 'POST', url: '/api/categories/', headers: staff, payload: { name, ...(parent ? { parent } : {}) } })
      expect(res.statusCode, res.body).toBe(201)
      return res.json()
    },
    async product(input: Partial<ProductInput> & { prices?: number[]; stock?: number[] } = {}): Promise<ProductDto> {
      const s = uid()
      const { prices = [1000], stock = [], ...rest } = input
      const payload: ProductInput = {
        name: `Product ${s}`,
        variants: prices.map((price, i) => ({ sku: `L-${s}-${i}`.toUpperCase(), price, ...(stock[i] ? { stock: stock[i] } : {}) })),
        ...rest,
      }
      const res = await t.request({ method: 'POST', url: '/api/products/', headers: staff, payload })
      expect(res.statusCode, res.body).toBe(201)
      return res.json<ProductDto>()
    },
    async patch(slug: string, payload: object): Promise<ProductDto> {
      const res = await t.request({ method: 'PATCH', url: `/api/products/${slug}/`, headers: staff, payload })
      expect(res.statusCode, res.body).toBe(200)
      return res.json<ProductDto>()
    },
    async stock(sku: string, payload: object): Promise<void> {
      const res = await t.request({ method: 'PATCH', url: `/api/products/variants/${sku}/stock/`, headers: staff, payload })
      expect(res.statusCode, res.body).toBe(200)
    },
    /** Every page from `url` on, following `next`. */
    async walk(url: string): Promise<Page[]> {
      const pages: Page[] = []
      for (let next: string | null = url; next; ) {
        const page: Page = await client.page(path(next))
        pages.push(page)
        next = page.next
        expect(pages.length).toBeLessThan(100)
      }
      return pages
    },
    /** The products' checkout (inventory) service, sharing the app's cache. */
    inventory: createProductsService({ cache: createCatalogCache(t.app.platform.cache) }),
    ctx: () => t.app.platform.context(),
  }
  return client
}

let t: TestApp
let c: ReturnType<typeof catalogClient>
let customer: Headers

beforeAll(async () => {
  t = await createTestApp()
  const f = factories(t)
  c = catalogClient(t, await f.auth(await f.user({ role: 'staff' })))
  customer = await f.auth(await f.user())
})
afterAll(() => t.close())

const db = () => t.app.platform.database.db

describe('GET /api/products/ filters', () => {
  it('answers anyone, also customers, with the page shape of the API', async () => {
    const cat = await c.category(`Shape ${uid()}`)
    const product = await c.product({ category: cat.slug })
    for (const headers of [{}, customer]) {
      const res = await t.request({ method: 'GET', url: `/api/products/?category=${cat.slug}`, headers })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({ count: 1, next: null, previous: null, results: [await c.detail(product.slug)] })
    }
  })

  it('includes the descendants of a category, three levels down, and follows a move', async () => {
    const s = uid()
    const root = await c.category(`Root ${s}`)
    const child = await c.category(`Child ${s}`, root.slug)
    const grandchild = await c.category(`Grandchild ${s}`, child.slug)
    const sibling = await c.category(`Sibling ${s}`, root.slug)
    const other = await c.category(`Other ${s}`)
    const inRoot = await c.product({ category: root.slug })
    const inChild = await c.product({ category: child.slug })
    const inGrandchild = await c.product({ category: grandchild.slug })
    const inSibling = await c.product({ category: sibling.slug })
    const inOther = await c.product({ category: other.slug })

    const members = async (slug: string) => {
      const page = await c.list(`category=${slug}`)
      expect(page.count).toBe(page.results.length)
      return ids(page.results).sort()
    }
    expect(await members(root.slug)).toEqual(ids([inRoot, inChild, inGrandchild, inSibling]).sort())
    expect(await members(child.slug)).toEqual(ids([inChild, inGrandchild]).sort())
    expect(await members(grandchild.slug)).toEqual([inGrandchild.id])
    expect(await members(other.slug)).toEqual([inOther.id])

    // The grandchild moves under another root: both subtrees follow at once.
    const res = await t.request({ method: 'PATCH', url: `/api/categories/${grandchild.slug}/`, headers: c.staff, payload: { parent: other.slug } })
    expect(res.statusCode, res.body).toBe(200)
    expect(await members(root.slug)).toEqual(ids([inRoot, inChild, inSibling]).sort())
    expect(await members(child.slug)).toEqual([inChild.id])
    expect(await members(other.slug)).toEqual(ids([inOther, inGrandchild]).sort())
  })

  it('answers 422 on category for an unknown category', async () => {
    const problem = expectProblem(await t.request({ method: 'GET', url: `/api/products/?category=no-such-${uid()}` }), 422, 'validation_error')
    expect(Object.keys(problem.errors ?? {})).toEqual(['category'])
  })

  it('filters on the lowest variant price with inclusive bounds', async () => {
    const cat = await c.category(`Prices ${uid()}`)
    const at = async (prices: number[]) => c.product({ category: cat.slug, prices })
    const p999 = await at([999])
    const p1000 = await at([1000])
    // Its price is its cheapest variant's: 1500.
    const p1500 = await at([5000, 1500])
    const p2000 = await at([2000])
    const p2001 = await at([2001])
    const filtered = async (query: string) => {
      const page = await c.list(`category=${cat.slug}&ordering=price&${query}`)
      expect(page.count).toBe(page.results.length)
      return ids(page.results)
    }
    expect(await filtered('min_price=1000&max_price=2000')).toEqual(ids([p1000, p1500, p2000]))
    expect(await filtered('min_price=2000')).toEqual(ids([p2000, p2001]))
    expect(await filtered('max_price=1000')).toEqual(ids([p999, p1000]))
    expect(await filtered('min_price=1500&max_price=1500')).toEqual([p1500.id])
    expect(await filtered('min_price=5000')).toEqual([])
    expect(await filtered('min_price=0&max_price=2147483647')).toEqual(ids([p999, p1000, p1500, p2000, p2001]))
  })

  it.each([
    ['min_price above max_price', 'min_price=2001&max_price=2000', 'min_price'],
    ['a negative min_price', 'min_price=-1', 'min_price'],
    ['a max_price beyond any integer price', 'max_price=99999999999', 'max_price'],
    ['a price that is not a number', 'min_price=cheap', 'min_price'],
    ['in_stock that is not a boolean', 'in_stock=maybe', 'in_stock'],
    ['a limit of 0', 'limit=0', 'limit'],
    ['a limit above 100', 'limit=101', 'limit'],
    ['a category with a NUL byte', 'category=a%00b', 'category'],
    ['a search with a NUL byte', 'search=a%00b', 'search'],
  ])('answers 422 on the field for %s', async (_case, query, field) => {
    const problem = expectProblem(await t.request({ method: 'GET', url: `/api/products/?${query}` }), 422, 'validation_error')
    expect(Object.keys(problem.errors ?? {})).toContain(field)
  })

  it('filters on availability, following a reservation that sells a product out and its release', async () => {
    const cat = await c.category(`Stock ${uid()}`)
    const inStock = await c.product({ category: cat.slug, prices: [100], stock: [3] })
    const soldOut = await c.product({ category: cat.slug, prices: [100], stock: [0] })
    // One of two variants in stock is enough.
    const oneOfTwo = await c.product({ category: cat.slug, prices: [100, 200], stock: [0, 2] })
    // Stock only on a variant that is no longer sold does not count.
    const dropped = await c.product({ category: cat.slug, prices: [100, 200], stock: [5, 0] })
    await c.patch(dropped.slug, { variants: [{ sku: dropped.variants[1]!.sku, price: 200 }] })

    const available = async (value: boolean) => {
      const page = await c.list(`category=${cat.slug}&in_stock=${value}`)
      expect(page.count).toBe(page.results.length)
      return ids(page.results).sort()
    }
    expect(await available(true)).toEqual(ids([inStock, oneOfTwo]).sort())
    expect(await available(false)).toEqual(ids([soldOut, dropped]).sort())
    expect((await c.list(`category=${cat.slug}`)).count).toBe(4)

    // Checkout reserves the last three: the product is sold out for the very next read.
    const reference = `ORD-${uid()}`
    await c.inventory.reserve(c.ctx(), reference, [{ sku: inStock.variants[0]!.sku, quantity: 3 }])
    expect(await available(true)).toEqual([oneOfTwo.id])
    expect(await available(false)).toEqual(ids([inStock, soldOut, dropped]).sort())
    expect((await c.detail(inStock.slug)).variants[0]).toMatchObject({ in_stock: false, stock_available: 0 })

    // Released (a cancelled order): back in stock.
    await c.inventory.release(c.ctx(), reference)
    expect(await available(true)).toEqual(ids([inStock, oneOfTwo]).sort())

    // A staff count of zero through the stock route sells the other one out; a delivery brings it back.
    await c.stock(oneOfTwo.variants[1]!.sku, { quantity: 0 })
    expect(await available(true)).toEqual([inStock.id])
    await c.stock(oneOfTwo.variants[1]!.sku, { delta: 4, reason: 'delivery' })
    expect(await available(true)).toEqual(ids([inStock, oneOfTwo]).sort())
  })

  it('combines search with the other filters and with an ordering', async () => {
    const w = word()
    const cat = await c.category(`Search ${uid()}`)
    const cheap = await c.product({ name: `Velvet ${w} Cushion`, category: cat.slug, prices: [1500], stock: [1] })
    const dear = await c.product({ name: `Velvet ${w} Throw`, category: cat.slug, prices: [4500] })
    const elsewhere = await c.product({ name: `Velvet ${w} Curtain`, prices: [2500], stock: [2] })
    await c.product({ name: `Linen ${word()} Cushion`, category: cat.slug })

    expect(ids((await c.list(`search=${w}&ordering=price`)).results)).toEqual(ids([cheap, elsewhere, dear]))
    expect(ids((await c.list(`search=${w}&ordering=-price`)).results)).toEqual(ids([dear, elsewhere, cheap]))
    expect(ids((await c.list(`search=${w}&category=${cat.slug}&ordering=price`)).results)).toEqual(ids([cheap, dear]))
    expect(ids((await c.list(`search=${w}&min_price=2000&ordering=price`)).results)).toEqual(ids([elsewhere, dear]))
    expect(ids((await c.list(`search=${w}&in_stock=true&ordering=price`)).results)).toEqual(ids([cheap, elsewhere]))
    expect(ids((await c.list(`search=${w}+cushion`)).results)).toEqual([cheap.id])
    // Relevance (no ordering) pages count the same products.
    const ranked = await c.list(`search=${w}`)
    expect(ranked.count).toBe(3)
    expect(ids(ranked.results).sort()).toEqual(ids([cheap, dear, elsewhere]).sort())
    // A blank search is no filter at all.
    expect((await c.list(`search=%20%20&category=${cat.slug}`)).count).toBe(3)
  })
})

describe('GET /api/products/ ordering', () => {
  /**
   * Six products whose prices, names, ratings and creation times tie in pairs, so every
   * ordering has to break ties by id; a page size of two puts ties across page boundaries.
   */
  async function tiedSet() {
    const s = uid()
    const cat = await c.category(`Ordering ${s}`)
    const specs = [
      { name: `Birch ${s}`, price: 300, rating: '4.50', created: '2024-01-02T00:00:00Z' },
      { name: `Alder ${s}`, price: 100, rating: '4.50', created: '2024-01-01T00:00:00Z' },
      { name: `Cedar ${s}`, price: 200, rating: null, created: '2024-01-03T00:00:00Z' },
      { name: `Alder ${s}`, price: 100, rating: '3.00', created: '2024-01-01T00:00:00Z' },
      { name: `Birch ${s}`, price: 300, rating: null, created: '2024-01-02T00:00:00Z' },
      { name: `Cedar ${s}`, price: 250, rating: '5.00', created: '2024-01-03T00:00:00Z' },
    ]
    const made = []
    for (const [i, spec] of specs.entries()) {
      const product = await c.product({ name: spec.name, slug: `ordering-${s}-${i}`, category: cat.slug, prices: [spec.price] })
      // Ratings come from reviews and creation times from the clock: set them as data.
      await db().update(products).set({ rating: spec.rating, created_at: new Date(spec.created) }).where(eq(products.id, product.id))
      made.push({ id: product.id, name: spec.name, price: spec.price, rating: Number(spec.rating ?? 0), created: spec.created })
    }
    return { cat, made }
  }

  it('orders by price, created_at, name and rating both ways, ties broken by id, across pages', async () => {
    const { cat, made } = await tiedSet()
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    const key: Record<string, (p: (typeof made)[number]) => number | string> = {
      price: (p) => p.price,
      created_at: (p) => p.created,
      name: (p) => p.name,
      rating: (p) => p.rating,
    }
    for (const field of Object.keys(key)) {
      for (const descending of [false, true]) {
        const ordering = `${descending ? '-' : ''}${field}`
        const expected = [...made].sort((a, b) => {
          const [x, y] = [key[field]!(a), key[field]!(b)]
          const cmp = x < y ? -1 : x > y ? 1 : byId(a, b)
          return descending ? -cmp : cmp
        })
        const pages = await c.walk(`/api/products/?category=${cat.slug}&ordering=${ordering}&limit=2`)
        expect(pages.map((page) => page.results.length), ordering).toEqual([2, 2, 2])
        expect(pages.flatMap((page) => ids(page.results)), ordering).toEqual(ids(expected))
        expect(pages[0]!.count, ordering).toBe(6)
      }
    }
    // No ordering is newest first.
    const newest = await c.walk(`/api/products/?category=${cat.slug}&limit=4`)
    const explicit = await c.walk(`/api/products/?category=${cat.slug}&limit=4&ordering=-created_at`)
    expect(newest.flatMap((page) => ids(page.results))).toEqual(explicit.flatMap((page) => ids(page.results)))
  })

  it('pages through names of 200 multi-byte characters (the cursor carries the name)', async () => {
    const cat = await c.category(`Long names ${uid()}`)
    const names = ['甲', '乙', '丙'].map((last) => `${'漢'.repeat(199)}${last}`)
    for (const [i, name] of names.entries()) await c.product({ name, slug: `long-name-${uid()}-${i}`, category: cat.slug })
    const pages = await c.walk(`/api/products/?category=${cat.slug}&ordering=name&limit=1`)
    expect(pages.flatMap((page) => page.results.map((p) => p.name)).sort()).toEqual([...names].sort())
  })

  it.each(['colour', 'id', '-', 'price,name', 'relevance'])('answers 422 on ordering for ordering=%s', async (ordering) => {
    const problem = expectProblem(await t.request({ method: 'GET', url: `/api/products/?ordering=${encodeURIComponent(ordering)}` }), 422, 'validation_error')
    expect(Object.keys(problem.errors ?? {})).toContain('ordering')
  })

  const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const someId = '00000000-0000-4000-8000-000000000000'
  it.each([
    ['not base64 JSON', '', 'garbage!!'],
    ['JSON of another shape', '', cursorOf({ off: 20 })],
    ['an unknown ordering inside', '', cursorOf({ o: 'colour', v: 'red', id: someId })],
    ['an id that is not a UUID', 'ordering=price', cursorOf({ o: 'price', v: '100', id: 'x' })],
    ['a price that is not a number', 'ordering=price', cursorOf({ o: 'price', v: 'abc', id: someId })],
    ['a price beyond an integer', 'ordering=price', cursorOf({ o: 'price', v: '99999999999', id: someId })],
    ['an impossible date', '', cursorOf({ o: '-created_at', v: '2020-02-31T10:00:00.000000Z', id: someId })],
    ['a date in another form', '', cursorOf({ o: '-created_at', v: 'tomorrow', id: someId })],
    ['a rating that is not a number', 'ordering=rating', cursorOf({ o: 'rating', v: 'NaN', id: someId })],
    ['a name with a NUL byte', 'ordering=name', cursorOf({ o: 'name', v: 'a\u0000b', id: someId })],
    ['a cursor of another ordering', 'ordering=name', cursorOf({ o: 'price', v: '100', id: someId })],
  ])('answers 422 on cursor for %s', async (_case, query, cursor) => {
    const problem = expectProblem(await t.request({ method: 'GET', url: `/api/products/?${query}&cursor=${cursor}` }), 422, 'validation_error')
    expect(Object.keys(problem.errors ?? {})).toEqual(['cursor'])
  })

  it("refuses a real page's cursor with another ordering", async () => {
    const cat = await c.category(`Cursor ${uid()}`)
    for (const price of [100, 200, 300]) await c.product({ category: cat.slug, prices: [price] })
    const first = await c.list(`category=${cat.slug}&ordering=price&limit=1`)
    const cursor = new URL(first.next!).searchParams.get('cursor')!
    expect((await c.list(`category=${cat.slug}&ordering=price&limit=1&cursor=${cursor}`)).results).toHaveLength(1)
    expectProblem(await t.request({ method: 'GET', url: `/api/products/?category=${cat.slug}&ordering=-price&limit=1&cursor=${cursor}` }), 422, 'validation_error')
    expectProblem(await t.request({ method: 'GET', url: `/api/products/?category=${cat.slug}&limit=1&cursor=${cursor}` }), 422, 'validation_error')
    // Nor is it a search (relevance) cursor.
    expectProblem(await t.request({ method: 'GET', url: `/api/products/?search=product&limit=1&cursor=${cursor}` }), 422, 'validation_error')
  })
})

describe('GET /api/products/ pagination', () => {
  it.each(['-created_at', 'price', '-name'])(
    'lists every product that existed at the start exactly once while products are added between pages (ordering=%s)',
    async (ordering) => {
      const cat = await c.category(`Stable ${uid()}`)
      const existing = new Set<string>()
      // Prices with ties, so pages also split equal prices.
      for (const price of [100, 200, 200, 300, 400, 400, 400, 500, 600, 700]) existing.add((await c.product({ category: cat.slug, prices: [price] })).id)

      const seen: string[] = []
      let count: number | null = null
      const added = [150, 200, 450, 50, 999, 400, 650, 1000]
      for (let next: string | null = `/api/products/?category=${cat.slug}&ordering=${ordering}&limit=3`, i = 0; next; i += 1) {
        const page: Page = await c.page(path(next))
        count ??= page.count
        seen.push(...ids(page.results))
        next = page.next
        // Something new lands before, inside and after the walk's position.
        if (i < added.length) await c.product({ category: cat.slug, prices: [added[i]!] })
      }
      expect(count).toBe(10)
      expect(new Set(seen).size, 'no product twice').toBe(seen.length)
      for (const id of existing) expect(seen.filter((s) => s === id), id).toHaveLength(1)
    },
  )

  it('walks back with previous links to the same pages, and count matches what was walked', async () => {
    const cat = await c.category(`Back ${uid()}`)
    for (const price of [500, 100, 300, 300, 300, 200, 400, 600]) await c.product({ category: cat.slug, prices: [price] })
    for (const ordering of ['price', '-price', '-created_at', 'name']) {
      const forward = await c.walk(`/api/products/?category=${cat.slug}&ordering=${ordering}&limit=3`)
      expect(forward.map((page) => page.results.length), ordering).toEqual([3, 3, 2])
      expect(forward[0]!.count, ordering).toBe(8)
      expect(forward[0]!.previous, ordering).toBeNull()
      expect(forward.slice(1).every((page) => page.count === null && page.previous !== null), ordering).toBe(true)

      const backward: Page[] = [forward.at(-1)!]
      for (let previous = forward.at(-1)!.previous; previous; previous = backward[0]!.previous) backward.unshift(await c.page(path(previous)))
      expect(backward.map((page) => ids(page.results)), ordering).toEqual(forward.map((page) => ids(page.results)))
      // The first page reached backwards knows it is the first, and leads forward again.
      expect(backward[0]!.previous, ordering).toBeNull()
      expect(ids((await c.page(path(backward[0]!.next!))).results), ordering).toEqual(ids(forward[1]!.results))
    }
  })

  it('defaults to 20 per page and takes up to 100', async () => {
    const cat = await c.category(`Limits ${uid()}`)
    for (let i = 0; i < 21; i += 1) await c.product({ category: cat.slug })
    const first = await c.list(`category=${cat.slug}`)
    expect(first.results).toHaveLength(20)
    expect(first.count).toBe(21)
    expect((await c.page(path(first.next!))).results).toHaveLength(1)
    expect((await c.list(`category=${cat.slug}&limit=100`)).results).toHaveLength(21)
  })
})

describe('statements per request', () => {
  /** `count` products in a new category, each with `variantCount` variants and `imageCount` images. */
  async function catalogOf(count: number, variantCount: number, imageCount: number) {
    const cat = await c.category(`Statements ${uid()}`)
    const made: ProductDto[] = []
    for (let i = 0; i < count; i += 1) {
      const product = await c.product({ category: cat.slug, prices: Array.from({ length: variantCount }, (_, v) => 1000 + v), stock: Array.from({ length: variantCount }, () => 2) })
      for (let image = 0; image < imageCount; image += 1) {
        await db().insert(productImages).values({ product_id: product.id, key: `products/${product.id}/${image}.webp`, content_type: 'image/webp', size: 1000, position: image })
      }
      made.push(product)
    }
    return { cat, made }
  }

  it('costs the same few statements for a page of 5 simple products and of 20 with 6 variants and 3 images each', async () => {
    const small = await catalogOf(5, 1, 0)
    const large = await catalogOf(20, 6, 3)
    const a = await c.measured<Page>(`/api/products/?category=${small.cat.slug}`)
    const b = await c.measured<Page>(`/api/products/?category=${large.cat.slug}`)
    expect(a.body.results).toHaveLength(5)
    expect(b.body.results).toHaveLength(20)
    expect(b.body.results.every((p) => p.variants.length === 6 && p.images.length === 3 && p.variants.every((v) => v.stock_available === 2))).toBe(true)
    expect(b.statements).toBe(a.statements)
    // Category, its subtree, the page, its count, variants, images, stock.
    expect(a.statements).toBeLessThanOrEqual(7)

    // The same with a search filter and an ordering (keyset, not the ranked search).
    const sa = await c.measured<Page>(`/api/products/?category=${small.cat.slug}&search=product&ordering=price`)
    const sb = await c.measured<Page>(`/api/products/?category=${large.cat.slug}&search=product&ordering=price`)
    expect([sa.body.results.length, sb.body.results.length]).toEqual([5, 20])
    expect(sb.statements).toBe(sa.statements)
    expect(sa.statements).toBeLessThanOrEqual(9)
  })

  it('costs the same few statements for a product page with 1 variant and with 30 variants and images', async () => {
    const simple = await c.product({ prices: [100], stock: [1] })
    const rich = await c.product({ prices: Array.from({ length: 30 }, (_, i) => 100 + i), stock: Array.from({ length: 30 }, () => 3) })
    for (let image = 0; image < 5; image += 1) {
      await db().insert(productImages).values({ product_id: rich.id, key: `products/${rich.id}/${image}.webp`, content_type: 'image/webp', size: 1000, position: image })
    }
    const a = await c.measured<ProductDto>(`/api/products/${simple.slug}/`)
    const b = await c.measured<ProductDto>(`/api/products/${rich.slug}/`)
    expect(b.body.variants).toHaveLength(30)
    expect(b.body.images).toHaveLength(5)
    expect(b.statements).toBe(a.statements)
    // The product, variants, images, stock.
    expect(a.statements).toBeLessThanOrEqual(4)

    // Staff read the uncached page (inactive products too): constant as well.
    const sa = await c.measured<ProductDto>(`/api/products/${simple.slug}/`, c.staff)
    const sb = await c.measured<ProductDto>(`/api/products/${rich.slug}/`, c.staff)
    expect(sb.statements).toBe(sa.statements)
    // The signed-in user, then the same four.
    expect(sa.statements).toBeLessThanOrEqual(5)
  })
})

// Both cache stores: the suite's own (Redis when REDIS_URL is set) and, with Redis, memory as well.
const stores: Array<[string, TestAppOptions | null]> = suiteRedisUrl ? [['redis', null], ['memory', { redis: false }]] : [['memory', null]]

describe.each(stores)('the catalog cache (%s)', (store, options) => {
  let a: ReturnType<typeof catalogClient>
  let own: TestApp | null = null

  beforeAll(async () => {
    if (options) {
      own = await createTestApp(options)
      const f = factories(own)
      a = catalogClient(own, await f.auth(await f.user({ role: 'staff' })))
    } else {
      a = c
    }
    expect(a.t.app.platform.cache.backend).toBe(store)
  })
  afterAll(async () => {
    await own?.close()
  })

  /** Reads `url` twice and proves the second read came from the cache; answers that body. */
  async function cachedRead<T>(url: string): Promise<{ body: T; cold: number; warm: number }> {
    const first = await a.measured<T>(url)
    const second = await a.measured<T>(url)
    expect(second.body).toEqual(first.body)
    expect(second.statements, `${url} is served from the cache`).toBeLessThan(first.statements)
    return { body: second.body, cold: first.statements, warm: second.statements }
  }

  it('serves a repeated list and product page from the cache, reading only the stock', async () => {
    const cat = await a.category(`Cached ${uid()}`)
    const product = await a.product({ category: cat.slug, prices: [100], stock: [1] })
    const list = await cachedRead<Page>(`/api/products/?category=${cat.slug}`)
    const page = await cachedRead<ProductDto>(`/api/products/${product.slug}/`)
    // What a cached read still costs: the live stock of the page.
    expect(list.warm).toBe(1)
    expect(page.warm).toBe(1)
  })

  it('shows a staff edit of name and price on the very next read', async () => {
    const cat = await a.category(`Edits ${uid()}`)
    const product = await a.product({ category: cat.slug, prices: [1000] })
    const listUrl = `/api/products/?category=${cat.slug}`
    const cheapUrl = `/api/products/?category=${cat.slug}&max_price=600`
    await cachedRead(listUrl)
    await cachedRead(cheapUrl)
    await cachedRead(`/api/products/${product.slug}/`)

    await a.patch(product.slug, { name: `Renamed ${uid()}`, variants: [{ sku: product.variants[0]!.sku, price: 500 }] })
    const renamed = await a.detail(product.slug)
    expect(renamed).toMatchObject({ price: 500, variants: [{ price: 500 }] })
    expect(renamed.name).toMatch(/^Renamed /)
    expect((await a.list(`category=${cat.slug}`)).results[0]).toMatchObject({ name: renamed.name, price: 500 })
    expect(ids((await a.page(cheapUrl)).results)).toEqual([product.id])
  })

  it('shows a category rename on the products in it on the very next read', async () => {
    const cat = await a.category(`Before ${uid()}`)
    const product = await a.product({ category: cat.slug })
    await cachedRead(`/api/products/?category=${cat.slug}`)
    await cachedRead(`/api/products/${product.slug}/`)

    const name = `After ${uid()}`
    const res = await a.t.request({ method: 'PATCH', url: `/api/categories/${cat.slug}/`, headers: a.staff, payload: { name } })
    expect(res.statusCode, res.body).toBe(200)
    expect((await a.detail(product.slug)).category).toEqual({ id: cat.id, slug: cat.slug, name })
    expect((await a.list(`category=${cat.slug}`)).results[0]!.category).toEqual({ id: cat.id, slug: cat.slug, name })
    // Its products are found by the new name.
    expect(ids((await a.list(`search=${encodeURIComponent(name)}`)).results)).toEqual([product.id])
  })

  it('reads stock live under a cached page: a stock change shows at once and the page stays cached', async () => {
    const cat = await a.category(`Live ${uid()}`)
    const product = await a.product({ category: cat.slug, prices: [100], stock: [5] })
    const sku = product.variants[0]!.sku
    const listUrl = `/api/products/?category=${cat.slug}`
    const pageUrl = `/api/products/${product.slug}/`
    const list = await cachedRead<Page>(listUrl)
    const page = await cachedRead<ProductDto>(pageUrl)

    await a.stock(sku, { quantity: 2 })
    const afterList = await a.measured<Page>(listUrl)
    const afterPage = await a.measured<ProductDto>(pageUrl)
    expect(afterList.body.results[0]!.variants[0]).toMatchObject({ in_stock: true, stock_available: 2 })
    expect(afterPage.body.variants[0]).toMatchObject({ in_stock: true, stock_available: 2 })
    // Still the cached entries: only the stock was read.
    expect(afterList.statements).toBe(list.warm)
    expect(afterPage.statements).toBe(page.warm)
  })

  it('follows an availability flip from a reservation in in_stock lists on the very next read', async () => {
    const cat = await a.category(`Flip ${uid()}`)
    const product = await a.product({ category: cat.slug, prices: [100], stock: [2] })
    const sku = product.variants[0]!.sku
    const inStockUrl = `/api/products/?category=${cat.slug}&in_stock=true`
    const soldOutUrl = `/api/products/?category=${cat.slug}&in_stock=false`
    expect(ids((await cachedRead<Page>(inStockUrl)).body.results)).toEqual([product.id])
    expect((await cachedRead<Page>(soldOutUrl)).body.results).toEqual([])
    await cachedRead(`/api/products/${product.slug}/`)

    const reference = `ORD-${uid()}`
    await a.inventory.reserve(a.ctx(), reference, [{ sku, quantity: 2 }])
    expect((await a.page(inStockUrl)).results).toEqual([])
    expect(ids((await a.page(soldOutUrl)).results)).toEqual([product.id])
    expect((await a.detail(product.slug)).variants[0]).toMatchObject({ in_stock: false, stock_available: 0 })

    await a.inventory.release(a.ctx(), reference)
    expect(ids((await a.page(inStockUrl)).results)).toEqual([product.id])
    expect((await a.page(soldOutUrl)).results).toEqual([])
  })

  it('drops a deactivated or deleted product from cached reads at once', async () => {
    const cat = await a.category(`Gone ${uid()}`)
    const hidden = await a.product({ category: cat.slug })
    const deleted = await a.product({ category: cat.slug })
    await cachedRead(`/api/products/?category=${cat.slug}`)
    await cachedRead(`/api/products/${hidden.slug}/`)
    await cachedRead(`/api/products/${deleted.slug}/`)

    await a.patch(hidden.slug, { is_active: false })
    expect((await a.t.request({ method: 'DELETE', url: `/api/products/${deleted.slug}/`, headers: a.staff })).statusCode).toBe(204)
    expect((await a.t.request({ method: 'GET', url: `/api/products/${hidden.slug}/` })).statusCode).toBe(404)
    expect((await a.t.request({ method: 'GET', url: `/api/products/${deleted.slug}/` })).statusCode).toBe(404)
    expect((await a.list(`category=${cat.slug}`)).results).toEqual([])
  })

  it('keeps a cached 404 only until the product exists', async () => {
    const slug = `later-${uid()}`
    expect((await a.t.request({ method: 'GET', url: `/api/products/${slug}/` })).statusCode).toBe(404)
    await a.product({ slug })
    expect((await a.detail(slug)).slug).toBe(slug)
  })
})
