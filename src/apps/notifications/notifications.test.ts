/**
 * In-app notifications from real purchases (dummy provider): an order paid and shipped with a
 * tracking number appears in its customer's inbox, cancellations with their refund and refunds
 * of delivered orders too; the inbox API (unread filter, counts, read one, read all, someone
 * else's notification a 404, keyset pages); an event delivered twice makes one notification;
 * a customer who turned in-app order updates off gets none (the email still goes out); guest
 * orders make none and fail no task. No notifications task has failed after any test.
 */
import { randomUUID } from 'node:crypto'
import { and, count, eq, sql } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { ADDRESS } from '../../../test/shopping.js'
import { formatMoney } from '../../core/email.js'
import { outboxEvents } from '../../core/events/tables.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto } from '../orders/service.js'
import { createNotificationsService, type NotificationDto } from './service.js'
import { notifications } from './tables.js'
import { NOTIFY_ORDER_MOVED_TASK, NOTIFY_PAYMENT_FAILED_TASK } from './tasks.js'

type Headers = Record<string, string>
interface Inbox {
  count: number
  unread_count: number
  next: string | null
  previous: string | null
  results: NotificationDto[]
}

let t: TestApp
let f: ReturnType<typeof factories>
let staff: Headers

beforeAll(async () => {
  t = await createTestApp()
  await seedPricingDefaults(db())
  f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
})
afterEach(async () => {
  await t.settle()
  expect(await failedNotificationTasks()).toEqual([])
})
afterAll(() => t?.close())

const db = () => t.app.platform.database.db
/** This app's failed jobs (other apps' tasks have their own tests). */
const failedNotificationTasks = async () => (await t.app.platform.queue.failed()).filter((job) => job.task.startsWith('notifications.'))

async function customer(): Promise<{ id: string; email: string; auth: Headers }> {
  const user = await f.user()
  return { id: user.id, email: user.email, auth: await f.auth(user) }
}

/** Checks out one unit of a new product, as the signed-in customer or as a guest with `email`. */
async function place(buyer: { auth: Headers } | { email: string }): Promise<OrderDto> {
  const { skus } = await f.product({ stock: [5], price: 2500 })
  const opened = await t.request({ method: 'POST', url: '/api/cart/', headers: 'auth' in buyer ? buyer.auth : {} })
  const cart = 'auth' in buyer ? buyer.auth : { 'x-cart-token': opened.json<{ token: string }>().token }
  const added = await t.request({ method: 'POST', url: '/api/cart/items/', headers: cart, payload: { sku: skus[0], quantity: 1 } })
  expect(added.statusCode, added.body).toBe(201)
  const res = await t.request({
    method: 'POST',
    url: '/api/checkout/',
    headers: { ...cart, 'idempotency-key': randomUUID() },
    payload: { ...('email' in buyer ? { email: buyer.email } : {}), shipping_address: ADDRESS, shipping_method: 'standard' },
  })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<OrderDto>()
}

