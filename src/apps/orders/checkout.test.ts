/**
 * POST /api/checkout/ over HTTP: a guest's or a user's cart becomes an order (items copied, stock
 * reserved, cart closed, order.created in the outbox); the Idempotency-Key rules; every refusal
 * (empty cart, no email, unknown shipping method, bad address, a line no longer sold, a line short
 * of stock, no cart) changes nothing; a signed-in user orders with their account email; a paid
 * order makes the buyer's review a verified purchase. The stock ledger balances after every test.
 */
import { randomUUID } from 'node:crypto'
import { and, count, eq, sql } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { stockLedger, stockQueries } from '../../../test/stock-ledger.js'
import { rowsOf } from '../../core/db/index.js'
import { outboxEvents } from '../../core/events/tables.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto } from './service.js'
import { orders } from './tables.js'
import { ADDRESS, cartWith as cartWithLines } from '../../../test/shopping.js'

type Headers = Record<string, string>

let t: TestApp
let f: ReturnType<typeof factories>
let ledger: ReturnType<typeof stockLedger>
let staff: Headers

beforeAll(async () => {
  t = await createTestApp()
  await seedPricingDefaults(t.app.platform.database.db)
  f = factories(t)
  ledger = stockLedger(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
})
afterEach(async () => {
  await ledger.expectBalanced()
})
afterAll(() => t.close())

const db = () => t.app.platform.database.db
const { stockOf } = stockQueries(() => t)

const cartWith = (lines: Array<[sku: string, quantity: number]>, auth?: Headers) => cartWithLines(t, lines, { auth })

const checkout = (headers: Headers, payload: object, key: string | null = randomUUID()) =>
  t.request({ method: 'POST', url: '/api/checkout/', headers: { ...headers, ...(key === null ? {} : { 'idempotency-key': key }) }, payload })

const guestBody = (extra: object = {}) => ({ email: 'ada@example.com', shipping_address: ADDRESS, shipping_method: 'standard', ...extra })

async function orderCount(): Promise<number> {
  const [row] = await db().select({ n: count() }).from(orders)
  return row!.n
}

async function activeReservationCount(): Promise<number> {
  // Another app's table: read with SQL (its tables are not imported outside it).
  return rowsOf<{ n: number }>(await db().execute(sql`SELECT count(*)::int AS n FROM stock_reservations WHERE status = 'active'`))[0]!.n
}

/** Everything a refused checkout must leave as it was. */
async function state(cart: Headers, ...skus: string[]) {
  const res = await t.request({ method: 'GET', url: '/api/cart/', headers: cart })
  return {
    orders: await orderCount(),
    reservations: await activeReservationCount(),
    stock: await Promise.all(skus.map((sku) => stockOf(sku))),
    cart: { status: res.statusCode, items: res.statusCode === 200 ? res.json<{ items: unknown[] }>().items.length : null },
  }
}

describe('POST /api/checkout/ for a guest', () => {
  it('creates a pending_payment order with the items copied, reserves the stock, closes the cart and writes order.created', async () => {
    const { skus } = await ledger.product([5, 4])
    const cart = await cartWith([
      [skus[0]!, 2],
      [skus[1]!, 1],
    ])
    const before = Date.now()
    const res = await checkout(cart, guestBody({ email: 'Ada@Example.com' }))
    expect(res.statusCode, res.body).toBe(201)
    const order = res.json<OrderDto>()
    expect(order).toMatchObject({
      status: 'pending_payment',
      payment_status: 'unpaid',
      email: 'Ada@Example.com',
      currency: 'USD',
      coupon_code: null,
      shipping_method: 'standard',
      shipping_address: ADDRESS,
      billing_address: ADDRESS,
      tracking_number: null,
      // The dummy provider's intent (no STRIPE_SECRET_KEY), with its client secret for the customer paying.
      payment: { provider: 'dummy', status: 'pending', client_secret: expect.stringMatching(/^dummy_pi_\w+_secret_\w+$/) },
    })
    expect(order.number).toMatch(/^ORD-[0-9A-HJKMNP-TV-Z]{8}$/)
    expect(order.items.map(({ sku, quantity, unit_price, variant_name }) => ({ sku, quantity, unit_price, variant_name }))).toEqual([
      { sku: skus[0], quantity: 2, unit_price: 1999, variant_name: 'Variant 0' },
      { sku: skus[1], quantity: 1, unit_price: 1999, variant_name: 'Variant 1' },
    ])
    expect(order.items[0]!.product_name).toMatch(/^Product /)
    expect(order.events).toEqual([expect.objectContaining({ type: 'created', from_status: null, to_status: 'pending_payment' })])
    // Reserved for ORDER_RESERVATION_MINUTES (30 by default).
    const expires = Date.parse(order.reservation_expires_at!)
    expect(expires).toBeGreaterThanOrEqual(before + 30 * 60_000 - 1000)
    expect(expires).toBeLessThanOrEqual(Date.now() + 30 * 60_000 + 1000)

    expect(await stockOf(skus[0]!)).toEqual({ on_hand: 5, reserved: 2, available: 3 })
    expect(await stockOf(skus[1]!)).toEqual({ on_hand: 4, reserved: 1, available: 3 })
    const held = rowsOf<{ quantity: number }>(await db().execute(sql`SELECT quantity FROM stock_reservations WHERE reference = ${order.number} AND status = 'active'`))
    expect(held.map((row) => row.quantity).sort()).toEqual([1, 2])
    // The cart is done: the token no longer reaches an open cart.
    expectProblem(await t.request({ method: 'GET', url: '/api/cart/', headers: cart }), 404)
    const [event] = await db().select().from(outboxEvents).where(and(eq(outboxEvents.name, 'order.created'), sql`${outboxEvents.payload}->>'number' = ${order.number}`))
    expect(event?.payload).toEqual({ order_id: order.id, number: order.number })

    // The guest reads it back with the order's email in any case.
    const read = await t.request({ method: 'GET', url: `/api/orders/${order.number}/?email=ADA%40example.COM` })
    expect(read.statusCode, read.body).toBe(200)
    expect(read.json<OrderDto>().id).toBe(order.id)
  })

  it('uses the billing address when one is given', async () => {
    const { skus } = await ledger.product([3])
    const billing = { name: 'Ada Billing', line1: '2 Side St', city: 'Berlin', postal_code: '10115', country: 'DE' }
    const res = await checkout(await cartWith([[skus[0]!, 1]]), guestBody({ billing_address: billing }))
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json<OrderDto>()).toMatchObject({ shipping_address: ADDRESS, billing_address: billing })
  })

  it('answers 404 without a cart (no token, an unknown token) and creates nothing', async () => {
    const before = await orderCount()
    expectProblem(await checkout({}, guestBody()), 404)
    expectProblem(await checkout({ 'x-cart-token': 'no-such-cart-token' }, guestBody()), 404)
    expect(await orderCount()).toBe(before)
  })
})

