/**
 * Payments with Stripe: the app configured with a Stripe key, its real `stripe` SDK talking to the
 * local stand-in (test/stripe-stand-in.ts), webhooks signed with Stripe's own helper. Checkout
 * creates a PaymentIntent (amount, currency, order metadata, idempotency key per attempt);
 * webhooks are verified, applied once even when delivered twice at once, never move a payment
 * backwards, and flag what a person must look at; refunds reach Stripe with one key per refund,
 * also across an outage; a payment arriving for an expired order gets its goods or its money
 * back; the reconciliation finds what a lost webhook did not say; no secret is ever logged.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import pg from 'pg'
import Stripe from 'stripe'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { behindRowLock } from '../../../test/lock-waiters.js'
import { expectProblem } from '../../../test/problems.js'
import { ADDRESS, cartWith } from '../../../test/shopping.js'
import { stockLedger, stockQueries } from '../../../test/stock-ledger.js'
import { signedDelivery, startStripeStandIn, stripeEvent, type RecordedStripeRequest, type StandInIntent, type StripeStandIn } from '../../../test/stripe-stand-in.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto } from '../orders/service.js'
import type { PaymentDto, RefundDto } from './service.js'
import { payments, webhookEvents } from './tables.js'

type Headers = Record<string, string>

const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('hex')}`
const PUBLISHABLE_KEY = `pk_test_${randomBytes(12).toString('hex')}`
/** The SDK's first try plus its `maxNetworkRetries` (2): what one call costs the stand-in when Stripe answers 500. */
const REQUESTS_PER_FAILED_CALL = 3

let standIn: StripeStandIn
let t: TestApp
let f: ReturnType<typeof factories>
let ledger: ReturnType<typeof stockLedger>
let staff: Headers
/** Jobs a test expects to fail for good (a refund while Stripe is down). */
let failedJobsBefore = 0
let expectedFailedJobs = 0

beforeAll(async () => {
  standIn = await startStripeStandIn({ secretKey: `sk_test_${randomBytes(16).toString('hex')}` })
  t = await createTestApp({
    captureLogs: true,
    env: { STRIPE_SECRET_KEY: standIn.secretKey, STRIPE_API_BASE: standIn.url, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_PUBLISHABLE_KEY: PUBLISHABLE_KEY },
  })
  await seedPricingDefaults(t.app.platform.database.db)
  f = factories(t)
  ledger = stockLedger(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
})
beforeEach(async () => {
  failedJobsBefore = (await t.app.platform.queue.failed()).length
  expectedFailedJobs = 0
})
afterEach(async () => {
  await t.settle()
  expect((await t.app.platform.queue.failed()).slice(failedJobsBefore)).toHaveLength(expectedFailedJobs)
  await ledger.expectBalanced()
})
afterAll(async () => {
  await t?.close()
  await standIn?.close()
})

const db = () => t.app.platform.database.db
const { stockOf } = stockQueries(() => t)

interface Placed {
  order: OrderDto
  sku: string
  email: string
  /** The customer's bearer header. */
  auth: Headers
}

/** A new customer checks out `quantity` (1) of `sku`, or of a new product with `stock` (5). */
async function placeOrder(options: { sku?: string; quantity?: number; stock?: number } = {}): Promise<Placed> {
  const sku = options.sku ?? (await ledger.product([options.stock ?? 5])).skus[0]!
  const user = await f.user()
  const auth = await f.auth(user)
  await cartWith(t, [[sku, options.quantity ?? 1]], { auth })
  const res = await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...auth, 'idempotency-key': randomUUID() }, payload: { shipping_address: ADDRESS, shipping_method: 'standard' } })
  expect(res.statusCode, res.body).toBe(201)
  return { order: res.json<OrderDto>(), sku, email: user.email, auth }
}

const readOrder = async (placed: Placed): Promise<OrderDto> => {
  const res = await t.request({ method: 'GET', url: `/api/orders/${placed.order.number}/`, headers: placed.auth })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<OrderDto>()
}
const readPayment = async (id: string, headers: Headers = staff): Promise<PaymentDto> => {
  const res = await t.request({ method: 'GET', url: `/api/payments/${id}/`, headers })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<PaymentDto>()
}
const askForPayment = (placed: Placed) => t.request({ method: 'POST', url: '/api/payments/', headers: placed.auth, payload: { order_number: placed.order.number } })
const refund = (paymentId: string, payload: object = {}, headers: Headers = staff) => t.request({ method: 'POST', url: `/api/payments/${paymentId}/refund/`, headers, payload })

async function paymentRow(id: string) {
  const [row] = await db().select().from(payments).where(eq(payments.id, id))
  return row!
}
/** The order's current payment's intent at the stand-in. */
async function intentOf(placed: Placed): Promise<StandInIntent> {
  return standIn.intents.get((await paymentRow(placed.order.payment!.id)).provider_ref)!
}
async function inboxRow(eventId: string) {
  const [row] = await db().select().from(webhookEvents).where(eq(webhookEvents.id, eventId))
  return row
}

