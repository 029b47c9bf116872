/**
 * Orders over HTTP: the state machine (every illegal move of every status is a 409 that changes
 * nothing; legal moves record events and have their stock and coupon consequences), cancelling,
 * tracking numbers, who may use which route (customers, guests by email, staff, services on the
 * internal routes), lists with filters, and the expiry of unpaid reservations by the
 * `orders.expire_reservations` task. The stock ledger balances after every test.
 */
import { randomUUID } from 'node:crypto'
import { and, asc, count, eq, sql } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { stockLedger, stockQueries } from '../../../test/stock-ledger.js'
import { loadSettings } from '../../config/index.js'
import { rowsOf } from '../../core/db/index.js'
import { outboxEvents } from '../../core/events/tables.js'
import { createServiceTokenManager } from '../../core/service-auth/index.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto, OrderStatus } from './service.js'
import { orderEvents, orders, orderStatuses } from './tables.js'
import { EXPIRE_RESERVATIONS_TASK } from './tasks.js'
import { ADDRESS } from '../../../test/shopping.js'

type Headers = Record<string, string>

const SECRETS = {
  SERVICE_AUTH_SECRET_DJANGO_BACKEND: `backend-${randomUUID()}`,
  SERVICE_AUTH_SECRET_API_GATEWAY: `gateway-${randomUUID()}`,
  SERVICE_AUTH_SECRET_CELERY_WORKER: `workers-${randomUUID()}`,
}
/** What another service holds: the same secrets, its own token manager. */
const serviceTokens = createServiceTokenManager(loadSettings({ ENVIRONMENT: 'test', ...SECRETS }).serviceAuth)
const service = async (): Promise<Headers> => ({ 'x-service-token': await serviceTokens.issue('api-gateway') })

let t: TestApp
let f: ReturnType<typeof factories>
let ledger: ReturnType<typeof stockLedger>
let staff: Headers

