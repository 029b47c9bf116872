/**
 * The catalog's product routes: GET /api/products/{slug}/ (anyone; staff also see inactive
 * products), POST /api/products/, PATCH and DELETE /api/products/{slug}/ (staff). Every refusal is
 * checked to change nothing, by counting the rows a write could touch before and after. Every test
 * makes its products with unique names, slugs and SKUs, so tests share the file's database.
 */
import { randomUUID } from 'node:crypto'
import { and, count, eq, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { outboxEvents } from '../../core/events/tables.js'
import type { ProductDto, ProductInput, VariantInput } from './catalog.js'
import { products, stockLevels, stockMovements, variants } from './tables.js'

let t: TestApp
let staff: { authorization: string }
let admin: { authorization: string }
let customer: { authorization: string }

beforeAll(async () => {
  t = await createTestApp()
  const f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  admin = await f.auth(await f.user({ role: 'admin' }))
  customer = await f.auth(await f.user())
})
afterAll(() => t.close())

const db = () => t.app.platform.database.db
/** A fresh lowercase suffix for names, slugs and SKUs. */
const uid = () => randomUUID().slice(0, 8)
type Headers = Record<string, string>

const post = (payload: unknown, headers: Headers = staff) => t.request({ method: 'POST', url: '/api/products/', headers, payload: payload as object })
const get = (slug: string, headers: Headers = {}) => t.request({ method: 'GET', url: `/api/products/${slug}/`, headers })
const patch = (slug: string, payload: unknown, headers: Headers = staff) => t.request({ method: 'PATCH', url: `/api/products/${slug}/`, headers, payload: payload as object })
const remove = (slug: string, headers: Headers = staff) => t.request({ method: 'DELETE', url: `/api/products/${slug}/`, headers })
const list = async (query: string) => {
  const res = await t.request({ method: 'GET', url: `/api/products/?${query}` })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<{ count: number | null; results: ProductDto[] }>()
}

/** A product body with one variant per price, SKUs unique to this call. */
function body(overrides: Partial<ProductInput> = {}, prices: number[] = [2500]): ProductInput & { slug: string } {
  const s = uid()
  return {
    name: `Product ${s}`,
    slug: `product-${s}`,
    variants: prices.map((price, i): VariantInput => ({ sku: `SKU-${s}-${i}`.toUpperCase(), price })),
    ...overrides,
  } as ProductInput & { slug: string }
}

async function create(payload: ProductInput): Promise<ProductDto> {
  const res = await post(payload)
  expect(res.statusCode, res.body).toBe(201)
  return res.json<ProductDto>()
}

async function createCategory(name: string, parent?: string): Promise<{ slug: string; name: string; id: string }> {
  const res = await t.request({ method: 'POST', url: '/api/categories/', headers: staff, payload: { name, ...(parent ? { parent } : {}) } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json()
}

/** Rows a product write could add or change: compared before and after a refusal. */
async function rowCounts() {
  const [p] = await db().select({ n: count() }).from(products)
  const [v] = await db().select({ n: count() }).from(variants)
  const [s] = await db().select({ n: count() }).from(stockLevels)
  const [m] = await db().select({ n: count() }).from(stockMovements)
  const [e] = await db().select({ n: count() }).from(outboxEvents)
  return { products: p!.n, variants: v!.n, stock: s!.n, movements: m!.n, events: e!.n }
}

/** A product's row and its variants' rows as stored, to prove a refused PATCH changed nothing. */
async function stored(id: string) {
  const [product] = await db().select().from(products).where(eq(products.id, id))
  const rows = await db().select().from(variants).where(eq(variants.product_id, id)).orderBy(variants.sku)
  return { product, variants: rows }
}

describe('GET /api/products/{slug}/', () => {
  it('answers an active product with its category, variants and live stock to anyone', async () => {
    const s = uid()
    const category = await createCategory(`Knitwear ${s}`)
    const created = await create({
      name: `Wool Jumper ${s}`,
      description: 'Soft merino.',
      category: category.slug,
      attributes: { material: 'wool' },
      variants: [
        { sku: `JMP-${s}-M`, name: 'Medium', price: 5900, compare_at_price: 7900, attributes: { size: 'M' }, stock: 3 },
        { sku: `JMP-${s}-L`, name: 'Large', price: 4900, attributes: { size: 'L' } },
      ],
    })
    for (const headers of [{}, customer]) {
      const res = await get(created.slug, headers)
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json()).toEqual({
        id: created.id,
        slug: `wool-jumper-${s}`,
        name: `Wool Jumper ${s}`,
        description: 'Soft merino.',
        category: { id: category.id, slug: category.slug, name: category.name },
        images: [],
        attributes: { material: 'wool' },
        // The lowest price among the variants.
        price: 4900,
        currency: t.settings.currency,
        rating: null,
        review_count: 0,
        is_active: true,
        created_at: created.created_at,
        updated_at: created.updated_at,
        variants: [
          { id: expect.any(String), sku: `JMP-${s}-M`, name: 'Medium', attributes: { size: 'M' }, price: 5900, compare_at_price: 7900, currency: t.settings.currency, in_stock: true, stock_available: 3 },
          { id: expect.any(String), sku: `JMP-${s}-L`, name: 'Large', attributes: { size: 'L' }, price: 4900, compare_at_price: null, currency: t.settings.currency, in_stock: false, stock_available: 0 },
        ],
      })
    }
  })

  it('hides an inactive product from the public and customers but shows it to staff and admins', async () => {
    const created = await create(body({ is_active: false }))
    expect(created.is_active).toBe(false)
    expectProblem(await get(created.slug), 404, 'not_found')
    expectProblem(await get(created.slug, customer), 404, 'not_found')
    for (const headers of [staff, admin]) {
      const res = await get(created.slug, headers)
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json()).toMatchObject({ id: created.id, is_active: false })
    }
    // Activating it makes it public (and not a cached 404).
    expect((await patch(created.slug, { is_active: true })).statusCode).toBe(200)
    expect((await get(created.slug)).json()).toMatchObject({ id: created.id, is_active: true })
  })

  it('answers 404 for an unknown slug', async () => {
    expectProblem(await get(`no-such-product-${uid()}`), 404, 'not_found')
    expectProblem(await get(`no-such-product-${uid()}`, staff), 404, 'not_found')
  })

  it('answers the same without the trailing slash, for the page and the list', async () => {
    const product = await create(body())
    const page = await t.request({ method: 'GET', url: `/api/products/${product.slug}` })
    expect(page.statusCode).toBe(200)
    expect(page.json()).toEqual((await get(product.slug)).json())
    const listed = await t.request({ method: 'GET', url: `/api/products?search=${encodeURIComponent(product.name)}` })
    expect(listed.statusCode).toBe(200)
    expect(listed.json<{ results: ProductDto[] }>().results.map((p) => p.id)).toContain(product.id)
  })

  it('answers 422, not 500, for a slug with a NUL byte', async () => {
    expectProblem(await get('a%00b'), 422, 'validation_error')
    expectProblem(await get('a%00b', staff), 422, 'validation_error')
  })
})

describe('POST /api/products/', () => {
  it('answers 401 without a token and 403 to a customer, creating nothing', async () => {
    const before = await rowCounts()
    expectProblem(await post(body(), {}), 401)
    expectProblem(await post(body(), customer), 403)
    expect(await rowCounts()).toEqual(before)
  })

  it('creates a product with its variants, initial stock in the ledger and a products_changed event for staff', async () => {
    const s = uid()
    const before = await rowCounts()
    const res = await post({
      name: `  Linen Shirt ${s}  `,
      variants: [
        { sku: `LS-${s}-A`, price: 3000, stock: 7 },
        { sku: `LS-${s}-B`, price: 2800 },
      ],
    })
    expect(res.statusCode, res.body).toBe(201)
    const product = res.json<ProductDto>()
    // The name is trimmed and the slug derived from it.
    expect(product).toMatchObject({ name: `Linen Shirt ${s}`, slug: `linen-shirt-${s}`, description: '', category: null, attributes: {}, price: 2800, is_active: true })
    expect(product.variants.map((v) => [v.sku, v.price, v.stock_available, v.in_stock])).toEqual([
      [`LS-${s}-A`, 3000, 7, true],
      [`LS-${s}-B`, 2800, 0, false],
    ])
    expect(await rowCounts()).toEqual({ ...before, products: before.products + 1, variants: before.variants + 2, stock: before.stock + 2, movements: before.movements + 1, events: before.events + 1 })
    const movements = await db().select().from(stockMovements).innerJoin(variants, eq(variants.id, stockMovements.variant_id)).where(eq(variants.product_id, product.id))
    expect(movements.map((row) => [row.product_variants.sku, row.stock_movements.delta_on_hand, row.stock_movements.reason])).toEqual([[`LS-${s}-A`, 7, 'initial']])
    const [event] = await db().select().from(outboxEvents).where(and(eq(outboxEvents.name, 'catalog.products_changed'), sql`${outboxEvents.payload} @> ${JSON.stringify({ product_ids: [product.id] })}::jsonb`))
    expect(event?.payload).toEqual({ product_ids: [product.id] })
    // It is public at once, on its page and in the list.
    expect((await get(product.slug)).statusCode).toBe(200)
    expect((await list(`search=${encodeURIComponent(`linen shirt ${s}`)}`)).results.map((p) => p.id)).toEqual([product.id])
  })

  it('takes an explicit slug and answers 409 slug_taken when it is used, creating nothing', async () => {
    const first = await create(body())
    const before = await rowCounts()
    expectProblem(await post(body({ slug: first.slug })), 409, 'slug_taken')
    // A slug derived from the name collides the same way.
    expectProblem(await post(body({ name: first.name, slug: undefined })), 409, 'slug_taken')
    expect(await rowCounts()).toEqual(before)
  })

  it('derives a slug of its own for a name without Latin letters or digits', async () => {
    const slugs = []
    for (const name of ['漢字のシャツ', 'Футболка', '★★★']) {
      const res = await post({ name, variants: [{ sku: `NL-${uid()}`, price: 100 }] })
      expect(res.statusCode, res.body).toBe(201)
      expect(res.json<ProductDto>().name).toBe(name)
      slugs.push(res.json<ProductDto>().slug)
    }
    for (const slug of slugs) expect(slug).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/)
    expect(new Set(slugs).size).toBe(3)
    expect((await get(slugs[0]!)).json()).toMatchObject({ name: '漢字のシャツ' })
  })

  const invalid: Array<[string, (existingSku: string) => unknown, string]> = [
    ['missing variants', () => { const { variants: _variants, ...rest } = body(); return rest }, 'variants'],
    ['an empty variant list', () => body({ variants: [] }), 'variants'],
    ['the same SKU twice in the body', () => { const b = body(); return { ...b, variants: [{ sku: `DUP-${uid()}`, price: 1 }, { sku: b.variants[0]!.sku, price: 2 }, { sku: b.variants[0]!.sku, price: 3 }] } }, 'variants'],
    ["another product's SKU", (existingSku) => body({ variants: [{ sku: existingSku, price: 100 }] }), 'variants'],
    ['a negative price', () => body({}, [-1]), 'variants.0.price'],
    ['a fractional price', () => body({}, [10.5]), 'variants.0.price'],
    ['a price sent as text', () => ({ ...body(), variants: [{ sku: `TXT-${uid()}`, price: '100' }] }), 'variants.0.price'],
    ['a negative initial stock', () => ({ ...body(), variants: [{ sku: `NEG-${uid()}`, price: 100, stock: -1 }] }), 'variants.0.stock'],
    ['a bad slug', () => body({ slug: 'Not A Slug!' }), 'slug'],
    ['a slug with a double hyphen (the shape of deleted slugs)', () => body({ slug: `x--deleted-${uid()}` }), 'slug'],
    ['a blank name', () => body({ name: '   ' }), 'name'],
    ['an unknown category', () => body({ category: `no-such-category-${uid()}` }), 'category'],
    ['an unknown field', () => ({ ...body(), colour: 'red' }), 'colour'],
    ['an unknown field in a variant', () => ({ ...body(), variants: [{ sku: `UNK-${uid()}`, price: 100, stok: 5 }] }), 'variants.0.stok'],
    ['a bad SKU', () => ({ ...body(), variants: [{ sku: 'has spaces', price: 100 }] }), 'variants.0.sku'],
    ['a NUL byte in the name', () => body({ name: `Nul\u0000${uid()}` }), 'name'],
    ['a NUL byte in the description', () => body({ description: 'a\u0000b' }), 'description'],
    ['a NUL byte in an attribute value', () => body({ attributes: { colour: 're\u0000d' } }), 'attributes.colour'],
    ['a NUL byte in a variant attribute name', () => ({ ...body(), variants: [{ sku: `NUL-${uid()}`, price: 100, attributes: { 'si\u0000ze': 'M' } }] }), 'variants.0.attributes'],
  ]
  it.each(invalid)('answers 422 naming the field and creates nothing for %s', async (_case, payload, field) => {
    const existing = await create(body())
    const before = await rowCounts()
    const problem = expectProblem(await post(payload(existing.variants[0]!.sku)), 422, 'validation_error')
    expect(Object.keys(problem.errors ?? {}).some((key) => key === field || key.startsWith(`${field}.`) || key.startsWith(`${field}/`)), JSON.stringify(problem.errors)).toBe(true)
    expect(await rowCounts()).toEqual(before)
  })
})

