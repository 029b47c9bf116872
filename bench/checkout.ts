/**
 * Checkout benchmark: guest buyers race through cart and checkout against a production-mode API
 * process (built JavaScript, PostgreSQL, Redis) for a few SKUs with less stock than buyers want,
 * then the database is checked for oversell.
 *
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench:checkout
 *
 * Each buyer makes a cart (POST /api/cart/), adds one unit of a random one of the SKUs and checks
 * out with an Idempotency-Key; once a SKU is gone the add or the checkout answers 409 and the buyer
 * starts again. A 2 s warm-up on a SKU of its own comes first, so the measured run starts warm. The catalog is seeded into a scratch database (dropped at the end, also on failure)
 * and the Redis keys live under a prefix of their own (deleted at the end). BENCH_CONNECTIONS (32
 * concurrent buyers), BENCH_SECONDS (10), BENCH_SKUS (5) and BENCH_STOCK (200 units each) change
 * the run. Exit code 1 when any request failed otherwise or the stock does not add up. Not run by CI.
 */
import { randomUUID } from 'node:crypto'
import { Agent, request as httpRequest } from 'node:http'
import { performance } from 'node:perf_hooks'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { seedPricingDefaults } from '../src/apps/cart/pricing-queries.js'
import type { Db } from '../src/core/db/index.js'
import { productionBench, productionEnv, rssOf, run, startProdCommand } from './support.js'

const PRODUCTS = 2_000
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const DURATION = Number(process.env.BENCH_SECONDS ?? 10)
const SKU_COUNT = Number(process.env.BENCH_SKUS ?? 5)
const STOCK = Number(process.env.BENCH_STOCK ?? 200)
const WARM_UP = { seconds: 2, stock: 100_000 }

// The run's own scratch database and cache keys, removed at the end (also on failure).
const { database, cachePrefix, servers, setupEnv, cleanUp } = await productionBench('checkout')

let failed = false
try {
  await run('node', ['--import', 'tsx', 'src/manage.ts', 'migrate'], setupEnv)
  await run('node', ['--import', 'tsx', 'src/manage.ts', 'seed_demo', '--products', String(PRODUCTS)], setupEnv)
  await seedPricing(database.url)
  const [warmUpSku, ...skus] = await stockUp(database.url, [WARM_UP.stock, ...Array<number>(SKU_COUNT).fill(STOCK)])

  // Exactly what production runs: `npm run start:prod` (its Node flags included), exec'd so the pid is node's.
  const api = await servers.start(...(await startProdCommand()), { ...process.env, ...productionEnv(), CACHE_KEY_PREFIX: cachePrefix, DATABASE_URL: database.url })

  let peakRss = 0
  const sampler = setInterval(() => void rssOf(api.child.pid!).then((rss) => void (peakRss = Math.max(peakRss, rss)), () => undefined), 250)
  const warmUp = await buyFor(api.url, [warmUpSku!], WARM_UP.seconds * 1000, WARM_UP.stock)
  const load = await buyFor(api.url, skus, DURATION * 1000, skus.length * STOCK).finally(() => clearInterval(sampler))

  const initial = new Map([[warmUpSku!, WARM_UP.stock], ...skus.map((sku) => [sku, STOCK] as const)])
  const violations = await oversellViolations(database.url, initial, warmUp.created + load.created)
  const latency = percentiles(load.checkoutMs)
  const rate = (count: number, ms: number) => (ms > 0 ? (count / (ms / 1000)).toFixed(1) : '–')
  const errorCount = warmUp.errors.length + load.errors.length
  failed = errorCount > 0 || violations.length > 0

  process.stdout.write(
    [
      '',
      `${PRODUCTS} products; ${skus.length} SKUs × ${STOCK} units; ${CONNECTIONS} concurrent guest buyers, 1 unit each, for ${DURATION} s after a ${WARM_UP.seconds} s warm-up; production mode (npm run start:prod)`,
      '| checkouts/s | orders (201) | 409 at checkout | 409 at add to cart | errors | checkout p50 ms | checkout p99 ms | buyers/s | sold out after | API peak RSS MiB |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      `| ${rate(load.created, load.elapsedMs)} | ${load.created} | ${load.checkoutConflicts} | ${load.addConflicts} | ${errorCount} | ${latency.p50} | ${latency.p99} | ${rate(load.buyers, load.elapsedMs)} | ${load.soldOutMs === null ? 'not sold out' : `${(load.soldOutMs / 1000).toFixed(1)} s (${rate(load.created, load.soldOutMs)} checkouts/s until then)`} | ${peakRss.toFixed(0)} |`,
      '',
      `409 codes: ${[...load.conflictCodes].map(([code, n]) => `${code} ${n}`).join(', ') || 'none'}`,
      ...(errorCount > 0 ? ['errors (first 5):', ...[...warmUp.errors, ...load.errors].slice(0, 5).map((error) => `  ${error}`)] : []),
      violations.length === 0 ? 'zero oversell: yes' : ['zero oversell: NO', ...violations.map((violation) => `  ${violation}`)].join('\n'),
      '',
    ].join('\n'),
  )
} catch (err) {
  failed = true
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
} finally {
  await cleanUp()
}
process.exit(failed ? 1 : 0)

