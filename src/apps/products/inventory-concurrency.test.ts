/**
 * Inventory under real concurrency (PostgreSQL only: PGlite runs one statement at a time).
 * Each race starts behind a lock held by a separate connection (the gate) until the racers are
 * all waiting on it, so they really contend rather than run one after another; then the gate
 * opens and the database decides. After each race the stock ledger must still balance.
 */
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { and, eq } from 'drizzle-orm'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { behindRowLock } from '../../../test/lock-waiters.js'
import { stockLedger, stockQueries } from '../../../test/stock-ledger.js'
import { OutOfStockError } from './errors.js'
import { createMemoryCache } from '../../core/cache.js'
import { createCatalogCache } from './catalog-cache.js'
import { createProductsService } from './service.js'
import { reservations, variants } from './tables.js'

/** Connections in the app's pool: the most racers that can be inside a transaction at once. */
const POOL = 20

describe.runIf(usesPostgres)('inventory under concurrent transactions', () => {
  let t: TestApp
  let f: ReturnType<typeof factories>
  let ledger: ReturnType<typeof stockLedger>
  let staff: MadeUser
  let base: string
  let gate: pg.Client
  let observer: pg.Client
  const products = createProductsService({ cache: createCatalogCache(createMemoryCache()) })

  beforeAll(async () => {
    t = await createTestApp({ env: { DB_POOL_MAX: String(POOL) } })
    f = factories(t)
    ledger = stockLedger(t)
    staff = await f.user({ role: 'staff' })
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
    if (t.settings.db.kind !== 'postgres') throw new Error('expected PostgreSQL')
    gate = new pg.Client({ connectionString: t.settings.db.url })
    observer = new pg.Client({ connectionString: t.settings.db.url })
    await Promise.all([gate.connect(), observer.connect()])
  })
  afterEach(async () => {
    await ledger.expectBalanced()
  })
  afterAll(async () => {
    await Promise.all([gate?.end(), observer?.end()])
    await t?.close()
  })

  const db = () => t.app.platform.database.db
  const ctx = () => t.app.platform.context()
  const reference = () => `ORD-${randomUUID().slice(0, 8).toUpperCase()}`

  const { variantId, stockOf, movementsOf } = stockQueries(() => t)

  async function activeHeld(sku: string): Promise<number> {
    const rows = await db()
      .select({ quantity: reservations.quantity })
      .from(reservations)
      .innerJoin(variants, eq(variants.id, reservations.variant_id))
      .where(and(eq(variants.sku, sku), eq(reservations.status, 'active')))
    return rows.reduce((sum, row) => sum + row.quantity, 0)
  }


  /**
   * Runs `race` while the gate holds the rows `lock` selects FOR UPDATE, opens the gate once
   * `waiters` racers are blocked on it, and answers every racer's outcome.
   */
  const behindGate = <T>(lock: string, params: unknown[], waiters: number, race: () => Promise<T>) => behindRowLock(gate, observer, { sql: lock, params }, waiters, race)

  /** Available stock as another connection sees it, sampled each time a racer finishes (one query at a time). */
  function sampler(variantIdOf: string) {
    const samples: number[] = []
    let queue = Promise.resolve()
    return {
      sample: () => {
        queue = queue.then(async () => {
          const { rows } = await observer.query<{ available: number }>('SELECT on_hand - reserved AS available FROM stock_levels WHERE variant_id = $1', [variantIdOf])
          samples.push(rows[0]!.available)
        })
      },
      all: async () => {
        await queue
        return samples
      },
    }
  }

  async function reserveRace(stock: number, racers: number) {
    const { skus: [sku] } = await ledger.product([stock])
    const id = await variantId(sku!)
    const seen = sampler(id)
    const outcomes = await behindGate('SELECT 1 FROM stock_levels WHERE variant_id = $1', [id], Math.min(racers, POOL), () =>
      Promise.allSettled(
        Array.from({ length: racers }, () => {
          const call = products.reserve(ctx(), reference(), [{ sku: sku!, quantity: 1 }])
          void call.finally(seen.sample).catch(() => undefined)
          return call
        }),
      ),
    )
    const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []))
    return { sku: sku!, succeeded: outcomes.length - failures.length, failures, samples: await seen.all() }
  }

  it('lets exactly 10 of 50 concurrent one-unit reservations succeed on 10 available', async () => {
    const { sku, succeeded, failures, samples } = await reserveRace(10, 50)
    expect(succeeded).toBe(10)
    expect(failures).toHaveLength(40)
    for (const err of failures) {
      expect(err).toBeInstanceOf(OutOfStockError)
      // Stock only goes down during the race: a refusal always saw none left, never less.
      expect(err).toMatchObject({ code: 'out_of_stock', extensions: { sku, available: 0 } })
    }
    expect(samples).toHaveLength(50)
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0)
    expect(await stockOf(sku)).toEqual({ on_hand: 10, reserved: 10, available: 0 })
    expect(await activeHeld(sku)).toBe(10)
    const movements = await movementsOf(sku)
    expect(movements).toHaveLength(10)
    expect(movements.every((row) => row.reason === 'reserve' && row.delta_reserved === 1 && row.delta_on_hand === 0)).toBe(true)
  })

  it('lets exactly 25 of 200 concurrent one-unit reservations succeed on 25 available', async () => {
    const { sku, succeeded, failures, samples } = await reserveRace(25, 200)
    expect(succeeded).toBe(25)
    expect(failures.every((err) => err instanceof OutOfStockError && err.available === 0)).toBe(true)
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0)
    expect(await stockOf(sku)).toEqual({ on_hand: 25, reserved: 25, available: 0 })
    expect(await activeHeld(sku)).toBe(25)
    expect(await movementsOf(sku)).toHaveLength(25)
  })

  it('never deadlocks when concurrent multi-SKU reservations list the SKUs in opposite orders, and reserves whole calls only', async () => {
    const { skus: [a, b] } = await ledger.product([10, 6])
    const ids = await Promise.all([variantId(a!), variantId(b!)])
    const racers = 40
    const outcomes = await behindGate('SELECT 1 FROM stock_levels WHERE variant_id = ANY($1::uuid[])', [ids], POOL, () =>
      Promise.allSettled(
        Array.from({ length: racers }, (_, i) => {
          const lines = [{ sku: a!, quantity: 1 }, { sku: b!, quantity: 1 }]
          return products.reserve(ctx(), reference(), i % 2 === 0 ? lines : lines.reverse())
        }),
      ),
    )
    const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []))
    // A deadlock (40P01) or any other error would show up here as something else than OutOfStockError.
    for (const err of failures) {
      expect(err).toBeInstanceOf(OutOfStockError)
      expect(err).toMatchObject({ extensions: { sku: b, available: 0 } })
    }
    expect(racers - failures.length).toBe(6)
    // All or nothing per call: A was held exactly as often as B.
    expect(await stockOf(a!)).toEqual({ on_hand: 10, reserved: 6, available: 4 })
    expect(await stockOf(b!)).toEqual({ on_hand: 6, reserved: 6, available: 0 })
    expect(await activeHeld(a!)).toBe(6)
    expect(await movementsOf(a!)).toHaveLength(6)
    expect(await movementsOf(b!)).toHaveLength(6)
  })

  it('settles a reference exactly once when its release and commit run at the same time', async () => {
    const { skus: [a, b] } = await ledger.product([10, 5])
    const refs = Array.from({ length: 5 }, reference)
    for (const ref of refs) await products.reserve(ctx(), ref, [{ sku: a!, quantity: 2 }, { sku: b!, quantity: 1 }])
    expect(await stockOf(a!)).toMatchObject({ reserved: 10 })

    const outcomes = await behindGate('SELECT 1 FROM stock_reservations WHERE reference = ANY($1::text[])', [refs], refs.length * 2, () =>
      Promise.all(refs.map(async (ref) => ({ ref, settled: await Promise.all([products.release(ctx(), ref), products.commit(ctx(), ref)]) }))),
    )
    let committed = 0
    for (const { ref, settled } of outcomes) {
      // One of the two settled both lines; the other found nothing active left.
      expect([...settled].sort()).toEqual([0, 2])
      const status = settled[0] === 2 ? 'released' : 'committed'
      if (status === 'committed') committed += 1
      const rows = await db().select({ status: reservations.status }).from(reservations).where(eq(reservations.reference, ref))
      expect(rows.map((row) => row.status)).toEqual([status, status])
      const settles = (await movementsOf(a!)).filter((row) => row.reference === ref && row.reason !== 'reserve')
      expect(settles).toEqual([{ delta_on_hand: status === 'committed' ? -2 : 0, delta_reserved: -2, reason: status === 'committed' ? 'commit' : 'release', reference: ref, actor: 'system' }])
    }
    expect(await stockOf(a!)).toEqual({ on_hand: 10 - 2 * committed, reserved: 0, available: 10 - 2 * committed })
    expect(await stockOf(b!)).toEqual({ on_hand: 5 - committed, reserved: 0, available: 5 - committed })
    expect(await movementsOf(b!)).toHaveLength(10)
  })

  it('applies each of 20 concurrent +1 deltas sent over HTTP once, in some order', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const id = await variantId(sku!)
    const headers = { ...(await f.auth(staff)), 'content-type': 'application/json' }
    const racers = 20
    const responses = await behindGate('SELECT 1 FROM stock_levels WHERE variant_id = $1', [id], racers, () =>
      Promise.all(
        Array.from({ length: racers }, async () => {
          const res = await fetch(`${base}/api/products/variants/${sku}/stock/`, { method: 'PATCH', headers, body: JSON.stringify({ delta: 1, reason: 'delivery' }) })
          return { status: res.status, body: (await res.json()) as { on_hand: number } }
        }),
      ),
    )
    expect(responses.map((res) => res.status)).toEqual(Array(racers).fill(200))
    // Serialised by the row lock: each request saw the one before it, so every total appears once.
    expect(responses.map((res) => res.body.on_hand).sort((x, y) => x - y)).toEqual(Array.from({ length: racers }, (_, i) => 11 + i))
    expect(await stockOf(sku!)).toEqual({ on_hand: 30, reserved: 0, available: 30 })
    const movements = await movementsOf(sku!)
    expect(movements).toHaveLength(racers)
    expect(movements.every((row) => row.delta_on_hand === 1 && row.delta_reserved === 0 && row.reason === 'delivery' && row.actor === `user:${staff.id}`)).toBe(true)
  })
})