describe('Idempotency-Key on POST /api/checkout/', () => {
  it('answers 400 idempotency_key_required without the header, and nothing changes', async () => {
    const { skus } = await ledger.product([3])
    const cart = await cartWith([[skus[0]!, 1]])
    const before = await state(cart, skus[0]!)
    expectProblem(await checkout(cart, guestBody(), null), 400, 'idempotency_key_required')
    expect(await state(cart, skus[0]!)).toEqual(before)
    expect(before.cart).toEqual({ status: 200, items: 1 })
  })

  it('replays the first answer for the same key and body (Idempotent-Replayed: true) without a second order', async () => {
    const { skus } = await ledger.product([3])
    const cart = await cartWith([[skus[0]!, 1]])
    const key = randomUUID()
    const first = await checkout(cart, guestBody(), key)
    expect(first.statusCode, first.body).toBe(201)
    expect(first.headers['idempotent-replayed']).toBeUndefined()
    const orders = await orderCount()
    const again = await checkout(cart, guestBody(), key)
    expect(again.statusCode).toBe(201)
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(again.body).toBe(first.body)
    expect(await orderCount()).toBe(orders)
    expect(await stockOf(skus[0]!)).toMatchObject({ reserved: 1 })
    // The same key with another body is refused, not replayed.
    expectProblem(await checkout(cart, guestBody({ shipping_method: 'express' }), key), 422, 'idempotency_key_reused')
    expect(await orderCount()).toBe(orders)
  })

  it('makes one order when the same key is sent 10 times at once; the rest replay it or answer 409 in progress', async () => {
    const { skus } = await ledger.product([10])
    const cart = await cartWith([[skus[0]!, 1]])
    const key = randomUUID()
    const before = await orderCount()
    const answers = await Promise.all(Array.from({ length: 10 }, () => checkout(cart, guestBody(), key)))
    const fresh = answers.filter((res) => res.statusCode === 201 && res.headers['idempotent-replayed'] === undefined)
    expect(fresh).toHaveLength(1)
    const number = fresh[0]!.json<OrderDto>().number
    for (const res of answers) {
      if (res.statusCode === 201) expect(res.json<OrderDto>().number).toBe(number)
      else expectProblem(res, 409, 'idempotency_request_in_progress')
    }
    expect(await orderCount()).toBe(before + 1)
    expect(await stockOf(skus[0]!)).toEqual({ on_hand: 10, reserved: 1, available: 9 })
  })

  it('does not let a second key check out a cart already checked out', async () => {
    const { skus } = await ledger.product([3])
    const cart = await cartWith([[skus[0]!, 1]])
    expect((await checkout(cart, guestBody())).statusCode).toBe(201)
    const before = await orderCount()
    expectProblem(await checkout(cart, guestBody()), 404)
    expect(await orderCount()).toBe(before)
    expect(await stockOf(skus[0]!)).toMatchObject({ reserved: 1 })
  })
})

