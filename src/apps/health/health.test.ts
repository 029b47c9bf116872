import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, suiteRedisUrl, usesPostgres, type TestApp } from '../../../test/harness.js'

interface Recorded {
  method: string | undefined
  url: string | undefined
  headers: IncomingHttpHeaders
}

/** A node:http stand-in for a service that cannot run here (OpenSearch, Vault); records every request. */
interface StandIn {
  url: string
  requests: Recorded[]
  /** null: accept the request and never answer. */
  answer: ((res: ServerResponse) => void) | null
  close(): Promise<void>
}

async function startStandIn(): Promise<StandIn> {
  const standIn: StandIn = {
    url: '',
    requests: [],
    answer: null,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    standIn.requests.push({ method: req.method, url: req.url, headers: req.headers })
    req.resume()
    standIn.answer?.(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  standIn.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return standIn
}

const json = (status: number, body: unknown) => (res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

/** A TCP server that accepts connections and never sends a byte: a hung Redis. */
async function startSilentTcpServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    }),
  }
}

type Report = {
  status: string
  failed: string[]
  checks: Record<string, { status: string; backend: string; latency_ms: number; error?: string }>
}

/** Times one request: the bound we assert is on the request, not on app start. */
async function timed(t: TestApp, url: string) {
  const started = performance.now()
  const res = await t.request({ method: 'GET', url })
  return { res, ms: performance.now() - started, body: res.json() as Report }
}

const expectNotReady = (res: { statusCode: number; headers: Record<string, unknown> }, body: Report, failed: string[]) => {
  expect(res.statusCode).toBe(503)
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
  expect(body).toMatchObject({ status: 503, code: 'dependency_unavailable' })
  expect(body.failed).toEqual(failed)
  for (const name of failed) expect(body.checks[name]!.status).toBe('error')
}

const databaseBackend = usesPostgres ? 'postgres' : 'pglite'
const cacheBackend = suiteRedisUrl ? 'redis' : 'memory'

describe('health routes', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp()
  })
  afterAll(() => t.close())

  describe('GET /health/live/', () => {
    it('answers 200 {"status":"ok"} with and without the trailing slash', async () => {
      for (const url of ['/health/live/', '/health/live']) {
        const res = await t.request({ method: 'GET', url })
        expect(res.statusCode).toBe(200)
        expect(res.json()).toEqual({ status: 'ok' })
      }
    })
  })

  describe('GET /health/ready/', () => {
    it('answers 200 with database, cache and search when all answer', async () => {
      const res = await t.request({ method: 'GET', url: '/health/ready/' })
      expect(res.statusCode).toBe(200)
      const body = res.json() as Report
      expect(body.status).toBe('ok')
      expect(body.failed).toEqual([])
      expect(Object.keys(body.checks).sort()).toEqual(['cache', 'database', 'search'])
      expect(body.checks.database).toMatchObject({ status: 'ok', backend: databaseBackend })
      expect(body.checks.cache).toMatchObject({ status: 'ok', backend: cacheBackend })
      // Without ELASTICSEARCH_URL, search is PostgreSQL full-text.
      expect(body.checks.search).toMatchObject({ status: 'ok', backend: 'postgres' })
    })
  })

  describe('GET /health/', () => {
    it('reports database, cache, search and queue with a numeric latency each', async () => {
      const res = await t.request({ method: 'GET', url: '/health/' })
      expect(res.statusCode).toBe(200)
      const body = res.json() as Report
      expect(body.status).toBe('ok')
      expect(Object.keys(body.checks).sort()).toEqual(['cache', 'database', 'queue', 'search'])
      for (const check of Object.values(body.checks)) {
        expect(check.status).toBe('ok')
        expect(typeof check.latency_ms).toBe('number')
        expect(check.latency_ms).toBeGreaterThanOrEqual(0)
      }
      expect(body.checks.queue).toMatchObject({ backend: 'in-process', jobs: { waiting: 0, active: 0, failed: 0 } })
    })
  })
})

describe('GET /health/ready/ when the cache is down', () => {
  let refused: TestApp
  let withPassword: TestApp
  let hung: TestApp
  let silent: Awaited<ReturnType<typeof startSilentTcpServer>>
  beforeAll(async () => {
    silent = await startSilentTcpServer()
    // Each app waits up to 2 s for Redis at start: build them side by side.
    ;[refused, withPassword, hung] = await Promise.all([
      createTestApp({ env: { REDIS_URL: 'redis://127.0.0.1:1' }, redis: false }),
      createTestApp({ env: { REDIS_URL: 'redis://:s3cretpw@127.0.0.1:1' }, redis: false, captureLogs: true }),
      createTestApp({ env: { REDIS_URL: `redis://127.0.0.1:${silent.port}`, HEALTH_CHECK_TIMEOUT_MS: '300' }, redis: false }),
    ])
  })
  afterAll(async () => {
    await Promise.all([refused?.close(), withPassword?.close(), hung?.close()])
    await silent?.close()
  })

  it('answers 503 naming only the cache within 2 s when Redis refuses connections', async () => {
    const { res, ms, body } = await timed(refused, '/health/ready/')
    expectNotReady(res, body, ['cache'])
    expect(body.checks.cache!.backend).toBe('redis')
    expect(body.checks.database!.status).toBe('ok')
    expect(body.checks.search!.status).toBe('ok')
    expect(ms).toBeLessThan(2000)
  })

  it('answers 503 naming the cache within the check timeout when Redis never answers', async () => {
    const { res, ms, body } = await timed(hung, '/health/ready/')
    expectNotReady(res, body, ['cache'])
    expect(ms).toBeLessThan(1500)
  })

  it('never shows the Redis password in the answer or the logs', async () => {
    const { res, body } = await timed(withPassword, '/health/')
    expectNotReady(res, body, ['cache'])
    expect(body.checks.cache!.error).toEqual(expect.any(String))
    expect(res.body).not.toContain('s3cretpw')
    expect(JSON.stringify(withPassword.logs)).not.toContain('s3cretpw')
  })
})