/** Pays with the dummy provider and runs what follows. */
async function pay(order: OrderDto, buyer: { auth: Headers } | { email: string }): Promise<void> {
  const query = 'email' in buyer ? `?email=${encodeURIComponent(buyer.email)}` : ''
  const res = await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/${query}`, headers: 'auth' in buyer ? buyer.auth : {} })
  expect(res.statusCode, res.body).toBe(200)
  await t.settle()
}

async function move(number: string, payload: object): Promise<void> {
  const res = await t.request({ method: 'POST', url: `/api/orders/${number}/transition/`, headers: staff, payload })
  expect(res.statusCode, res.body).toBe(200)
}

async function inbox(auth: Headers, query = ''): Promise<Inbox> {
  const res = await t.request({ method: 'GET', url: `/api/notifications/${query}`, headers: auth })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<Inbox>()
}

const read = (id: string, auth: Headers) => t.request({ method: 'POST', url: `/api/notifications/${id}/read/`, headers: auth })
const readAll = (auth: Headers) => t.request({ method: 'POST', url: '/api/notifications/read-all/', headers: auth })

/** The outbox event `order.status_changed` of this order's move to `to`, as the relay delivered it. */
async function statusEvent(number: string, to: string) {
  const [row] = await db()
    .select()
    .from(outboxEvents)
    .where(and(eq(outboxEvents.name, 'order.status_changed'), sql`${outboxEvents.payload}->>'number' = ${number}`, sql`${outboxEvents.payload}->>'to' = ${to}`))
  expect(row).toBeDefined()
  return { id: row!.id, name: row!.name, occurred_at: row!.created_at.toISOString(), payload: row!.payload }
}

async function notificationsOfOrder(number: string): Promise<number> {
  const [row] = await db().select({ n: count() }).from(notifications).where(sql`${notifications.data}->>'order_number' = ${number}`)
  return row!.n
}

describe('notifications from order events', () => {
  it('tells the customer their order is paid and shipped, with the tracking number; processing says nothing', async () => {
    const buyer = await customer()
    const order = await place(buyer)
    await pay(order, buyer)
    await move(order.number, { status: 'processing' })
    await move(order.number, { status: 'shipped', tracking_number: '1Z999AA10123456784' })
    await t.settle()

    const page = await inbox(buyer.auth)
    expect(page).toMatchObject({ count: 2, unread_count: 2, next: null, previous: null })
    const [shipped, paid] = page.results
    const link = `${t.settings.auth.frontendUrl}/orders/${order.number}`
    expect(paid).toMatchObject({ kind: 'order_updates', type: 'order.paid', title: `Order ${order.number} confirmed`, link, read: false, read_at: null, data: { order_number: order.number } })
    expect(shipped).toMatchObject({ kind: 'order_updates', type: 'order.shipped', title: `Order ${order.number} shipped`, link, read: false, data: { order_number: order.number, tracking_number: '1Z999AA10123456784' } })
    expect(shipped!.body).toContain('1Z999AA10123456784')
    expect(Date.parse(shipped!.created_at)).toBeGreaterThanOrEqual(Date.parse(paid!.created_at))
  })

  it('tells about a cancelled paid order, that the refund is on its way, and then the refund with its amount', async () => {
    const buyer = await customer()
    const order = await place(buyer)
    await pay(order, buyer)
    const cancelled = await t.request({ method: 'POST', url: `/api/orders/${order.number}/cancel/`, headers: buyer.auth, payload: {} })
    expect(cancelled.statusCode, cancelled.body).toBe(200)
    await t.settle()

    const types = (await inbox(buyer.auth)).results
    expect(types.map((notification) => notification.type).sort()).toEqual(['order.cancelled', 'order.paid', 'payment.refunded'])
    const cancel = types.find((notification) => notification.type === 'order.cancelled')!
    expect(cancel).toMatchObject({ title: `Order ${order.number} cancelled`, data: { refund_due: true } })
    expect(cancel.body).toMatch(/refund/i)
    const refund = types.find((notification) => notification.type === 'payment.refunded')!
    expect(refund.title).toBe(`Refund of ${formatMoney(order.totals.total, order.currency)} for order ${order.number}`)
    expect(refund.data).toMatchObject({ order_number: order.number, amount: order.totals.total, currency: order.currency })
  })

  it('tells about delivery and a partial refund of a delivered order (one notice for the refund, with its amount)', async () => {
    const buyer = await customer()
    const order = await place(buyer)
    await pay(order, buyer)
    for (const status of ['processing', 'shipped', 'delivered']) await move(order.number, { status })
    const refunded = await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/refund/`, headers: staff, payload: { amount: 100 } })
    expect(refunded.statusCode, refunded.body).toBe(201)
    await t.settle()

    const results = (await inbox(buyer.auth)).results
    expect(results.map((notification) => notification.type).sort()).toEqual(['order.delivered', 'order.paid', 'order.shipped', 'payment.refunded'])
    expect(results.find((notification) => notification.type === 'order.shipped')!.data).toMatchObject({ tracking_number: null })
    expect(results.find((notification) => notification.type === 'payment.refunded')!.title).toBe(`Refund of ${formatMoney(100, order.currency)} for order ${order.number}`)
  })

  it('makes one notification of an event delivered twice', async () => {
    const buyer = await customer()
    const order = await place(buyer)
    await pay(order, buyer)
    const event = await statusEvent(order.number, 'paid')
    // The relay delivered it once already; two more deliveries, as a retried producer might make.
    await t.app.platform.queue.enqueue(NOTIFY_ORDER_MOVED_TASK, event)
    await t.app.platform.queue.enqueue(NOTIFY_ORDER_MOVED_TASK, event)
    await t.settle()

    const page = await inbox(buyer.auth)
    expect(page.results.map((notification) => notification.type)).toEqual(['order.paid'])
    expect(page.count).toBe(1)
  })

  it('makes none for a customer who turned in-app order updates off, while the confirmation email still goes out', async () => {
    const buyer = await customer()
    const off = await t.request({ method: 'PATCH', url: '/api/notifications/preferences/', headers: buyer.auth, payload: { in_app: { order_updates: false } } })
    expect(off.statusCode, off.body).toBe(200)
    const order = await place(buyer)
    await pay(order, buyer)

    expect(await inbox(buyer.auth)).toMatchObject({ count: 0, unread_count: 0, results: [] })
    expect(await notificationsOfOrder(order.number)).toBe(0)
    expect(t.app.platform.mailer.outbox.filter((message) => message.to === buyer.email && message.subject.includes(order.number))).toHaveLength(1)
  })

  it('makes none for a guest order, and no task fails', async () => {
    const guest = { email: `guest-${randomUUID()}@example.com` }
    const order = await place(guest)
    await pay(order, guest)
    await move(order.number, { status: 'processing' })
    await move(order.number, { status: 'shipped', tracking_number: 'GUEST-1' })
    await t.settle()

    expect(await notificationsOfOrder(order.number)).toBe(0)
    expect(await failedNotificationTasks()).toEqual([])
  })

  it("tells about a failed payment while the order waits for one, and not once it is paid", async () => {
    const buyer = await customer()
    const order = await place(buyer)
    await t.settle()
    const failed = { id: randomUUID(), name: 'payment.failed', occurred_at: new Date().toISOString(), payload: { payment_id: order.payment!.id, order_id: order.id } }
    await t.app.platform.queue.enqueue(NOTIFY_PAYMENT_FAILED_TASK, failed)
    await t.settle()
    const [notice] = (await inbox(buyer.auth)).results
    expect(notice).toMatchObject({ type: 'payment.failed', title: `Payment for order ${order.number} did not go through`, data: { order_number: order.number, payment_id: order.payment!.id } })

    await pay(order, buyer)
    await t.app.platform.queue.enqueue(NOTIFY_PAYMENT_FAILED_TASK, { ...failed, id: randomUUID() })
    await t.settle()
    expect((await inbox(buyer.auth)).results.map((notification) => notification.type)).toEqual(['order.paid', 'payment.failed'])
  })
})

