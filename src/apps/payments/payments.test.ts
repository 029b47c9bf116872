/**
 * The payments API over HTTP with the built-in dummy provider (no STRIPE_SECRET_KEY): the order's
 * payment from checkout and POST /api/payments/, who may read and confirm it, confirming (the
 * order paid, its stock sold, the confirmation emailed once), staff refunds whole and in part
 * (never more than captured, the order and the customer told), refunds of delivered orders,
 * cancellations (a paid order refunded, an unpaid one's payment cancelled), and, on PostgreSQL,
 * the same payment for concurrent requests and concurrent refunds that never exceed the capture.
 * The stock ledger balances and no task has failed after every test.
 * Last, an app whose settings say production refuses the dummy confirm.
 */
import { randomUUID } from 'node:crypto'
import { and, asc, count, eq, sql } from 'drizzle-orm'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { behindRowLock } from '../../../test/lock-waiters.js'
import { expectProblem } from '../../../test/problems.js'
import { ADDRESS, cartWith } from '../../../test/shopping.js'
import { stockLedger, stockQueries } from '../../../test/stock-ledger.js'
import { outboxEvents } from '../../core/events/tables.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto, OrderStatus } from '../orders/service.js'
import type { PaymentDto, RefundDto } from './service.js'
import { payments, refunds } from './tables.js'

type Headers = Record<string, string>

/** New York: no tax rate in the pricing defaults, so a 501 item with standard shipping (499) costs exactly 1000. */
const NEW_YORK = { ...ADDRESS, city: 'New York', region: 'NY', postal_code: '10001' }

let t: TestApp
let f: ReturnType<typeof factories>
let ledger: ReturnType<typeof stockLedger>
let staff: Headers