describe('GET /health/ready/ with OpenSearch', () => {
  let t: TestApp
  let search: StandIn
  beforeAll(async () => {
    search = await startStandIn()
    t = await createTestApp({ env: { ELASTICSEARCH_URL: search.url, HEALTH_CHECK_TIMEOUT_MS: '300' } })
  })
  afterAll(async () => {
    await t?.close()
    await search?.close()
  })

  it('asks GET /_cluster/health and answers 200 when the cluster is green', async () => {
    search.answer = json(200, { cluster_name: 'test', status: 'green' })
    search.requests.length = 0
    const { res, body } = await timed(t, '/health/ready/')
    expect(res.statusCode).toBe(200)
    expect(body.checks.search).toMatchObject({ status: 'ok', backend: 'opensearch' })
    expect(search.requests).toHaveLength(1)
    expect(search.requests[0]).toMatchObject({ method: 'GET', url: '/_cluster/health' })
    expect(search.requests[0]!.headers.host).toBe(new URL(search.url).host)
  })

  it('answers 503 naming search when the cluster is red', async () => {
    search.answer = json(200, { cluster_name: 'test', status: 'red' })
    const { res, body } = await timed(t, '/health/ready/')
    expectNotReady(res, body, ['search'])
    expect(body.checks.search!.backend).toBe('opensearch')
  })

  it('answers 503 naming search within the timeout when OpenSearch never answers', async () => {
    search.answer = null
    search.requests.length = 0
    const { res, ms, body } = await timed(t, '/health/ready/')
    expectNotReady(res, body, ['search'])
    expect(search.requests).toHaveLength(1)
    expect(ms).toBeLessThan(1500)
  })
})

describe('GET /health/ with Vault', () => {
  let t: TestApp
  let vault: StandIn
  beforeAll(async () => {
    vault = await startStandIn()
    t = await createTestApp({
      env: { USE_VAULT: 'true', VAULT_ADDR: vault.url, VAULT_ROLE_ID: 'role-id-1', VAULT_SECRET_ID: 'secret-id-1' },
    })
  })
  afterAll(async () => {
    await t?.close()
    await vault?.close()
  })

  it('reports vault ok when it answers 200 on GET /v1/sys/health', async () => {
    vault.answer = json(200, { initialized: true, sealed: false, standby: false })
    vault.requests.length = 0
    const res = await t.request({ method: 'GET', url: '/health/' })
    expect(res.statusCode).toBe(200)
    expect((res.json() as Report).checks.vault).toMatchObject({ status: 'ok', backend: 'vault' })
    expect(vault.requests).toHaveLength(1)
    const request = vault.requests[0]!
    expect(request.method).toBe('GET')
    const url = new URL(request.url!, vault.url)
    expect(url.pathname).toBe('/v1/sys/health')
    expect(Object.fromEntries(url.searchParams)).toEqual({ standbyok: 'true', perfstandbyok: 'true' })
    // The health endpoint is unauthenticated: no credential goes with it.
    expect(request.headers['x-vault-token']).toBeUndefined()
    expect(JSON.stringify(request.headers)).not.toContain('secret-id-1')
  })

  it('answers 503 naming vault when Vault is sealed', async () => {
    vault.answer = json(503, { initialized: true, sealed: true })
    const res = await t.request({ method: 'GET', url: '/health/' })
    const body = res.json() as Report
    expectNotReady(res, body, ['vault'])
  })

  it('leaves vault out of readiness', async () => {
    vault.answer = json(503, { initialized: true, sealed: true })
    vault.requests.length = 0
    const res = await t.request({ method: 'GET', url: '/health/ready/' })
    expect(res.statusCode).toBe(200)
    expect((res.json() as Report).checks.vault).toBeUndefined()
    expect(vault.requests).toHaveLength(0)
  })
})

describe('rate limits on health and metrics', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({
      env: { RATE_LIMIT_GLOBAL: '2/minute' },
      setup(app) {
        app.get('/test/limited/', async () => ({ ok: true }))
      },
    })
  })
  afterAll(() => t.close())

  it('never limits /health/live/ or /metrics/ while other routes get 429', async () => {
    for (let i = 0; i < 5; i += 1) {
      expect((await t.request({ method: 'GET', url: '/health/live/' })).statusCode).toBe(200)
      expect((await t.request({ method: 'GET', url: '/metrics/' })).statusCode).toBe(200)
    }
    // The probes above did not use up the limit either.
    expect((await t.request({ method: 'GET', url: '/test/limited/' })).statusCode).toBe(200)
    expect((await t.request({ method: 'GET', url: '/test/limited/' })).statusCode).toBe(200)
    const third = await t.request({ method: 'GET', url: '/test/limited/' })
    expect(third.statusCode).toBe(429)
    expect(third.headers['retry-after']).toBeDefined()
  })
})
