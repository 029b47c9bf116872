/**
 * What counts as a failed attempt (a redirect, which is not followed; no answer in time; nobody
 * listening), the periodic sweep that wakes senders whose deliveries are due (a lost job, a
 * sender that died holding the lease) and leaves a live sender alone, and the pruning of the
 * delivery log after WEBHOOK_LOG_DAYS.
 */
import { randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { startReceiver, type Receiver } from '../../../test/webhook-receiver.js'
import type { DeliveryDto, EndpointWithSecretDto } from './service.js'
import { webhookDeliveries, webhookEndpoints, type DeliveryStatus } from './tables.js'
import { DELIVER_DUE_TASK, PRUNE_DELIVERIES_TASK } from './tasks.js'

type Headers = Record<string, string>

let t: TestApp
let staff: Headers
const cleanups: Array<() => Promise<void> | void> = []

beforeAll(async () => {
  t = await createTestApp({ env: { WEBHOOK_ALLOW_PRIVATE: 'true' }, settings: { webhooks: { retryBaseMs: 1, maxAttempts: 1, timeoutMs: 1000 } } })
  const f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
})
afterEach(async () => {
  await t.settle()
  expect(await t.app.platform.queue.failed()).toEqual([])
  await db().delete(webhookEndpoints)
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(() => t?.close())

const db = () => t.app.platform.database.db

async function receiver(): Promise<Receiver> {
  const started = await startReceiver()
  cleanups.push(() => started.close())
  return started
}

async function register(url: string): Promise<EndpointWithSecretDto> {
  const res = await t.request({ method: 'POST', url: '/api/webhooks/', headers: staff, payload: { url, events: ['products.changed'] } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<EndpointWithSecretDto>()
}

async function onlyDelivery(endpointId: string): Promise<DeliveryDto> {
  const res = await t.request({ method: 'GET', url: `/api/webhooks/${endpointId}/deliveries/`, headers: staff })
  const rows = res.json<{ results: DeliveryDto[] }>().results
  expect(rows).toHaveLength(1)
  return rows[0]!
}

const productsChanged = () => t.app.platform.context().tx((tx) => tx.events.publish('catalog.products_changed', { product_ids: [randomUUID()] }))

/** A delivery row written straight to the table, as a fan-out that never woke its sender leaves it. */
async function pendingDelivery(endpointId: string, values: Partial<typeof webhookDeliveries.$inferInsert> = {}) {
  const eventId = randomUUID()
  const [row] = await db()
    .insert(webhookDeliveries)
    .values({ endpoint_id: endpointId, event_id: eventId, event: 'products.changed', event_at: new Date(), body: JSON.stringify({ id: eventId, type: 'products.changed', created_at: new Date().toISOString(), data: { product_ids: [] } }), ...values })
    .returning()
  return row!
}

describe('a failed attempt', () => {
  it('is a redirect, which is not followed', async () => {
    const hook = await receiver()
    hook.respond((request) => (request.path === '/hook' ? { status: 302, headers: { location: `http://127.0.0.1:${hook.port}/elsewhere` } } : 200))
    const endpoint = await register(hook.url)
    await productsChanged()
    await t.settle()
    expect(hook.received.map((request) => request.path)).toEqual(['/hook'])
    expect(await onlyDelivery(endpoint.id)).toMatchObject({ status: 'failed', attempts: 1, response_code: 302, last_error: 'HTTP 302 (redirects are not followed)' })
  })

  it('is no answer within the timeout', async () => {
    const hook = await receiver()
    let answer!: () => void
    const never = new Promise<void>((resolve) => (answer = resolve))
    cleanups.push(() => answer())
    hook.respond(async () => {
      await never
      return 200
    })
    const endpoint = await register(hook.url)
    await productsChanged()
    await t.settle()
    expect(hook.received).toHaveLength(1)
    expect(await onlyDelivery(endpoint.id)).toMatchObject({ status: 'failed', attempts: 1, response_code: null, last_error: 'No answer within 1 s' })
  })

  it('is nobody listening', async () => {
    const gone = await startReceiver()
    await gone.close()
    const endpoint = await register(gone.url)
    await productsChanged()
    await t.settle()
    expect((await onlyDelivery(endpoint.id)).last_error).toMatch(/ECONNREFUSED/)
  })
})

describe('the webhooks.deliver_due sweep', () => {
  it('sends what a lost job or a dead sender left, and leaves an endpoint a live sender holds', async () => {
    const hook = await receiver()
    const [lost, dead, busy, waiting] = [await register(hook.url), await register(hook.url), await register(hook.url), await register(hook.url)]
    const setLease = (id: string, until: string) => db().update(webhookEndpoints).set({ lease_token: randomUUID(), lease_until: sql`now() + ${until}::interval` }).where(eq(webhookEndpoints.id, id))
    await setLease(dead.id, '-1 minute')
    await setLease(busy.id, '1 hour')
    const rows = [await pendingDelivery(lost.id), await pendingDelivery(dead.id), await pendingDelivery(busy.id)]
    // A retry not due for an hour is not woken (its sender would only schedule itself for then).
    await pendingDelivery(waiting.id, { attempts: 1, next_attempt_at: sql`now() + interval '1 hour'` as unknown as Date })

    // Nobody holds it, but it is still being tried: no replay yet.
    expectProblem(await t.request({ method: 'POST', url: `/api/webhooks/deliveries/${rows[2]!.id}/replay/`, headers: staff }), 409, 'delivery_pending')

    await t.app.platform.queue.enqueue(DELIVER_DUE_TASK, {})
    await t.settle()

    expect(hook.received.map((request) => request.id).sort()).toEqual([rows[0]!.id, rows[1]!.id].sort())
    expect((await onlyDelivery(dead.id)).status).toBe('succeeded')
    expect((await onlyDelivery(busy.id)).status).toBe('pending')
    expect(await onlyDelivery(waiting.id)).toMatchObject({ status: 'pending', attempts: 1 })
  })
})

describe('the webhooks.prune_deliveries task', () => {
  it('deletes finished deliveries older than WEBHOOK_LOG_DAYS, and nothing else', async () => {
    const endpoint = await register('https://hooks.example.com/in')
    await db().update(webhookEndpoints).set({ is_active: false }).where(eq(webhookEndpoints.id, endpoint.id))
    const aged = async (status: DeliveryStatus, days: number) => (await pendingDelivery(endpoint.id, { status, updated_at: sql`now() - ${days} * interval '1 day'` as unknown as Date })).id
    expect(t.settings.webhooks.logDays).toBe(30)
    const gone = [await aged('succeeded', 31), await aged('failed', 45)]
    const kept = [await aged('pending', 60), await aged('succeeded', 29), await aged('failed', 1)]

    await t.app.platform.queue.enqueue(PRUNE_DELIVERIES_TASK, {})
    await t.settle()

    const left = (await db().select({ id: webhookDeliveries.id }).from(webhookDeliveries).where(eq(webhookDeliveries.endpoint_id, endpoint.id))).map((row) => row.id)
    expect(left.sort()).toEqual(kept.sort())
    expect(left.some((id) => gone.includes(id))).toBe(false)
  })
})