beforeAll(async () => {
  // More connections than the default 10, so the concurrent requests below really run at once.
  t = await createTestApp(usesPostgres ? { env: { DB_POOL_MAX: '20' } } : {})
  await seedPricingDefaults(db())
  f = factories(t)
  ledger = stockLedger(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
})
afterEach(async () => {
  await t.settle()
  expect((await t.app.platform.queue.failed())).toEqual([])
  await ledger.expectBalanced()
})
afterAll(() => t?.close())

const db = () => t.app.platform.database.db
const { stockOf } = stockQueries(() => t)

interface Placed {
  order: OrderDto
  sku: string
  /** The customer's bearer header, or none for a guest. */
  auth: Headers
  /** `?email=…` for a guest (how guests reach their order's payment), else empty. */
  query: string
  email: string
}

/** Checks out one unit (or `quantity`) of a new product as `user`, or as a guest with `email`. */
async function place(options: { user?: MadeUser; email?: string; quantity?: number; stock?: number; price?: number; address?: object } = {}): Promise<Placed> {
  const stock = options.stock ?? 5
  const { skus } = await f.product({ stock: [stock], ...(options.price ? { price: options.price } : {}) })
  const sku = skus[0]!
  ledger.track(sku, stock)
  const auth = options.user ? await f.auth(options.user) : {}
  const opened = await t.request({ method: 'POST', url: '/api/cart/', headers: auth })
  const cart = options.user ? auth : { 'x-cart-token': opened.json<{ token: string }>().token }
  const added = await t.request({ method: 'POST', url: '/api/cart/items/', headers: cart, payload: { sku, quantity: options.quantity ?? 1 } })
  expect(added.statusCode, added.body).toBe(201)
  const email = options.user?.email ?? options.email ?? `guest-${randomUUID()}@example.com`
  const res = await t.request({
    method: 'POST',
    url: '/api/checkout/',
    headers: { ...cart, 'idempotency-key': randomUUID() },
    payload: { ...(options.user ? {} : { email }), shipping_address: options.address ?? ADDRESS, shipping_method: 'standard' },
  })
  expect(res.statusCode, res.body).toBe(201)
  return { order: res.json<OrderDto>(), sku, auth, query: options.user ? '' : `?email=${encodeURIComponent(email)}`, email }
}

/** A signed-in customer's order. */
const placeAsCustomer = async (options: { quantity?: number; stock?: number; price?: number; address?: object } = {}) => place({ ...options, user: await f.user() })

const createPayment = (payload: object, headers: Headers = {}) => t.request({ method: 'POST', url: '/api/payments/', headers, payload })
const getPayment = (id: string, headers: Headers = {}, query = '') => t.request({ method: 'GET', url: `/api/payments/${id}/${query}`, headers })
const confirm = (id: string, headers: Headers = {}, query = '') => t.request({ method: 'POST', url: `/api/payments/${id}/confirm/${query}`, headers })
const refund = (id: string, payload?: object, headers: Headers = staff) => t.request({ method: 'POST', url: `/api/payments/${id}/refund/`, headers, ...(payload ? { payload } : {}) })
const transition = (number: string, payload: object) => t.request({ method: 'POST', url: `/api/orders/${number}/transition/`, headers: staff, payload })
const cancel = (number: string, headers: Headers) => t.request({ method: 'POST', url: `/api/orders/${number}/cancel/`, headers, payload: {} })

const paymentIdOf = (placed: Placed) => placed.order.payment!.id

/** Pays the order as its customer and runs what follows (the confirmation email). */
async function pay(placed: Placed): Promise<PaymentDto> {
  const res = await confirm(paymentIdOf(placed), placed.auth, placed.query)
  expect(res.statusCode, res.body).toBe(200)
  expect(res.json<PaymentDto>().status).toBe('succeeded')
  await t.settle()
  return res.json<PaymentDto>()
}

/** The payment as staff see it. */
async function paymentOf(id: string): Promise<PaymentDto> {
  const res = await getPayment(id, staff)
  expect(res.statusCode, res.body).toBe(200)
  return res.json<PaymentDto>()
}

async function orderOf(number: string): Promise<OrderDto> {
  const res = await t.request({ method: 'GET', url: `/api/orders/${number}/`, headers: staff })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<OrderDto>()
}

async function paymentRows(orderId: string) {
  return db().select().from(payments).where(eq(payments.order_id, orderId)).orderBy(asc(payments.created_at))
}

async function refundRows(paymentId: string) {
  return db().select().from(refunds).where(eq(refunds.payment_id, paymentId)).orderBy(asc(refunds.created_at))
}

async function refundCount(): Promise<number> {
  const [row] = await db().select({ n: count() }).from(refunds)
  return row!.n
}

/** Where the payment stands in the database: what a refused request must leave as it was. */
async function paymentState(paymentId: string) {
  const [row] = await db().select({ status: payments.status, amount_refunded: payments.amount_refunded }).from(payments).where(eq(payments.id, paymentId))
  return { ...row, refunds: (await refundRows(paymentId)).length }
}

async function statusEvents(orderId: string) {
  const rows = await db()
    .select({ payload: outboxEvents.payload })
    .from(outboxEvents)
    .where(and(eq(outboxEvents.name, 'order.status_changed'), sql`${outboxEvents.payload}->>'order_id' = ${orderId}`))
    .orderBy(asc(outboxEvents.seq))
  return rows.map((row) => row.payload as { from: string; to: string; refund_due: boolean })
}

const mailsAbout = (number: string) => t.app.platform.mailer.outbox.filter((message) => message.subject.includes(number))
const refundMails = (number: string) => mailsAbout(number).filter((message) => message.subject.startsWith('Refund of'))
/** USD as the emails write it (the amounts here stay below $1,000). */
const dollars = (cents: number) => `$${(cents / 100).toFixed(2)}`

describe('POST /api/payments/', () => {
  it("answers the checkout's dummy payment to its owner, the same one every time", async () => {
    const placed = await placeAsCustomer()
    const { order } = placed
    expect(order.payment).toEqual({ id: expect.any(String), provider: 'dummy', status: 'pending', client_secret: expect.stringMatching(/^dummy_pi_\w+_secret_\w+$/) })

    for (let i = 0; i < 2; i++) {
      const res = await createPayment({ order_number: order.number }, placed.auth)
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json<PaymentDto>()).toMatchObject({
        id: order.payment!.id,
        order_number: order.number,
        provider: 'dummy',
        status: 'pending',
        amount: order.totals.total,
        currency: order.currency,
        amount_refunded: 0,
        client_secret: order.payment!.client_secret,
        publishable_key: null,
        flagged: null,
        refunds: [],
      })
    }
    expect(await paymentRows(order.id)).toHaveLength(1)
  })

  it('answers 404 to another customer and to anonymous callers, and creates nothing', async () => {
    const placed = await placeAsCustomer()
    const stranger = await f.auth(await f.user())
    expectProblem(await createPayment({ order_number: placed.order.number }, stranger), 404, 'not_found')
    expectProblem(await createPayment({ order_number: placed.order.number }), 404, 'not_found')
    // The owner's email does not open a customer's order to anonymous callers either.
    expectProblem(await createPayment({ order_number: placed.order.number, email: placed.email }), 404, 'not_found')
    expect(await paymentRows(placed.order.id)).toHaveLength(1)
  })

  it("lets a guest reach their order's payment with its email in any case; another email or none is a 404", async () => {
    const placed = await place({ email: 'Grace.Hopper@Example.com' })
    const number = placed.order.number
    for (const email of ['Grace.Hopper@Example.com', 'grace.hopper@example.com', ' GRACE.HOPPER@EXAMPLE.COM ']) {
      const res = await createPayment({ order_number: number, email })
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json<PaymentDto>()).toMatchObject({ id: paymentIdOf(placed), status: 'pending', client_secret: placed.order.payment!.client_secret })
    }
    expectProblem(await createPayment({ order_number: number, email: 'someone@example.com' }), 404, 'not_found')
    expectProblem(await createPayment({ order_number: number }), 404, 'not_found')
    // A customer signed in is not the guest.
    expectProblem(await createPayment({ order_number: number }, await f.auth(await f.user())), 404, 'not_found')
    expect(await paymentRows(placed.order.id)).toHaveLength(1)
  })

  it('answers 404 for an unknown order, 422 for a malformed number, unknown fields or no body', async () => {
    const placed = await placeAsCustomer()
    expectProblem(await createPayment({ order_number: 'ORD-ZZZZZZZZ' }, placed.auth), 404, 'not_found')
    expect(expectProblem(await createPayment({ order_number: 'not-an-order' }, placed.auth), 422).errors).toHaveProperty('order_number')
    expectProblem(await createPayment({ order_number: placed.order.number, amount: 1 }, placed.auth), 422)
    expectProblem(await createPayment({}, placed.auth), 422)
    expectProblem(await t.request({ method: 'POST', url: '/api/payments/', headers: placed.auth }), 422)
    expect(await paymentRows(placed.order.id)).toHaveLength(1)
  })

  it('creates a payment for an order that has none yet (as after a provider outage at checkout)', async () => {
    const placed = await placeAsCustomer()
    await db().delete(payments).where(eq(payments.order_id, placed.order.id))
    expect((await orderOf(placed.order.number)).payment).toBeNull()
    const res = await createPayment({ order_number: placed.order.number }, placed.auth)
    expect(res.statusCode, res.body).toBe(200)
    const payment = res.json<PaymentDto>()
    expect(payment).toMatchObject({ provider: 'dummy', status: 'pending', amount: placed.order.totals.total, client_secret: expect.any(String) })
    expect((await paymentRows(placed.order.id)).map((row) => row.id)).toEqual([payment.id])
    expect((await orderOf(placed.order.number)).payment).toMatchObject({ id: payment.id, status: 'pending' })
  })

  it('answers a paid order its succeeded payment, without the client secret', async () => {
    const placed = await placeAsCustomer()
    await pay(placed)
    const res = await createPayment({ order_number: placed.order.number }, placed.auth)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<PaymentDto>()).toMatchObject({ id: paymentIdOf(placed), status: 'succeeded', client_secret: null })
    expect(await paymentRows(placed.order.id)).toHaveLength(1)
  })
})

