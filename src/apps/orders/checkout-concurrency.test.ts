/**
 * Checkout under real concurrency, on PostgreSQL only (PGlite runs one statement at a time, so a
 * race there proves nothing): many HTTP checkouts at once over the app's connection pool. Stock
 * is never oversold and the ledger balances; carts naming SKUs in opposite orders never surface
 * a deadlock; the last use of a coupon goes to one order; one cart becomes one order whatever
 * keys race for it. Two tests provoke a deadlock on purpose with a second connection, to show a
 * checkout chosen as the victim is retried and the expiry task never deadlocks with checkouts.
 */
import { randomUUID } from 'node:crypto'
import { and, eq, inArray, sql } from 'drizzle-orm'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { stockLedger, stockQueries } from '../../../test/stock-ledger.js'
import { rowsOf } from '../../core/db/index.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto } from './service.js'
import { orderItems, orders } from './tables.js'
import { EXPIRE_RESERVATIONS_TASK } from './tasks.js'
import { ADDRESS, cartWith as cartWithLines } from '../../../test/shopping.js'

type Headers = Record<string, string>
type Answer = Awaited<ReturnType<TestApp['request']>>


describe.runIf(usesPostgres)('checkout under concurrency (PostgreSQL)', () => {
  let t: TestApp
  let ledger: ReturnType<typeof stockLedger>
  let staff: Headers
  const { stockOf, variantId } = stockQueries(() => t)
  const db = () => t.app.platform.database.db

  beforeAll(async () => {
    // More connections than the default 10, so many checkouts really run at once.
    t = await createTestApp({ env: { DB_POOL_MAX: '20' }, captureLogs: true })
    expect(t.settings.db.kind).toBe('postgres')
    await seedPricingDefaults(db())
    ledger = stockLedger(t)
    const f = factories(t)
    staff = await f.auth(await f.user({ role: 'staff' }))
  })
  afterEach(async () => {
    await ledger.expectBalanced()
  })
  afterAll(() => t?.close())

  /** A guest cart with these lines (and coupon); carts are prepared beforehand, 20 at a time. */
  const guestCart = (lines: Array<[sku: string, quantity: number]>, coupon?: string) => cartWithLines(t, lines, { coupon })
  async function guestCarts(n: number, linesOf: (i: number) => Array<[string, number]>, coupon?: string): Promise<Headers[]> {
    const carts: Headers[] = []
    for (let i = 0; i < n; i += 20) carts.push(...(await Promise.all(Array.from({ length: Math.min(20, n - i) }, (_, j) => guestCart(linesOf(i + j), coupon)))))
    return carts
  }
  const checkout = (cart: Headers, key: string = randomUUID()) =>
    t.request({ method: 'POST', url: '/api/checkout/', headers: { ...cart, 'idempotency-key': key }, payload: { email: 'buyer@example.com', shipping_address: ADDRESS, shipping_method: 'standard' } })
  /** Every answer at once: all requests are started before any is awaited. */
  const allAtOnce = (requests: Array<() => Promise<Answer>>) => Promise.all(requests.map((request) => request()))

  async function coupon(terms: object): Promise<string> {
    const code = `R${randomUUID().slice(0, 8)}`.toUpperCase()
    const res = await t.request({ method: 'POST', url: '/api/coupons/', headers: staff, payload: { code, kind: 'percent', value: 10, ...terms } })
    expect(res.statusCode, res.body).toBe(201)
    return code
  }

  /** Quantities of each SKU over the orders of these numbers, read from the database. */
  async function orderedQuantities(numbers: string[]): Promise<Record<string, number>> {
    if (numbers.length === 0) return {}
    const rows = await db()
      .select({ sku: orderItems.sku, quantity: sql<number>`sum(${orderItems.quantity})::int` })
      .from(orderItems)
      .innerJoin(orders, eq(orders.id, orderItems.order_id))
      .where(inArray(orders.number, numbers))
      .groupBy(orderItems.sku)
    return Object.fromEntries(rows.map((row) => [row.sku, row.quantity]))
  }

  async function ordersWithSku(sku: string): Promise<number> {
    const [row] = await db().select({ n: sql<number>`count(DISTINCT ${orderItems.order_id})::int` }).from(orderItems).where(eq(orderItems.sku, sku))
    return row!.n
  }

  const statusesOf = (answers: Answer[]) => answers.reduce<Record<number, number>>((acc, res) => ({ ...acc, [res.statusCode]: (acc[res.statusCode] ?? 0) + 1 }), {})

  it('200 buyers racing for 25 units: exactly 25 orders, 175 answers of 409 out_of_stock, stock never below zero', async () => {
    const { skus } = await ledger.product([25])
    const sku = skus[0]!
    const carts = await guestCarts(200, () => [[sku, 1]])

    // As each answer arrives, how many requests still wait for one of the pool's connections.
    let mostWaiting = 0
    const answers = await allAtOnce(
      carts.map((cart) => async () => {
        const res = await checkout(cart)
        mostWaiting = Math.max(mostWaiting, t.app.platform.database.poolStats().waiting)
        return res
      }),
    )

    // They really ran side by side: every connection of the pool was busy with others queued.
    expect(t.app.platform.database.poolStats()).toMatchObject({ total: 20, max: 20 })
    expect(mostWaiting).toBeGreaterThan(0)
    expect(statusesOf(answers)).toEqual({ 201: 25, 409: 175 })
    for (const res of answers.filter((a) => a.statusCode === 409)) expect(expectProblem(res, 409, 'out_of_stock')).toMatchObject({ sku, available: 0 })
    const numbers = answers.filter((a) => a.statusCode === 201).map((a) => a.json<OrderDto>().number)
    expect(new Set(numbers).size).toBe(25)
    expect(await ordersWithSku(sku)).toBe(25)
    expect(await stockOf(sku)).toEqual({ on_hand: 25, reserved: 25, available: 0 })
    expect(await orderedQuantities(numbers)).toEqual({ [sku]: 25 })
  })

  it('carts naming two SKUs in opposite orders: every answer is 201 or 409 out_of_stock, and reserved stock equals what the orders hold', async () => {
    const [x, y] = [(await ledger.product([40])).skus[0]!, (await ledger.product([40])).skus[0]!]
    // Half the carts add X then Y, the other half Y then X, with different quantities, interleaved.
    const carts = await guestCarts(100, (i) =>
      i % 2 === 0
        ? [
            [x, 1],
            [y, 2],
          ]
        : [
            [y, 1],
            [x, 2],
          ],
    )

    const answers = await allAtOnce(carts.map((cart) => () => checkout(cart)))

    expect(answers.every((res) => res.statusCode === 201 || res.statusCode === 409), JSON.stringify(statusesOf(answers))).toBe(true)
    const created = answers.filter((a) => a.statusCode === 201)
    expect(created.length).toBeGreaterThan(0)
    const numbers = created.map((a) => a.json<OrderDto>().number)
    const held = await orderedQuantities(numbers)
    const [sx, sy] = [(await stockOf(x))!, (await stockOf(y))!]
    expect({ [x]: sx.reserved, [y]: sy.reserved }).toEqual({ [x]: held[x], [y]: held[y] })
    expect(sx).toMatchObject({ on_hand: 40 })
    expect(sy).toMatchObject({ on_hand: 40 })
    expect(sx.available).toBeGreaterThanOrEqual(0)
    expect(sy.available).toBeGreaterThanOrEqual(0)
    // No refusal was spurious: stock only went down, so each refused cart still does not fit at the end.
    answers.forEach((res, i) => {
      if (res.statusCode === 201) return
      const problem = expectProblem(res, 409, 'out_of_stock')
      const wanted = i % 2 === 0 ? { [x]: 1, [y]: 2 } : { [y]: 1, [x]: 2 }
      const left = { [x]: sx.available, [y]: sy.available }
      expect(left[problem.sku as string]!).toBeLessThan(wanted[problem.sku as string]!)
    })
  })

  it('the last use of a coupon raced by 20 checkouts goes to one order; the others are refused and keep nothing', async () => {
    const { skus } = await ledger.product([100])
    const sku = skus[0]!
    const code = await coupon({ usage_limit: 1 })
    const carts = await guestCarts(20, () => [[sku, 1]], code)

    const answers = await allAtOnce(carts.map((cart) => () => checkout(cart)))

    const created = answers.filter((a) => a.statusCode === 201)
    expect(created, JSON.stringify(statusesOf(answers))).toHaveLength(1)
    const winner = created[0]!.json<OrderDto>()
    expect(winner).toMatchObject({ coupon_code: code, totals: expect.objectContaining({ discount: 200 }) })
    for (const res of answers.filter((a) => a.statusCode !== 201)) {
      // Refused when it redeemed (409: the use has just gone) or, later, when it validated (422).
      const problem = expectProblem(res, res.statusCode)
      expect([
        [409, 'coupon_exhausted'],
        [422, 'coupon_used_up'],
      ]).toContainEqual([res.statusCode, problem.code])
    }
    // The cart app's tables: read with SQL (another app's tables are not imported).
    const [row] = rowsOf<{ id: string; times_used: number }>(await db().execute(sql`SELECT id, times_used FROM coupons WHERE code = ${code}`))
    expect(row!.times_used).toBe(1)
    const redemptions = rowsOf<{ order_id: string }>(await db().execute(sql`SELECT order_id FROM coupon_redemptions WHERE coupon_id = ${row!.id}`))
    expect(redemptions).toEqual([{ order_id: winner.id }])
    // No order without its redemption, no reservation for a refused checkout, refused carts still open.
    expect(await ordersWithSku(sku)).toBe(1)
    expect(await stockOf(sku)).toEqual({ on_hand: 100, reserved: 1, available: 99 })
    const losers = carts.filter((_, i) => answers[i]!.statusCode !== 201)
    const open = await Promise.all(losers.map((cart) => t.request({ method: 'GET', url: '/api/cart/', headers: cart })))
    expect(open.map((res) => res.statusCode)).toEqual(losers.map(() => 200))
  })

  it('the same Idempotency-Key sent 10 times at once makes one order; the others replay it or answer 409 in progress', async () => {
    const { skus } = await ledger.product([10])
    const cart = await guestCart([[skus[0]!, 1]])
    const key = randomUUID()
    const answers = await allAtOnce(Array.from({ length: 10 }, () => () => checkout(cart, key)))
    const fresh = answers.filter((res) => res.statusCode === 201 && res.headers['idempotent-replayed'] === undefined)
    expect(fresh).toHaveLength(1)
    const number = fresh[0]!.json<OrderDto>().number
    for (const res of answers) {
      if (res.statusCode === 201) expect(res.json<OrderDto>().number).toBe(number)
      else expectProblem(res, 409, 'idempotency_request_in_progress')
    }
    expect(await ordersWithSku(skus[0]!)).toBe(1)
    expect(await stockOf(skus[0]!)).toEqual({ on_hand: 10, reserved: 1, available: 9 })
  })

  it('one cart checked out under 10 different keys at once becomes one order', async () => {
    const { skus } = await ledger.product([10])
    const cart = await guestCart([[skus[0]!, 1]])
    const answers = await allAtOnce(Array.from({ length: 10 }, () => () => checkout(cart)))
    expect(answers.filter((res) => res.statusCode === 201)).toHaveLength(1)
    // The others lost the cart: it was checked out while they ran (409) or before they looked (404).
    for (const res of answers.filter((a) => a.statusCode !== 201)) expect([404, 409]).toContain(expectProblem(res, res.statusCode).status)
    expect(await ordersWithSku(skus[0]!)).toBe(1)
    expect(await stockOf(skus[0]!)).toEqual({ on_hand: 10, reserved: 1, available: 9 })
  })

  /** A second connection, outside the app's pool, that takes locks the way a competing transaction would. */
  async function withBlocker(fn: (client: pg.Client) => Promise<void>): Promise<void> {
    const settings = t.settings.db
    if (settings.kind !== 'postgres') throw new Error('PostgreSQL only')
    const client = new pg.Client({ connectionString: settings.url })
    await client.connect()
    try {
      await client.query('BEGIN')
      // Deadlock detection runs in the session that has waited deadlock_timeout; this one waits
      // longer than the app's, so the app's transaction is always the one that detects (and is picked).
      await client.query("SET LOCAL deadlock_timeout = '30s'")
      await fn(client)
      await client.query('COMMIT')
    } finally {
      await client.end()
    }
  }

  /** Resolves once one of the app's connections waits for a row lock (polling pg_stat_activity). */
  async function appWaitsForALock(client: pg.Client): Promise<void> {
    const deadline = Date.now() + 10_000
    for (;;) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'shop-backend' AND wait_event_type = 'Lock'",
      )
      if (rows[0]!.n > 0) return
      if (Date.now() > deadline) throw new Error('the app never waited for the lock')
    }
  }

  it('retries a checkout that PostgreSQL picks as a deadlock victim: the client gets its order', async () => {
    const { skus } = await ledger.product([5])
    const code = await coupon({})
    const cart = await guestCart([[skus[0]!, 1]], code)
    const stockRow = await variantId(skus[0]!)
    let answer: Promise<Answer> | undefined
    await withBlocker(async (client) => {
      await client.query('SELECT id FROM coupons WHERE code = $1 FOR UPDATE', [code])
      // The checkout reserves the stock row, then waits for the coupon row this connection holds...
      answer = checkout(cart)
      await appWaitsForALock(client)
      // ...and this connection now wants the stock row: a deadlock. The checkout is rolled back.
      await client.query('UPDATE stock_levels SET updated_at = updated_at WHERE variant_id = $1', [stockRow])
    })
    const res = await answer!
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json<OrderDto>()).toMatchObject({ coupon_code: code, status: 'pending_payment' })
    expect(t.logs.some((line) => line.msg === 'checkout retried after a lock conflict' && line.code === '40P01')).toBe(true)
    expect(await stockOf(skus[0]!)).toEqual({ on_hand: 5, reserved: 1, available: 4 })
    expect(await ordersWithSku(skus[0]!)).toBe(1)
  })

  it('the expiry task never holds one order’s stock while waiting for another’s (no deadlock with a checkout)', async () => {
    // Two SKUs in variant id order: a checkout of both locks `low` then `high`.
    const made = [(await ledger.product([5])).skus[0]!, (await ledger.product([5])).skus[0]!]
    const ids = await Promise.all(made.map((sku) => variantId(sku)))
    const [low, high] = ids[0]! < ids[1]! ? [made[0]!, made[1]!] : [made[1]!, made[0]!]
    const placed = async (sku: string) => (await checkout(await guestCart([[sku, 1]]))).json<OrderDto>()
    // The expiry cancels the oldest deadline first: the order holding `high`, then the one holding `low`.
    const [first, second] = [await placed(high), await placed(low)]
    await db().update(orders).set({ reservation_expires_at: sql`now() - interval '2 minutes'` }).where(eq(orders.id, first.id))
    await db().update(orders).set({ reservation_expires_at: sql`now() - interval '1 minute'` }).where(eq(orders.id, second.id))
    const failedLines = () => t.logs.filter((line) => line.task === EXPIRE_RESERVATIONS_TASK && typeof line.msg === 'string' && line.msg.startsWith('task failed')).length
    const failedBefore = failedLines()

    await withBlocker(async (client) => {
      // A checkout of both SKUs has reserved `low` and goes on to `high`.
      await client.query('UPDATE stock_levels SET updated_at = updated_at WHERE variant_id = $1', [await variantId(low)])
      await t.app.platform.queue.enqueue(EXPIRE_RESERVATIONS_TASK, {})
      await appWaitsForALock(client)
      await client.query('UPDATE stock_levels SET updated_at = updated_at WHERE variant_id = $1', [await variantId(high)])
    })
    await t.app.platform.queue.drain()

    expect(failedLines() - failedBefore).toBe(0)
    const statuses = await db().select({ status: orders.status }).from(orders).where(and(inArray(orders.id, [first.id, second.id]), eq(orders.status, 'cancelled')))
    expect(statuses).toHaveLength(2)
    expect(await stockOf(low)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
    expect(await stockOf(high)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
  })
})