beforeAll(async () => {
  t = await createTestApp({ env: SECRETS })
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
const { stockOf, movementsOf } = stockQueries(() => t)

interface Placed {
  order: OrderDto
  sku: string
  /** The order's customer headers: the user's bearer token, or none for a guest. */
  auth: Headers
}

/**
 * Checks out a new product's SKU (stock 5 unless said) as a guest (email given) or as `user`,
 * with a coupon code applied when given.
 */
async function place(options: { user?: MadeUser; email?: string; quantity?: number; stock?: number; coupon?: string; sku?: string } = {}): Promise<Placed> {
  const sku = options.sku ?? (await ledger.product([options.stock ?? 5])).skus[0]!
  const auth = options.user ? await f.auth(options.user) : {}
  const opened = await t.request({ method: 'POST', url: '/api/cart/', headers: auth })
  const cart = options.user ? auth : { 'x-cart-token': opened.json<{ token: string }>().token }
  const added = await t.request({ method: 'POST', url: '/api/cart/items/', headers: cart, payload: { sku, quantity: options.quantity ?? 1 } })
  expect(added.statusCode, added.body).toBe(201)
  if (options.coupon) {
    const applied = await t.request({ method: 'POST', url: '/api/cart/coupon/', headers: cart, payload: { code: options.coupon } })
    expect(applied.statusCode, applied.body).toBe(200)
  }
  const res = await t.request({
    method: 'POST',
    url: '/api/checkout/',
    headers: { ...cart, 'idempotency-key': randomUUID() },
    payload: { ...(options.user ? {} : { email: options.email ?? `guest-${randomUUID()}@example.com` }), shipping_address: ADDRESS, shipping_method: 'standard' },
  })
  expect(res.statusCode, res.body).toBe(201)
  return { order: res.json<OrderDto>(), sku, auth }
}

const transition = (number: string, payload: object, headers: Headers = staff) => t.request({ method: 'POST', url: `/api/orders/${number}/transition/`, headers, payload })
const cancel = (number: string, headers: Headers, payload: object = {}) => t.request({ method: 'POST', url: `/api/orders/${number}/cancel/`, headers, payload })
const read = (number: string, headers: Headers = staff, query = '') => t.request({ method: 'GET', url: `/api/orders/${number}/${query}`, headers })

/** Moves an order along these statuses as staff, each move asserted. */
async function advance(number: string, path: OrderStatus[]): Promise<OrderDto> {
  let order: OrderDto | undefined
  for (const status of path) {
    const res = await transition(number, { status, ...(status === 'shipped' ? { tracking_number: `TRK-${number}` } : {}) })
    expect(res.statusCode, res.body).toBe(200)
    order = res.json<OrderDto>()
  }
  return order ?? (await read(number)).json<OrderDto>()
}

/** A coupon made by staff over HTTP; answers its code. */
async function coupon(terms: object = {}): Promise<string> {
  const code = `C${randomUUID().slice(0, 8)}`.toUpperCase()
  const res = await t.request({ method: 'POST', url: '/api/coupons/', headers: staff, payload: { code, kind: 'percent', value: 10, ...terms } })
  expect(res.statusCode, res.body).toBe(201)
  return code
}

async function couponUse(code: string) {
  // The cart app's tables: read with SQL (another app's tables are not imported).
  const [row] = rowsOf<{ id: string; times_used: number }>(await db().execute(sql`SELECT id, times_used FROM coupons WHERE code = ${code}`))
  const redemptions = rowsOf<{ order_id: string }>(await db().execute(sql`SELECT order_id FROM coupon_redemptions WHERE coupon_id = ${row!.id}`))
  return { times_used: row!.times_used, orders: redemptions.map((r) => r.order_id) }
}

async function reservationsOf(number: string) {
  return rowsOf<{ quantity: number; status: string }>(await db().execute(sql`SELECT quantity, status FROM stock_reservations WHERE reference = ${number} ORDER BY created_at, id`))
}

async function statusEvents(orderId: string) {
  const rows = await db().select({ payload: outboxEvents.payload }).from(outboxEvents).where(and(eq(outboxEvents.name, 'order.status_changed'), sql`${outboxEvents.payload}->>'order_id' = ${orderId}`)).orderBy(asc(outboxEvents.seq))
  return rows.map((row) => row.payload)
}

/** Everything a refused move must leave as it was: the order as staff read it, its stock, reservations and outbox events. */
async function snapshot(placed: Placed) {
  // What earlier moves set off in the background (the payment's cancellation) finishes first.
  await t.settle()
  const res = await read(placed.order.number)
  expect(res.statusCode, res.body).toBe(200)
  return { order: res.json<OrderDto>(), stock: await stockOf(placed.sku), reservations: await reservationsOf(placed.order.number), events: await statusEvents(placed.order.id) }
}

/** The legal moves of API.md, written out here rather than read from state.ts. */
const LEGAL: Record<OrderStatus, OrderStatus[]> = {
  pending_payment: ['paid', 'cancelled'],
  paid: ['processing', 'cancelled'],
  processing: ['shipped', 'cancelled'],
  shipped: ['delivered'],
  delivered: ['refunded', 'partially_refunded'],
  partially_refunded: ['refunded'],
  cancelled: [],
  refunded: [],
}
/** How an order reaches each status by legal moves. */
const PATH: Record<OrderStatus, OrderStatus[]> = {
  pending_payment: [],
  paid: ['paid'],
  processing: ['paid', 'processing'],
  shipped: ['paid', 'processing', 'shipped'],
  delivered: ['paid', 'processing', 'shipped', 'delivered'],
  partially_refunded: ['paid', 'processing', 'shipped', 'delivered', 'partially_refunded'],
  refunded: ['paid', 'processing', 'shipped', 'delivered', 'refunded'],
  cancelled: ['cancelled'],
}

describe.each(orderStatuses)('an order that is %s', (from) => {
  let placed: Placed
  beforeAll(async () => {
    placed = await place()
    await advance(placed.order.number, PATH[from])
  })

  const illegal = orderStatuses.filter((to) => !LEGAL[from].includes(to))
  it.each(illegal)(`cannot become %s: 409 illegal_transition, and nothing changes`, async (to) => {
    const before = await snapshot(placed)
    expect(before.order.status).toBe(from)
    const problem = expectProblem(await transition(placed.order.number, { status: to, note: 'should not stick' }), 409, 'illegal_transition')
    expect(problem).toMatchObject({ from, to, allowed: LEGAL[from] })
    // The same move through the internal route, on behalf of a service.
    expectProblem(await t.request({ method: 'POST', url: `/api/internal/orders/${placed.order.number}/status/`, headers: await service(), payload: { status: to } }), 409, 'illegal_transition')
    expect(await snapshot(placed)).toEqual(before)
  })

  if (!LEGAL[from].includes('cancelled')) {
    it('cannot be cancelled by staff through the cancel route either (409), and nothing changes', async () => {
      const before = await snapshot(placed)
      expectProblem(await cancel(placed.order.number, staff), 409, 'illegal_transition')
      expect(await snapshot(placed)).toEqual(before)
    })
  }
})

describe('legal moves', () => {
  it('walk an order to refunded, recording each move as an event and in the outbox', async () => {
    const placed = await place()
    const { number, id } = placed.order
    const expected: Array<{ to: OrderStatus; payment: OrderDto['payment_status'] }> = [
      { to: 'paid', payment: 'paid' },
      { to: 'processing', payment: 'paid' },
      { to: 'shipped', payment: 'paid' },
      { to: 'delivered', payment: 'paid' },
      { to: 'partially_refunded', payment: 'partially_refunded' },
      { to: 'refunded', payment: 'refunded' },
    ]
    let from: OrderStatus = 'pending_payment'
    for (const { to, payment } of expected) {
      const res = await transition(number, { status: to, note: `to ${to}` })
      expect(res.statusCode, res.body).toBe(200)
      const order = res.json<OrderDto>()
      expect(order).toMatchObject({ status: to, payment_status: payment, reservation_expires_at: null })
      expect(order.events.at(-1)).toMatchObject({ type: 'status_changed', from_status: from, to_status: to, note: `to ${to}` })
      from = to
    }
    const order = (await read(number)).json<OrderDto>()
    expect(order.events.map((event) => event.to_status)).toEqual(['pending_payment', 'paid', 'processing', 'shipped', 'delivered', 'partially_refunded', 'refunded'])
    const [row] = await db().select({ actor: orderEvents.actor }).from(orderEvents).where(and(eq(orderEvents.order_id, id), eq(orderEvents.to_status, 'paid')))
    expect(row!.actor).toMatch(/^user:/)
    expect((await statusEvents(id)).map((event) => (event as { to: string }).to)).toEqual(expected.map((move) => move.to))
  })

  it('paid commits the reservation: on hand and reserved both drop, availability stays', async () => {
    const placed = await place({ quantity: 2, stock: 5 })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 5, reserved: 2, available: 3 })
    await advance(placed.order.number, ['paid'])
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })
    expect(await reservationsOf(placed.order.number)).toEqual([{ quantity: 2, status: 'committed' }])
    expect((await movementsOf(placed.sku)).map((m) => [m.reason, m.delta_on_hand, m.delta_reserved])).toEqual([
      ['reserve', 0, 2],
      ['commit', -2, -2],
    ])
  })

  it('a tracking number goes only with the move to shipped (422 otherwise, nothing changes)', async () => {
    const placed = await place()
    await advance(placed.order.number, ['paid'])
    const before = await snapshot(placed)
    expectProblem(await transition(placed.order.number, { status: 'processing', tracking_number: '1Z999' }), 422)
    expect(await snapshot(placed)).toEqual(before)
    await advance(placed.order.number, ['processing'])
    const shipped = await transition(placed.order.number, { status: 'shipped', tracking_number: '1Z999AA10123456784' })
    expect(shipped.statusCode, shipped.body).toBe(200)
    expect(shipped.json<OrderDto>()).toMatchObject({ status: 'shipped', tracking_number: '1Z999AA10123456784' })
  })

  it('shipping without a tracking number is allowed', async () => {
    const placed = await place()
    const order = await advance(placed.order.number, ['paid', 'processing'])
    expect(order.status).toBe('processing')
    const res = await transition(placed.order.number, { status: 'shipped' })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<OrderDto>()).toMatchObject({ status: 'shipped', tracking_number: null })
  })
})