const eventTypes = (order: OrderDto) => order.events.map((event) => event.type)
const mailsTo = (email: string) => t.app.platform.mailer.outbox.filter((message) => message.to === email)
const subjectsTo = (email: string) => mailsTo(email).map((message) => message.subject)

/** What the stand-in received: `method path`, optionally narrowed. */
const requestsTo = (call: string, where: (request: RecordedStripeRequest) => boolean = () => true) =>
  standIn.requests.filter((request) => `${request.method} ${request.path}` === call && where(request))
const intentCreations = (orderId: string) => requestsTo('POST /v1/payment_intents', (request) => request.params['metadata[order_id]'] === orderId)
const refundRequests = (refundId: string) => requestsTo('POST /v1/refunds', (request) => request.params['metadata[refund_id]'] === refundId)

/** The intent as Stripe puts it in an event: a copy, without the stand-in's bookkeeping. */
function asSent(intent: StandInIntent, changes: Partial<StandInIntent> = {}) {
  const { amount_refunded: _bookkeeping, ...json } = { ...intent, ...changes }
  return json
}
const intentEvent = (type: string, intent: StandInIntent, options: { created?: number; id?: string } = {}) => stripeEvent(type, asSent(intent), options)

/** A webhook delivery as Stripe makes it (signed with the app's secret unless told). */
function deliver(event: object, options: { secret?: string; timestamp?: number; tamper?: boolean } = {}) {
  const { payload, headers } = signedDelivery(event, options.secret ?? WEBHOOK_SECRET, options)
  return t.request({ method: 'POST', url: '/api/payments/webhook/', headers, payload })
}
async function expectReceived(res: Awaited<ReturnType<typeof deliver>>, outcome: string, duplicate = false): Promise<void> {
  expect(res.statusCode, res.body).toBe(200)
  expect(res.json()).toEqual({ received: true, duplicate, outcome })
  await t.settle()
}

/** The customer's bank moves the intent, and Stripe tells the webhook. */
async function bankSays(placed: Placed, status: 'processing' | 'succeeded' | 'requires_payment_method' | 'canceled', type: string, outcome = 'applied') {
  const intent = standIn.setIntentStatus((await intentOf(placed)).id, status)
  await expectReceived(await deliver(intentEvent(type, intent)), outcome)
}
const pay = (placed: Placed) => bankSays(placed, 'succeeded', 'payment_intent.succeeded')

/** The reservation ran out: its deadline moved into the past and the expiry task run. */
async function expireReservation(placed: Placed): Promise<void> {
  await db().execute(sql`UPDATE orders SET reservation_expires_at = now() - interval '1 minute' WHERE id = ${placed.order.id}`)
  await t.app.platform.queue.enqueue('orders.expire_reservations', {})
  await t.settle()
  expect(eventTypes(await readOrder(placed))).toContain('reservation_expired')
}

async function reconcile(): Promise<void> {
  await t.app.platform.queue.enqueue('payments.reconcile', { older_than_ms: 0 })
  await t.settle()
}

