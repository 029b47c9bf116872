/**
 * With WEBHOOK_ALLOW_PRIVATE off (the default) the shop cannot be pointed at its own network:
 * loopback, private and link-local receivers are refused at registration, and an endpoint
 * written while they were allowed is refused where the connection is made. No request reaches
 * the loopback receiver, and the delivery log says why.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { startReceiver, type Receiver } from '../../../test/webhook-receiver.js'
import { createSecretBox } from '../../core/secret-box.js'
import type { DeliveryDto } from './service.js'
import { newSecret } from './signing.js'
import { webhookEndpoints } from './tables.js'

type Headers = Record<string, string>

let t: TestApp
let staff: Headers
let hook: Receiver

beforeAll(async () => {
  t = await createTestApp({ settings: { webhooks: { retryBaseMs: 1, maxAttempts: 2 } } })
  const f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  hook = await startReceiver()
})
afterAll(async () => {
  await hook?.close()
  await t?.close()
})

describe('registration without WEBHOOK_ALLOW_PRIVATE', () => {
  it.each([
    'http://127.0.0.1/',
    'http://[::1]/',
    'http://localhost/',
    'http://10.0.0.1/',
    'http://192.168.1.20:8080/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:127.0.0.1]/',
    'http://[fd00::1]/',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://shop.localhost/',
  ])('refuses %s with a 422 on url', async (url) => {
    const res = await t.request({ method: 'POST', url: '/api/webhooks/', headers: staff, payload: { url, events: ['*'] } })
    const problem = expectProblem(res, 422)
    expect(problem.errors?.url?.join(' ')).toMatch(/Private, loopback and link-local addresses are refused/)
  })

  it('accepts a public name (it is judged again when it is resolved, at every delivery)', async () => {
    const res = await t.request({ method: 'POST', url: '/api/webhooks/', headers: staff, payload: { url: 'https://hooks.example.com/in', events: ['*'], is_active: false } })
    expect(res.statusCode, res.body).toBe(201)
  })

  it('refuses a change of URL to a private address too', async () => {
    const created = await t.request({ method: 'POST', url: '/api/webhooks/', headers: staff, payload: { url: 'https://hooks.example.com/in', events: ['*'], is_active: false } })
    const res = await t.request({ method: 'PATCH', url: `/api/webhooks/${created.json<{ id: string }>().id}/`, headers: staff, payload: { url: 'http://127.0.0.1:9/' } })
    expectProblem(res, 422)
  })
})

describe('delivery without WEBHOOK_ALLOW_PRIVATE', () => {
  it('refuses an endpoint registered while private addresses were allowed: nothing reaches it, the log says why', async () => {
    const box = createSecretBox(t.settings.secretKey, 'webhook-secrets')
    const urls = [hook.url, `http://localhost:${hook.port}/hook`]
    const ids: string[] = []
    for (const url of urls) {
      const [row] = await t.app.platform.database.db.insert(webhookEndpoints).values({ url, events: ['products.changed'], secret_sealed: box.seal(newSecret()) }).returning()
      ids.push(row!.id)
    }
    await t.app.platform.context().tx((tx) => tx.events.publish('catalog.products_changed', { product_ids: [randomUUID()] }))
    await t.settle()

    expect(hook.received).toEqual([])
    const logs = await Promise.all(
      ids.map(async (id) => (await t.request({ method: 'GET', url: `/api/webhooks/${id}/deliveries/`, headers: staff })).json<{ results: DeliveryDto[] }>().results),
    )
    expect(logs.map((log) => log.map((row) => [row.status, row.attempts, row.response_code]))).toEqual([[['failed', 2, null]], [['failed', 2, null]]])
    expect(logs[0]![0]!.last_error).toBe('Refused: 127.0.0.1 is a loopback address')
    expect(logs[1]![0]!.last_error).toBe('Refused: localhost is this machine')
  })
})