interface LoadResult {
  elapsedMs: number
  /** Buyers who finished (an order or a 409). */
  buyers: number
  created: number
  checkoutConflicts: number
  addConflicts: number
  conflictCodes: Map<string, number>
  /** Anything but 201 or 409: a status with its problem code, or a network error. */
  errors: string[]
  checkoutMs: number[]
  /** When the last unit went (every SKU answering 409 from then on), if it did. */
  soldOutMs: number | null
}

/** CONNECTIONS buyers in a loop until the time is up: cart, one unit of a random SKU, checkout. */
async function buyFor(url: string, skus: string[], durationMs: number, units: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS })
  const result: LoadResult = { elapsedMs: 0, buyers: 0, created: 0, checkoutConflicts: 0, addConflicts: 0, conflictCodes: new Map(), errors: [], checkoutMs: [], soldOutMs: null }
  const address = { name: 'Bench Buyer', line1: '1 Main St', city: 'Springfield', region: 'CA', postal_code: '90001', country: 'US' }
  const start = performance.now()
  const deadline = start + durationMs
  let sold = 0
  const conflict = (code: string) => result.conflictCodes.set(code, (result.conflictCodes.get(code) ?? 0) + 1)
  const fail = (step: string, answer: Answer) => void result.errors.push(`${step}: ${answer.status} ${answer.body.slice(0, 200)}`)

  const buyer = async () => {
    while (performance.now() < deadline) {
      const cart = await post(agent, url, '/api/cart/', {})
      if (cart.status !== 201) {
        fail('cart', cart)
        continue
      }
      const token = (JSON.parse(cart.body) as { token: string }).token
      const sku = skus[Math.floor(Math.random() * skus.length)]!
      const added = await post(agent, url, '/api/cart/items/', { sku, quantity: 1 }, { 'x-cart-token': token })
      if (added.status === 409) {
        result.addConflicts++
        result.buyers++
        conflict(codeOf(added))
        continue
      }
      if (added.status !== 201) {
        fail('add to cart', added)
        continue
      }
      const began = performance.now()
      const order = await post(agent, url, '/api/checkout/', { email: `buyer-${randomUUID()}@example.com`, shipping_address: address, shipping_method: 'standard' }, { 'x-cart-token': token, 'idempotency-key': randomUUID() })
      result.checkoutMs.push(performance.now() - began)
      if (order.status === 201) {
        result.created++
        result.buyers++
        if (++sold === units) result.soldOutMs = performance.now() - start
      } else if (order.status === 409) {
        result.checkoutConflicts++
        result.buyers++
        conflict(codeOf(order))
      } else {
        fail('checkout', order)
      }
    }
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, buyer))
  result.elapsedMs = performance.now() - start
  agent.destroy()
  return result
}

interface Answer {
  status: number
  body: string
}