describe('the PaymentIntent of an order', () => {
  it('is created at checkout with the order total, its currency and the order in metadata, one idempotency key per attempt', async () => {
    const placed = await placeOrder({ quantity: 2 })
    const { order } = placed
    const [created, ...more] = intentCreations(order.id)
    expect(more).toEqual([])
    expect(created).toMatchObject({
      idempotencyKey: `order-${order.id}-payment-1`,
      authorization: `Bearer ${standIn.secretKey}`,
      params: expect.objectContaining({ amount: String(order.totals.total), currency: order.currency.toLowerCase(), 'metadata[order_id]': order.id, 'metadata[order_number]': order.number }),
    })
    const intent = await intentOf(placed)
    expect(intent).toMatchObject({ amount: order.totals.total, currency: 'usd', metadata: { order_id: order.id, order_number: order.number } })
    expect(order.payment).toEqual({ id: expect.any(String), provider: 'stripe', status: 'pending', client_secret: intent.client_secret })

    // The customer's browser gets what Stripe.js needs; staff never see the client secret.
    expect(await readPayment(order.payment!.id, placed.auth)).toMatchObject({
      order_number: order.number,
      provider: 'stripe',
      status: 'pending',
      amount: order.totals.total,
      currency: order.currency,
      client_secret: intent.client_secret,
      publishable_key: PUBLISHABLE_KEY,
    })
    expect(await readPayment(order.payment!.id, staff)).toMatchObject({ client_secret: null })

    // Asking again answers the same intent; Stripe is not asked for another.
    const again = await askForPayment(placed)
    expect(again.statusCode, again.body).toBe(200)
    expect(again.json<PaymentDto>()).toMatchObject({ id: order.payment!.id, client_secret: intent.client_secret })
    expect(intentCreations(order.id)).toHaveLength(1)

    // Once Stripe cancelled it, the next request is attempt 2: a new intent with its own key.
    await bankSays(placed, 'canceled', 'payment_intent.canceled')
    expect(await readPayment(order.payment!.id)).toMatchObject({ status: 'canceled' })
    const second = await askForPayment(placed)
    expect(second.statusCode, second.body).toBe(200)
    const attempt2 = second.json<PaymentDto>()
    expect(attempt2.id).not.toBe(order.payment!.id)
    expect(intentCreations(order.id).map((request) => request.idempotencyKey)).toEqual([`order-${order.id}-payment-1`, `order-${order.id}-payment-2`])
    const intent2 = standIn.intents.get((await paymentRow(attempt2.id)).provider_ref)!
    expect(intent2.id).not.toBe(intent.id)
    expect(attempt2).toMatchObject({ status: 'pending', amount: order.totals.total, client_secret: intent2.client_secret })
    expect((await readOrder(placed)).payment).toMatchObject({ id: attempt2.id, status: 'pending' })
  })

  it('survives one failed call (the SDK retries it with the same key) and a longer outage (checkout answers payment null; POST /api/payments/ creates it)', async () => {
    standIn.failNext('/v1/payment_intents', 500)
    const retried = await placeOrder()
    expect(retried.order.payment).toMatchObject({ provider: 'stripe', status: 'pending' })
    expect(intentCreations(retried.order.id).map((request) => request.idempotencyKey)).toEqual([`order-${retried.order.id}-payment-1`, `order-${retried.order.id}-payment-1`])

    for (let i = 0; i < REQUESTS_PER_FAILED_CALL; i++) standIn.failNext('/v1/payment_intents', 500)
    const placed = await placeOrder()
    expect(placed.order).toMatchObject({ status: 'pending_payment', payment: null })
    expect(intentCreations(placed.order.id)).toHaveLength(REQUESTS_PER_FAILED_CALL)
    expect([...standIn.intents.values()].filter((intent) => intent.metadata.order_id === placed.order.id)).toEqual([])

    const res = await askForPayment(placed)
    expect(res.statusCode, res.body).toBe(200)
    const payment = res.json<PaymentDto>()
    expect(payment).toMatchObject({ provider: 'stripe', status: 'pending', amount: placed.order.totals.total })
    // The same attempt, so the same key: had Stripe created the intent despite the 500, this would answer it.
    expect(new Set(intentCreations(placed.order.id).map((request) => request.idempotencyKey))).toEqual(new Set([`order-${placed.order.id}-payment-1`]))
    expect((await readOrder(placed)).payment).toMatchObject({ id: payment.id, status: 'pending' })
  })
})