describe('the inbox', () => {
  it('filters unread ones, marks one read (idempotent; 404 for anyone else), then all, with the counts following', async () => {
    const buyer = await customer()
    const order = await place(buyer)
    await pay(order, buyer)
    await move(order.number, { status: 'processing' })
    await move(order.number, { status: 'shipped', tracking_number: 'TRACK-1' })
    await t.settle()
    const [shipped, paid] = (await inbox(buyer.auth)).results

    const first = await read(paid!.id, buyer.auth)
    expect(first.statusCode, first.body).toBe(200)
    const marked = first.json<NotificationDto>()
    expect(marked).toMatchObject({ id: paid!.id, read: true, read_at: expect.any(String) })
    // Reading it again keeps the first read time.
    expect((await read(paid!.id, buyer.auth)).json<NotificationDto>().read_at).toBe(marked.read_at)

    const unread = await inbox(buyer.auth, '?unread=true')
    expect(unread).toMatchObject({ count: 1, unread_count: 1 })
    expect(unread.results.map((notification) => notification.id)).toEqual([shipped!.id])
    expect((await inbox(buyer.auth, '?unread=false')).results.map((notification) => notification.id)).toEqual([paid!.id])
    expect(await inbox(buyer.auth)).toMatchObject({ count: 2, unread_count: 1 })

    const stranger = await customer()
    expectProblem(await read(shipped!.id, stranger.auth), 404)
    expectProblem(await read(randomUUID(), buyer.auth), 404)
    expect((await readAll(stranger.auth)).json()).toEqual({ updated: 0 })
    expect((await inbox(buyer.auth, '?unread=true')).count).toBe(1)

    const all = await readAll(buyer.auth)
    expect(all.statusCode, all.body).toBe(200)
    expect(all.json()).toEqual({ updated: 1 })
    expect((await readAll(buyer.auth)).json()).toEqual({ updated: 0 })
    expect(await inbox(buyer.auth, '?unread=true')).toMatchObject({ count: 0, unread_count: 0, results: [] })
    expect((await inbox(buyer.auth)).results.every((notification) => notification.read)).toBe(true)
  })

  it('pages newest first with a cursor, without gaps or repeats', async () => {
    const buyer = await customer()
    const service = createNotificationsService()
    const made: string[] = []
    for (let i = 0; i < 5; i++) {
      const notice = await service.notify(t.app.platform.context(), { user_id: buyer.id, kind: 'account', type: 'test.page', title: `Notice ${i}`, body: 'Body' })
      made.push(notice!.id)
    }
    const seen: string[] = []
    let url: string | null = '/api/notifications/?limit=2'
    let pages = 0
    while (url && pages < 10) {
      const res = await t.request({ method: 'GET', url, headers: buyer.auth })
      expect(res.statusCode, res.body).toBe(200)
      const page: Inbox = res.json<Inbox>()
      expect(page.results.length).toBeLessThanOrEqual(2)
      expect(page.count).toBe(5)
      seen.push(...page.results.map((notification) => notification.id))
      url = page.next && new URL(page.next).pathname + new URL(page.next).search
      pages += 1
    }
    expect(pages).toBe(3)
    expect(seen).toEqual([...made].reverse())

    expectProblem(await t.request({ method: 'GET', url: '/api/notifications/?cursor=not-a-cursor', headers: buyer.auth }), 422)
    expectProblem(await t.request({ method: 'GET', url: '/api/notifications/?limit=0', headers: buyer.auth }), 422)
  })

  it('answers 401 problem+json without a user', async () => {
    expectProblem(await t.request({ method: 'GET', url: '/api/notifications/' }), 401)
    expectProblem(await read(randomUUID(), {}), 401)
    expectProblem(await readAll({}), 401)
  })
})
