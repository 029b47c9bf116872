/**
 * Brute-force limits of /api/auth/: per account (the email in the body, whatever its case) on top
 * of per client address, and per account on password reset requests. Each app below is built with
 * the limit under test; each test counts from a client address of its own.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, suiteRedisUrl, type TestApp } from '../../../test/harness.js'

interface Response {
  statusCode: number
  headers: Record<string, unknown>
  json<T = unknown>(): T
}

const newEmail = (prefix = 'target') => `${prefix}-${randomUUID()}@example.com`
const login = (t: TestApp, email: string, password: string, remoteAddress: string) =>
  t.request({ method: 'POST', url: '/api/auth/login/', payload: { email, password }, remoteAddress })
const requestReset = (t: TestApp, email: string, remoteAddress: string) =>
  t.request({ method: 'POST', url: '/api/auth/password-reset/', payload: { email }, remoteAddress })

function expectRateLimited(res: Response, windowSeconds: number): void {
  expect(res.statusCode).toBe(429)
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
  expect(res.json()).toMatchObject({ status: 429, code: 'rate_limited' })
  const retryAfter = Number(res.headers['retry-after'])
  expect(Number.isInteger(retryAfter)).toBe(true)
  expect(retryAfter).toBeGreaterThanOrEqual(1)
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds)
}

describe('per-account limits', () => {
  let t: TestApp
  let make: ReturnType<typeof factories>
  beforeAll(async () => {
    t = await createTestApp({
      env: { RATE_LIMIT_AUTH: '1000/minute', RATE_LIMIT_AUTH_ACCOUNT: '10/minute', RATE_LIMIT_PASSWORD_RESET: '1000/minute', RATE_LIMIT_PASSWORD_RESET_ACCOUNT: '2/hour' },
    })
    make = factories(t)
  })
  afterAll(() => t.close())

  describe('POST /api/auth/login/', () => {
    it('answers 429 on the 11th attempt for one account while another account from the same address still gets 401', async () => {
      const ip = '10.10.0.1'
      const target = await make.user()
      const bystander = await make.user()
      for (let attempt = 1; attempt <= 10; attempt += 1) {
        expect((await login(t, target.email, `wrong guess number ${attempt}`, ip)).statusCode).toBe(401)
      }
      expectRateLimited(await login(t, target.email, 'wrong guess number 11', ip), 60)
      // Locked out even with the right password until the window passes.
      expectRateLimited(await login(t, target.email, target.password, ip), 60)
      expect((await login(t, bystander.email, 'a wrong password too', ip)).statusCode).toBe(401)
      expect((await login(t, bystander.email, bystander.password, ip)).statusCode).toBe(200)
    })

    it('counts an account across client addresses and whatever the case of its email', async () => {
      const email = newEmail()
      const spellings = [email, email.toUpperCase(), ` ${email} `, email.replace(/^t/, 'T')]
      for (let attempt = 0; attempt < 10; attempt += 1) {
        const res = await login(t, spellings[attempt % spellings.length]!, 'wrong', `10.11.0.${attempt + 1}`)
        expect(res.statusCode).toBe(401)
      }
      expectRateLimited(await login(t, email.toUpperCase(), 'wrong', '10.11.1.1'), 60)
    })
  })

  describe('POST /api/auth/password-reset/', () => {
    it('answers 429 on the third request for one email within the hour while another email gets 202', async () => {
      const ip = '10.12.0.1'
      const user = await make.user()
      expect((await requestReset(t, user.email, ip)).statusCode).toBe(202)
      expect((await requestReset(t, user.email.toUpperCase(), ip)).statusCode).toBe(202)
      expectRateLimited(await requestReset(t, user.email, ip), 3600)
      expect((await requestReset(t, newEmail('other'), ip)).statusCode).toBe(202)

      // The limited request sent nothing: two reset emails, not three.
      for (let round = 0; round < 2; round += 1) {
        await t.app.platform.relay.flush()
        await t.app.platform.queue.drain()
      }
      expect(t.app.platform.mailer.outbox.filter((mail) => mail.to === user.email)).toHaveLength(2)
    })
  })
})

describe('per-address limit', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { RATE_LIMIT_AUTH: '3/minute', RATE_LIMIT_AUTH_ACCOUNT: '1000/minute' } })
  })
  afterAll(() => t.close())

  describe('POST /api/auth/login/', () => {
    it('answers 429 on the 4th sign-in from one address even for different accounts', async () => {
      const ip = '10.20.0.1'
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const res = await login(t, newEmail(), 'whatever it is', ip)
        expect(res.statusCode).toBe(401)
        expect(res.headers['ratelimit-limit']).toBe('3')
      }
      expectRateLimited(await login(t, newEmail(), 'whatever it is', ip), 60)
      expect((await login(t, newEmail(), 'whatever it is', '10.20.0.2')).statusCode).toBe(401)
    })
  })
})

// Every API process must see the same counters, or a brute force spreads over the replicas.
describe.runIf(suiteRedisUrl)('per-account limit with Redis', () => {
  const prefix = `test-shared-${randomUUID()}:`
  const env = { CACHE_KEY_PREFIX: prefix, RATE_LIMIT_AUTH: '1000/minute', RATE_LIMIT_AUTH_ACCOUNT: '3/minute' }
  let first: TestApp
  let second: TestApp
  beforeAll(async () => {
    ;[first, second] = await Promise.all([createTestApp({ env }), createTestApp({ env })])
  })
  afterAll(async () => {
    await Promise.all([first?.close(), second?.close()])
  })

  it('shares the per-account counter between two apps with the same key prefix', async () => {
    expect(first.settings.cache.keyPrefix).toBe(prefix)
    expect(second.settings.cache.keyPrefix).toBe(prefix)
    const email = newEmail()
    expect((await login(first, email, 'wrong', '10.30.0.1')).statusCode).toBe(401)
    expect((await login(second, email, 'wrong', '10.30.0.2')).statusCode).toBe(401)
    expect((await login(first, email, 'wrong', '10.30.0.3')).statusCode).toBe(401)
    expectRateLimited(await login(second, email, 'wrong', '10.30.0.4'), 60)
    expect((await login(second, newEmail(), 'wrong', '10.30.0.4')).statusCode).toBe(401)
  })
})