describe('POST /api/payments/webhook/', () => {
  it('applies payment_intent.succeeded: the order is paid, its stock sold, the confirmation emailed', async () => {
    const placed = await placeOrder({ quantity: 2 })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 5, reserved: 2, available: 3 })
    const intent = standIn.setIntentStatus((await intentOf(placed)).id, 'succeeded')
    const event = intentEvent('payment_intent.succeeded', intent)
    await expectReceived(await deliver(event), 'applied')

    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'paid', payment_status: 'paid', payment: { id: placed.order.payment!.id, status: 'succeeded', client_secret: null } })
    expect(eventTypes(order)).toEqual(['created', 'payment_succeeded'])
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })
    expect(subjectsTo(placed.email)).toEqual([`Your ${t.settings.auth.shopName} order ${placed.order.number} is confirmed`])
    expect(await inboxRow(event.id)).toMatchObject({ type: 'payment_intent.succeeded', object_ref: intent.id, payment_id: placed.order.payment!.id, outcome: 'applied', created: event.created })
  })

  it('refuses a tampered body, a wrong secret, a stale or missing signature (400) and a body that is not JSON (415), recording nothing', async () => {
    const placed = await placeOrder()
    const intent = standIn.setIntentStatus((await intentOf(placed)).id, 'succeeded')
    const event = intentEvent('payment_intent.succeeded', intent)
    const { payload, headers } = signedDelivery(event, WEBHOOK_SECRET)

    expectProblem(await deliver(event, { tamper: true }), 400, 'invalid_signature')
    expectProblem(await deliver(event, { secret: `whsec_${randomBytes(24).toString('hex')}` }), 400, 'invalid_signature')
    expectProblem(await deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 600 }), 400, 'invalid_signature')
    expectProblem(await t.request({ method: 'POST', url: '/api/payments/webhook/', headers: { 'content-type': 'application/json' }, payload }), 400, 'invalid_signature')
    expectProblem(await t.request({ method: 'POST', url: '/api/payments/webhook/', headers: { ...headers, 'content-type': 'text/plain' }, payload }), 415, 'unsupported_media_type')
    expectProblem(await t.request({ method: 'POST', url: '/api/payments/webhook/', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload }), 415, 'unsupported_media_type')
    await t.settle()

    expect(await inboxRow(event.id)).toBeUndefined()
    expect(await readOrder(placed)).toMatchObject({ status: 'pending_payment', payment: { status: 'pending' } })
    expect(mailsTo(placed.email)).toEqual([])
    // The event itself was fine: delivered properly, it is new and applied.
    await expectReceived(await deliver(event), 'applied')
    expect(await readOrder(placed)).toMatchObject({ status: 'paid' })
  })

  it('answers a repeated delivery of an event as a duplicate that changes nothing', async () => {
    const placed = await placeOrder()
    const event = intentEvent('payment_intent.succeeded', standIn.setIntentStatus((await intentOf(placed)).id, 'succeeded'))
    await expectReceived(await deliver(event), 'applied')
    const before = await readOrder(placed)

    await expectReceived(await deliver(event), 'duplicate', true)
    expect(await readOrder(placed)).toEqual(before)
    expect(mailsTo(placed.email)).toHaveLength(1)
    expect(await inboxRow(event.id)).toMatchObject({ outcome: 'applied' })
  })

  it('never moves a succeeded payment back: processing arriving after succeeded (same second or older) is stale', async () => {
    const placed = await placeOrder()
    const intent = standIn.setIntentStatus((await intentOf(placed)).id, 'succeeded')
    const created = Math.floor(Date.now() / 1000)
    await expectReceived(await deliver(intentEvent('payment_intent.succeeded', intent, { created })), 'applied')

    const processing = asSent(intent, { status: 'processing', amount_received: 0 })
    const sameSecond = stripeEvent('payment_intent.processing', processing, { created })
    const older = stripeEvent('payment_intent.processing', processing, { created: created - 30 })
    await expectReceived(await deliver(sameSecond), 'stale')
    await expectReceived(await deliver(older), 'stale')
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ status: 'succeeded' })
    expect(await readOrder(placed)).toMatchObject({ status: 'paid' })
    expect(await inboxRow(older.id)).toMatchObject({ outcome: 'stale', payment_id: placed.order.payment!.id })
  })

  it('records a failed payment (reason kept, order still payable, customer emailed) and a later success pays the order', async () => {
    const placed = await placeOrder()
    await bankSays(placed, 'requires_payment_method', 'payment_intent.payment_failed')

    const intent = await intentOf(placed)
    // The customer tries again with the same intent, so the browser still gets its secret.
    expect(await readPayment(placed.order.payment!.id, placed.auth)).toMatchObject({ status: 'failed', failure_message: 'Your card was declined.', client_secret: intent.client_secret })
    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'pending_payment', payment_status: 'unpaid' })
    expect(eventTypes(order)).toEqual(['created', 'payment_failed'])
    expect(subjectsTo(placed.email)).toEqual([`Payment for order ${placed.order.number} did not go through`])
    expect(mailsTo(placed.email)[0]!.text).toContain('Your card was declined.')
    expect((await askForPayment(placed)).json<PaymentDto>()).toMatchObject({ id: placed.order.payment!.id })
    expect(intentCreations(placed.order.id)).toHaveLength(1)

    await pay(placed)
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ status: 'succeeded', failure_message: null })
    expect(await readOrder(placed)).toMatchObject({ status: 'paid' })
    expect(subjectsTo(placed.email)).toEqual([`Payment for order ${placed.order.number} did not go through`, `Your ${t.settings.auth.shopName} order ${placed.order.number} is confirmed`])
  })

  it('flags a success whose amount does not match the order, and does not pay the order', async () => {
    const placed = await placeOrder()
    const intent = standIn.setIntentStatus((await intentOf(placed)).id, 'succeeded')
    const event = stripeEvent('payment_intent.succeeded', asSent(intent, { amount_received: intent.amount - 100 }))
    await expectReceived(await deliver(event), 'flagged')

    const payment = await readPayment(placed.order.payment!.id)
    expect(payment).toMatchObject({ status: 'pending' })
    expect(payment.flagged).toMatch(/^amount_mismatch: the provider charged \d+ USD/)
    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'pending_payment' })
    expect(eventTypes(order)).toEqual(['created', 'payment_flagged'])
    expect(await stockOf(placed.sku)).toMatchObject({ on_hand: 5, reserved: 1 })
    expect(mailsTo(placed.email)).toEqual([])
  })

  it('records event types it does not handle as ignored, and intents of no order of ours as unmatched', async () => {
    const customerId = `cus_${randomBytes(6).toString('hex')}`
    const customer = stripeEvent('customer.created', { id: customerId, object: 'customer', email: 'someone@example.com' })
    await expectReceived(await deliver(customer), 'ignored')
    expect(await inboxRow(customer.id)).toMatchObject({ type: 'customer.created', object_ref: customerId, outcome: 'ignored', payment_id: null })

    // Intents made elsewhere on the same Stripe account: no metadata, or an order that is not ours.
    const stripe = stripeClient()
    const metadatas: Array<Record<string, string>> = [{}, { order_id: randomUUID() }, { order_id: 'not-an-id' }]
    for (const metadata of metadatas) {
      const foreign = await stripe.paymentIntents.create({ amount: 1234, currency: 'usd', metadata })
      const event = intentEvent('payment_intent.succeeded', standIn.setIntentStatus(foreign.id, 'succeeded'))
      await expectReceived(await deliver(event), 'unmatched')
      expect(await inboxRow(event.id)).toMatchObject({ outcome: 'unmatched', payment_id: null })
    }
    expect(await db().select().from(payments).where(eq(payments.amount, 1234))).toEqual([])
  })

  it('adopts an intent naming one of our orders when its payment row is missing', async () => {
    const placed = await placeOrder()
    const intent = await intentOf(placed)
    // The row is lost (as if the app died between Stripe's answer and the insert).
    await db().delete(payments).where(eq(payments.id, placed.order.payment!.id))
    expect((await readOrder(placed)).payment).toBeNull()

    const event = intentEvent('payment_intent.succeeded', standIn.setIntentStatus(intent.id, 'succeeded'))
    await expectReceived(await deliver(event), 'applied')
    const [adopted, ...more] = await db().select().from(payments).where(eq(payments.order_id, placed.order.id))
    expect(more).toEqual([])
    expect(adopted).toMatchObject({ provider: 'stripe', provider_ref: intent.id, status: 'succeeded', amount: placed.order.totals.total, currency: 'USD' })
    expect(await inboxRow(event.id)).toMatchObject({ outcome: 'applied', payment_id: adopted!.id })
    expect(await readOrder(placed)).toMatchObject({ status: 'paid', payment: { id: adopted!.id, status: 'succeeded' } })
    expect(t.logs.some((line) => line.msg === 'adopted a provider intent we had no row for' && line.provider_ref === intent.id)).toBe(true)
  })

  it('flags a disputed payment and notes the dispute on the order', async () => {
    const placed = await placeOrder()
    await pay(placed)
    const intent = await intentOf(placed)
    const dispute = stripeEvent('charge.dispute.created', {
      id: `dp_${randomBytes(6).toString('hex')}`,
      object: 'dispute',
      amount: intent.amount,
      currency: 'usd',
      charge: intent.latest_charge,
      payment_intent: intent.id,
      reason: 'fraudulent',
      status: 'needs_response',
    })
    await expectReceived(await deliver(dispute), 'flagged')

    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ status: 'succeeded', flagged: `dispute: fraudulent (${intent.amount} USD)` })
    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'paid' })
    expect(order.events.at(-1)).toMatchObject({ type: 'dispute_opened', note: expect.stringContaining('fraudulent') })
  })
})

