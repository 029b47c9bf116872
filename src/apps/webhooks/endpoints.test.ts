/**
 * /api/webhooks/ over HTTP: staff register, read, change and delete endpoints; anonymous callers
 * get 401, customers 403, unknown ids 404, bad input 422 with the field named. The signing secret
 * is shown at creation and rotation only, and is stored sealed.
 */
import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import type { DeliveryDto, EndpointDto, EndpointWithSecretDto } from './service.js'
import { webhookEndpoints } from './tables.js'

type Headers = Record<string, string>

let t: TestApp
let staff: Headers
let customer: Headers
const UNKNOWN = '00000000-0000-4000-8000-000000000000'

beforeAll(async () => {
  t = await createTestApp({ env: { WEBHOOK_ALLOW_PRIVATE: 'true' } })
  const f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  customer = await f.auth(await f.user())
})
afterAll(() => t?.close())

const create = (payload: object, headers: Headers = staff) => t.request({ method: 'POST', url: '/api/webhooks/', headers, payload })
async function created(payload: object = {}): Promise<EndpointWithSecretDto> {
  const res = await create({ url: 'https://receiver.example.com/hooks', events: ['order.paid'], ...payload })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<EndpointWithSecretDto>()
}

describe('POST /api/webhooks/', () => {
  it('registers an endpoint and shows its secret once, stored sealed', async () => {
    const res = await create({ url: 'https://receiver.example.com/hooks', events: ['order.paid', 'order.created', 'order.paid'], description: 'ERP' })
    expect(res.statusCode, res.body).toBe(201)
    const endpoint = res.json<EndpointWithSecretDto>()
    expect(endpoint).toMatchObject({ url: 'https://receiver.example.com/hooks', events: ['order.paid', 'order.created'], is_active: true, description: 'ERP' })
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/)

    const one = await t.request({ method: 'GET', url: `/api/webhooks/${endpoint.id}/`, headers: staff })
    expect(one.statusCode).toBe(200)
    expect(one.json()).not.toHaveProperty('secret')
    expect(one.body).not.toContain(endpoint.secret)
    const list = await t.request({ method: 'GET', url: '/api/webhooks/?limit=100', headers: staff })
    expect(list.json<{ results: EndpointDto[] }>().results.map((row) => row.id)).toContain(endpoint.id)
    expect(list.body).not.toContain(endpoint.secret)

    const [row] = await t.app.platform.database.db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, endpoint.id))
    expect(row!.secret_sealed).not.toContain(endpoint.secret.slice('whsec_'.length))
  })

  it('answers 401 without a token and 403 to a customer', async () => {
    expectProblem(await create({ url: 'https://x.example.com/', events: ['*'] }, {}), 401)
    expectProblem(await create({ url: 'https://x.example.com/', events: ['*'] }, customer), 403)
    expectProblem(await t.request({ method: 'GET', url: '/api/webhooks/' }), 401)
    expectProblem(await t.request({ method: 'GET', url: '/api/webhooks/', headers: customer }), 403)
    expectProblem(await t.request({ method: 'GET', url: '/api/webhooks/event-types/', headers: customer }), 403)
  })

  it.each([
    ['ftp://receiver.example.com/', 'Only http:// and https://'],
    ['https://user:pass@receiver.example.com/', 'No user name or password'],
    ['not a url', 'Not a URL'],
    [`https://receiver.example.com/${'a'.repeat(2048)}`, undefined],
  ])('refuses the URL %s with a 422 on url', async (url, message) => {
    const problem = expectProblem(await create({ url, events: ['order.paid'] }), 422)
    expect(Object.keys(problem.errors ?? {})).toEqual(['url'])
    if (message) expect(problem.errors!.url!.join(' ')).toContain(message)
  })

  it('refuses unknown event types, an empty list and unknown fields with a 422 naming them', async () => {
    const unknown = expectProblem(await create({ url: 'https://receiver.example.com/', events: ['order.paid', 'order.teleported'] }), 422)
    expect(unknown.errors?.events?.join(' ')).toContain('order.teleported')
    const empty = expectProblem(await create({ url: 'https://receiver.example.com/', events: [] }), 422)
    expect(Object.keys(empty.errors ?? {})).toContain('events')
    const missing = expectProblem(await create({ events: ['*'] }), 422)
    expect(Object.keys(missing.errors ?? {})).toContain('url')
    const extra = expectProblem(await create({ url: 'https://receiver.example.com/', events: ['*'], secret: 'mine' }), 422)
    expect(Object.keys(extra.errors ?? {})).toContain('secret')
  })

  it('accepts "*" and every listed event type', async () => {
    const types = (await t.request({ method: 'GET', url: '/api/webhooks/event-types/', headers: staff })).json<Array<{ type: string; description: string }>>()
    expect(types.map((type) => type.type)).toEqual(expect.arrayContaining(['order.created', 'order.paid', 'order.shipped', 'order.partially_refunded', 'payment.failed', 'payment.refunded', 'payment.flagged', 'products.changed']))
    expect(types.every((type) => type.description.length > 0)).toBe(true)
    expect((await created({ events: types.map((type) => type.type) })).events).toHaveLength(types.length)
    expect((await created({ events: ['*'] })).events).toEqual(['*'])
  })
})