describe('refused checkouts change nothing', () => {
  it('answers 422 for an empty cart', async () => {
    const cart = await cartWith([])
    const before = await state(cart)
    const problem = expectProblem(await checkout(cart, guestBody()), 422)
    expect(problem.errors).toHaveProperty('cart')
    expect(await state(cart)).toEqual(before)
    expect(before.cart).toEqual({ status: 200, items: 0 })
  })

  it('answers 422 when a guest gives no email', async () => {
    const { skus } = await ledger.product([3])
    const cart = await cartWith([[skus[0]!, 1]])
    const before = await state(cart, skus[0]!)
    const problem = expectProblem(await checkout(cart, { shipping_address: ADDRESS, shipping_method: 'standard' }), 422)
    expect(problem.errors).toHaveProperty('email')
    expect(await state(cart, skus[0]!)).toEqual(before)
    expect(before.cart).toEqual({ status: 200, items: 1 })
  })

  it('answers 422 shipping_method_unknown for a method that does not exist', async () => {
    const { skus } = await ledger.product([3])
    const cart = await cartWith([[skus[0]!, 1]])
    const before = await state(cart, skus[0]!)
    const problem = expectProblem(await checkout(cart, guestBody({ shipping_method: 'teleport' })), 422, 'shipping_method_unknown')
    expect(problem.errors).toHaveProperty('shipping_method')
    expect(await state(cart, skus[0]!)).toEqual(before)
  })

  it.each([
    ['a country that is not ISO alpha-2', { ...ADDRESS, country: 'USA' }, 'shipping_address'],
    ['a lower-case country', { ...ADDRESS, country: 'us' }, 'shipping_address'],
    ['a missing street', { name: 'Ada', city: 'X', postal_code: '1', country: 'US' }, 'shipping_address'],
    ['a blank name', { ...ADDRESS, name: '   ' }, 'shipping_address'],
    ['an unknown field', { ...ADDRESS, planet: 'Mars' }, 'shipping_address'],
  ])('answers 422 for an address with %s', async (_what, address, field) => {
    const { skus } = await ledger.product([3])
    const cart = await cartWith([[skus[0]!, 1]])
    const before = await state(cart, skus[0]!)
    const problem = expectProblem(await checkout(cart, guestBody({ shipping_address: address })), 422)
    expect(JSON.stringify(problem.errors ?? {})).toContain(field)
    expect(await state(cart, skus[0]!)).toEqual(before)
  })

  it('answers 422 for a malformed email and for a bad billing address', async () => {
    const { skus } = await ledger.product([3])
    const cart = await cartWith([[skus[0]!, 1]])
    const before = await state(cart, skus[0]!)
    expectProblem(await checkout(cart, guestBody({ email: 'not-an-email' })), 422)
    expectProblem(await checkout(cart, guestBody({ billing_address: { ...ADDRESS, postal_code: '' } })), 422)
    expect(await state(cart, skus[0]!)).toEqual(before)
  })

  it('answers 422 with the reason when the cart\'s coupon can no longer be used (deactivated, below its minimum)', async () => {
    const { skus } = await ledger.product([5])
    const code = `C${randomUUID().slice(0, 8)}`.toUpperCase()
    const made = await t.request({ method: 'POST', url: '/api/coupons/', headers: staff, payload: { code, kind: 'percent', value: 10, min_subtotal: 3000 } })
    expect(made.statusCode, made.body).toBe(201)
    const cart = await cartWith([[skus[0]!, 2]])
    expect((await t.request({ method: 'POST', url: '/api/cart/coupon/', headers: cart, payload: { code } })).statusCode).toBe(200)
    // The cart shrinks below the coupon's minimum.
    const line = (await t.request({ method: 'GET', url: '/api/cart/', headers: cart })).json<{ items: Array<{ id: string }> }>().items[0]!
    expect((await t.request({ method: 'PATCH', url: `/api/cart/items/${line.id}/`, headers: cart, payload: { quantity: 1 } })).statusCode).toBe(200)
    const before = await state(cart, skus[0]!)
    expectProblem(await checkout(cart, guestBody()), 422, 'coupon_below_minimum')
    expect(await state(cart, skus[0]!)).toEqual(before)
    // Back above the minimum, but staff switched the coupon off.
    expect((await t.request({ method: 'PATCH', url: `/api/cart/items/${line.id}/`, headers: cart, payload: { quantity: 2 } })).statusCode).toBe(200)
    expect((await t.request({ method: 'PATCH', url: `/api/coupons/${code}/`, headers: staff, payload: { is_active: false } })).statusCode).toBe(200)
    const again = await state(cart, skus[0]!)
    expectProblem(await checkout(cart, guestBody()), 422, 'coupon_inactive')
    expect(await state(cart, skus[0]!)).toEqual(again)
    expect(rowsOf(await db().execute(sql`SELECT times_used FROM coupons WHERE code = ${code}`))).toEqual([{ times_used: 0 }])
  })

  it('answers 409 not_for_sale naming a line whose product was deactivated', async () => {
    const [gone, kept] = [await ledger.product([3]), await ledger.product([3])]
    const cart = await cartWith([
      [kept.skus[0]!, 1],
      [gone.skus[0]!, 1],
    ])
    await db().execute(sql`UPDATE products SET is_active = false WHERE id = ${gone.id}`)
    const before = await state(cart, gone.skus[0]!, kept.skus[0]!)
    const problem = expectProblem(await checkout(cart, guestBody()), 409, 'not_for_sale')
    expect(problem.sku).toBe(gone.skus[0])
    expect(await state(cart, gone.skus[0]!, kept.skus[0]!)).toEqual(before)
  })

  it('answers 409 out_of_stock when stock fell below the cart quantity, and holds nothing of the other lines', async () => {
    const [short, plenty] = [await ledger.product([3]), await ledger.product([9])]
    const cart = await cartWith([
      [plenty.skus[0]!, 2],
      [short.skus[0]!, 3],
    ])
    // Stock changed after the line was added (through the staff route, so the ledger records it).
    const adjust = await t.request({ method: 'PATCH', url: `/api/products/variants/${short.skus[0]}/stock/`, headers: staff, payload: { quantity: 2 } })
    expect(adjust.statusCode, adjust.body).toBe(200)
    const before = await state(cart, short.skus[0]!, plenty.skus[0]!)
    const problem = expectProblem(await checkout(cart, guestBody()), 409, 'out_of_stock')
    expect(problem).toMatchObject({ sku: short.skus[0], available: 2 })
    expect(await state(cart, short.skus[0]!, plenty.skus[0]!)).toEqual(before)
    expect(before.stock).toEqual([
      { on_hand: 2, reserved: 0, available: 2 },
      { on_hand: 9, reserved: 0, available: 9 },
    ])
  })
})