describe.runIf(usesPostgres)('the same event delivered twice at once (PostgreSQL)', () => {
  let gate: pg.Client
  let observer: pg.Client
  let baseUrl: string

  beforeAll(async () => {
    if (t.settings.db.kind !== 'postgres') throw new Error('expected PostgreSQL')
    gate = new pg.Client({ connectionString: t.settings.db.url })
    observer = new pg.Client({ connectionString: t.settings.db.url })
    await Promise.all([gate.connect(), observer.connect()])
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' })
  })
  afterAll(async () => {
    await Promise.all([gate?.end(), observer?.end()])
  })

  it('applies it exactly once over two real HTTP requests; the other is answered as a duplicate', async () => {
    const placed = await placeOrder({ quantity: 2 })
    const event = intentEvent('payment_intent.succeeded', standIn.setIntentStatus((await intentOf(placed)).id, 'succeeded'))
    const { payload, headers } = signedDelivery(event, WEBHOOK_SECRET)
    const post = async () => {
      const res = await fetch(`${baseUrl}/api/payments/webhook/`, { method: 'POST', headers, body: payload })
      return { status: res.status, body: (await res.json()) as unknown }
    }
    // The gate holds the payment row: one delivery waits for it, the other for the first's inbox row.
    const answers = await behindRowLock(gate, observer, { sql: 'SELECT 1 FROM payments WHERE id = $1', params: [placed.order.payment!.id] }, 2, () => Promise.all([post(), post()]))
    await t.settle()

    expect(answers.map((answer) => answer.status)).toEqual([200, 200])
    expect(answers.map((answer) => answer.body)).toEqual(
      expect.arrayContaining([
        { received: true, duplicate: false, outcome: 'applied' },
        { received: true, duplicate: true, outcome: 'duplicate' },
      ]),
    )
    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'paid' })
    expect(eventTypes(order)).toEqual(['created', 'payment_succeeded'])
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })
    expect(mailsTo(placed.email)).toHaveLength(1)
  })
})