describe('input the database cannot store', () => {
  it('answers 422, not 500, for NUL bytes in category names, stock reasons and SKU paths', async () => {
    const product = await create(body({}, [100]))
    const sku = product.variants[0]!.sku
    const category = (payload: object) => t.request({ method: 'POST', url: '/api/categories/', headers: staff, payload })
    expectProblem(await category({ name: 'Shoes\u0000' }), 422, 'validation_error')
    expectProblem(await t.request({ method: 'PATCH', url: `/api/products/variants/${sku}/stock/`, headers: staff, payload: { delta: 1, reason: 'de\u0000livery' } }), 422, 'validation_error')
    expectProblem(await t.request({ method: 'GET', url: '/api/products/variants/A%00B/stock/', headers: staff }), 422, 'validation_error')
    expectProblem(await t.request({ method: 'GET', url: '/api/categories/a%00b/' }), 422, 'validation_error')
    expect((await t.request({ method: 'GET', url: `/api/products/variants/${sku}/stock/`, headers: staff })).json()).toMatchObject({ on_hand: 0 })
  })
})

describe('PATCH /api/products/{slug}/', () => {
  it('answers 401, 403 and 404 (unknown slug) and changes nothing', async () => {
    const product = await create(body())
    const before = await stored(product.id)
    expectProblem(await patch(product.slug, { name: 'Hacked' }, {}), 401)
    expectProblem(await patch(product.slug, { name: 'Hacked' }, customer), 403)
    expectProblem(await patch(`no-such-product-${uid()}`, { name: 'Nothing' }), 404, 'not_found')
    expect(await stored(product.id)).toEqual(before)
  })

  it('changes the given fields only, moves the product between categories and out of them', async () => {
    const s = uid()
    const first = await createCategory(`First ${s}`)
    const second = await createCategory(`Second ${s}`)
    const product = await create(body({ description: 'Old text', category: first.slug, attributes: { fit: 'slim' } }))
    let res = await patch(product.slug, { name: `Renamed ${s}`, category: second.slug })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ slug: product.slug, name: `Renamed ${s}`, description: 'Old text', attributes: { fit: 'slim' }, category: { slug: second.slug } })
    expect((await get(product.slug)).json()).toMatchObject({ name: `Renamed ${s}`, category: { slug: second.slug } })
    expect((await list(`category=${first.slug}`)).results).toEqual([])
    expect((await list(`category=${second.slug}`)).results.map((p) => p.id)).toEqual([product.id])

    res = await patch(product.slug, { category: null, description: 'New text', attributes: {} })
    expect(res.json()).toMatchObject({ category: null, description: 'New text', attributes: {} })
    expect((await list(`category=${second.slug}`)).results).toEqual([])
  })

  it('treats variants as the full list: a left-out SKU stops being sold, prices and the derived price follow', async () => {
    const s = uid()
    const product = await create({
      name: `Cap ${s}`,
      variants: [
        { sku: `CAP-${s}-RED`, price: 1500, stock: 4 },
        { sku: `CAP-${s}-BLUE`, price: 1200, stock: 2 },
      ],
    })
    expect(product.price).toBe(1200)

    // BLUE is left out; RED gets a new price; GREEN is new with its initial stock.
    let res = await patch(product.slug, {
      variants: [
        { sku: `CAP-${s}-GREEN`, price: 1800, stock: 6 },
        { sku: `CAP-${s}-RED`, price: 1400, name: 'Red' },
      ],
    })
    expect(res.statusCode, res.body).toBe(200)
    const expected = [
      [`CAP-${s}-GREEN`, 1800, 6, ''],
      [`CAP-${s}-RED`, 1400, 4, 'Red'],
    ]
    expect(res.json<ProductDto>().variants.map((v) => [v.sku, v.price, v.stock_available, v.name])).toEqual(expected)
    expect(res.json<ProductDto>().price).toBe(1400)
    const page = (await get(product.slug)).json<ProductDto>()
    expect(page.price).toBe(1400)
    expect(page.variants.map((v) => [v.sku, v.price, v.stock_available, v.name])).toEqual(expected)
    // The list and its price filters use the new derived price.
    expect((await list(`search=cap+${s}&max_price=1200`)).results).toEqual([])
    expect((await list(`search=cap+${s}&min_price=1400&max_price=1400`)).results.map((p) => p.id)).toEqual([product.id])
    // The dropped variant's row stays (orders point at it) but is not sold.
    const [blue] = await db().select().from(variants).where(eq(variants.sku, `CAP-${s}-BLUE`))
    expect(blue).toMatchObject({ is_active: false, product_id: product.id })

    // Listing it again brings it back with the stock it had.
    res = await patch(product.slug, { variants: [{ sku: `CAP-${s}-BLUE`, price: 1100 }] })
    expect(res.json<ProductDto>().variants.map((v) => [v.sku, v.price, v.stock_available])).toEqual([[`CAP-${s}-BLUE`, 1100, 2]])
    expect(res.json<ProductDto>().price).toBe(1100)
  })

  it('answers 422 for stock on an existing variant and changes nothing, not even the other fields', async () => {
    const product = await create(body({}, [1000]))
    const sku = product.variants[0]!.sku
    const before = await stored(product.id)
    const counts = await rowCounts()
    const problem = expectProblem(await patch(product.slug, { name: 'Should not stick', variants: [{ sku, price: 900, stock: 50 }] }), 422, 'validation_error')
    expect(problem.errors?.variants?.[0]).toContain(`/api/products/variants/${sku}/stock/`)
    expect(await stored(product.id)).toEqual(before)
    expect(await rowCounts()).toEqual(counts)
    expect((await get(product.slug)).json()).toMatchObject({ name: product.name, price: 1000 })
  })

  const invalid: Array<[string, (sku: string, otherSku: string) => unknown, number, string | undefined]> = [
    ['an empty body', () => ({}), 422, undefined],
    ['an unknown field alone', () => ({ colour: 'red' }), 422, 'colour'],
    ['an unknown field with a real change', () => ({ name: 'Changed', colour: 'red' }), 422, 'colour'],
    ['an empty variant list', () => ({ variants: [] }), 422, 'variants'],
    ['the same SKU twice', (sku) => ({ variants: [{ sku, price: 1 }, { sku, price: 2 }] }), 422, 'variants'],
    ["another product's SKU", (sku, otherSku) => ({ variants: [{ sku, price: 1 }, { sku: otherSku, price: 2 }] }), 422, 'variants'],
    ['a negative price', (sku) => ({ variants: [{ sku, price: -5 }] }), 422, 'variants.0.price'],
    ['an unknown category', () => ({ category: `no-such-category-${uid()}` }), 422, 'category'],
    ['a bad slug', () => ({ slug: 'Bad Slug' }), 422, 'slug'],
    ['is_active as text', () => ({ is_active: 'yes' }), 422, 'is_active'],
  ]
  it.each(invalid)('answers %s with a 422 and changes nothing', async (_case, payload, status, field) => {
    const product = await create(body({}, [1000]))
    const other = await create(body())
    const before = await stored(product.id)
    const counts = await rowCounts()
    const problem = expectProblem(await patch(product.slug, payload(product.variants[0]!.sku, other.variants[0]!.sku)), status)
    if (field) expect(Object.keys(problem.errors ?? {}).some((key) => key === field || key.startsWith(`${field}.`)), JSON.stringify(problem.errors)).toBe(true)
    expect(await stored(product.id)).toEqual(before)
    expect(await rowCounts()).toEqual(counts)
  })

  it('moves a product to a new slug (the old one is a 404) and answers 409 slug_taken for a used one', async () => {
    const product = await create(body())
    const other = await create(body())
    const newSlug = `moved-${uid()}`
    const res = await patch(product.slug, { slug: newSlug })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ id: product.id, slug: newSlug })
    expectProblem(await get(product.slug), 404)
    expect((await get(newSlug)).json()).toMatchObject({ id: product.id })

    const before = await stored(other.id)
    expectProblem(await patch(other.slug, { slug: newSlug, name: 'Should not stick' }), 409, 'slug_taken')
    expect(await stored(other.id)).toEqual(before)
  })

  it('lets staff deactivate a product: it leaves the public page and list at once', async () => {
    const s = uid()
    const product = await create(body({ name: `Deactivated ${s}` }))
    expect((await get(product.slug)).statusCode).toBe(200)
    expect((await list(`search=deactivated+${s}`)).count).toBe(1)
    expect((await patch(product.slug, { is_active: false })).json()).toMatchObject({ is_active: false })
    expectProblem(await get(product.slug), 404)
    expect((await list(`search=deactivated+${s}`)).count).toBe(0)
    expect((await get(product.slug, staff)).json()).toMatchObject({ is_active: false })
  })
})