describe('POST /api/checkout/ for a signed-in user', () => {
  let user: MadeUser
  let auth: Headers
  beforeAll(async () => {
    user = await f.user()
    auth = await f.auth(user)
  })

  it("orders with the account's email whatever email the body gives, and the order is the user's", async () => {
    const { skus } = await ledger.product([3])
    await cartWith([[skus[0]!, 1]], auth)
    const res = await checkout(auth, guestBody({ email: 'someone-else@example.com' }))
    expect(res.statusCode, res.body).toBe(201)
    const order = res.json<OrderDto>()
    expect(order.email).toBe(user.email)
    const [row] = await db().select({ user_id: orders.user_id }).from(orders).where(eq(orders.id, order.id))
    expect(row!.user_id).toBe(user.id)
    const list = await t.request({ method: 'GET', url: '/api/orders/', headers: auth })
    expect(list.json<{ results: OrderDto[] }>().results.map((o) => o.number)).toContain(order.number)
    // Without an email in the body as well.
    await cartWith([[skus[0]!, 1]], auth)
    const second = await checkout(auth, { shipping_address: ADDRESS, shipping_method: 'standard' })
    expect(second.statusCode, second.body).toBe(201)
    expect(second.json<OrderDto>().email).toBe(user.email)
  })

  it('makes the review of a product a verified purchase once the order is paid', async () => {
    const product = await f.product({ stock: [5] })
    ledger.track(product.skus[0]!, 5)
    const buyer = await f.user()
    const buyerAuth = await f.auth(buyer)
    await cartWith([[product.skus[0]!, 1]], buyerAuth)
    const order = (await checkout(buyerAuth, { shipping_address: ADDRESS, shipping_method: 'standard' })).json<OrderDto>()
    // A user whose order is still unpaid has not bought it yet.
    const waiting = await f.user()
    const waitingAuth = await f.auth(waiting)
    await cartWith([[product.skus[0]!, 1]], waitingAuth)
    expect((await checkout(waitingAuth, { shipping_address: ADDRESS, shipping_method: 'standard' })).statusCode).toBe(201)

    const paid = await t.request({ method: 'POST', url: `/api/orders/${order.number}/transition/`, headers: staff, payload: { status: 'paid' } })
    expect(paid.statusCode, paid.body).toBe(200)
    const review = (who: Headers) => t.request({ method: 'POST', url: `/api/products/${product.slug}/reviews/`, headers: who, payload: { rating: 5 } })
    const verified = await review(buyerAuth)
    expect(verified.statusCode, verified.body).toBe(201)
    expect(verified.json()).toMatchObject({ verified_purchase: true })
    const unverified = await review(waitingAuth)
    expect(unverified.statusCode, unverified.body).toBe(201)
    expect(unverified.json()).toMatchObject({ verified_purchase: false })
  })
})