describe('GET /api/payments/{id}/', () => {
  it('shows the owner the client secret while pending; staff see the payment without it', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    const own = await getPayment(id, placed.auth)
    expect(own.statusCode, own.body).toBe(200)
    expect(own.json<PaymentDto>()).toMatchObject({ id, order_number: placed.order.number, status: 'pending', client_secret: placed.order.payment!.client_secret })
    const asStaff = await getPayment(id, staff)
    expect(asStaff.statusCode, asStaff.body).toBe(200)
    expect(asStaff.json<PaymentDto>()).toMatchObject({ id, status: 'pending', amount: placed.order.totals.total, client_secret: null })
  })

  it('answers 404 to another customer and to anonymous callers', async () => {
    const placed = await placeAsCustomer()
    expectProblem(await getPayment(paymentIdOf(placed), await f.auth(await f.user())), 404, 'not_found')
    expectProblem(await getPayment(paymentIdOf(placed)), 404, 'not_found')
  })

  it("answers a guest giving the order's email, and 404 with another or none", async () => {
    const placed = await place()
    const id = paymentIdOf(placed)
    const res = await getPayment(id, {}, placed.query)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<PaymentDto>()).toMatchObject({ id, client_secret: placed.order.payment!.client_secret })
    expectProblem(await getPayment(id, {}, '?email=someone@example.com'), 404, 'not_found')
    expectProblem(await getPayment(id), 404, 'not_found')
  })

  it('answers 404 for an unknown id and 422 naming the id for a malformed one', async () => {
    expectProblem(await getPayment(randomUUID(), staff), 404, 'not_found')
    for (const id of ['not-a-uuid', '123', `${randomUUID()}x`]) expect(expectProblem(await getPayment(id, staff), 422).errors).toHaveProperty('id')
  })
})

