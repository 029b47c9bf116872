/**
 * Sentry reports through the SDK's real client and transport to a local stand-in of Sentry's
 * ingestion endpoint: an unexpected request failure arrives with where it happened and nothing
 * personal; client errors are not reported; a task that failed for good is.
 */
import { Type } from 'typebox'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defineTask, UnrecoverableError } from '../src/core/queue/index.js'
import { createTestApp, type TestApp } from './harness.js'
import { startSentryStandIn, type SentryStandIn } from './sentry-stand-in.js'

let sentry: SentryStandIn
let t: TestApp
beforeAll(async () => {
  sentry = await startSentryStandIn()
  t = await createTestApp({
    env: { SENTRY_DSN: sentry.dsn },
    setup(app) {
      app.post('/test/orders/:number/boom/', async () => {
        throw new Error('insert failed: Key (email)=(ada.lovelace@example.com) already exists')
      })
      app.platform.tasks.register(defineTask({
        name: 'test.broken',
        schema: Type.Object({ n: Type.Integer() }),
        handler: async () => {
          throw new UnrecoverableError('the task broke')
        },
      }))
    },
  })
})
afterAll(async () => {
  await t?.close()
  await sentry?.close()
})

/** The events received so far, once `count` have arrived (polled: the SDK sends in the background). */
async function eventsWhen(count: number): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const events = sentry.envelopes.flatMap((envelope) => envelope.events)
    if (events.length >= count || Date.now() > deadline) return events
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('error reporting to Sentry (SENTRY_DSN)', () => {
  it('sends an unexpected request failure with method, route template, status and request id, and nothing personal', async () => {
    const res = await t.request({
      method: 'POST',
      url: '/test/orders/ORD-SECRET1/boom/?email=grace@example.com',
      headers: { 'x-api-key': 'very-secret-token', cookie: 'session=cookie-secret' },
      payload: { card: '4242424242424242', email: 'grace@example.com' },
    })
    expect(res.statusCode).toBe(500)
    const [event, ...more] = await eventsWhen(1)
    expect(more).toEqual([])
    expect(event).toMatchObject({
      environment: 'test',
      release: expect.stringMatching(/^shop-backend@\d+\.\d+\.\d+/),
      tags: { kind: 'request', method: 'POST', route: '/test/orders/:number/boom/', status: '500', request_id: res.json<{ request_id: string }>().request_id },
      exception: { values: [expect.objectContaining({ type: 'Error', value: 'insert failed: Key (email)=([email]) already exists' })] },
    })
    expect(event).not.toHaveProperty('request')
    expect(event).not.toHaveProperty('user')
    const raw = sentry.envelopes.map((envelope) => envelope.raw).join('\n')
    for (const secret of ['very-secret-token', 'cookie-secret', '4242424242424242', 'grace@example.com', 'ada.lovelace@example.com', 'ORD-SECRET1']) expect(raw).not.toContain(secret)
    expect(sentry.envelopes[0]!.path).toMatch(/^\/api\/42\/envelope\//)
  })

  it('does not report what the client did wrong (4xx)', async () => {
    const before = sentry.envelopes.length
    expect((await t.request({ method: 'GET', url: '/api/products/?limit=abc' })).statusCode).toBe(422)
    expect((await t.request({ method: 'GET', url: '/nowhere/' })).statusCode).toBe(404)
    // A failure reported after them shows the queue in order: nothing came in between.
    await t.request({ method: 'POST', url: '/test/orders/X/boom/' })
    const events = await eventsWhen(before + 1)
    expect(events.slice(before).map((event) => (event.tags as Record<string, string>).route)).toEqual(['/test/orders/:number/boom/'])
  })

  it('sends a task that failed for good with the task, job id and attempts', async () => {
    const before = (await eventsWhen(0)).length
    const { id: jobId } = await t.app.platform.queue.enqueue('test.broken', { n: 1 })
    await t.settle()
    const events = await eventsWhen(before + 1)
    expect(events.slice(before)).toEqual([
      expect.objectContaining({
        tags: { kind: 'task', task: 'test.broken', job_id: jobId, attempts: '1' },
        exception: { values: expect.arrayContaining([expect.objectContaining({ type: 'UnrecoverableError', value: 'the task broke' })]) },
      }),
    ])
  })
})
