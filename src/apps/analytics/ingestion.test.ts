/**
 * Analytics ingestion: a shopper's events are answered 202 at once and written in batches (many
 * events, few INSERTs); bad input is a 422 that records nothing; a session's anonymous events
 * become the user's once they send one signed in; rate limits per IP and per session; a full
 * buffer answers 503. Server-side events (order placed, paid, refunded) come from real purchases,
 * once each even when delivered twice; old raw events are pruned.
 */
import { randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { ADDRESS, cartWith } from '../../../test/shopping.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto } from '../orders/service.js'
import { analyticsEvents } from './tables.js'

let t: TestApp
let f: ReturnType<typeof factories>
beforeAll(async () => {
  t = await createTestApp()
  f = factories(t)
  await seedPricingDefaults(db())
})
afterAll(() => t?.close())

const db = () => t.app.platform.database.db
const send = (payload: object, headers: Record<string, string> = {}) => t.request({ method: 'POST', url: '/api/analytics/events/', payload, headers })
const session = () => `s-${randomUUID()}`
const eventsOf = (sessionId: string) => db().select().from(analyticsEvents).where(eq(analyticsEvents.session_id, sessionId)).orderBy(analyticsEvents.id)

describe('POST /api/analytics/events/', () => {
  it('answers 202 at once and writes the events in batches, product slugs resolved to ids', async () => {
    const product = await f.product()
    const id = session()
    const answers = await Promise.all([
      send({ type: 'product_view', product: product.slug, session_id: id }),
      send({ type: 'add_to_cart', product: product.slug, session_id: id }),
      send({ type: 'search', query: 'wool hat', session_id: id }),
      send({ type: 'checkout_started', session_id: id }),
      send({ type: 'product_view', product: 'no-such-product', session_id: id }),
    ])
    expect(answers.map((res) => [res.statusCode, res.json()])).toEqual(Array.from({ length: 5 }, () => [202, { accepted: true }]))
    // Nothing is written per request: the buffer holds them until the next flush.
    expect(await eventsOf(id)).toEqual([])
    expect(t.app.analyticsRecorder.pending()).toBeGreaterThanOrEqual(5)

    expect(await t.app.analyticsRecorder.flush()).toBeGreaterThanOrEqual(5)
    const rows = await eventsOf(id)
    expect(rows.map((row) => [row.type, row.product_id, row.query, row.user_id])).toEqual([
      ['product_view', product.id, null, null],
      ['add_to_cart', product.id, null, null],
      ['search', null, 'wool hat', null],
      ['checkout_started', null, null, null],
      ['product_view', null, null, null],
    ])
  })

  it("joins a session's anonymous events to the user once they send one signed in", async () => {
    const user = await f.user()
    const auth = await f.auth(user)
    const id = session()
    const other = session()
    await send({ type: 'checkout_started', session_id: id })
    await send({ type: 'checkout_started', session_id: other })
    await t.app.analyticsRecorder.flush()
    await send({ type: 'checkout_started', session_id: id }, auth)
    await t.app.analyticsRecorder.flush()
    expect((await eventsOf(id)).map((row) => row.user_id)).toEqual([user.id, user.id])
    expect((await eventsOf(other)).map((row) => row.user_id)).toEqual([null])
  })

  it('refuses what a type needs but lacks, unknown types and fields, and malformed values (422), recording nothing', async () => {
    const id = session()
    for (const bad of [
      { type: 'product_view', session_id: id },
      { type: 'add_to_cart', session_id: id },
      { type: 'search', session_id: id },
      { type: 'search', query: '   ', session_id: id },
      { type: 'order_paid', session_id: id },
      { type: 'page_view', session_id: id },
      { type: 'product_view', product: 'Not A Slug', session_id: id },
      { type: 'checkout_started', session_id: 'short' },
      { type: 'checkout_started', session_id: id, extra: 1 },
      {},
    ]) {
      expectProblem(await send(bad), 422)
    }
    expectProblem(await t.request({ method: 'POST', url: '/api/analytics/events/', payload: '{"type":', headers: { 'content-type': 'application/json' } }), 400)
    await t.app.analyticsRecorder.flush()
    expect(await eventsOf(id)).toEqual([])
  })
})

describe('limits', () => {
  let limited: TestApp
  beforeAll(async () => {
    limited = await createTestApp({ env: { RATE_LIMIT_ANALYTICS: '3/minute' }, settings: { analytics: { maxBuffered: 4 } } })
  })
  afterAll(() => limited?.close())

  it('rate limits per session (429 with Retry-After) and answers 503 once the buffer is full', async () => {
    const post = (payload: object, ip: string) => limited.request({ method: 'POST', url: '/api/analytics/events/', payload, remoteAddress: ip })
    const id = session()
    // Three addresses, one session: the per-session limit stops the fourth.
    const statuses = []
    for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) statuses.push((await post({ type: 'checkout_started', session_id: id }, ip)).statusCode)
    expect(statuses).toEqual([202, 202, 202, 429])
    const refused = await post({ type: 'checkout_started', session_id: session() }, '10.0.0.1')
    // 10.0.0.1 has used one of its three: the buffer (4) has room for one more.
    expect(refused.statusCode).toBe(202)
    const full = await post({ type: 'checkout_started', session_id: session() }, '10.0.0.2')
    expectProblem(full, 503)
    await limited.app.analyticsRecorder.flush()
    expect((await post({ type: 'checkout_started', session_id: session() }, '10.0.0.3')).statusCode).toBe(202)
  })
})