describe('POST /api/payments/{id}/confirm/', () => {
  it('by the owner: the payment succeeds, the order is paid, the stock sold, the confirmation emailed once', async () => {
    const placed = await placeAsCustomer({ quantity: 2, stock: 5 })
    const { order } = placed
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 5, reserved: 2, available: 3 })

    const res = await confirm(paymentIdOf(placed), placed.auth)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<PaymentDto>()).toMatchObject({ id: paymentIdOf(placed), status: 'succeeded', amount: order.totals.total, amount_refunded: 0, client_secret: null })
    await t.settle()

    const paid = await orderOf(order.number)
    expect(paid).toMatchObject({ status: 'paid', payment_status: 'paid', reservation_expires_at: null, payment: { id: paymentIdOf(placed), status: 'succeeded', client_secret: null } })
    expect(paid.events.at(-1)).toMatchObject({ type: 'payment_succeeded', from_status: 'pending_payment', to_status: 'paid' })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })
    expect(await statusEvents(order.id)).toEqual([expect.objectContaining({ from: 'pending_payment', to: 'paid', refund_due: false })])
    const mails = mailsAbout(order.number)
    expect(mails.map((mail) => [mail.to, mail.subject])).toEqual([[placed.email, `Your ${t.settings.auth.shopName} order ${order.number} is confirmed`]])

    // Again: nothing moves, nothing more is sent.
    expect((await confirm(paymentIdOf(placed), placed.auth)).json<PaymentDto>()).toMatchObject({ status: 'succeeded' })
    await t.settle()
    expect(await statusEvents(order.id)).toHaveLength(1)
    expect(mailsAbout(order.number)).toHaveLength(1)
  })

  it("by a guest with the order's email", async () => {
    const placed = await place()
    expectProblem(await confirm(paymentIdOf(placed), {}, '?email=someone@example.com'), 404, 'not_found')
    const res = await confirm(paymentIdOf(placed), {}, placed.query)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<PaymentDto>()).toMatchObject({ status: 'succeeded' })
    expect((await orderOf(placed.order.number)).status).toBe('paid')
  })

  it('by anyone but the payer (another customer, staff, anonymous) is a 404, and nothing changes', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    for (const headers of [await f.auth(await f.user()), staff, {}]) expectProblem(await confirm(id, headers), 404, 'not_found')
    expectProblem(await confirm(randomUUID(), placed.auth), 404, 'not_found')
    expect(await paymentState(id)).toEqual({ status: 'pending', amount_refunded: 0, refunds: 0 })
    expect((await orderOf(placed.order.number)).status).toBe('pending_payment')
    expect(await stockOf(placed.sku)).toMatchObject({ on_hand: 5, reserved: 1 })
  })
})

