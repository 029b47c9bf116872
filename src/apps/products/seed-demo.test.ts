/**
 * The demo catalog: what `manage seed_demo` writes (products with variants, stock and its ledger,
 * images, derived price and search document), how it treats a catalog that has products, and
 * the development catalog seeded once on first start, also when processes start together.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { stockLedger } from '../../../test/stock-ledger.js'
import { createDatabase, rowsOf } from '../../core/db/index.js'
import { createLogger } from '../../core/logging.js'
import { createStorage } from '../../core/storage.js'
import {
  CatalogNotEmptyError,
  demoImages,
  demoProduct,
  FIRST_START_PRODUCTS,
  seedDemo,
  seedDemoIfEmpty,
  seedDemoOnStart,
  writeDemoImages,
  type SeedDemoCounts,
} from './seed-demo.js'

const silent = createLogger({ log: { level: 'silent', pretty: false } })
let mediaRoot: string
beforeAll(async () => {
  mediaRoot = await mkdtemp(join(tmpdir(), 'shop-seed-demo-'))
})
afterAll(() => rm(mediaRoot, { recursive: true, force: true }))

async function rows<T>(t: TestApp, query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await t.app.platform.database.db.execute(query))
}

async function productCount(t: TestApp): Promise<number> {
  const [row] = await rows<{ n: number }>(t, sql`SELECT count(*)::int AS n FROM products`)
  return row!.n
}

describe(demoProduct.name, () => {
  const catalog = Array.from({ length: 3000 }, (_, i) => demoProduct(7, i + 1))

  it('answers the same product for the same seed and number, and another for another seed', () => {
    expect(demoProduct(7, 42)).toEqual(catalog[41])
    expect(demoProduct(8, 42)).not.toEqual(catalog[41])
  })

  it('makes 1–6 variants with shop prices, sale prices above them and stock from 0 to 200', () => {
    for (const product of catalog) {
      expect(product.variants.length).toBeGreaterThanOrEqual(1)
      expect(product.variants.length).toBeLessThanOrEqual(6)
      for (const variant of product.variants) {
        expect(Number.isInteger(variant.price) && variant.price > 0).toBe(true)
        expect([99, 95, 50, 0]).toContain(variant.price % 100)
        if (variant.compare_at_price !== null) expect(variant.compare_at_price).toBeGreaterThan(variant.price)
        expect(variant.on_hand).toBeGreaterThanOrEqual(0)
        expect(variant.on_hand).toBeLessThanOrEqual(200)
      }
    }
    const onSale = catalog.filter((product) => product.variants[0]!.compare_at_price !== null).length / catalog.length
    expect(onSale).toBeGreaterThan(0.08)
    expect(onSale).toBeLessThan(0.25)
  })

  it('writes descriptions of a few sentences with every placeholder filled', () => {
    for (const product of catalog) {
      expect(product.description).not.toMatch(/[{}]/)
      expect(product.description.split('. ').length).toBeGreaterThanOrEqual(3)
      expect(product.description.toLowerCase()).toContain(product.name.split(' ').at(-1)!.toLowerCase())
    }
  })
})

describe(seedDemo.name, () => {
  let t: TestApp
  let counts: SeedDemoCounts
  beforeAll(async () => {
    t = await createTestApp()
    // Small batches: several transactions, as a big run has.
    counts = await seedDemo(t.app.platform.database.db, { products: 300, currency: t.settings.currency, seed: 7, batchSize: 128 })
  })
  afterAll(() => t.close())

  it('creates 300 products in the demo tree, each with variants, stock and an image', async () => {
    expect(counts).toMatchObject({ products: 300, images: 300, categories_created: 23, first_number: 1 })
    const [summary] = await rows<{ products: number; variants: number; stock_rows: number; images: number; categories: number; depth: number }>(
      t,
      sql`WITH RECURSIVE tree AS (
            SELECT id, 1 AS depth FROM categories WHERE parent_id IS NULL
            UNION ALL SELECT c.id, tree.depth + 1 FROM categories c JOIN tree ON c.parent_id = tree.id)
          SELECT (SELECT count(*)::int FROM products) AS products,
            (SELECT count(*)::int FROM product_variants) AS variants,
            (SELECT count(*)::int FROM stock_levels) AS stock_rows,
            (SELECT count(*)::int FROM product_images) AS images,
            (SELECT count(*)::int FROM categories) AS categories,
            (SELECT max(depth)::int FROM tree) AS depth`,
    )
    expect(summary).toEqual({ products: 300, variants: counts.variants, stock_rows: counts.variants, images: 300, categories: 23, depth: 3 })
    const perProduct = await rows<{ n: number }>(t, sql`SELECT count(v.id)::int AS n FROM products p LEFT JOIN product_variants v ON v.product_id = p.id GROUP BY p.id`)
    expect(Math.min(...perProduct.map((row) => row.n))).toBeGreaterThanOrEqual(1)
    expect(Math.max(...perProduct.map((row) => row.n))).toBeLessThanOrEqual(6)
    const [currencies] = await rows<{ list: string[] }>(t, sql`SELECT array_agg(DISTINCT currency) AS list FROM product_variants`)
    expect(currencies!.list).toEqual([t.settings.currency])
  })

  it('records all seeded stock in the ledger, as seed movements by the system', async () => {
    const skus = await rows<{ sku: string }>(t, sql`SELECT sku FROM product_variants`)
    const ledger = stockLedger(t)
    for (const { sku } of skus) ledger.track(sku, 0)
    expect(await ledger.expectBalanced()).toBe(counts.variants)
    const kinds = await rows<{ reason: string; actor: string; n: number }>(t, sql`SELECT reason, actor, count(*)::int AS n FROM stock_movements GROUP BY 1, 2`)
    expect(kinds).toEqual([{ reason: 'seed', actor: 'system', n: counts.stock_movements }])
  })

  it('sets the derived price and search document of every product', async () => {
    const [check] = await rows<{ unpriced: number; wrong: number; unindexed: number; words: number; hoodies: number }>(
      t,
      sql`SELECT count(*) FILTER (WHERE p.price IS NULL)::int AS unpriced,
            count(*) FILTER (WHERE p.price <> (SELECT min(v.price) FROM product_variants v WHERE v.product_id = p.id))::int AS wrong,
            count(*) FILTER (WHERE p.search_vector IS NULL)::int AS unindexed,
            (SELECT count(*)::int FROM search_words) AS words,
            count(*) FILTER (WHERE p.search_vector @@ to_tsquery('english', 'hoodie'))::int AS hoodies
          FROM products p`,
    )
    expect(check).toMatchObject({ unpriced: 0, wrong: 0, unindexed: 0 })
    expect(check!.words).toBeGreaterThan(50)
    expect(check!.hoodies).toBeGreaterThan(0)
  })

  it('gives every product a unique slug and every variant a unique SKU', async () => {
    const [check] = await rows<{ slugs: number; skus: number; variants: number }>(
      t,
      sql`SELECT (SELECT count(DISTINCT slug)::int FROM products) AS slugs, (SELECT count(DISTINCT sku)::int FROM product_variants) AS skus,
            (SELECT count(*)::int FROM product_variants) AS variants`,
    )
    expect(check).toEqual({ slugs: 300, skus: counts.variants, variants: counts.variants })
  })

  it('names products after their category and points their image at its placeholder', async () => {
    const named = await rows<{ category: string; name: string; key: string; size: number; content_type: string }>(
      t,
      sql`SELECT c.slug AS category, p.name, i.key, i.size, i.content_type FROM products p JOIN categories c ON c.id = p.category_id JOIN product_images i ON i.product_id = p.id`,
    )
    const nouns: Record<string, RegExp> = { boots: /Boot$/, jeans: /Jeans$/, hoodies: /Hoodie$/, sweaters: /(Sweater|Cardigan)$/ }
    for (const row of named) {
      if (nouns[row.category]) expect(row.name).toMatch(nouns[row.category]!)
      expect(row.key).toBe(`demo/${row.category}.svg`)
      expect(row.content_type).toBe('image/svg+xml')
    }
    expect(new Set(named.map((row) => row.category)).size).toBeGreaterThanOrEqual(12)

    const storage = createStorage({ storage: { ...t.settings.storage, mediaRoot } }, silent)
    expect(await writeDemoImages(storage)).toBe(demoImages().length)
    for (const row of named.slice(0, 20)) expect((await readFile(join(mediaRoot, row.key))).length).toBe(row.size)
  })

  it('mixes in sale prices, sold-out products and a few inactive ones', async () => {
    const [mix] = await rows<{ on_sale: number; sold_out: number; inactive: number; rated: number }>(
      t,
      sql`SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id AND v.compare_at_price > v.price))::int AS on_sale,
            count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM product_variants v JOIN stock_levels s ON s.variant_id = v.id WHERE v.product_id = p.id AND s.on_hand > 0))::int AS sold_out,
            count(*) FILTER (WHERE NOT p.is_active)::int AS inactive,
            count(*) FILTER (WHERE p.rating IS NOT NULL OR p.review_count > 0)::int AS rated
          FROM products p`,
    )
    expect(mix!.sold_out).toBe(counts.out_of_stock_products)
    expect(mix!.inactive).toBe(counts.inactive_products)
    expect(mix!.on_sale).toBeGreaterThan(15)
    expect(mix!.sold_out).toBeGreaterThan(10)
    expect(mix!.sold_out).toBeLessThan(60)
    expect(mix!.inactive).toBeGreaterThan(0)
    expect(mix!.inactive).toBeLessThan(30)
    expect(mix!.rated).toBe(0)
  })
})

describe('seedDemo on a catalog that has products', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp()
  })
  afterAll(() => t.close())

  it('refuses without force, and with force adds products numbered after the existing ones, reusing the categories', async () => {
    // Test settings leave SEED_DEMO_ON_START off: the app started with an empty catalog.
    expect(t.settings.db.seedDemoOnStart).toBe(false)
    expect(await productCount(t)).toBe(0)
    const db = t.app.platform.database.db
    const options = { currency: t.settings.currency, seed: 3 }
    await seedDemo(db, { ...options, products: 20 })

    const refused = seedDemo(db, { ...options, products: 10 })
    await expect(refused).rejects.toBeInstanceOf(CatalogNotEmptyError)
    await expect(refused).rejects.toMatchObject({ status: 409, code: 'catalog_not_empty', existing: 20 })
    expect(await productCount(t)).toBe(20)

    // The same seed again: only the numbering keeps slugs and SKUs apart.
    const added = await seedDemo(db, { ...options, products: 15, force: true })
    expect(added).toMatchObject({ products: 15, first_number: 21, categories_created: 0 })
    const [check] = await rows<{ products: number; slugs: number; categories: number; last: string }>(
      t,
      sql`SELECT count(*)::int AS products, count(DISTINCT slug)::int AS slugs, (SELECT count(*)::int FROM categories) AS categories,
            (SELECT slug FROM products ORDER BY substring(slug from '-([0-9]+)$')::int DESC LIMIT 1) AS last
          FROM products`,
    )
    expect(check).toMatchObject({ products: 35, slugs: 35, categories: 23 })
    expect(check!.last).toMatch(/-35$/)
    expect(check!.last).toBe(demoProduct(3, 35).slug)
  })
})

describe(seedDemoOnStart.name, () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { MEDIA_ROOT: join(mediaRoot, 'first-start') }, settings: { db: { seedDemoOnStart: true } } })
  })
  afterAll(() => t.close())

  it('seeds the demo catalog and writes its placeholder images when the app starts on an empty catalog', async () => {
    expect(await productCount(t)).toBe(FIRST_START_PRODUCTS)
    const [image] = await rows<{ key: string; size: number }>(t, sql`SELECT key, size FROM product_images LIMIT 1`)
    expect((await readFile(join(t.settings.storage.mediaRoot, image!.key))).length).toBe(image!.size)
  })

  it('serves the seeded catalog: listed, searchable, with placeholder images that load', async () => {
    const [active] = await rows<{ n: number }>(t, sql`SELECT count(*)::int AS n FROM products WHERE is_active`)
    const list = await t.request({ method: 'GET', url: '/api/products/?ordering=price' })
    expect(list.statusCode).toBe(200)
    const page = list.json() as { count: number; results: Array<{ slug: string; price: number }> }
    expect(page.count).toBe(active!.n)
    expect(page.results[0]!.price).toBeGreaterThan(0)

    const found = await t.request({ method: 'GET', url: '/api/products/?search=leather' })
    expect(found.statusCode).toBe(200)
    expect((found.json() as { results: unknown[] }).results.length).toBeGreaterThan(0)

    const product = await t.request({ method: 'GET', url: `/api/products/${page.results[0]!.slug}/` })
    const [image] = (product.json() as { images: Array<{ url: string }> }).images
    const served = await t.request({ method: 'GET', url: image!.url })
    expect(served.statusCode).toBe(200)
    expect(served.headers['content-type']).toMatch(/^image\/svg\+xml/)
  })

  it('does not seed again on a later start', async () => {
    await seedDemoOnStart(t.app.platform)
    expect(await seedDemoIfEmpty(t.app.platform.database.db, { products: 5, currency: t.settings.currency })).toBeNull()
    expect(await productCount(t)).toBe(FIRST_START_PRODUCTS)
  })
})

// PGlite is one connection in one process: only a server shows two processes starting together.
describe.runIf(usesPostgres)('seedDemoIfEmpty from processes starting together', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp()
  })
  afterAll(() => t.close())

  it('seeds once: the other waits for the lock, then finds products', async () => {
    const processes = await Promise.all([createDatabase(t.settings, silent), createDatabase(t.settings, silent)])
    try {
      const results = await Promise.all(processes.map((database) => seedDemoIfEmpty(database.db, { products: 40, currency: t.settings.currency })))
      expect(results.filter((result) => result !== null)).toHaveLength(1)
      expect(await productCount(t)).toBe(40)
    } finally {
      await Promise.all(processes.map((database) => database.close()))
    }
  })
})