/** A JSON POST over the keep-alive agent; a network error answers status 0 (counted as an error). */
function post(agent: Agent, base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const payload = JSON.stringify(body)
  return new Promise((resolve) => {
    const req = httpRequest(`${base}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', (err) => resolve({ status: 0, body: err.message }))
    })
    req.on('error', (err) => resolve({ status: 0, body: err.message }))
    req.end(payload)
  })
}

function codeOf(answer: Answer): string {
  try {
    return String((JSON.parse(answer.body) as { code?: unknown }).code ?? 'no code')
  } catch {
    return 'no code'
  }
}

function percentiles(samples: number[]): { p50: string; p99: string } {
  if (samples.length === 0) return { p50: '–', p99: '–' }
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!.toFixed(1)
  return { p50: at(0.5), p99: at(0.99) }
}

/** The default shipping methods and tax rates, so a US address can check out with `standard`. */
async function seedPricing(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  try {
    await seedPricingDefaults(drizzle(pool) as unknown as Db)
  } finally {
    await pool.end()
  }
}

/**
 * As many SKUs for sale as `stocks` has entries, the n-th set to stocks[n] units with nothing
 * reserved, with the ledger row that change needs (the seed's own rows already match its stock),
 * in one statement. Answers the SKUs in the order of `stocks`.
 */
async function stockUp(url: string, stocks: number[]): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ sku: string }>(
      `WITH picked AS (
         SELECT v.id, v.sku, coalesce(s.on_hand, 0) AS on_hand, coalesce(s.reserved, 0) AS reserved, row_number() OVER (ORDER BY md5(v.id::text)) AS n
         FROM product_variants v JOIN products p ON p.id = v.product_id LEFT JOIN stock_levels s ON s.variant_id = v.id
         WHERE v.is_active AND p.is_active AND p.deleted_at IS NULL
         ORDER BY md5(v.id::text) LIMIT cardinality($1::int[])
       ), planned AS (
         SELECT picked.*, wanted.stock FROM picked JOIN unnest($1::int[]) WITH ORDINALITY AS wanted(stock, n) USING (n)
       ), stocked AS (
         INSERT INTO stock_levels (variant_id, on_hand, reserved) SELECT id, stock, 0 FROM planned
         ON CONFLICT (variant_id) DO UPDATE SET on_hand = excluded.on_hand, reserved = 0, updated_at = now()
       ), ledger AS (
         INSERT INTO stock_movements (variant_id, delta_on_hand, delta_reserved, reason, reference, actor)
         SELECT id, stock - on_hand, -reserved, 'count', 'bench_checkout', 'system' FROM planned
       )
       SELECT sku FROM planned ORDER BY n`,
      [stocks],
    )
    if (rows.length !== stocks.length) throw new Error(`only ${rows.length} SKUs for sale, ${stocks.length} wanted`)
    return rows.map((row) => row.sku)
  })
}

/**
 * Everything that would show an oversell or a leak, per SKU: stock within bounds, reserved stock
 * exactly what the unpaid orders and the active reservations hold, no more sold than there was,
 * the ledger adding up to the stock; and as many orders in the database as buyers were told 201.
 */
async function oversellViolations(url: string, initial: Map<string, number>, created: number): Promise<string[]> {
  const skus = [...initial.keys()]
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ sku: string; on_hand: number; reserved: number; pending: number; ordered: number; moved_on_hand: number; moved_reserved: number; held: number }>(
      `SELECT v.sku, s.on_hand, s.reserved,
         (SELECT coalesce(sum(i.quantity), 0) FROM order_items i JOIN orders o ON o.id = i.order_id WHERE i.variant_id = v.id AND o.status = 'pending_payment')::int AS pending,
         (SELECT coalesce(sum(i.quantity), 0) FROM order_items i WHERE i.variant_id = v.id)::int AS ordered,
         (SELECT coalesce(sum(m.delta_on_hand), 0) FROM stock_movements m WHERE m.variant_id = v.id)::int AS moved_on_hand,
         (SELECT coalesce(sum(m.delta_reserved), 0) FROM stock_movements m WHERE m.variant_id = v.id)::int AS moved_reserved,
         (SELECT coalesce(sum(r.quantity), 0) FROM stock_reservations r WHERE r.variant_id = v.id AND r.status = 'active')::int AS held
       FROM product_variants v JOIN stock_levels s ON s.variant_id = v.id
       WHERE v.sku = ANY($1) ORDER BY v.sku`,
      [skus],
    )
    const violations: string[] = []
    for (const row of rows) {
      const problem = (what: string) => violations.push(`${row.sku}: ${what}`)
      if (row.on_hand < 0) problem(`on_hand ${row.on_hand} < 0`)
      if (row.reserved > row.on_hand) problem(`reserved ${row.reserved} > on_hand ${row.on_hand}`)
      if (row.reserved !== row.pending) problem(`reserved ${row.reserved} ≠ ${row.pending} in pending_payment orders`)
      if (row.reserved !== row.held) problem(`reserved ${row.reserved} ≠ ${row.held} in active reservations`)
      if (row.ordered > initial.get(row.sku)!) problem(`${row.ordered} ordered > ${initial.get(row.sku)} in stock at the start`)
      if (row.moved_on_hand !== row.on_hand) problem(`ledger Σ delta_on_hand ${row.moved_on_hand} ≠ on_hand ${row.on_hand}`)
      if (row.moved_reserved !== row.reserved) problem(`ledger Σ delta_reserved ${row.moved_reserved} ≠ reserved ${row.reserved}`)
    }
    if (rows.length !== skus.length) violations.push(`${skus.length - rows.length} of the SKUs have no stock row`)
    const orders = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows[0]!.n
    if (orders !== created) violations.push(`${orders} orders in the database, ${created} answered 201`)
    return violations
  })
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}





