/**
 * Search: GET /api/search/ (ranking, typo corrections, prefixes, synonyms, highlights, facets,
 * filters, pages) and the staff routes of synonym groups, /api/search/synonyms/. The product
 * list's `search` parameter is checked against the same answers.
 *
 * Tests share the file's database, so each one searches inside a category of its own (the
 * category filter) or for a word of its own. The typo tests rely on this file's vocabulary: no
 * word here is closer to "hodie" than "hoodie".
 */
import { randomUUID } from 'node:crypto'
import { count } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { createCatalogCache } from '../products/catalog-cache.js'
import type { ProductDto, ProductInput } from '../products/catalog.js'
import { createProductsService } from '../products/service.js'
import type { Facets, SearchPage, SearchResultItem } from './service.js'
import type { SynonymGroup } from './synonyms.js'
import { synonyms } from './tables.js'

type Headers = Record<string, string>
type Hit = SearchResultItem
interface Answer extends Omit<SearchPage, 'results'> {
  results: Hit[]
}

let t: TestApp
let staff: Headers
let customer: Headers

beforeAll(async () => {
  t = await createTestApp()
  const f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  customer = await f.auth(await f.user())
})
afterAll(() => t.close())

const uid = () => randomUUID().slice(0, 8)
/** A word of letters only, unique to the caller (full-text search splits digits off). */
const word = () => `z${randomUUID().replace(/[^a-f]/g, '').slice(0, 10)}`.padEnd(9, 'x')
const names = (items: Array<{ name: string }>) => items.map((item) => item.name)
const ids = (items: Array<{ id: string }>) => items.map((item) => item.id)
const path = (link: string) => link.replace(/^https?:\/\/[^/]+/, '')

async function search(query: string): Promise<Answer> {
  const res = await t.request({ method: 'GET', url: `/api/search/?${query}` })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<Answer>()
}

async function list(query: string): Promise<{ count: number | null; next: string | null; results: ProductDto[] }> {
  const res = await t.request({ method: 'GET', url: `/api/products/?${query}` })
  expect(res.statusCode, res.body).toBe(200)
  return res.json()
}