describe('POST /api/orders/{number}/cancel/', () => {
  it('by its owner while unpaid: releases the stock, gives the coupon back, no refund due', async () => {
    const user = await f.user()
    const code = await coupon({ usage_limit: 1 })
    const placed = await place({ user, coupon: code, quantity: 2 })
    expect(placed.order.coupon_code).toBe(code)
    expect(await couponUse(code)).toEqual({ times_used: 1, orders: [placed.order.id] })
    const res = await cancel(placed.order.number, placed.auth, { note: 'changed my mind' })
    expect(res.statusCode, res.body).toBe(200)
    const order = res.json<OrderDto>()
    expect(order).toMatchObject({ status: 'cancelled', payment_status: 'void', reservation_expires_at: null })
    expect(order.events.at(-1)).toMatchObject({ type: 'cancelled', from_status: 'pending_payment', to_status: 'cancelled', note: 'changed my mind' })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
    expect(await reservationsOf(placed.order.number)).toEqual([{ quantity: 2, status: 'released' }])
    expect(await couponUse(code)).toEqual({ times_used: 0, orders: [] })
    expect(await statusEvents(placed.order.id)).toEqual([expect.objectContaining({ from: 'pending_payment', to: 'cancelled', refund_due: false })])
    // The use given back can be taken again.
    const again = await place({ coupon: code })
    expect(again.order.coupon_code).toBe(code)
  })

  it('works without a body', async () => {
    const user = await f.user()
    const placed = await place({ user })
    const res = await t.request({ method: 'POST', url: `/api/orders/${placed.order.number}/cancel/`, headers: placed.auth })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<OrderDto>().status).toBe('cancelled')
  })

  it.each([
    ['paid', ['paid']],
    ['processing', ['paid', 'processing']],
  ] as const)('of a %s order puts the goods back on hand, keeps the coupon used and marks a refund due', async (_status, path) => {
    const user = await f.user()
    const code = await coupon()
    const placed = await place({ user, coupon: code, quantity: 2 })
    await advance(placed.order.number, [...path])
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })
    // The owner may cancel until it ships.
    const res = await cancel(placed.order.number, placed.auth)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<OrderDto>()).toMatchObject({ status: 'cancelled' })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
    expect((await movementsOf(placed.sku)).at(-1)).toMatchObject({ reason: 'return', delta_on_hand: 2, delta_reserved: 0, reference: placed.order.number })
    expect(await couponUse(code)).toEqual({ times_used: 1, orders: [placed.order.id] })
    expect((await statusEvents(placed.order.id)).at(-1)).toMatchObject({ to: 'cancelled', refund_due: true })
  })

  it('by its owner after shipping: 409, and nothing changes', async () => {
    const user = await f.user()
    for (const path of [['paid', 'processing', 'shipped'], ['paid', 'processing', 'shipped', 'delivered']] as OrderStatus[][]) {
      const placed = await place({ user })
      await advance(placed.order.number, path)
      const before = await snapshot(placed)
      expectProblem(await cancel(placed.order.number, placed.auth), 409, 'illegal_transition')
      expect(await snapshot(placed)).toEqual(before)
    }
  })

  it('by staff of a guest order; twice is a 409', async () => {
    const placed = await place()
    expect((await cancel(placed.order.number, staff)).statusCode).toBe(200)
    expect(await stockOf(placed.sku)).toMatchObject({ reserved: 0, on_hand: 5 })
    const before = await snapshot(placed)
    expectProblem(await cancel(placed.order.number, staff), 409, 'illegal_transition')
    expect(await snapshot(placed)).toEqual(before)
  })

  it('answers 401 to anonymous callers and 404 to another customer, and nothing changes', async () => {
    const owner = await f.user()
    const placed = await place({ user: owner })
    const guestPlaced = await place()
    const before = [await snapshot(placed), await snapshot(guestPlaced)]
    expectProblem(await cancel(placed.order.number, {}), 401)
    const stranger = await f.auth(await f.user())
    expectProblem(await cancel(placed.order.number, stranger), 404, 'not_found')
    // A guest order belongs to no user: a customer cannot cancel it.
    expectProblem(await cancel(guestPlaced.order.number, stranger), 404, 'not_found')
    expect([await snapshot(placed), await snapshot(guestPlaced)]).toEqual(before)
  })
})

