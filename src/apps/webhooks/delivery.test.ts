/**
 * Deliveries to real HTTP receivers on loopback, which check signatures with their own HMAC: a
 * paid order reaches the endpoints subscribed to it (and only those), an event the outbox hands
 * over twice is sent once, failed attempts are retried with backoff while later events of the
 * endpoint wait their turn, the last failed attempt lets the queue move on, a replay sends the
 * same bytes under the same Webhook-Id, and concurrent senders of one endpoint (jobs, and on
 * PostgreSQL a second process) send every delivery once, one at a time, in order.
 */
import { randomUUID } from 'node:crypto'
import { and, asc, eq, sql } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { ADDRESS, cartWith } from '../../../test/shopping.js'
import { signatureIsValid, startReceiver, type Receiver } from '../../../test/webhook-receiver.js'
import { buildApp, type App } from '../../app.js'
import { outboxEvents } from '../../core/events/tables.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto } from '../orders/service.js'
import { DELIVER_TASK, type DeliveryDto, type EndpointWithSecretDto } from './service.js'
import { webhookDeliveries, webhookEndpoints } from './tables.js'
import { FAN_OUT_TASK } from './tasks.js'

type Headers = Record<string, string>

let t: TestApp
let f: ReturnType<typeof factories>
let staff: Headers
const receivers: Receiver[] = []

beforeAll(async () => {
  t = await createTestApp({ env: { WEBHOOK_ALLOW_PRIVATE: 'true' }, settings: { webhooks: { retryBaseMs: 1, maxAttempts: 3 } } })
  f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  await seedPricingDefaults(db())
})
afterEach(async () => {
  await t.settle()
  expect(await t.app.platform.queue.failed()).toEqual([])
  // Each test's endpoints stop here, so the next test's events reach only its own.
  await db().delete(webhookEndpoints)
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()))
})
afterAll(() => t?.close())

const db = () => t.app.platform.database.db

async function receiver(): Promise<Receiver> {
  const started = await startReceiver()
  receivers.push(started)
  return started
}