describe('POST /api/payments/{id}/refund/', () => {
  it('refunds in part, then the rest; the order and the customer hear of each; then 409 fully_refunded', async () => {
    const placed = await placeAsCustomer()
    const { order } = placed
    const id = paymentIdOf(placed)
    await pay(placed)
    const total = order.totals.total

    const partial = await refund(id, { amount: 500, note: 'scratched box' })
    expect(partial.statusCode, partial.body).toBe(201)
    expect(partial.json<RefundDto>()).toMatchObject({ payment_id: id, amount: 500, currency: order.currency, status: 'succeeded', reason: 'requested_by_customer', note: 'scratched box', failure_message: null })
    await t.settle()
    expect(await paymentOf(id)).toMatchObject({ status: 'succeeded', amount_refunded: 500, refunds: [expect.objectContaining({ id: partial.json<RefundDto>().id, amount: 500, status: 'succeeded' })] })
    let after = await orderOf(order.number)
    // A paid order keeps its status; the refund shows in its payment status and history.
    expect(after).toMatchObject({ status: 'paid', payment_status: 'partially_refunded' })
    expect(after.events.at(-1)).toMatchObject({ type: 'refunded', from_status: null, to_status: null, note: `Refunded 500 ${order.currency} (500 of ${total} in all).` })
    expect(refundMails(order.number).map((mail) => [mail.to, mail.subject])).toEqual([[placed.email, `Refund of ${dollars(500)} for order ${order.number}`]])

    const rest = await refund(id, undefined)
    expect(rest.statusCode, rest.body).toBe(201)
    expect(rest.json<RefundDto>()).toMatchObject({ amount: total - 500, status: 'succeeded', reason: 'requested_by_customer' })
    await t.settle()
    expect(await paymentOf(id)).toMatchObject({ amount_refunded: total, refunds: [expect.objectContaining({ amount: 500 }), expect.objectContaining({ amount: total - 500 })] })
    after = await orderOf(order.number)
    expect(after).toMatchObject({ status: 'paid', payment_status: 'refunded' })
    expect(after.events.filter((event) => event.type === 'refunded')).toHaveLength(2)
    expect(refundMails(order.number).map((mail) => mail.subject)).toEqual([`Refund of ${dollars(500)} for order ${order.number}`, `Refund of ${dollars(total - 500)} for order ${order.number}`])

    const before = await paymentState(id)
    expectProblem(await refund(id, {}), 409, 'fully_refunded')
    expectProblem(await refund(id, { amount: 1 }), 409, 'fully_refunded')
    expect(await paymentState(id)).toEqual(before)
  })

  it('refuses more than what is left with 422 refund_exceeds_captured naming the amount, and writes nothing', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    const total = placed.order.totals.total
    await pay(placed)

    const tooMuch = expectProblem(await refund(id, { amount: total + 1 }), 422, 'refund_exceeds_captured')
    expect(tooMuch.errors).toHaveProperty('amount')
    expect(tooMuch).toMatchObject({ refundable: total })
    expect(await paymentState(id)).toEqual({ status: 'succeeded', amount_refunded: 0, refunds: 0 })

    expect((await refund(id, { amount: 300 })).statusCode).toBe(201)
    const rows = await refundCount()
    expect(expectProblem(await refund(id, { amount: total - 299 }), 422, 'refund_exceeds_captured')).toMatchObject({ refundable: total - 300, errors: { amount: [expect.stringContaining(String(total - 300))] } })
    expect(await refundCount()).toBe(rows)
    expect(await paymentState(id)).toEqual({ status: 'succeeded', amount_refunded: 300, refunds: 1 })
    // Exactly what is left is fine.
    expect((await refund(id, { amount: total - 300 })).statusCode).toBe(201)
    expect((await paymentOf(id)).amount_refunded).toBe(total)
  })

  it('refuses a payment not captured yet with 409 payment_not_captured', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    expectProblem(await refund(id, { amount: 100 }), 409, 'payment_not_captured')
    expectProblem(await refund(id), 409, 'payment_not_captured')
    expect(await paymentState(id)).toEqual({ status: 'pending', amount_refunded: 0, refunds: 0 })
  })

  it('is for staff only: 401 anonymous, 403 to customers (the owner too), 404 for an unknown payment', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    await pay(placed)
    expectProblem(await refund(id, { amount: 100 }, {}), 401)
    expectProblem(await refund(id, { amount: 100 }, placed.auth), 403)
    expectProblem(await refund(id, { amount: 100 }, await f.auth(await f.user())), 403)
    expectProblem(await refund(randomUUID(), { amount: 100 }), 404, 'not_found')
    expect(await paymentState(id)).toEqual({ status: 'succeeded', amount_refunded: 0, refunds: 0 })
  })

  it('answers 422 for an amount that is not a positive whole number, an unknown reason or field, and writes nothing', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    await pay(placed)
    for (const amount of [0, -1, 1.5, '10', null]) {
      expect(expectProblem(await refund(id, { amount }), 422).errors, `amount ${JSON.stringify(amount)}`).toHaveProperty('amount')
    }
    const reason = expectProblem(await refund(id, { amount: 100, reason: 'changed_mind' }), 422)
    expect(reason.errors).toEqual({ reason: ['Must be one of: requested_by_customer, duplicate, fraudulent.'] })
    // The shop's own reasons are not for staff to give.
    expectProblem(await refund(id, { amount: 100, reason: 'order_cancelled' }), 422)
    expectProblem(await refund(id, { amount: 100, currency: 'EUR' }), 422)
    expect(await paymentState(id)).toEqual({ status: 'succeeded', amount_refunded: 0, refunds: 0 })
  })

  it('keeps the reason staff give', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    await pay(placed)
    const res = await refund(id, { amount: 100, reason: 'fraudulent' })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json<RefundDto>()).toMatchObject({ reason: 'fraudulent', note: null })
    const [row] = await refundRows(id)
    expect(row).toMatchObject({ reason: 'fraudulent', status: 'succeeded', requested_by: expect.stringMatching(/^user:/), provider_ref: expect.stringMatching(/^dummy_re_/) })
  })
})