describe('GET /api/orders/{number}/', () => {
  it('answers the owner and staff, and 404 to another customer', async () => {
    const owner = await f.user()
    const placed = await place({ user: owner })
    expect((await read(placed.order.number, placed.auth)).statusCode).toBe(200)
    const asStaff = await read(placed.order.number, staff)
    expect(asStaff.statusCode).toBe(200)
    expect(asStaff.json<OrderDto>().id).toBe(placed.order.id)
    expectProblem(await read(placed.order.number, await f.auth(await f.user())), 404, 'not_found')
  })

  it("answers a guest giving the order's email in any case, and 404 without it or with another", async () => {
    const placed = await place({ email: 'Grace.Hopper@Example.com' })
    const { number } = placed.order
    expectProblem(await read(number, {}), 404, 'not_found')
    expectProblem(await read(number, {}, '?email=someone@example.com'), 404, 'not_found')
    expectProblem(await read(number, {}, '?email='), 404, 'not_found')
    for (const email of ['Grace.Hopper@Example.com', 'grace.hopper@example.com', 'GRACE.HOPPER@EXAMPLE.COM']) {
      const res = await read(number, {}, `?email=${encodeURIComponent(email)}`)
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json<OrderDto>()).toMatchObject({ number, email: 'Grace.Hopper@Example.com', items: [expect.objectContaining({ sku: placed.sku })] })
    }
  })

  it('answers 404 for an unknown number and 422 naming the number for a malformed one', async () => {
    expectProblem(await read('ORD-ZZZZZZZZ'), 404, 'not_found')
    expect(expectProblem(await read('not-an-order'), 422).errors).toHaveProperty('number')
  })
})