describe('server-side events', () => {
  it('records an order placed with its total, paid, and each refund, for the customer; each once even when delivered twice', async () => {
    const { skus } = await f.product({ stock: [5], price: 2500 })
    const user = await f.user()
    const auth = await f.auth(user)
    const staff = await f.auth(await f.user({ role: 'staff' }))
    await cartWith(t, [[skus[0]!, 2]], { auth })
    const order = (await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...auth, 'idempotency-key': randomUUID() }, payload: { shipping_address: ADDRESS, shipping_method: 'standard' } })).json<OrderDto>()
    expect((await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/`, headers: auth })).statusCode).toBe(200)
    await t.settle()
    const refund = await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/refund/`, headers: staff, payload: { amount: 700 } })
    expect(refund.statusCode, refund.body).toBe(201)
    await t.settle()

    const forOrder = () => db().select().from(analyticsEvents).where(eq(analyticsEvents.order_id, order.id)).orderBy(analyticsEvents.id)
    expect((await forOrder()).map((row) => [row.type, row.amount, row.user_id])).toEqual([
      ['order_placed', order.totals.total, user.id],
      ['order_paid', order.totals.total, user.id],
      ['refund', 700, user.id],
    ])

    // The outbox delivers at least once: the same events again change nothing.
    const outbox = await db().execute(sql`SELECT id, name, created_at, payload FROM outbox_events WHERE payload->>'order_id' = ${order.id} ORDER BY seq`)
    for (const row of (outbox as unknown as { rows: Array<{ id: string; name: string; created_at: Date | string; payload: Record<string, unknown> }> }).rows) {
      const envelope = { id: row.id, name: row.name, occurred_at: new Date(row.created_at).toISOString(), payload: row.payload }
      for (const task of t.app.platform.tasks.subscribers(row.name).filter((name) => name.startsWith('analytics.'))) await t.app.platform.queue.enqueue(task, envelope)
    }
    await t.settle()
    expect(await forOrder()).toHaveLength(3)
    expect((await t.app.platform.queue.failed()).filter((job) => job.task.startsWith('analytics.'))).toEqual([])
  })
})

describe('searches the API answers', () => {
  it('are recorded with their result counts (zero included) and the signed-in user; later pages are not counted again', async () => {
    const user = await f.user()
    const auth = await f.auth(user)
    const word = `zz${randomUUID().slice(0, 8)}`
    const nothing = await t.request({ url: `/api/search/?q=${word}`, headers: auth })
    expect(nothing.statusCode).toBe(200)
    const staff = await f.auth(await f.user({ role: 'staff' }))
    const term = `quokka${randomUUID().slice(0, 6).replace(/[0-9]/g, 'q')}`
    const created = await t.request({ method: 'POST', url: '/api/products/', headers: staff, payload: { slug: `p-${term}`, name: `Plush ${term}`, variants: [{ sku: `SKU-${term}`.toUpperCase(), price: 1000 }] } })
    expect(created.statusCode, created.body).toBe(201)
    const found = await t.request({ url: `/api/search/?q=${term}&limit=1` })
    expect(found.statusCode).toBe(200)
    expect(found.json<{ count: number }>().count).toBeGreaterThan(0)
    const next = found.json<{ next: string | null; count: number }>().next
    if (next) expect((await t.request({ url: next.replace(/^https?:\/\/[^/]+/, '') })).statusCode).toBe(200)
    await t.app.analyticsRecorder.flush()

    const searches = await db().select().from(analyticsEvents).where(sql`${analyticsEvents.query} IN (${word}, ${term})`).orderBy(analyticsEvents.id)
    expect(searches.map((row) => [row.type, row.query, row.result_count, row.user_id])).toEqual([
      ['search', word, 0, user.id],
      ['search', term, found.json<{ count: number }>().count, null],
    ])
  })
})

describe('analytics.prune_events', () => {
  it('deletes raw events older than ANALYTICS_RETENTION_DAYS and keeps the rest', async () => {
    const id = session()
    const days = t.settings.analytics.retentionDays
    await db().insert(analyticsEvents).values([
      { type: 'checkout_started', session_id: id, occurred_at: new Date(Date.now() - (days + 1) * 86_400_000) },
      { type: 'product_view', session_id: id, occurred_at: new Date(Date.now() - (days - 1) * 86_400_000) },
    ])
    await t.app.platform.queue.enqueue('analytics.prune_events', {})
    await t.settle()
    expect((await eventsOf(id)).map((row) => row.type)).toEqual(['product_view'])
  })
})