describe('refunds of a delivered order', () => {
  it('move it to partially_refunded, then to refunded', async () => {
    const placed = await placeAsCustomer()
    const { number } = placed.order
    const id = paymentIdOf(placed)
    const total = placed.order.totals.total
    await pay(placed)
    for (const status of ['processing', 'shipped', 'delivered'] as OrderStatus[]) {
      const res = await transition(number, { status, ...(status === 'shipped' ? { tracking_number: `TRK-${number}` } : {}) })
      expect(res.statusCode, res.body).toBe(200)
    }

    expect((await refund(id, { amount: 500 })).statusCode).toBe(201)
    await t.settle()
    let order = await orderOf(number)
    expect(order).toMatchObject({ status: 'partially_refunded', payment_status: 'partially_refunded' })
    expect(order.events.at(-1)).toMatchObject({ type: 'refunded', from_status: 'delivered', to_status: 'partially_refunded', note: `Refunded 500 ${order.currency} (500 of ${total} in all).` })

    expect((await refund(id)).statusCode).toBe(201)
    await t.settle()
    order = await orderOf(number)
    expect(order).toMatchObject({ status: 'refunded', payment_status: 'refunded' })
    expect(order.events.at(-1)).toMatchObject({ type: 'refunded', from_status: 'partially_refunded', to_status: 'refunded' })
    expect((await statusEvents(order.id)).map((event) => event.to)).toEqual(['paid', 'processing', 'shipped', 'delivered', 'partially_refunded', 'refunded'])
    expect(refundMails(number)).toHaveLength(2)
  })
})