async function category(name: string, parent?: string): Promise<{ id: string; slug: string; name: string }> {
  const res = await t.request({ method: 'POST', url: '/api/categories/', headers: staff, payload: { name, ...(parent ? { parent } : {}) } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json()
}

type ProductSpec = Partial<Omit<ProductInput, 'variants'>> & { name: string; variants?: Array<{ price?: number; stock?: number; attributes?: Record<string, string> }> }

async function product(spec: ProductSpec): Promise<ProductDto> {
  const s = uid()
  const { variants = [{}], ...rest } = spec
  const payload: ProductInput = {
    slug: `p-${s}`,
    ...rest,
    variants: variants.map((variant, i) => ({ sku: `S-${s}-${i}`.toUpperCase(), price: variant.price ?? 1000, ...(variant.stock ? { stock: variant.stock } : {}), ...(variant.attributes ? { attributes: variant.attributes } : {}) })),
  }
  const res = await t.request({ method: 'POST', url: '/api/products/', headers: staff, payload })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<ProductDto>()
}

/** Three hoodies in a category of their own; the exact "Hoodie" is made last and its rivals say "hoodie" more often. */
async function hoodies() {
  const cat = await category(`Tops ${uid()}`)
  const zip = await product({ name: 'Hoodie Zip Jacket', category: cat.slug, description: 'A hoodie with a zip: the hoodie for hoodie lovers, hoodie weather.' })
  const classic = await product({ name: 'Classic Pullover Hoodie', category: cat.slug, description: 'Our classic hoodie.' })
  const exact = await product({ name: 'Hoodie', category: cat.slug })
  await product({ name: 'Plain Jogger', category: cat.slug, description: 'Goes with everything.' })
  return { cat, zip, classic, exact }
}

describe('GET /api/search/ relevance', () => {
  it('puts the product named exactly as typed first, whatever the case', async () => {
    const { cat, exact, zip, classic } = await hoodies()
    for (const q of ['hoodie', 'Hoodie', 'HOODIE', '  hoodie  ']) {
      const answer = await search(`q=${encodeURIComponent(q)}&category=${cat.slug}`)
      expect(answer.count, q).toBe(3)
      expect(answer.results[0]!.id, q).toBe(exact.id)
      expect(ids(answer.results).sort(), q).toEqual(ids([exact, zip, classic]).sort())
      expect(answer.corrections, q).toEqual({})
    }
  })

  it('finds hoodies for the typo "hodie" and says it searched "hoodie" instead', async () => {
    const { cat, exact, zip, classic } = await hoodies()
    const answer = await search(`q=hodie&category=${cat.slug}`)
    expect(answer.corrections).toEqual({ hodie: 'hoodie' })
    expect(ids(answer.results).sort()).toEqual(ids([exact, zip, classic]).sort())
    expect(answer.results.every((hit) => hit.highlight.name?.includes('<mark>Hoodie</mark>'))).toBe(true)
  })

  it('matches a prefix as typed, without calling it a typo', async () => {
    const { cat, exact, zip, classic } = await hoodies()
    const answer = await search(`q=hoo&category=${cat.slug}`)
    expect(answer.corrections).toEqual({})
    expect(ids(answer.results).sort()).toEqual(ids([exact, zip, classic]).sort())
  })

  it('does not report another form of a catalog word (a plural) as a typo', async () => {
    const { cat, exact, zip, classic } = await hoodies()
    const answer = await search(`q=hoodies&category=${cat.slug}`)
    expect(answer.corrections).toEqual({})
    expect(ids(answer.results).sort()).toEqual(ids([exact, zip, classic]).sort())
    expect((await search(`q=jackets&category=${cat.slug}`)).corrections).toEqual({})
  })

  it('ranks a word in the name above the category, the attributes and the description, however often they say it', async () => {
    const w = word()
    const inDescription = await product({ name: `Lamp ${uid()}`, description: `${w} ${w}, ${w} and more ${w}.` })
    const inAttribute = await product({ name: `Vase ${uid()}`, attributes: { style: w } })
    const inCategory = await product({ name: `Shelf ${uid()}`, category: (await category(`${w} Furniture ${uid()}`)).slug })
    const inName = await product({ name: `Chair ${w}` })
    const expected = ids([inName, inCategory, inAttribute, inDescription])
    expect(ids((await search(`q=${w}`)).results)).toEqual(expected)
    // The product list's search ranks the same way.
    expect(ids((await list(`search=${w}`)).results)).toEqual(expected)
  })

  it('needs every word of the query, any of its alternatives', async () => {
    const w = word()
    const cat = await category(`Words ${uid()}`)
    const both = await product({ name: `Red ${w} Scarf`, category: cat.slug })
    await product({ name: `Blue ${w} Scarf`, category: cat.slug })
    await product({ name: `Red ${word()} Hat`, category: cat.slug })
    expect(ids((await search(`q=red+${w}&category=${cat.slug}`)).results)).toEqual([both.id])
    // Punctuation around words is ignored; a repeated word counts once.
    expect(ids((await search(`q=${encodeURIComponent(`"red", ${w}! red`)}&category=${cat.slug}`)).results)).toEqual([both.id])
  })
})

describe('GET /api/search/ input', () => {
  it.each([
    ['empty', ''],
    ['blank', '%20%20%20'],
    ['only punctuation, 200 characters', encodeURIComponent('!@#$%^&*()-_=+[]{};:\'",.<>/?\\|`~'.repeat(7).slice(0, 200))],
    ['tsquery operators', encodeURIComponent(`' & | ! ( ) : * <-> \\`)],
  ])('answers 200 with no results and no facets for a %s query', async (_case, q) => {
    const answer = await search(`q=${q}`)
    expect(answer).toEqual({ count: 0, next: null, previous: null, results: [], facets: { categories: [], price_ranges: [], attributes: [] }, corrections: {} })
  })

  it('answers 200 with no results for a query of stop words only', async () => {
    const answer = await search('q=the+of+and')
    expect(answer).toMatchObject({ count: 0, next: null, previous: null, results: [], facets: { categories: [], price_ranges: [], attributes: [] } })
  })

  it('finds words wrapped in operators and quotes', async () => {
    const { cat, exact } = await hoodies()
    for (const q of ['"hoodie"', "'hoodie'", 'hoodie!', '(hoodie)', 'hoodie:*', '!hoodie']) {
      const answer = await search(`q=${encodeURIComponent(q)}&category=${cat.slug}`)
      expect(answer.count, q).toBe(3)
      expect(ids(answer.results), q).toContain(exact.id)
    }
  })

  it.each([
    ['no q at all', '', 'q'],
    ['a q of 201 characters', `q=${'a'.repeat(201)}`, 'q'],
    ['a NUL byte in q', 'q=a%00b', 'q'],
    ['an unknown ordering', 'q=x&ordering=colour', 'ordering'],
    ['min_price above max_price', 'q=x&min_price=10&max_price=9', 'min_price'],
    ['an unknown category', `q=x&category=no-such-${uid()}`, 'category'],
    ['a cursor that is not one', 'q=x&cursor=garbage', 'cursor'],
    ['a negative offset cursor', `q=x&cursor=${Buffer.from(JSON.stringify({ off: -2 })).toString('base64url')}`, 'cursor'],
    ['an offset beyond any page', `q=x&cursor=${Buffer.from(JSON.stringify({ off: 1e20 })).toString('base64url')}`, 'cursor'],
    ['a keyset cursor of the product list', `q=x&cursor=${Buffer.from(JSON.stringify({ o: 'price', v: '1', id: randomUUID() })).toString('base64url')}`, 'cursor'],
  ])('answers 422 on the field for %s', async (_case, query, field) => {
    const problem = expectProblem(await t.request({ method: 'GET', url: `/api/search/?${query}` }), 422, 'validation_error')
    expect(Object.keys(problem.errors ?? {})).toContain(field)
  })
})

describe('GET /api/search/ highlights', () => {
  it('wraps matches in <mark> and escapes the HTML of names and descriptions', async () => {
    const w = word()
    const name = `<b>Bold</b> ${w} & "Co" Hoodie`
    const description = `<script>alert(1)</script> The ${w} hoodie & <img src=x onerror=alert(1)>`
    const made = await product({ name, description })
    const [hit] = (await search(`q=${w}`)).results
    expect(hit!.id).toBe(made.id)
    // The product itself is data (JSON), unchanged.
    expect(hit!.name).toBe(name)
    const { name: highlightedName, description: highlightedDescription } = hit!.highlight
    expect(highlightedName).toBe(`&lt;b&gt;Bold&lt;/b&gt; <mark>${w}</mark> &amp; "Co" Hoodie`)
    const unescape = (html: string) => html.replace(/<\/?mark>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
    for (const [html, original] of [[highlightedName!, name], [highlightedDescription!, description]] as const) {
      // The only tags are the marks, and no entity is cut: without them it is a piece of the text.
      expect(html.replace(/<\/?mark>/g, '')).not.toMatch(/[<>]/)
      expect(original).toContain(unescape(html))
    }
    expect(highlightedDescription).toContain(`<mark>${w}</mark>`)
  })

  it('marks a prefix and a corrected word where they match, in the case they are written', async () => {
    const { cat } = await hoodies()
    const prefix = await search(`q=hoo&category=${cat.slug}`)
    expect(prefix.results.find((hit) => hit.name === 'Classic Pullover Hoodie')!.highlight.name).toBe('Classic Pullover <mark>Hoodie</mark>')
    const typo = await search(`q=hodie&category=${cat.slug}`)
    expect(typo.results.find((hit) => hit.name === 'Hoodie Zip Jacket')!.highlight.description).toContain('<mark>hoodie</mark>')
  })
})

describe('GET /api/search/ facets', () => {
  /**
   * A hand-built set: a tree root → (child → grandchild, child2), products with a word of their
   * own at known prices, with product and variant attributes, one variant of which is no longer
   * sold, and a product outside the tree.
   */
  async function facetSet() {
    const w = word()
    const s = uid()
    const root = await category(`Root ${s}`)
    const child = await category(`Child ${s}`, root.slug)
    const grandchild = await category(`Grandchild ${s}`, child.slug)
    const child2 = await category(`Second ${s}`, root.slug)
    await product({ name: `One ${w}`, category: root.slug, attributes: { material: 'cotton' }, variants: [{ price: 500, stock: 1, attributes: { colour: 'red' } }, { price: 700, attributes: { colour: 'blue' } }] })
    await product({ name: `Two ${w}`, category: child.slug, attributes: { material: 'wool' }, variants: [{ price: 1500, attributes: { colour: 'red' } }] })
    await product({ name: `Three ${w}`, category: grandchild.slug, attributes: { material: 'cotton' }, variants: [{ price: 3000, stock: 2, attributes: { colour: 'green' } }] })
    await product({ name: `Four ${w}`, category: child2.slug, variants: [{ price: 2499, attributes: { colour: 'red', size: 'M' } }] })
    const five = await product({ name: `Five ${w}`, category: grandchild.slug, attributes: { material: 'cotton' }, variants: [{ price: 30000, attributes: { colour: 'red' } }, { price: 31000, attributes: { colour: 'black' } }] })
    // Five's red variant is no longer sold: its colour no longer counts, and its price is 31000.
    const res = await t.request({ method: 'PATCH', url: `/api/products/${five.slug}/`, headers: staff, payload: { variants: [{ sku: five.variants[1]!.sku, price: 31000, attributes: { colour: 'black' } }] } })
    expect(res.statusCode, res.body).toBe(200)
    // Matches the word but lies outside the tree; and one in the tree without the word.
    await product({ name: `Six ${w}`, category: (await category(`Elsewhere ${s}`)).slug, attributes: { material: 'silk' } })
    await product({ name: `Seven ${s}`, category: root.slug, attributes: { material: 'cotton' } })
    return { w, root, child, grandchild, child2 }
  }

  it('counts categories (subtrees), price ranges and attribute values of everything that matches', async () => {
    const { w, root, child, grandchild, child2 } = await facetSet()
    const answer = await search(`q=${w}&category=${root.slug}&limit=1`)
    expect(answer.count).toBe(5)
    expect(answer.results).toHaveLength(1)
    const facets: Facets = answer.facets
    expect(facets.categories).toEqual([
      { slug: root.slug, name: root.name, count: 5 },
      { slug: child.slug, name: child.name, count: 3 },
      { slug: grandchild.slug, name: grandchild.name, count: 2 },
      { slug: child2.slug, name: child2.name, count: 1 },
    ])
    expect(facets.price_ranges).toEqual([
      { min_price: 0, max_price: 999, count: 1 },
      { min_price: 1000, max_price: 2499, count: 2 },
      { min_price: 2500, max_price: 4999, count: 1 },
      { min_price: 25000, max_price: null, count: 1 },
    ])
    expect(facets.attributes).toEqual([
      { name: 'colour', values: [{ value: 'red', count: 3 }, { value: 'black', count: 1 }, { value: 'blue', count: 1 }, { value: 'green', count: 1 }] },
      { name: 'material', values: [{ value: 'cotton', count: 3 }, { value: 'wool', count: 1 }] },
      { name: 'size', values: [{ value: 'M', count: 1 }] },
    ])
  })

  it.each([[''], ['&in_stock=true'], ['&in_stock=false'], ['&min_price=1000']])('gives category and price counts equal to the filtered list counts (extra filter: %s)', async (extra) => {
    const { w, root } = await facetSet()
    const { facets, count: total } = await search(`q=${w}&category=${root.slug}${extra}`)
    expect(facets.categories[0]?.count ?? 0).toBe(total)
    for (const facet of facets.categories) {
      expect((await list(`search=${w}&category=${facet.slug}${extra}`)).count, facet.slug).toBe(facet.count)
      expect((await search(`q=${w}&category=${facet.slug}${extra}`)).count, facet.slug).toBe(facet.count)
    }
    expect(facets.price_ranges.reduce((sum, range) => sum + range.count, 0)).toBe(total)
    for (const range of facets.price_ranges) {
      // The range's own bounds replace the extra min_price (every range lies above it anyway).
      const bounds = `min_price=${range.min_price}${range.max_price === null ? '' : `&max_price=${range.max_price}`}`
      const filters = `search=${w}&category=${root.slug}${extra.replace(/&min_price=\d+/, '')}&${bounds}`
      expect((await list(filters)).count, JSON.stringify(range)).toBe(range.count)
    }
  })
})

describe('GET /api/search/ filters, ordering and pages', () => {
  it('combines the words with category, price and availability filters and an ordering', async () => {
    const w = word()
    const cat = await category(`Filters ${uid()}`)
    const cheap = await product({ name: `Cheap ${w}`, category: cat.slug, variants: [{ price: 900, stock: 1 }] })
    const mid = await product({ name: `Mid ${w}`, category: cat.slug, variants: [{ price: 2000 }] })
    const dear = await product({ name: `Dear ${w}`, category: cat.slug, variants: [{ price: 9000, stock: 3 }] })
    const outside = await product({ name: `Outside ${w}`, variants: [{ price: 1000, stock: 1 }] })

    expect(ids((await search(`q=${w}&ordering=price`)).results)).toEqual(ids([cheap, outside, mid, dear]))
    expect(ids((await search(`q=${w}&ordering=-price`)).results)).toEqual(ids([dear, mid, outside, cheap]))
    expect(ids((await search(`q=${w}&category=${cat.slug}&ordering=price`)).results)).toEqual(ids([cheap, mid, dear]))
    expect(ids((await search(`q=${w}&min_price=1000&max_price=2000&ordering=price`)).results)).toEqual(ids([outside, mid]))
    expect(ids((await search(`q=${w}&in_stock=true&ordering=price`)).results)).toEqual(ids([cheap, outside, dear]))
    expect(ids((await search(`q=${w}&in_stock=false`)).results)).toEqual([mid.id])
    expect(ids((await search(`q=${w}&category=${cat.slug}&in_stock=true&min_price=1000`)).results)).toEqual([dear.id])

    // Availability changes reach cached searches at once.
    const inventory = createProductsService({ cache: createCatalogCache(t.app.platform.cache) })
    const reference = `ORD-${uid()}`
    await inventory.reserve(t.app.platform.context(), reference, [{ sku: dear.variants[0]!.sku, quantity: 3 }])
    expect(ids((await search(`q=${w}&category=${cat.slug}&in_stock=true&min_price=1000`)).results)).toEqual([])
    expect(ids((await search(`q=${w}&in_stock=false&ordering=price`)).results)).toEqual(ids([mid, dear]))
    const [hit] = (await search(`q=${w}&category=${cat.slug}&min_price=5000`)).results
    expect(hit!.variants[0]).toMatchObject({ in_stock: false, stock_available: 0 })
    await inventory.release(t.app.platform.context(), reference)
    expect(ids((await search(`q=${w}&category=${cat.slug}&in_stock=true&min_price=1000`)).results)).toEqual([dear.id])
  })

  it('pages by offset with next and previous links, in the order of one long page', async () => {
    const w = word()
    for (let i = 0; i < 7; i += 1) await product({ name: `${w} item ${uid()}`, description: i % 2 ? `${w} again` : '' })
    for (const [query, extra] of [[`search=${w}`, '/api/products/'], [`q=${w}`, '/api/search/']] as const) {
      const whole = (await t.request({ method: 'GET', url: `${extra}?${query}&limit=50` })).json<Answer>()
      expect(whole.results).toHaveLength(7)
      const pages: Answer[] = []
      for (let next: string | null = `${extra}?${query}&limit=3`; next; ) {
        const res = await t.request({ method: 'GET', url: path(next) })
        expect(res.statusCode, res.body).toBe(200)
        const page = res.json<Answer>()
        pages.push(page)
        expect(page.count).toBe(7)
        next = page.next
      }
      expect(pages.map((page) => page.results.length)).toEqual([3, 3, 1])
      expect(pages.flatMap((page) => ids(page.results))).toEqual(ids(whole.results))
      expect(pages[0]!.previous).toBeNull()
      // Back from the last page, to the same pages.
      const second = (await t.request({ method: 'GET', url: path(pages[2]!.previous!) })).json<Answer>()
      expect(ids(second.results)).toEqual(ids(pages[1]!.results))
      const first = (await t.request({ method: 'GET', url: path(second.previous!) })).json<Answer>()
      expect(ids(first.results)).toEqual(ids(pages[0]!.results))
      expect(first.previous).toBeNull()
      // A page past the end is empty but still knows how many there are.
      const beyond = (await t.request({ method: 'GET', url: `${extra}?${query}&limit=3&cursor=${Buffer.from(JSON.stringify({ off: 30 })).toString('base64url')}` })).json<Answer>()
      expect(beyond).toMatchObject({ count: 7, next: null, results: [] })
    }
  })

  it('costs the same statements for 5 hits and for 20 hits with 6 variants each', async () => {
    const small = word()
    const large = word()
    for (let i = 0; i < 5; i += 1) await product({ name: `${small} ${uid()}` })
    for (let i = 0; i < 20; i += 1) await product({ name: `${large} ${uid()}`, variants: Array.from({ length: 6 }, (_, v) => ({ price: 100 + v, stock: 1, attributes: { size: `S${v}` } })) })
    const measure = async (url: string) => {
      await t.app.platform.relay.flush()
      await t.app.platform.queue.drain()
      const before = t.app.platform.database.queryCount()
      const res = await t.request({ method: 'GET', url })
      expect(res.statusCode, res.body).toBe(200)
      return { body: res.json<Answer>(), statements: t.app.platform.database.queryCount() - before }
    }
    const a = await measure(`/api/search/?q=${small}`)
    const b = await measure(`/api/search/?q=${large}`)
    expect([a.body.results.length, b.body.results.length]).toEqual([5, 20])
    expect(b.body.facets.attributes[0]!.values).toHaveLength(6)
    expect(b.statements).toBe(a.statements)
    // Corrections, synonyms, hits, facets, the tree, products, variants, images, stock.
    expect(a.statements).toBeLessThanOrEqual(9)
    // Cached: the same search again reads only the stock (and the query analysis is not redone).
    const again = await measure(`/api/search/?q=${large}`)
    expect(again.body).toEqual(b.body)
    expect(again.statements).toBeLessThan(b.statements)
  })

  it('shows a product edit in the very next search', async () => {
    const w = word()
    const made = await product({ name: `Before ${w}` })
    expect(names((await search(`q=${w}`)).results)).toEqual([`Before ${w}`])
    const res = await t.request({ method: 'PATCH', url: `/api/products/${made.slug}/`, headers: staff, payload: { name: `After ${w}` } })
    expect(res.statusCode, res.body).toBe(200)
    const answer = await search(`q=${w}`)
    expect(names(answer.results)).toEqual([`After ${w}`])
    expect(answer.results[0]!.highlight.name).toBe(`After <mark>${w}</mark>`)
    expect((await t.request({ method: 'DELETE', url: `/api/products/${made.slug}/`, headers: staff })).statusCode).toBe(204)
    expect((await search(`q=${w}`)).count).toBe(0)
  })
})

describe('synonyms', () => {
  const synonymsUrl = '/api/search/synonyms/'
  const create = (terms: unknown, headers: Headers = staff) => t.request({ method: 'POST', url: synonymsUrl, headers, payload: { terms } as object })
  const rows = async () => (await t.app.platform.database.db.select({ n: count() }).from(synonyms))[0]!.n

  it('lets staff add a group so "tee" finds a T-shirt (and back), change it, and delete it', async () => {
    const cat = await category(`Shirts ${uid()}`)
    const shirt = await product({ name: 'Basic T-Shirt', category: cat.slug })
    const tee = await product({ name: 'Pocket Tee', category: cat.slug })
    const jersey = await product({ name: 'Rugby Jersey', category: cat.slug })
    expect(ids((await search(`q=tee&category=${cat.slug}`)).results)).toEqual([tee.id])
    expect(ids((await search(`q=t-shirt&category=${cat.slug}`)).results)).toEqual([shirt.id])

    const res = await create(['Tee', ' T-Shirt '])
    expect(res.statusCode, res.body).toBe(201)
    const group = res.json<SynonymGroup>()
    // Terms are stored lower case and trimmed.
    expect(group.terms).toEqual(['tee', 't-shirt'])
    // No reindex: the next search (cached or not) expands the word, both ways.
    expect(ids((await search(`q=tee&category=${cat.slug}`)).results).sort()).toEqual(ids([shirt, tee]).sort())
    expect(ids((await search(`q=t-shirt&category=${cat.slug}`)).results).sort()).toEqual(ids([shirt, tee]).sort())
    expect(ids((await list(`search=tee&category=${cat.slug}`)).results).sort()).toEqual(ids([shirt, tee]).sort())
    expect(ids((await list(`search=tee&category=${cat.slug}&ordering=name`)).results)).toEqual(ids([shirt, tee]))

    const listed = await t.request({ method: 'GET', url: synonymsUrl, headers: staff })
    expect(listed.statusCode).toBe(200)
    expect(listed.json<SynonymGroup[]>().find((row) => row.id === group.id)).toEqual(group)

    const put = await t.request({ method: 'PUT', url: `${synonymsUrl}${group.id}/`, headers: staff, payload: { terms: ['tee', 'jersey'] } })
    expect(put.statusCode, put.body).toBe(200)
    expect(put.json()).toMatchObject({ id: group.id, terms: ['tee', 'jersey'] })
    expect(ids((await search(`q=tee&category=${cat.slug}`)).results).sort()).toEqual(ids([jersey, tee]).sort())

    const removed = await t.request({ method: 'DELETE', url: `${synonymsUrl}${group.id}/`, headers: staff })
    expect(removed.statusCode).toBe(204)
    expect(ids((await search(`q=tee&category=${cat.slug}`)).results)).toEqual([tee.id])
    expect(ids((await search(`q=t-shirt&category=${cat.slug}`)).results)).toEqual([shirt.id])
    expectProblem(await t.request({ method: 'DELETE', url: `${synonymsUrl}${group.id}/`, headers: staff }), 404, 'not_found')
  })

  it('answers 401 without a token and 403 to a customer on every route, changing nothing', async () => {
    const res = await create(['sofa', 'couch'])
    const group = res.json<SynonymGroup>()
    const before = await rows()
    for (const [headers, status] of [[{}, 401], [customer, 403]] as const) {
      expectProblem(await t.request({ method: 'GET', url: synonymsUrl, headers }), status)
      expectProblem(await create(['jumper', 'sweater'], headers), status)
      expectProblem(await t.request({ method: 'PUT', url: `${synonymsUrl}${group.id}/`, headers, payload: { terms: ['a', 'b'] } }), status)
      expectProblem(await t.request({ method: 'DELETE', url: `${synonymsUrl}${group.id}/`, headers }), status)
    }
    expect(await rows()).toBe(before)
    const [stored] = (await t.request({ method: 'GET', url: synonymsUrl, headers: staff })).json<SynonymGroup[]>().filter((row) => row.id === group.id)
    expect(stored!.terms).toEqual(['sofa', 'couch'])
    await t.request({ method: 'DELETE', url: `${synonymsUrl}${group.id}/`, headers: staff })
  })

  it.each([
    ['one term', ['tee']],
    ['no terms', []],
    ['two spellings of one term', ['Tee', ' tee ']],
    ['a blank term', ['tee', '   ']],
    ['an empty term', ['tee', '']],
    ['a term of 51 characters', ['tee', 'x'.repeat(51)]],
    ['21 terms', Array.from({ length: 21 }, (_, i) => `term${i}`)],
    ['terms that are not strings', ['tee', 5]],
    ['no list at all', 'tee, t-shirt'],
  ])('answers 422 and stores nothing for %s', async (_case, terms) => {
    const before = await rows()
    const problem = expectProblem(await create(terms), 422, 'validation_error')
    expect(Object.keys(problem.errors ?? {}).some((key) => key.startsWith('terms')), JSON.stringify(problem.errors)).toBe(true)
    expect(await rows()).toBe(before)
  })

  it('answers 404 for an unknown group and 422 for an id that is not a UUID', async () => {
    expectProblem(await t.request({ method: 'PUT', url: `${synonymsUrl}${randomUUID()}/`, headers: staff, payload: { terms: ['a1', 'b1'] } }), 404, 'not_found')
    expectProblem(await t.request({ method: 'DELETE', url: `${synonymsUrl}${randomUUID()}/`, headers: staff }), 404, 'not_found')
    expectProblem(await t.request({ method: 'PUT', url: `${synonymsUrl}not-a-uuid/`, headers: staff, payload: { terms: ['a1', 'b1'] } }), 422, 'validation_error')
    expectProblem(await t.request({ method: 'PUT', url: `${synonymsUrl}${randomUUID()}/`, headers: staff, payload: { terms: ['only'] } }), 422, 'validation_error')
  })
})