describe('POST /api/orders/{number}/transition/', () => {
  it('answers 401 anonymous, 403 to a customer (even the owner), 404 to staff for an unknown order; nothing changes', async () => {
    const owner = await f.user()
    const placed = await place({ user: owner })
    const before = await snapshot(placed)
    expectProblem(await transition(placed.order.number, { status: 'paid' }, {}), 401)
    expectProblem(await transition(placed.order.number, { status: 'paid' }, placed.auth), 403)
    expect(await snapshot(placed)).toEqual(before)
    expectProblem(await transition('ORD-ZZZZZZZZ', { status: 'paid' }), 404, 'not_found')
  })

  it('answers 422 for a status that does not exist and for unknown fields', async () => {
    const placed = await place()
    const before = await snapshot(placed)
    expectProblem(await transition(placed.order.number, { status: 'teleported' }), 422)
    expectProblem(await transition(placed.order.number, { status: 'paid', colour: 'red' }), 422)
    expect(await snapshot(placed)).toEqual(before)
  })
})

describe('GET /api/orders/', () => {
  let alice: MadeUser
  let bob: MadeUser
  let aliceOrders: Placed[]
  let bobOrder: Placed
  let guestOrder: Placed
  beforeAll(async () => {
    alice = await f.user({ email: `alice-${randomUUID()}@example.com` })
    bob = await f.user()
    aliceOrders = [await place({ user: alice }), await place({ user: alice }), await place({ user: alice })]
    await cancel(aliceOrders[1]!.order.number, staff)
    bobOrder = await place({ user: bob })
    guestOrder = await place({ email: alice.email.toUpperCase() })
  })
  const list = async (headers: Headers, query = '') => {
    const res = await t.request({ method: 'GET', url: `/api/orders/${query}`, headers })
    expect(res.statusCode, res.body).toBe(200)
    return res.json<{ results: OrderDto[]; next: string | null; count: number | null }>()
  }
  const numbers = (placed: Placed[]) => placed.map((p) => p.order.number)

  it('answers 401 to anonymous callers', async () => {
    expectProblem(await t.request({ method: 'GET', url: '/api/orders/' }), 401)
  })

  it("shows a customer their own orders only, newest first, with their items", async () => {
    const page = await list(await f.auth(alice))
    expect(page.results.map((o) => o.number)).toEqual(numbers(aliceOrders).reverse())
    expect(page.results[0]!.items).toEqual([expect.objectContaining({ sku: aliceOrders[2]!.sku, quantity: 1 })])
    expect((await list(await f.auth(bob))).results.map((o) => o.number)).toEqual([bobOrder.order.number])
    expect((await list(await f.auth(await f.user()))).results).toEqual([])
  })

  it('lets a customer filter their own orders by status', async () => {
    expect((await list(await f.auth(alice), '?status=cancelled')).results.map((o) => o.number)).toEqual([aliceOrders[1]!.order.number])
    expect((await list(await f.auth(bob), '?status=cancelled')).results).toEqual([])
  })

  it('answers 403 when a customer filters by email', async () => {
    expectProblem(await t.request({ method: 'GET', url: `/api/orders/?email=${encodeURIComponent(alice.email)}`, headers: await f.auth(alice) }), 403, 'staff_only_filter')
  })

  it('shows staff every order, filtered by status and by email in any case', async () => {
    const all = await list(staff, '?limit=100')
    expect(all.results.map((o) => o.number)).toEqual(expect.arrayContaining([...numbers(aliceOrders), bobOrder.order.number, guestOrder.order.number]))
    const cancelled = await list(staff, '?status=cancelled&limit=100')
    expect(cancelled.results.length).toBeGreaterThan(0)
    expect(cancelled.results.every((o) => o.status === 'cancelled')).toBe(true)
    expect(cancelled.results.map((o) => o.number)).toContain(aliceOrders[1]!.order.number)
    const byEmail = await list(staff, `?email=${encodeURIComponent(alice.email.toUpperCase())}`)
    // Alice's account orders and the guest order under her address.
    expect(byEmail.results.map((o) => o.number).sort()).toEqual([...numbers(aliceOrders), guestOrder.order.number].sort())
    const both = await list(staff, `?email=${encodeURIComponent(alice.email)}&status=pending_payment`)
    expect(both.results.map((o) => o.number).sort()).toEqual([aliceOrders[0]!.order.number, aliceOrders[2]!.order.number, guestOrder.order.number].sort())
  })

  it('pages with a cursor: every order once, in order', async () => {
    const auth = await f.auth(alice)
    const seen: string[] = []
    let url: string | null = '/api/orders/?limit=2'
    while (url) {
      const res = await t.request({ method: 'GET', url, headers: auth })
      expect(res.statusCode, res.body).toBe(200)
      const page = res.json<{ results: OrderDto[]; next: string | null }>()
      expect(page.results.length).toBeLessThanOrEqual(2)
      seen.push(...page.results.map((o) => o.number))
      url = page.next ? new URL(page.next, 'http://localhost').pathname + new URL(page.next, 'http://localhost').search : null
    }
    expect(seen).toEqual(numbers(aliceOrders).reverse())
    expectProblem(await t.request({ method: 'GET', url: '/api/orders/?cursor=garbage', headers: auth }), 422)
    expectProblem(await t.request({ method: 'GET', url: '/api/orders/?status=lost', headers: auth }), 422)
  })
})