describe('cancelling an order', () => {
  it('that is paid refunds its payment in full on its own, puts the goods back and emails the customer', async () => {
    const placed = await placeAsCustomer({ quantity: 2, stock: 5 })
    const { order } = placed
    const id = paymentIdOf(placed)
    await pay(placed)
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })

    const res = await cancel(order.number, placed.auth)
    expect(res.statusCode, res.body).toBe(200)
    await t.settle()

    expect(await paymentOf(id)).toMatchObject({ status: 'succeeded', amount_refunded: order.totals.total, refunds: [expect.objectContaining({ amount: order.totals.total, reason: 'order_cancelled', status: 'succeeded' })] })
    expect(await refundRows(id)).toEqual([expect.objectContaining({ requested_by: 'service:worker' })])
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
    expect(await orderOf(order.number)).toMatchObject({ status: 'cancelled', payment_status: 'refunded' })
    const mails = refundMails(order.number)
    expect(mails.map((mail) => [mail.to, mail.subject])).toEqual([[placed.email, `Refund of ${dollars(order.totals.total)} for order ${order.number}`]])
    expect(mails[0]!.text).toContain('Your order was cancelled, so we refunded your payment.')
    // Nothing is left to refund.
    expectProblem(await refund(id), 409, 'fully_refunded')
  })

  it('that is paid and already refunded in part gives back only the rest', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    const total = placed.order.totals.total
    await pay(placed)
    expect((await refund(id, { amount: 300 })).statusCode).toBe(201)
    expect((await cancel(placed.order.number, placed.auth)).statusCode).toBe(200)
    await t.settle()
    const payment = await paymentOf(id)
    expect(payment.amount_refunded).toBe(total)
    expect(payment.refunds.map((row) => [row.amount, row.reason, row.status])).toEqual([
      [300, 'requested_by_customer', 'succeeded'],
      [total - 300, 'order_cancelled', 'succeeded'],
    ])
  })

  it('that is unpaid cancels its payment: it cannot be confirmed, and no new one is made (409)', async () => {
    const placed = await placeAsCustomer()
    const id = paymentIdOf(placed)
    expect((await cancel(placed.order.number, placed.auth)).statusCode).toBe(200)
    await t.settle()

    expect(await paymentOf(id)).toMatchObject({ status: 'canceled', amount_refunded: 0, refunds: [] })
    const own = (await getPayment(id, placed.auth)).json<PaymentDto>()
    expect(own).toMatchObject({ status: 'canceled', client_secret: null })
    expect(expectProblem(await createPayment({ order_number: placed.order.number }, placed.auth), 409, 'order_not_payable')).toMatchObject({ order_status: 'cancelled' })
    expectProblem(await confirm(id, placed.auth), 409, 'confirm_unavailable')
    expectProblem(await refund(id), 409, 'payment_not_captured')
    expect(await paymentRows(placed.order.id)).toEqual([expect.objectContaining({ id, status: 'canceled' })])
    expect((await orderOf(placed.order.number)).status).toBe('cancelled')
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
    expect(mailsAbout(placed.order.number)).toEqual([])
  })
})