describe('refunds through Stripe', () => {
  /**
   * The refund reached Stripe with its own key. The request and the outbox task may both send it
   * (whichever comes second gets Stripe's replay), so it is the key that makes it one refund.
   */
  const expectSentOnce = (refundId: string, params: Record<string, string>) => {
    const sent = refundRequests(refundId)
    expect(sent.length).toBeGreaterThan(0)
    for (const request of sent) expect(request).toMatchObject({ idempotencyKey: `refund-${refundId}`, params: expect.objectContaining(params) })
    expect([...standIn.refunds.values()].filter((made) => made.metadata.refund_id === refundId)).toHaveLength(1)
  }

  it('sends partial and full refunds with one idempotency key each, never more than captured, and takes refunds made in the dashboard from charge.refunded', async () => {
    const placed = await placeOrder()
    const paymentId = placed.order.payment!.id
    const total = placed.order.totals.total
    const notCaptured = await refund(paymentId, { amount: 100 })
    expectProblem(notCaptured, 409, 'payment_not_captured')
    expectProblem(await refund(paymentId, { amount: 100 }, placed.auth), 403)
    await pay(placed)
    const intent = await intentOf(placed)
    const refundMails = () => subjectsTo(placed.email).filter((subject) => subject.startsWith('Refund of'))

    // A partial refund: executed at once, with the refund's id as the key.
    const partial = await refund(paymentId, { amount: 500, note: 'scratched box' })
    expect(partial.statusCode, partial.body).toBe(201)
    const first = partial.json<RefundDto>()
    expect(first).toMatchObject({ payment_id: paymentId, amount: 500, currency: 'USD', status: 'succeeded', reason: 'requested_by_customer', note: 'scratched box' })
    await t.settle()
    expectSentOnce(first.id, { payment_intent: intent.id, amount: '500', reason: 'requested_by_customer' })
    expect(await readPayment(paymentId)).toMatchObject({ amount_refunded: 500, refunds: [{ id: first.id, status: 'succeeded' }] })
    expect(refundMails()).toEqual([`Refund of $5.00 for order ${placed.order.number}`])

    // Stripe reports the refund we already counted: nothing changes, no second email.
    const charge = (amountRefunded: number) => stripeEvent('charge.refunded', { id: intent.latest_charge, object: 'charge', payment_intent: intent.id, amount: total, amount_refunded: amountRefunded, currency: 'usd', refunded: amountRefunded === total })
    await expectReceived(await deliver(charge(500)), 'stale')
    expect(refundMails()).toHaveLength(1)

    // Someone refunds 7.00 in Stripe's dashboard: the running total goes up, the order and the customer hear of it once.
    await stripeClient().refunds.create({ payment_intent: intent.id, amount: 700 })
    const dashboard = charge(1200)
    await expectReceived(await deliver(dashboard), 'applied')
    await expectReceived(await deliver(dashboard), 'duplicate', true)
    await expectReceived(await deliver(charge(1200)), 'stale')
    // It is listed with ours, so what was refunded adds up to Stripe's total.
    expect(await readPayment(paymentId)).toMatchObject({
      amount_refunded: 1200,
      refunds: [
        { id: first.id, amount: 500, status: 'succeeded' },
        { amount: 700, status: 'succeeded', reason: 'external' },
      ],
    })
    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'paid', payment_status: 'partially_refunded' })
    expect(order.events.filter((event) => event.type === 'refunded').map((event) => event.note)).toEqual([`Refunded 500 USD (500 of ${total} in all).`, `Refunded 700 USD (1200 of ${total} in all).`])
    expect(refundMails()).toEqual([`Refund of $5.00 for order ${placed.order.number}`, `Refund of $7.00 for order ${placed.order.number}`])

    // More than what is left is refused before Stripe is asked.
    const remaining = total - 1200
    const refundCalls = requestsTo('POST /v1/refunds').length
    const tooMuch = expectProblem(await refund(paymentId, { amount: remaining + 1 }), 422, 'refund_exceeds_captured')
    expect(tooMuch.refundable).toBe(remaining)
    expect(requestsTo('POST /v1/refunds')).toHaveLength(refundCalls)

    // The rest, in full.
    const full = await refund(paymentId, { reason: 'duplicate' })
    expect(full.statusCode, full.body).toBe(201)
    const last = full.json<RefundDto>()
    expect(last).toMatchObject({ amount: remaining, status: 'succeeded', reason: 'duplicate' })
    await t.settle()
    expectSentOnce(last.id, { payment_intent: intent.id, amount: String(remaining), reason: 'duplicate' })
    expect(await readPayment(paymentId)).toMatchObject({ amount_refunded: total })
    expect(await readOrder(placed)).toMatchObject({ payment_status: 'refunded' })
    expect(refundMails()).toHaveLength(3)
    expectProblem(await refund(paymentId, { amount: 1 }), 409, 'fully_refunded')
    expect([...standIn.refunds.values()].filter((made) => made.payment_intent === intent.id).map((made) => made.amount)).toEqual([500, 700, remaining])
  })

  it('leaves a refund pending while Stripe is down, and the reconciliation settles it with the same idempotency key', async () => {
    const placed = await placeOrder()
    await pay(placed)
    const intent = await intentOf(placed)
    // Down through the call in the request and every attempt of the outbox task that retries it.
    const failedCalls = 1 + t.settings.queue.defaultAttempts
    for (let i = 0; i < failedCalls * REQUESTS_PER_FAILED_CALL; i++) standIn.failNext('/v1/refunds', 500)
    expectedFailedJobs = 1

    const res = await refund(placed.order.payment!.id, { amount: 300 })
    expect(res.statusCode, res.body).toBe(201)
    const pending = res.json<RefundDto>()
    expect(pending).toMatchObject({ amount: 300, status: 'pending' })
    await t.settle()
    expect((await t.app.platform.queue.failed()).slice(failedJobsBefore).map((job) => job.task)).toEqual(['payments.execute_refund'])
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ amount_refunded: 0, refunds: [{ id: pending.id, status: 'pending' }] })
    expect(refundRequests(pending.id)).toHaveLength(failedCalls * REQUESTS_PER_FAILED_CALL)

    await reconcile()
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ amount_refunded: 300, refunds: [{ id: pending.id, status: 'succeeded' }] })
    const sent = refundRequests(pending.id)
    expect(sent).toHaveLength(failedCalls * REQUESTS_PER_FAILED_CALL + 1)
    expect(new Set(sent.map((request) => request.idempotencyKey))).toEqual(new Set([`refund-${pending.id}`]))
    expect([...standIn.refunds.values()].filter((made) => made.payment_intent === intent.id).map((made) => made.amount)).toEqual([300])
    expect(subjectsTo(placed.email).filter((subject) => subject.startsWith('Refund of'))).toEqual([`Refund of $3.00 for order ${placed.order.number}`])

    // Running it again sends nothing more.
    await reconcile()
    expect(refundRequests(pending.id)).toHaveLength(sent.length)
  })

  it('counts a refund once when Stripe reports it (charge.refunded) while it is still pending here', async () => {
    const placed = await placeOrder()
    await pay(placed)
    const intent = await intentOf(placed)
    // Rate-limited (429, which the SDK does not retry) through the request and every attempt of the task.
    for (let i = 0; i < 1 + t.settings.queue.defaultAttempts; i++) standIn.failNext('/v1/refunds', 429, 'rate_limit')
    expectedFailedJobs = 1
    const res = await refund(placed.order.payment!.id, { amount: 300 })
    expect(res.json<RefundDto>()).toMatchObject({ status: 'pending' })
    const pending = res.json<RefundDto>()
    await t.settle()

    // Yet Stripe made it (a request that timed out on our side); its charge.refunded arrives first.
    const made = { payment_intent: intent.id, amount: 300, reason: 'requested_by_customer' as const, metadata: { refund_id: pending.id, reason: 'requested_by_customer' } }
    await stripeClient().refunds.create(made, { idempotencyKey: `refund-${pending.id}` })
    const charged = stripeEvent('charge.refunded', { id: intent.latest_charge, object: 'charge', payment_intent: intent.id, amount: intent.amount, amount_refunded: 300, currency: 'usd', refunded: false })
    await expectReceived(await deliver(charged), 'applied')
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ amount_refunded: 300, refunds: [{ id: pending.id, status: 'pending' }] })

    await reconcile()
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ amount_refunded: 300, refunds: [{ id: pending.id, status: 'succeeded' }] })
    expect([...standIn.refunds.values()].filter((refund) => refund.payment_intent === intent.id).map((refund) => refund.amount)).toEqual([300])
    expect(subjectsTo(placed.email).filter((subject) => subject.startsWith('Refund of'))).toEqual([`Refund of $3.00 for order ${placed.order.number}`])
  })
})