describe('internal order routes', () => {
  it.each(['/api/internal', '/internal'])('%s/orders/{number}/ answers 401 without a service token and the whole order with one', async (prefix) => {
    const placed = await place()
    const url = `${prefix}/orders/${placed.order.number}/`
    expectProblem(await t.request({ method: 'GET', url }), 401, 'service_token_required')
    expectProblem(await t.request({ method: 'GET', url, headers: { 'x-service-token': 'not.a.token' } }), 401, 'invalid_service_token')
    // A user's bearer token is not a service token.
    expectProblem(await t.request({ method: 'GET', url, headers: staff }), 401)
    const res = await t.request({ method: 'GET', url, headers: await service() })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<OrderDto>()).toMatchObject({ id: placed.order.id, number: placed.order.number, email: placed.order.email, events: [expect.objectContaining({ type: 'created' })] })
    expectProblem(await t.request({ method: 'GET', url: `${prefix}/orders/ORD-ZZZZZZZZ/`, headers: await service() }), 404, 'not_found')
  })

  it('/api/internal/orders/{number}/status/ moves along the state machine on behalf of the service', async () => {
    const placed = await place()
    const url = `/api/internal/orders/${placed.order.number}/status/`
    const before = await snapshot(placed)
    expectProblem(await t.request({ method: 'POST', url, payload: { status: 'paid' } }), 401, 'service_token_required')
    expectProblem(await t.request({ method: 'POST', url, headers: staff, payload: { status: 'paid' } }), 401)
    expect(await snapshot(placed)).toEqual(before)
    const paid = await t.request({ method: 'POST', url, headers: await service(), payload: { status: 'paid' } })
    expect(paid.statusCode, paid.body).toBe(200)
    expect(paid.json<OrderDto>()).toMatchObject({ status: 'paid', payment_status: 'paid' })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 4, reserved: 0, available: 4 })
    const [event] = await db().select({ actor: orderEvents.actor }).from(orderEvents).where(and(eq(orderEvents.order_id, placed.order.id), eq(orderEvents.to_status, 'paid')))
    expect(event!.actor).toBe('service:api-gateway')
    expectProblem(await t.request({ method: 'POST', url, headers: await service(), payload: { status: 'shipped' } }), 409, 'illegal_transition')
    expectProblem(await t.request({ method: 'POST', url, headers: await service(), payload: { status: 'processing', tracking_number: 'X1' } }), 422)
    await advance(placed.order.number, ['processing'])
    const shipped = await t.request({ method: 'POST', url: `/internal/orders/${placed.order.number}/status/`, headers: await service(), payload: { status: 'shipped', tracking_number: 'X1' } })
    expect(shipped.statusCode, shipped.body).toBe(200)
    expect(shipped.json<OrderDto>()).toMatchObject({ status: 'shipped', tracking_number: 'X1' })
  })

  it('/api/internal/inventory/adjust/ answers 401 without a service token and changes stock with one', async () => {
    const { skus } = await ledger.product([5])
    const url = '/api/internal/inventory/adjust/'
    expectProblem(await t.request({ method: 'POST', url, payload: { sku: skus[0], delta: 3, reason: 'delivery' } }), 401, 'service_token_required')
    expect(await stockOf(skus[0]!)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
    const res = await t.request({ method: 'POST', url, headers: await service(), payload: { sku: skus[0], delta: 3, reason: 'delivery' } })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ sku: skus[0], on_hand: 8, reserved: 0, available: 8 })
    expect((await movementsOf(skus[0]!)).at(-1)).toMatchObject({ delta_on_hand: 3, reason: 'delivery', actor: 'service:api-gateway' })
  })
})