describe.runIf(usesPostgres)('under concurrency (PostgreSQL)', () => {
  let gate: pg.Client
  let observer: pg.Client

  beforeAll(async () => {
    if (t.settings.db.kind !== 'postgres') throw new Error('expected PostgreSQL')
    gate = new pg.Client({ connectionString: t.settings.db.url })
    observer = new pg.Client({ connectionString: t.settings.db.url })
    await Promise.all([gate.connect(), observer.connect()])
  })
  afterAll(async () => {
    await Promise.all([gate?.end(), observer?.end()])
  })

  it('10 requests at once for an order without a payment all get the same one, stored once', async () => {
    const placed = await placeAsCustomer()
    await db().delete(payments).where(eq(payments.order_id, placed.order.id))
    const answers = await Promise.all(Array.from({ length: 10 }, () => createPayment({ order_number: placed.order.number }, placed.auth)))
    for (const res of answers) expect(res.statusCode, res.body).toBe(200)
    const ids = new Set(answers.map((res) => res.json<PaymentDto>().id))
    expect(ids.size).toBe(1)
    expect((await paymentRows(placed.order.id)).map((row) => row.id)).toEqual([...ids])

    // And again, now that it exists.
    const again = await Promise.all(Array.from({ length: 10 }, () => createPayment({ order_number: placed.order.number }, placed.auth)))
    expect(new Set(again.map((res) => res.json<PaymentDto>().id))).toEqual(ids)
    expect(await paymentRows(placed.order.id)).toHaveLength(1)
  })

  it('5 refunds of 400 at once on 1000 captured: exactly two succeed, never more than captured', async () => {
    const placed = await placeAsCustomer({ price: 501, address: NEW_YORK })
    expect(placed.order.totals).toMatchObject({ subtotal: 501, shipping: 499, tax: 0, total: 1000 })
    const id = paymentIdOf(placed)
    await pay(placed)

    // Every refund waits on the payment's row, held by the gate, before any goes ahead.
    const answers = await behindRowLock(gate, observer, { sql: 'SELECT 1 FROM payments WHERE id = $1', params: [id] }, 5, () =>
      Promise.all(Array.from({ length: 5 }, () => refund(id, { amount: 400 }))),
    )
    const codes = answers.map((res) => res.statusCode)
    expect(codes.filter((code) => code === 201), JSON.stringify(codes)).toHaveLength(2)
    for (const res of answers.filter((answer) => answer.statusCode !== 201)) {
      expect([409, 422], res.body).toContain(res.statusCode)
      expect(['refund_exceeds_captured', 'fully_refunded']).toContain(res.json<{ code: string }>().code)
    }
    await t.settle()
    const payment = await paymentOf(id)
    expect(payment).toMatchObject({ amount: 1000, amount_refunded: 800 })
    expect(payment.refunds.map((row) => [row.amount, row.status])).toEqual([
      [400, 'succeeded'],
      [400, 'succeeded'],
    ])
    expect(refundMails(placed.order.number)).toHaveLength(2)
  })
})

describe('in production', () => {
  it('the dummy provider cannot complete a payment: 409 confirm_unavailable, the order stays unpaid', async () => {
    // The settings of a production deployment without STRIPE_SECRET_KEY (its start-up checks are tested in config).
    const prod = await createTestApp({ settings: { environment: 'production' } })
    try {
      await seedPricingDefaults(prod.app.platform.database.db)
      const { skus } = await factories(prod).product({ stock: [3] })
      const cart = await cartWith(prod, [[skus[0]!, 1]])
      const checkout = await prod.request({ method: 'POST', url: '/api/checkout/', headers: { ...cart, 'idempotency-key': randomUUID() }, payload: { email: 'eve@example.com', shipping_address: ADDRESS, shipping_method: 'standard' } })
      expect(checkout.statusCode, checkout.body).toBe(201)
      const order = checkout.json<OrderDto>()
      expectProblem(await prod.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/?email=eve@example.com` }), 409, 'confirm_unavailable')
      await prod.settle()
      const after = await prod.request({ method: 'GET', url: `/api/orders/${order.number}/?email=eve@example.com` })
      expect(after.json<OrderDto>()).toMatchObject({ status: 'pending_payment', payment: { status: 'pending' } })
    } finally {
      await prod.close()
    }
  })
})