describe('an order whose reservation expired', () => {
  it('cancels its open intent at Stripe, keyed by the payment', async () => {
    const placed = await placeOrder()
    const intent = await intentOf(placed)
    await expireReservation(placed)

    expect(requestsTo(`POST /v1/payment_intents/${intent.id}/cancel`)).toEqual([expect.objectContaining({ idempotencyKey: `cancel-${placed.order.payment!.id}` })])
    expect(intent.status).toBe('canceled')
    expect(await readPayment(placed.order.payment!.id, placed.auth)).toMatchObject({ status: 'canceled', client_secret: null })
    expectProblem(await askForPayment(placed), 409, 'order_not_payable')
    // Stripe's own word on the cancellation comes after: nothing left to change.
    await expectReceived(await deliver(intentEvent('payment_intent.canceled', intent)), 'stale')
  })

  it('is paid after all when the customer paid just before the cancel reached Stripe (the intent is read back)', async () => {
    const placed = await placeOrder({ quantity: 2 })
    const intent = standIn.setIntentStatus((await intentOf(placed)).id, 'succeeded')
    await expireReservation(placed)
    await t.settle()

    expect(requestsTo(`POST /v1/payment_intents/${intent.id}/cancel`)).toHaveLength(1)
    expect(requestsTo(`GET /v1/payment_intents/${intent.id}`)).toHaveLength(1)
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ status: 'succeeded' })
    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'paid' })
    expect(order.events.at(-1)).toMatchObject({ type: 'reinstated', from_status: 'cancelled', to_status: 'paid' })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })
    // The webhook that was on its way changes nothing more.
    await expectReceived(await deliver(intentEvent('payment_intent.succeeded', intent)), 'stale')
    expect(subjectsTo(placed.email)).toEqual([`Your ${t.settings.auth.shopName} order ${placed.order.number} is confirmed`])
  })

  it('gets its goods back when a payment in processing succeeds later and the stock is still there', async () => {
    const placed = await placeOrder({ quantity: 2 })
    await bankSays(placed, 'processing', 'payment_intent.processing')
    await expireReservation(placed)
    const intent = await intentOf(placed)
    // A payment already in processing is not cancelled: the money may be on its way.
    expect(requestsTo(`POST /v1/payment_intents/${intent.id}/cancel`)).toEqual([])
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 5, reserved: 0, available: 5 })

    await pay(placed)
    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'paid', payment_status: 'paid' })
    expect(order.events.map((event) => [event.type, event.to_status])).toEqual([
      ['created', 'pending_payment'],
      ['reservation_expired', 'cancelled'],
      ['reinstated', 'paid'],
    ])
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })
    expect(subjectsTo(placed.email)).toEqual([`Your ${t.settings.auth.shopName} order ${placed.order.number} is confirmed`])
    expect(requestsTo('POST /v1/refunds', (request) => request.params.payment_intent === intent.id)).toEqual([])
  })

  it('is refunded in full, automatically, when the payment succeeds after another customer bought the goods', async () => {
    const placed = await placeOrder({ quantity: 2, stock: 2 })
    await bankSays(placed, 'processing', 'payment_intent.processing')
    await expireReservation(placed)
    const other = await placeOrder({ sku: placed.sku, quantity: 2 })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 2, reserved: 2, available: 0 })

    await bankSays(placed, 'succeeded', 'payment_intent.succeeded', 'refunded_unavailable')
    const intent = await intentOf(placed)
    const total = placed.order.totals.total
    expect(requestsTo('POST /v1/refunds', (request) => request.params.payment_intent === intent.id)).toEqual([
      expect.objectContaining({ idempotencyKey: expect.stringMatching(/^refund-[0-9a-f-]{36}$/), params: expect.objectContaining({ amount: String(total), 'metadata[reason]': 'order_unavailable' }) }),
    ])
    const payment = await readPayment(placed.order.payment!.id)
    expect(payment).toMatchObject({ status: 'succeeded', amount_refunded: total, refunds: [{ amount: total, reason: 'order_unavailable', status: 'succeeded' }] })
    const order = await readOrder(placed)
    expect(order).toMatchObject({ status: 'cancelled', payment_status: 'refunded' })
    expect(eventTypes(order)).toEqual(['created', 'reservation_expired', 'payment_refunded_automatically', 'refunded'])
    const mails = mailsTo(placed.email)
    expect(mails.map((mail) => mail.subject)).toEqual([`Refund of $${(total / 100).toFixed(2)} for order ${placed.order.number}`])
    expect(mails[0]!.text).toContain('no longer in stock')
    // The other customer's order keeps the goods.
    expect(await readOrder(other)).toMatchObject({ status: 'pending_payment' })
    expect(await stockOf(placed.sku)).toEqual({ on_hand: 2, reserved: 2, available: 0 })
  })
})

