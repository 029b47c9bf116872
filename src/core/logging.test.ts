import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../test/factories.js'
import { createTestApp, type TestApp } from '../../test/harness.js'
import { createLogger, scrubSecrets } from './logging.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({
    captureLogs: true,
    setup(app) {
      app.get('/test/items/:id/', async (request) => ({ id: (request.params as { id: string }).id }))
      app.get('/test/boom/', async () => {
        throw new Error('boom')
      })
      // Logs what careless code might: every header and the whole body.
      app.post('/test/log/', async (request) => {
        request.log.info({ headers: request.headers, body: request.body }, 'x')
        return { ok: true }
      })
    },
  })
})
afterAll(() => t.close())

const linesOf = (requestId: string, msg?: string) =>
  t.logs.filter((line) => line.request_id === requestId && (msg === undefined || line.msg === msg))

describe('request logging', () => {
  it('writes exactly one "request completed" line per request with the route template', async () => {
    const res = await t.request({ method: 'GET', url: '/test/items/42/?token=q-s3cret&x=1', headers: { 'x-request-id': 'log-test-0001' } })
    expect(res.statusCode).toBe(200)
    const lines = linesOf('log-test-0001', 'request completed')
    expect(lines).toHaveLength(1)
    const line = lines[0]!
    expect(line).toMatchObject({ request_id: 'log-test-0001', method: 'GET', route: '/test/items/:id/', path: '/test/items/42/', status: 200 })
    expect(typeof line.duration_ms).toBe('number')
    expect(line.duration_ms as number).toBeGreaterThanOrEqual(0)
    // The query string may carry tokens: it never reaches the log.
    expect(JSON.stringify(linesOf('log-test-0001'))).not.toContain('q-s3cret')
  })

  it('writes one line for a 404 and for a 500 as well', async () => {
    await t.request({ method: 'GET', url: '/test/nowhere/', headers: { 'x-request-id': 'log-test-0404' } })
    await t.request({ method: 'GET', url: '/test/boom/', headers: { 'x-request-id': 'log-test-0500' } })
    const notFound = linesOf('log-test-0404', 'request completed')
    expect(notFound).toHaveLength(1)
    expect(notFound[0]).toMatchObject({ route: '(unmatched)', path: '/test/nowhere/', status: 404 })
    const failed = linesOf('log-test-0500', 'request completed')
    expect(failed).toHaveLength(1)
    expect(failed[0]).toMatchObject({ route: '/test/boom/', status: 500 })
  })
})

describe('X-Request-ID', () => {
  it('echoes a well-formed incoming id in the header and the log line', async () => {
    const res = await t.request({ method: 'GET', url: '/test/items/1/', headers: { 'x-request-id': 'gateway:abc-123.XYZ@edge' } })
    expect(res.headers['x-request-id']).toBe('gateway:abc-123.XYZ@edge')
    expect(linesOf('gateway:abc-123.XYZ@edge', 'request completed')).toHaveLength(1)
  })

  it('replaces a malformed incoming id with a generated UUID', async () => {
    for (const incoming of ['has spaces in it', 'a'.repeat(300), 'short', 'bad\u00e9chars-123']) {
      const res = await t.request({ method: 'GET', url: '/test/items/1/', headers: { 'x-request-id': incoming } })
      const id = res.headers['x-request-id'] as string
      expect(id).toMatch(UUID)
      expect(linesOf(id, 'request completed')).toHaveLength(1)
      expect(t.logs.some((line) => line.request_id === incoming)).toBe(false)
    }
  })

  it('generates a new UUID per request when none is sent', async () => {
    const first = (await t.request({ method: 'GET', url: '/test/items/1/' })).headers['x-request-id'] as string
    const second = (await t.request({ method: 'GET', url: '/test/items/1/' })).headers['x-request-id'] as string
    expect(first).toMatch(UUID)
    expect(second).toMatch(UUID)
    expect(first).not.toBe(second)
    expect(linesOf(first, 'request completed')).toHaveLength(1)
  })
})

describe('log redaction', () => {
  it('redacts credentials in logged request headers and bodies', async () => {
    // A real access token: an invalid bearer would be refused before the route logs anything.
    const { authorization } = await factories(t).auth(await factories(t).user())
    const res = await t.request({
      method: 'POST',
      url: '/test/log/',
      headers: {
        'x-request-id': 'log-test-redact',
        authorization,
        cookie: 'session=sekret-cookie-2',
        'x-service-token': 'sekret-service-3',
      },
      payload: { password: 'sekret-pw-4', token: 'sekret-token-5', secret: 'sekret-secret-6', name: 'visible-name' },
    })
    expect(res.statusCode).toBe(200)
    const [line] = linesOf('log-test-redact', 'x')
    expect(line).toBeDefined()
    expect(line!.body).toEqual({ password: '[redacted]', token: '[redacted]', secret: '[redacted]', name: 'visible-name' })
    expect(line!.headers).toMatchObject({ authorization: '[redacted]', cookie: '[redacted]', 'x-service-token': '[redacted]' })
    const logged = JSON.stringify(linesOf('log-test-redact'))
    expect(logged).not.toContain('sekret-')
    expect(logged).not.toContain(authorization.slice('Bearer '.length))
  })

  it('redacts secrets logged through createLogger directly', () => {
    const lines: string[] = []
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString())
        done()
      },
    })
    const log = createLogger({ log: { level: 'info', pretty: false } }, destination)
    log.info({ password: 'pw-1', token: 'tok-2', secret: 'sec-3', nested: { client_secret: 'cs-4', keep: 'kept-5' } }, 'direct')
    expect(lines).toHaveLength(1)
    const logged = JSON.parse(lines[0]!) as Record<string, unknown>
    expect(logged).toMatchObject({
      msg: 'direct',
      password: '[redacted]',
      token: '[redacted]',
      secret: '[redacted]',
      nested: { client_secret: '[redacted]', keep: 'kept-5' },
    })
    for (const value of ['pw-1', 'tok-2', 'sec-3', 'cs-4']) expect(lines[0]).not.toContain(value)
  })

  it('redacts secret keys at any depth, in arrays and in any case, and leaves other values alone', () => {
    const input = {
      level1: { level2: { level3: { password: 'deep-pw', keep: 1 } } },
      list: [{ token: 'list-token' }, 'plain'],
      headers: { Authorization: 'Bearer x', 'X-Service-Token': 'svc', accept: 'json' },
      when: new Date(0),
    }
    const output = scrubSecrets(input)
    expect(output).toEqual({
      level1: { level2: { level3: { password: '[redacted]', keep: 1 } } },
      list: [{ token: '[redacted]' }, 'plain'],
      headers: { Authorization: '[redacted]', 'X-Service-Token': '[redacted]', accept: 'json' },
      when: new Date(0),
    })
    // The caller's object is not modified.
    expect(input.level1.level2.level3.password).toBe('deep-pw')
    const clean = { a: { b: [1, 2] } }
    expect(scrubSecrets(clean)).toBe(clean)
  })
})