describe('the orders.expire_reservations task', () => {
  const expireNow = (orderIds: string[]) => db().update(orders).set({ reservation_expires_at: sql`now() - interval '1 minute'` }).where(sql`${orders.id} IN ${orderIds}`)
  const runTask = async () => {
    const failedBefore = (await t.app.platform.queue.failed()).length
    await t.app.platform.queue.enqueue(EXPIRE_RESERVATIONS_TASK, {})
    await t.settle()
    expect((await t.app.platform.queue.failed())).toHaveLength(failedBefore)
  }

  it('cancels unpaid orders whose reservation ran out: stock released, coupon given back, a reservation_expired event; paid and current orders stay', async () => {
    const code = await coupon({ usage_limit: 1 })
    const expired = await place({ coupon: code, quantity: 2 })
    const paid = await place()
    await advance(paid.order.number, ['paid'])
    const current = await place()
    // The reservation minutes cannot go below 1: the deadline is moved into the past instead.
    await expireNow([expired.order.id, paid.order.id])
    const keptBefore = [await snapshot(paid), await snapshot(current)]

    await runTask()

    const after = (await read(expired.order.number)).json<OrderDto>()
    expect(after).toMatchObject({ status: 'cancelled', reservation_expires_at: null })
    expect(after.events.at(-1)).toMatchObject({ type: 'reservation_expired', from_status: 'pending_payment', to_status: 'cancelled' })
    const [event] = await db().select({ actor: orderEvents.actor }).from(orderEvents).where(and(eq(orderEvents.order_id, expired.order.id), eq(orderEvents.type, 'reservation_expired')))
    expect(event!.actor).toBe('system')
    expect(await stockOf(expired.sku)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
    expect(await reservationsOf(expired.order.number)).toEqual([{ quantity: 2, status: 'released' }])
    expect(await couponUse(code)).toEqual({ times_used: 0, orders: [] })
    expect(await statusEvents(expired.order.id)).toEqual([expect.objectContaining({ to: 'cancelled', refund_due: false })])
    // A paid order is never expired, whatever its deadline says; a current one waits.
    expect([await snapshot(paid), await snapshot(current)]).toEqual(keptBefore)

    // Running it again changes nothing.
    const once = await snapshot(expired)
    await runTask()
    expect(await snapshot(expired)).toEqual(once)
  })

  it('clears a backlog larger than one batch in one run', async () => {
    const { skus } = await ledger.product([150])
    const placed: Placed[] = []
    for (let i = 0; i < 105; i++) placed.push(await place({ sku: skus[0]! }))
    expect(await stockOf(skus[0]!)).toMatchObject({ reserved: 105 })
    await expireNow(placed.map((p) => p.order.id))
    await runTask()
    const [left] = await db().select({ n: count() }).from(orders).where(and(eq(orders.status, 'pending_payment'), sql`${orders.id} IN ${placed.map((p) => p.order.id)}`))
    expect(left!.n).toBe(0)
    expect(await stockOf(skus[0]!)).toEqual({ on_hand: 150, reserved: 0, available: 150 })
  })
})