describe('the payments.reconcile task', () => {
  it('reads back a payment stuck in processing whose succeeded webhook was lost, and pays the order', async () => {
    const placed = await placeOrder()
    await bankSays(placed, 'processing', 'payment_intent.processing')
    const intent = standIn.setIntentStatus((await intentOf(placed)).id, 'succeeded')
    // No webhook: it was lost.
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ status: 'processing' })

    await reconcile()
    expect(requestsTo(`GET /v1/payment_intents/${intent.id}`)).toHaveLength(1)
    expect(await readPayment(placed.order.payment!.id)).toMatchObject({ status: 'succeeded' })
    expect(await readOrder(placed)).toMatchObject({ status: 'paid', payment: { status: 'succeeded' } })
    expect(subjectsTo(placed.email)).toEqual([`Your ${t.settings.auth.shopName} order ${placed.order.number} is confirmed`])
  })
})

// Last: it reads the logs of every test above.
describe('logs', () => {
  it('never contain the secret key, the webhook secret or a client secret', async () => {
    // The flows above logged: a line per applied event, a warning per outage.
    expect(t.logs.some((line) => line.msg === 'stripe event applied')).toBe(true)
    expect(t.logs.some((line) => line.msg === 'refund left pending: the provider did not answer')).toBe(true)
    const clientSecrets = [...standIn.intents.values()].map((intent) => intent.client_secret)
    expect(clientSecrets.length).toBeGreaterThan(10)
    const secrets = [standIn.secretKey, WEBHOOK_SECRET, ...clientSecrets]
    const leaks = t.logs.map((line) => JSON.stringify(line)).filter((line) => secrets.some((secret) => line.includes(secret)))
    expect(leaks).toEqual([])
  })
})

/** The SDK as a test uses it to act in Stripe directly (like the dashboard, or another integration). */
function stripeClient(): Stripe {
  const url = new URL(standIn.url)
  return new Stripe(standIn.secretKey, { host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0, telemetry: false })
}
