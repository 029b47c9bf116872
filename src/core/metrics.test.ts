import { Type } from 'typebox'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, usesPostgres, type TestApp } from '../../test/harness.js'
import { find, parseMetrics, valueOf } from '../../test/prometheus-text.js'
import { defineTask, UnrecoverableError } from './queue/index.js'

describe('GET /metrics/', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({
      env: { DB_POOL_MAX: '7' },
      setup(app) {
        app.get('/test/items/:id/', async (request) => ({ id: (request.params as { id: string }).id }))
        app.platform.tasks.register(defineTask({ name: 'test.noop', schema: Type.Object({ n: Type.Integer() }), handler: async () => undefined }))
        app.platform.tasks.register(defineTask({
          name: 'test.broken',
          schema: Type.Object({}),
          handler: async () => {
            throw new UnrecoverableError('broken on purpose')
          },
        }))
      },
    })
  })
  afterAll(() => t.close())

  const scrape = async () => {
    const res = await t.request({ method: 'GET', url: '/metrics/' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    return { text: res.body, samples: parseMetrics(res.body) }
  }

  it('labels HTTP series with the route template and "(unmatched)", never the raw path', async () => {
    for (const id of ['1', '2', '3']) expect((await t.request({ method: 'GET', url: `/test/items/${id}/` })).statusCode).toBe(200)
    expect((await t.request({ method: 'GET', url: '/test/no-such-route/abc/' })).statusCode).toBe(404)

    const { text, samples } = await scrape()
    const item = { method: 'GET', route: '/test/items/:id/', status: '200' }
    const unmatched = { method: 'GET', route: '(unmatched)', status: '404' }
    expect(valueOf(samples, 'http_requests_total', item)).toBe(3)
    expect(valueOf(samples, 'http_request_duration_seconds_count', item)).toBe(3)
    expect(valueOf(samples, 'http_request_duration_seconds_bucket', { ...item, le: '+Inf' })).toBe(3)
    expect(valueOf(samples, 'http_requests_total', unmatched)).toBe(1)
    expect(valueOf(samples, 'http_request_duration_seconds_count', unmatched)).toBe(1)
    // Only these two routes have been answered so far (this scrape is counted once it is sent).
    expect(find(samples, 'http_requests_total').map((s) => s.labels.route).sort()).toEqual(['(unmatched)', '/test/items/:id/'])
    expect(text).not.toMatch(/route="\/test\/items\/\d/)
    expect(text).not.toContain('no-such-route')
  })

  it('exposes process, pool, queue and outbox gauges', async () => {
    const { samples } = await scrape()
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(find(samples, name), name).not.toHaveLength(0)
    }
    expect(valueOf(samples, 'db_pool_max_connections')).toBe(usesPostgres ? 7 : 1)
    for (const name of ['db_pool_connections', 'db_pool_idle_connections', 'db_pool_waiting_clients']) {
      expect(valueOf(samples, name)).toBeGreaterThanOrEqual(0)
    }
    expect(valueOf(samples, 'task_queue_waiting')).toBe(0)
    expect(valueOf(samples, 'task_queue_active')).toBe(0)
    expect(valueOf(samples, 'task_queue_failed')).toBe(0)
    // A fresh database has no unrelayed events; -1 would mean the backlog query failed.
    expect(valueOf(samples, 'outbox_backlog_events')).toBe(0)
  })

  it('counts task runs by outcome', async () => {
    const { queue } = t.app.platform
    await queue.enqueue('test.noop', { n: 1 })
    await queue.enqueue('test.noop', { n: 2 })
    await queue.enqueue('test.broken', {})
    await queue.drain()

    const { samples } = await scrape()
    expect(valueOf(samples, 'tasks_total', { task: 'test.noop', outcome: 'completed' })).toBe(2)
    expect(valueOf(samples, 'tasks_total', { task: 'test.broken', outcome: 'failed' })).toBe(1)
    expect(find(samples, 'tasks_total', { task: 'test.noop', outcome: 'failed' })).toHaveLength(0)
    expect(valueOf(samples, 'task_duration_seconds_count', { task: 'test.noop' })).toBe(2)
    expect(valueOf(samples, 'task_queue_failed')).toBe(1)
  })
})

describe('GET /metrics/ with METRICS_TOKEN', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { METRICS_TOKEN: 'abc' } })
  })
  afterAll(() => t.close())

  it('answers 401 problem+json without the token or with a wrong one', async () => {
    for (const headers of [{}, { authorization: 'Bearer abd' }, { authorization: 'abc' }]) {
      const res = await t.request({ method: 'GET', url: '/metrics/', headers })
      expect(res.statusCode).toBe(401)
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
      expect(res.json()).toMatchObject({ status: 401, code: 'not_authenticated' })
      expect(res.body).not.toContain('http_requests_total')
    }
  })

  it('answers 200 with the metrics given "Authorization: Bearer abc"', async () => {
    const res = await t.request({ method: 'GET', url: '/metrics/', headers: { authorization: 'Bearer abc' } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    expect(res.body).toContain('# TYPE http_requests_total counter')
  })
})
