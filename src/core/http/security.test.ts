import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, suiteRedisUrl, usesPostgres, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'

const SHOP = 'https://shop.example.com'

function addRoutes(app: FastifyInstance) {
  app.get('/test/x/', async () => ({ got: true }))
  app.post('/test/x/', async (request, reply) => reply.code(201).send({ received: request.body }))
}


/** The test environment: hosts not enforced, no HSTS, one CORS origin, a 1 KB body limit. */
describe('security in the test environment', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { CORS_ALLOWED_ORIGINS: SHOP, DATA_UPLOAD_MAX_MEMORY_SIZE: '1024' }, setup: addRoutes })
  })
  afterAll(() => t.close())

  it('sets helmet headers on an API response but no HSTS when not deployed', async () => {
    const res = await t.request({ method: 'GET', url: '/test/x/' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['content-security-policy']).toContain("default-src 'none'")
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN')
    expect(res.headers['strict-transport-security']).toBeUndefined()
  })

  it('answers any Host when hosts are not enforced', async () => {
    for (const host of ['evil.com', 'shop.example.com', '10.0.0.5']) {
      expect((await t.request({ method: 'GET', url: '/test/x/', headers: { host } })).statusCode).toBe(200)
    }
  })

  it('allows a preflight from a configured origin with the Idempotency-Key and X-Cart-Token headers', async () => {
    const res = await t.request({
      method: 'OPTIONS',
      url: '/test/x/',
      headers: { origin: SHOP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'idempotency-key,x-cart-token' },
    })
    expect(res.statusCode).toBe(204)
    expect(res.headers['access-control-allow-origin']).toBe(SHOP)
    const allowed = String(res.headers['access-control-allow-headers']).toLowerCase().split(/,\s*/)
    expect(allowed).toEqual(expect.arrayContaining(['idempotency-key', 'x-cart-token']))
    expect(String(res.headers['access-control-allow-methods'])).toContain('POST')
  })

  it('sends no allow-origin to an origin that is not configured', async () => {
    const preflight = await t.request({
      method: 'OPTIONS',
      url: '/test/x/',
      headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' },
    })
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined()
    const simple = await t.request({ method: 'GET', url: '/test/x/', headers: { origin: 'https://evil.example.net' } })
    expect(simple.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('exposes X-Request-ID to a configured origin', async () => {
    const res = await t.request({ method: 'GET', url: '/test/x/', headers: { origin: SHOP } })
    expect(res.headers['access-control-allow-origin']).toBe(SHOP)
    const exposed = String(res.headers['access-control-expose-headers']).toLowerCase().split(/,\s*/)
    expect(exposed).toEqual(expect.arrayContaining(['x-request-id', 'idempotent-replayed', 'retry-after', 'ratelimit-remaining']))
  })

  it('answers 413 when a JSON body is over DATA_UPLOAD_MAX_MEMORY_SIZE', async () => {
    const res = await t.request({ method: 'POST', url: '/test/x/', payload: { pad: 'x'.repeat(2048) } })
    expectProblem(res, 413, 'payload_too_large')
    expect((await t.request({ method: 'POST', url: '/test/x/', payload: { pad: 'x'.repeat(512) } })).statusCode).toBe(201)
  })

  it('answers a route declared with a trailing slash without one, and never redirects a POST', async () => {
    const get = await t.request({ method: 'GET', url: '/test/x' })
    expect(get.statusCode).toBe(200)
    expect(get.json()).toEqual({ got: true })
    const post = await t.request({ method: 'POST', url: '/test/x', payload: { a: 1 } })
    expect(post.statusCode).toBe(201)
    expect(post.headers.location).toBeUndefined()
    expect(post.json()).toEqual({ received: { a: 1 } })
  })
})

describe('CORS_ALLOW_ALL_ORIGINS=true', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { CORS_ALLOW_ALL_ORIGINS: 'true' }, setup: addRoutes })
  })
  afterAll(() => t.close())

  it('allows any origin', async () => {
    const origin = 'https://anything.example.net'
    const preflight = await t.request({ method: 'OPTIONS', url: '/test/x/', headers: { origin, 'access-control-request-method': 'POST' } })
    expect(preflight.statusCode).toBe(204)
    expect(preflight.headers['access-control-allow-origin']).toBe(origin)
    const simple = await t.request({ method: 'GET', url: '/test/x/', headers: { origin } })
    expect(simple.headers['access-control-allow-origin']).toBe(origin)
  })
})

/**
 * A production build: every variable production requires. The connections it would open
 * (Redis, SMTP) point at what this suite has, since this file only checks the HTTP layer.
 */
describe('security in production', () => {
  let t: TestApp
  beforeAll(async () => {
    const secret = () => randomBytes(32).toString('hex')
    t = await createTestApp({
      env: {
        ENVIRONMENT: 'production',
        SECRET_KEY: secret() + secret(),
        ALLOWED_HOSTS: 'shop.example.com,.example.org',
        ...(usesPostgres ? {} : { DATABASE_URL: 'postgres://unused@127.0.0.1:5432/unused' }),
        REDIS_URL: suiteRedisUrl ?? 'redis://127.0.0.1:6379/0',
        CELERY_BROKER_URL: 'redis://127.0.0.1:6379/1',
        CELERY_RESULT_BACKEND: 'redis://127.0.0.1:6379/2',
        SERVICE_AUTH_SECRET_DJANGO_BACKEND: secret(),
        SERVICE_AUTH_SECRET_API_GATEWAY: secret(),
        SERVICE_AUTH_SECRET_CELERY_WORKER: secret(),
        LOG_LEVEL: 'silent',
      },
      settings: { cache: { redisUrl: suiteRedisUrl }, email: { backend: 'memory' } },
      setup: addRoutes,
    })
  })
  afterAll(() => t.close())

  it('enforces allowed hosts and sends HSTS', async () => {
    expect(t.settings.environment).toBe('production')
    const res = await t.request({ method: 'GET', url: '/test/x/', headers: { host: 'shop.example.com' } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains')
  })

  it('answers a host that matches a ".example.org" pattern, the domain itself included', async () => {
    for (const host of ['api.example.org', 'example.org', 'SHOP.EXAMPLE.COM:443']) {
      expect((await t.request({ method: 'GET', url: '/test/x/', headers: { host } })).statusCode, host).toBe(200)
    }
  })

  it('answers 400 disallowed_host for any other Host', async () => {
    for (const host of ['evil.com', 'notexample.org', 'shop.example.com.evil.com']) {
      expectProblem(await t.request({ method: 'GET', url: '/test/x/', headers: { host } }), 400, 'disallowed_host')
    }
  })

  it('lets health probes through whatever the Host', async () => {
    const res = await t.request({ method: 'GET', url: '/health/live/', headers: { host: '10.0.0.5' } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'ok' })
  })
})