async function register(url: string, events: string[], extra: object = {}): Promise<EndpointWithSecretDto> {
  const res = await t.request({ method: 'POST', url: '/api/webhooks/', headers: staff, payload: { url, events, ...extra } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<EndpointWithSecretDto>()
}

async function deliveriesOf(endpointId: string, query = ''): Promise<DeliveryDto[]> {
  const res = await t.request({ method: 'GET', url: `/api/webhooks/${endpointId}/deliveries/?limit=100${query}`, headers: staff })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<{ results: DeliveryDto[] }>().results
}

/** A products.changed event for one new product id, committed; answers the id (it names the event in bodies). */
async function productsChanged(): Promise<string> {
  const productId = randomUUID()
  await t.app.platform.context().tx((tx) => tx.events.publish('catalog.products_changed', { product_ids: [productId] }))
  return productId
}

const productOf = (request: { json: { data: Record<string, unknown> } }) => (request.json.data.product_ids as string[])[0]

/** Polls `check` until it holds, for at most `timeoutMs`: the database is another process to wait on. */
async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A customer's checked-out order (one unit, dummy payment), paid when `pay`. */
async function placeOrder(pay: boolean): Promise<OrderDto> {
  const customer = await f.user()
  const auth = await f.auth(customer)
  const { skus } = await f.product({ stock: [5] })
  const cart = await cartWith(t, [[skus[0]!, 1]], { auth })
  const res = await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...cart, 'idempotency-key': randomUUID() }, payload: { shipping_address: ADDRESS, shipping_method: 'standard' } })
  expect(res.statusCode, res.body).toBe(201)
  const order = res.json<OrderDto>()
  await t.settle()
  if (pay) {
    const paid = await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/`, headers: auth })
    expect(paid.statusCode, paid.body).toBe(200)
    await t.settle()
  }
  return order
}

describe('a paid order', () => {
  it('reaches the endpoints subscribed to its events, signed, with the order as staff see it', async () => {
    const [subscribed, everything, others] = [await receiver(), await receiver(), await receiver()]
    const orders = await register(subscribed.url, ['order.created', 'order.paid'])
    const all = await register(everything.url, ['*'])
    await register(others.url, ['payment.failed', 'order.shipped'])
    await register(others.url, ['*'], { is_active: false })

    const order = await placeOrder(true)

    expect(subscribed.received.map((request) => request.json.type)).toEqual(['order.created', 'order.paid'])
    const [created, paid] = subscribed.received
    for (const request of subscribed.received) {
      expect(signatureIsValid(orders.secret, request)).toBe(true)
      expect(signatureIsValid(all.secret, request)).toBe(false)
      expect(request.headers['content-type']).toBe('application/json')
      expect(request.headers['user-agent']).toBe(`${t.settings.auth.shopName} webhooks`)
      expect(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60)
      expect((request.json.data.order as OrderDto).number).toBe(order.number)
    }
    expect((created!.json.data.order as OrderDto).status).toBe('pending_payment')
    const paidOrder = paid!.json.data.order as OrderDto
    expect(paidOrder).toMatchObject({ status: 'paid', email: order.email, totals: order.totals })
    // Staff's view, not the payer's: the client secret that lets its holder pay is not sent.
    expect(paidOrder.payment).toMatchObject({ status: 'succeeded', client_secret: null })
    expect(paid!.json.data.previous_status).toBe('pending_payment')

    // The body names the domain event and when it happened.
    const [statusEvent] = await db()
      .select()
      .from(outboxEvents)
      .where(and(eq(outboxEvents.name, 'order.status_changed'), sql`${outboxEvents.payload}->>'number' = ${order.number}`, sql`${outboxEvents.payload}->>'to' = 'paid'`))
    expect(paid!.json).toMatchObject({ id: statusEvent!.id, type: 'order.paid', created_at: statusEvent!.created_at.toISOString() })

    // The log: one row per event, its id the Webhook-Id receivers dedupe on.
    const log = await deliveriesOf(orders.id)
    expect(log.map((row) => [row.event, row.status, row.attempts, row.response_code])).toEqual([
      ['order.paid', 'succeeded', 1, 200],
      ['order.created', 'succeeded', 1, 200],
    ])
    expect(log.map((row) => row.id)).toEqual([paid!.id, created!.id])
    expect(log.every((row) => row.delivered_at !== null && row.next_attempt_at === null && row.last_error === null)).toBe(true)

    expect(others.received).toEqual([])
    expect(everything.received.map((request) => request.json.type)).toEqual(expect.arrayContaining(['order.created', 'order.paid']))
    expect(everything.received.every((request) => signatureIsValid(all.secret, request))).toBe(true)
  })
})

describe('an event the outbox hands over twice', () => {
  it('makes one delivery and one request', async () => {
    const hook = await receiver()
    const endpoint = await register(hook.url, ['products.changed'])
    const productId = await productsChanged()
    await t.settle()
    const [row] = await db().select().from(outboxEvents).where(sql`${outboxEvents.payload}->'product_ids' ? ${productId}`)
    const envelope = { id: row!.id, name: row!.name, occurred_at: row!.created_at.toISOString(), payload: row!.payload }

    // As a relay would that died before it marked the event published, twice at once.
    await Promise.all([t.app.platform.queue.enqueue(FAN_OUT_TASK, envelope), t.app.platform.queue.enqueue(FAN_OUT_TASK, envelope)])
    await t.settle()

    expect(hook.received).toHaveLength(1)
    expect(hook.received[0]!.json.id).toBe(row!.id)
    expect(await deliveriesOf(endpoint.id)).toHaveLength(1)
  })
})

describe('retries', () => {
  it('tries again after 500s until a 200, and sends the next event only after that', async () => {
    const hook = await receiver()
    const endpoint = await register(hook.url, ['products.changed'])
    let openGate!: () => void
    const gate = new Promise<void>((resolve) => (openGate = resolve))
    // The second attempt is held until the second event waits behind the first.
    hook.respond(async (_request, index) => {
      if (index === 1) await gate
      return index < 2 ? 500 : 200
    })

    const first = await productsChanged()
    await hook.waitFor(2)
    const second = await productsChanged()
    await eventually(async () => (await db().select().from(webhookDeliveries).where(eq(webhookDeliveries.endpoint_id, endpoint.id))).length === 2)
    openGate()
    await t.settle()

    expect(hook.received.map(productOf)).toEqual([first, first, first, second])
    expect(new Set(hook.received.slice(0, 3).map((request) => request.id)).size).toBe(1)
    expect(new Set(hook.received.slice(0, 3).map((request) => request.body)).size).toBe(1)
    const [newest, oldest] = await deliveriesOf(endpoint.id)
    expect(oldest).toMatchObject({ id: hook.received[0]!.id, status: 'succeeded', attempts: 3, response_code: 200, last_error: null, next_attempt_at: null })
    expect(newest).toMatchObject({ id: hook.received[3]!.id, status: 'succeeded', attempts: 1, response_code: 200 })
  })

  it('marks a delivery failed after the last attempt, then sends the next; a replay sends the same bytes again', async () => {
    const hook = await receiver()
    const endpoint = await register(hook.url, ['products.changed'])
    let openGate!: () => void
    const gate = new Promise<void>((resolve) => (openGate = resolve))
    let failing = ''
    hook.respond(async (request, index) => {
      if (index === 0) await gate
      return productOf(request) === failing ? { status: 500, body: 'x'.repeat(5000) } : 200
    })

    failing = await productsChanged()
    await hook.waitFor(1)
    const next = await productsChanged()
    await eventually(async () => (await db().select().from(webhookDeliveries).where(eq(webhookDeliveries.endpoint_id, endpoint.id))).length === 2)
    openGate()
    await t.settle()

    expect(hook.received.map(productOf)).toEqual([failing, failing, failing, next])
    const failed = (await deliveriesOf(endpoint.id, '&status=failed'))
    expect(failed).toHaveLength(1)
    expect(failed[0]).toMatchObject({ id: hook.received[0]!.id, status: 'failed', attempts: 3, response_code: 500, last_error: 'HTTP 500', next_attempt_at: null, delivered_at: null })
    expect(failed[0]!.response_body).toBe('x'.repeat(1024))
    expect((await deliveriesOf(endpoint.id, '&status=succeeded')).map((row) => row.id)).toEqual([hook.received[3]!.id])

    // The receiver is fixed; staff send the failed delivery again.
    failing = ''
    const replay = await t.request({ method: 'POST', url: `/api/webhooks/deliveries/${failed[0]!.id}/replay/`, headers: staff })
    expect(replay.statusCode, replay.body).toBe(202)
    expect(replay.json()).toMatchObject({ id: failed[0]!.id, status: 'pending', attempts: 0 })
    await t.settle()

    expect(hook.received).toHaveLength(5)
    const again = hook.received[4]!
    expect(again.id).toBe(hook.received[0]!.id)
    expect(again.body).toBe(hook.received[0]!.body)
    expect(signatureIsValid(endpoint.secret, again)).toBe(true)
    const [replayed] = (await deliveriesOf(endpoint.id)).filter((row) => row.id === again.id)
    expect(replayed).toMatchObject({ status: 'succeeded', attempts: 1, response_code: 200, last_error: null })

    // A replay waits for an active endpoint.
    await t.request({ method: 'PATCH', url: `/api/webhooks/${endpoint.id}/`, headers: staff, payload: { is_active: false } })
    expectProblem(await t.request({ method: 'POST', url: `/api/webhooks/deliveries/${again.id}/replay/`, headers: staff }), 409, 'endpoint_inactive')
  })

  it('signs with the new secret after a rotation', async () => {
    const hook = await receiver()
    const endpoint = await register(hook.url, ['products.changed'])
    const rotated = (await t.request({ method: 'POST', url: `/api/webhooks/${endpoint.id}/rotate-secret/`, headers: staff })).json<EndpointWithSecretDto>()
    await productsChanged()
    await t.settle()
    expect(hook.received).toHaveLength(1)
    expect(signatureIsValid(rotated.secret, hook.received[0]!)).toBe(true)
    expect(signatureIsValid(endpoint.secret, hook.received[0]!)).toBe(false)
  })
})

/** The endpoint's deliveries in the order it must send them: event time, then insertion. */
async function queueOrder(endpointId: string): Promise<string[]> {
  const rows = await db().select({ id: webhookDeliveries.id }).from(webhookDeliveries).where(eq(webhookDeliveries.endpoint_id, endpointId)).orderBy(asc(webhookDeliveries.event_at), asc(webhookDeliveries.seq))
  return rows.map((row) => row.id)
}

/**
 * Five events for one endpoint whose first request is held while more senders are started with
 * `startSenders`; once those have come and gone the receiver answers, and every delivery must
 * arrive once, one at a time, in the endpoint's order.
 */
async function contendedSenders(startSenders: (endpointId: string) => Promise<void>, idle: () => Promise<boolean>): Promise<void> {
  const hook = await receiver()
  const endpoint = await register(hook.url, ['products.changed'])
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  hook.respond(async (_request, index) => {
    if (index === 0) await held
    return 200
  })
  // One event's delivery written before the next event: fan-outs of different events may run at
  // once and land out of order, which is not what this test is about (the senders' lease is).
  for (let i = 1; i <= 5; i++) {
    await productsChanged()
    await eventually(async () => (await deliveriesOf(endpoint.id)).length === i)
  }
  await hook.waitFor(1)
  await startSenders(endpoint.id)
  // Every other sender has found the lease taken and left: only the holder's job still runs.
  await eventually(idle)
  expect(hook.received).toHaveLength(1)
  release()
  await t.settle()

  expect(hook.received).toHaveLength(5)
  expect(hook.maxInFlight).toBe(1)
  expect(hook.received.map((request) => request.id)).toEqual(await queueOrder(endpoint.id))
  expect((await deliveriesOf(endpoint.id)).every((row) => row.status === 'succeeded' && row.attempts === 1)).toBe(true)
}

const onlyOneJobRuns = async (app: App) => {
  const stats = await app.platform.queue.stats()
  return stats.active === 1 && stats.waiting === 0
}

describe('several senders for one endpoint', () => {
  it('send every delivery once, in order, one request at a time', async () => {
    await contendedSenders(
      async (endpointId) => {
        await Promise.all([1, 2, 3].map(() => t.app.platform.queue.enqueue(DELIVER_TASK, { endpoint_id: endpointId })))
      },
      () => onlyOneJobRuns(t.app),
    )
  })
})

describe.runIf(usesPostgres)('senders in two processes (PostgreSQL)', () => {
  let other: App
  beforeAll(async () => {
    // A second app on the same database: another worker process with its own pool and queue.
    other = await buildApp(t.settings)
    await other.ready()
  })
  afterAll(() => other?.close())

  it('send every delivery once, in order, one request at a time', async () => {
    await contendedSenders(
      async (endpointId) => {
        await Promise.all([
          ...[1, 2, 3].map(() => other.platform.queue.enqueue(DELIVER_TASK, { endpoint_id: endpointId })),
          t.app.platform.queue.enqueue(DELIVER_TASK, { endpoint_id: endpointId }),
        ])
      },
      async () => (await onlyOneJobRuns(t.app)) && (await other.platform.queue.drain().then(() => true)),
    )
    expect(await other.platform.queue.failed()).toEqual([])
  })
})