describe('DELETE /api/products/{slug}/', () => {
  it('answers 401 and 403 and deletes nothing', async () => {
    const product = await create(body())
    expectProblem(await remove(product.slug, {}), 401)
    expectProblem(await remove(product.slug, customer), 403)
    expect((await get(product.slug)).statusCode).toBe(200)
  })

  it('soft-deletes: 404 for everyone, gone from lists, the row and its variants stay, not for sale', async () => {
    const s = uid()
    const product = await create(body({ name: `Doomed ${s}` }, [900, 800]))
    expect((await list(`search=doomed+${s}`)).count).toBe(1)
    const before = await rowCounts()

    const res = await remove(product.slug)
    expect(res.statusCode, res.body).toBe(204)
    expect(res.body).toBe('')
    for (const headers of [{}, customer, staff, admin]) expectProblem(await get(product.slug, headers), 404, 'not_found')
    expect((await list(`search=doomed+${s}`)).count).toBe(0)
    // No row is removed: orders and reviews keep pointing at it.
    expect(await rowCounts()).toMatchObject({ products: before.products, variants: before.variants })
    const { product: row, variants: rows } = await stored(product.id)
    expect(row!.deleted_at).not.toBeNull()
    expect(row!.is_active).toBe(false)
    expect(rows.every((variant) => !variant.is_active)).toBe(true)

    // It cannot be changed or deleted again.
    expectProblem(await patch(product.slug, { name: 'Back' }), 404)
    expectProblem(await remove(product.slug), 404)
  })

  it('frees the slug for a new product, while the SKUs stay taken by the deleted one', async () => {
    const product = await create(body())
    expect((await remove(product.slug)).statusCode).toBe(204)

    // The slug is reusable.
    const again = await create(body({ slug: product.slug }))
    expect(again.id).not.toBe(product.id)
    expect((await get(product.slug)).json()).toMatchObject({ id: again.id })

    // A SKU names one variant for good: orders, reservations and the stock ledger refer to it, so a
    // deleted product's SKU is not handed to another product.
    const sku = product.variants[0]!.sku
    const before = await rowCounts()
    const problem = expectProblem(await post(body({ variants: [{ sku, price: 100 }] })), 422, 'validation_error')
    expect(problem.errors?.variants?.join(' ')).toContain(sku)
    expect(await rowCounts()).toEqual(before)
  })

  it('answers 404 for an unknown slug', async () => {
    expectProblem(await remove(`no-such-product-${uid()}`), 404, 'not_found')
  })

  it('lets an admin create, change and delete a product like staff', async () => {
    const payload = body()
    expect((await post(payload, admin)).statusCode).toBe(201)
    expect((await patch(payload.slug, { description: 'By an admin' }, admin)).json()).toMatchObject({ description: 'By an admin' })
    expect((await remove(payload.slug, admin)).statusCode).toBe(204)
    expectProblem(await get(payload.slug), 404)
  })
})