describe('GET /api/webhooks/', () => {
  it('pages newest first with a cursor: every endpoint once', async () => {
    for (let i = 0; i < 3; i++) await created({ description: `page ${i}` })
    const seen: EndpointDto[] = []
    let url: string | null = '/api/webhooks/?limit=2'
    while (url) {
      const res = await t.request({ method: 'GET', url, headers: staff })
      expect(res.statusCode, res.body).toBe(200)
      const page = res.json<{ next: string | null; results: EndpointDto[] }>()
      expect(page.results.length).toBeLessThanOrEqual(2)
      seen.push(...page.results)
      url = page.next && new URL(page.next).pathname + new URL(page.next).search
    }
    expect(new Set(seen.map((row) => row.id)).size).toBe(seen.length)
    expect(seen.length).toBeGreaterThanOrEqual(3)
    const times = seen.map((row) => row.created_at)
    expect([...times].sort().reverse()).toEqual(times)
    expectProblem(await t.request({ method: 'GET', url: '/api/webhooks/?cursor=garbage', headers: staff }), 422)
  })
})

describe('GET, PATCH, DELETE /api/webhooks/{id}/', () => {
  it('changes URL, events, active flag and description', async () => {
    const endpoint = await created({ description: 'before' })
    const res = await t.request({ method: 'PATCH', url: `/api/webhooks/${endpoint.id}/`, headers: staff, payload: { url: 'https://other.example.com/in', events: ['*'], is_active: false, description: null } })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ id: endpoint.id, url: 'https://other.example.com/in', events: ['*'], is_active: false, description: null })
    expect(res.json<EndpointDto>().updated_at > endpoint.updated_at).toBe(true)
    expect(res.json()).not.toHaveProperty('secret')
  })

  it('refuses an empty or invalid change with a 422', async () => {
    const endpoint = await created()
    expectProblem(await t.request({ method: 'PATCH', url: `/api/webhooks/${endpoint.id}/`, headers: staff, payload: {} }), 422)
    const bad = expectProblem(await t.request({ method: 'PATCH', url: `/api/webhooks/${endpoint.id}/`, headers: staff, payload: { events: ['nope'] } }), 422)
    expect(Object.keys(bad.errors ?? {})).toEqual(['events'])
    expectProblem(await t.request({ method: 'PATCH', url: `/api/webhooks/${endpoint.id}/`, headers: staff, payload: { url: 'javascript:alert(1)' } }), 422)
  })

  it('deletes an endpoint: 204, then 404', async () => {
    const endpoint = await created()
    const res = await t.request({ method: 'DELETE', url: `/api/webhooks/${endpoint.id}/`, headers: staff })
    expect(res.statusCode).toBe(204)
    expectProblem(await t.request({ method: 'GET', url: `/api/webhooks/${endpoint.id}/`, headers: staff }), 404)
    expectProblem(await t.request({ method: 'DELETE', url: `/api/webhooks/${endpoint.id}/`, headers: staff }), 404)
  })

  it('answers 404 for an unknown endpoint or delivery, 403 to a customer', async () => {
    for (const [method, url] of [
      ['GET', `/api/webhooks/${UNKNOWN}/`],
      ['PATCH', `/api/webhooks/${UNKNOWN}/`],
      ['DELETE', `/api/webhooks/${UNKNOWN}/`],
      ['GET', `/api/webhooks/${UNKNOWN}/deliveries/`],
      ['POST', `/api/webhooks/${UNKNOWN}/rotate-secret/`],
      ['POST', `/api/webhooks/deliveries/${UNKNOWN}/replay/`],
    ] as const) {
      const payload = method === 'PATCH' ? { is_active: true } : undefined
      expectProblem(await t.request({ method, url, headers: staff, ...(payload ? { payload } : {}) }), 404)
      expectProblem(await t.request({ method, url, headers: customer, ...(payload ? { payload } : {}) }), 403)
    }
  })
})

describe('POST /api/webhooks/{id}/rotate-secret/', () => {
  it('answers a new secret once; reading the endpoint never shows it', async () => {
    const endpoint = await created()
    const res = await t.request({ method: 'POST', url: `/api/webhooks/${endpoint.id}/rotate-secret/`, headers: staff })
    expect(res.statusCode, res.body).toBe(200)
    const rotated = res.json<EndpointWithSecretDto>()
    expect(rotated.secret).toMatch(/^whsec_/)
    expect(rotated.secret).not.toBe(endpoint.secret)
    expect((await t.request({ method: 'GET', url: `/api/webhooks/${endpoint.id}/`, headers: staff })).body).not.toContain(rotated.secret)
  })
})

describe('GET /api/webhooks/{id}/deliveries/', () => {
  it('answers an empty log for a new endpoint, and 422 for an unknown status', async () => {
    const endpoint = await created()
    const res = await t.request({ method: 'GET', url: `/api/webhooks/${endpoint.id}/deliveries/?status=failed`, headers: staff })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<{ results: DeliveryDto[] }>()).toMatchObject({ count: null, next: null, results: [] })
    expectProblem(await t.request({ method: 'GET', url: `/api/webhooks/${endpoint.id}/deliveries/?status=lost`, headers: staff }), 422)
  })
})
