import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, suiteRedisUrl, type TestApp } from '../../../test/harness.js'
import { loadSettings } from '../../config/index.js'
import { rateLimited } from './rate-limit.js'

/** Health routes are exempt from limits, so each app gets a plain route to count. */
function addRoutes(app: FastifyInstance) {
  app.get('/test/ping/', async () => ({ pong: true }))
  app.get('/test/other/', async () => ({ other: true }))
  app.post('/test/login/', { config: rateLimited(app.platform.settings, 'auth') }, async () => ({ signed_in: true }))
}

const ping = (t: TestApp, remoteAddress = '127.0.0.1') => t.request({ method: 'GET', url: '/test/ping/', remoteAddress })

function expectRateLimited(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }) {
  expect(res.statusCode).toBe(429)
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
  const retryAfter = String(res.headers['retry-after'])
  expect(retryAfter).toMatch(/^[1-9]\d*$/)
  const body = res.json() as { code: string; status: number; detail: string }
  expect(body).toMatchObject({ status: 429, code: 'rate_limited' })
  expect(body.detail).toMatch(new RegExp(`\\b${retryAfter} seconds?\\b`))
}

describe('rate limits', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { RATE_LIMIT_GLOBAL: '3/minute', RATE_LIMIT_AUTH: '2/minute' }, setup: addRoutes })
  })
  afterAll(() => t.close())

  it('sends RateLimit headers and answers 429 with Retry-After when the global limit is spent', async () => {
    const answers = [await ping(t), await ping(t), await ping(t)]
    for (const [index, res] of answers.entries()) {
      expect(res.statusCode).toBe(200)
      expect(res.headers['ratelimit-limit']).toBe('3')
      expect(res.headers['ratelimit-remaining']).toBe(String(2 - index))
      expect(Number(res.headers['ratelimit-reset'])).toBeGreaterThan(0)
    }
    expectRateLimited(await ping(t))
  })

  it('counts each client address on its own', async () => {
    for (let i = 0; i < 3; i += 1) expect((await ping(t, '10.1.0.1')).statusCode).toBe(200)
    expectRateLimited(await ping(t, '10.1.0.1'))
    expect((await ping(t, '10.1.0.2')).statusCode).toBe(200)
  })

  it('answers 429 on the third call of a route under the auth rule while other routes still pass', async () => {
    // Each test counts from its own address, so the global counter above does not interfere.
    const remoteAddress = '10.2.0.1'
    const login = () => t.request({ method: 'POST', url: '/test/login/', payload: {}, remoteAddress })
    expect((await login()).statusCode).toBe(200)
    const second = await login()
    expect(second.statusCode).toBe(200)
    expect(second.headers['ratelimit-limit']).toBe('2')
    expectRateLimited(await login())

    const other = await t.request({ method: 'GET', url: '/test/other/', remoteAddress })
    expect(other.statusCode).toBe(200)
    expect(other.headers['ratelimit-limit']).toBe('3')
    expect(other.headers['ratelimit-remaining']).toBe('2')
  })
})

describe(rateLimited.name, () => {
  it('throws for an unknown rule name', () => {
    const settings = loadSettings({ ENVIRONMENT: 'test' })
    expect(() => rateLimited(settings, 'no_such_rule')).toThrow('Unknown rate limit "no_such_rule"')
  })
})

describe('RATE_LIMIT_ENABLED=false', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_GLOBAL: '1/minute', RATE_LIMIT_AUTH: '1/minute' }, setup: addRoutes })
  })
  afterAll(() => t.close())

  it('limits nothing and sends no RateLimit headers', async () => {
    for (let i = 0; i < 3; i += 1) {
      const res = await ping(t)
      expect(res.statusCode).toBe(200)
      expect(res.headers['ratelimit-limit']).toBeUndefined()
      expect(res.headers['ratelimit-remaining']).toBeUndefined()
      const login = await t.request({ method: 'POST', url: '/test/login/', payload: {} })
      expect(login.statusCode).toBe(200)
    }
  })
})

describe.runIf(suiteRedisUrl)('rate limits in Redis', () => {
  let a: TestApp
  let b: TestApp
  beforeAll(async () => {
    // Two API processes of one deployment share the key prefix, hence the counters.
    const env = { RATE_LIMIT_GLOBAL: '3/minute', CACHE_KEY_PREFIX: `ratelimit-test-${randomUUID()}:` }
    ;[a, b] = await Promise.all([createTestApp({ env, setup: addRoutes }), createTestApp({ env, setup: addRoutes })])
  })
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()])
  })

  it('shares one counter between two apps', async () => {
    expect(a.app.platform.cache.backend).toBe('redis')
    expect((await ping(a)).statusCode).toBe(200)
    expect((await ping(a)).statusCode).toBe(200)
    const third = await ping(b)
    expect(third.statusCode).toBe(200)
    expect(third.headers['ratelimit-remaining']).toBe('0')
    expectRateLimited(await ping(b))
  })
})

describe('rate limits with Redis down', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_GLOBAL: '1/minute' }, redis: false, setup: addRoutes })
  })
  afterAll(() => t.close())

  it('lets requests through when the store fails', async () => {
    expect(t.app.platform.cache.backend).toBe('redis')
    for (let i = 0; i < 3; i += 1) expect((await ping(t)).statusCode).toBe(200)
  })
})
