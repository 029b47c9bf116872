import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../../../test/harness.js'

interface Operation {
  tags?: string[]
  summary?: string
  responses?: Record<string, unknown>
}
interface OpenApiDocument {
  openapi: string
  components: { schemas: Record<string, unknown> }
  paths: Record<string, Record<string, Operation>>
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

describe('API docs', () => {
  let t: TestApp
  let document: OpenApiDocument
  beforeAll(async () => {
    t = await createTestApp()
    document = (await t.request({ method: 'GET', url: '/api/schema/' })).json<OpenApiDocument>()
  })
  afterAll(() => t.close())

  describe('GET /api/schema/', () => {
    it('answers OpenAPI 3.1 JSON with the Problem schema and the platform paths', async () => {
      const res = await t.request({ method: 'GET', url: '/api/schema/' })
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toMatch(/^application\/json/)
      expect(document.openapi).toMatch(/^3\.1/)
      expect(document.components.schemas.Problem).toMatchObject({ type: 'object', required: expect.arrayContaining(['type', 'status', 'code']) })
      expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/health/live/', '/health/ready/', '/health/', '/metrics/']))
    })

    it('gives every operation tags, a summary and a 2xx response', () => {
      const operations = Object.entries(document.paths).flatMap(([path, item]) =>
        Object.entries(item)
          .filter(([method]) => HTTP_METHODS.has(method))
          .map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })),
      )
      expect(operations.length).toBeGreaterThanOrEqual(4)
      for (const { name, operation } of operations) {
        expect(operation.tags?.length, `${name} has no tags`).toBeGreaterThan(0)
        expect(operation.summary?.trim(), `${name} has no summary`).toBeTruthy()
        const statuses = Object.keys(operation.responses ?? {})
        expect(statuses.some((status) => /^2(\d\d|XX)$/.test(status)), `${name} documents no 2xx response`).toBe(true)
      }
    })
  })

  describe('GET /api/docs/', () => {
    it('serves the interactive docs with every asset from the app itself, no CDN', async () => {
      const res = await t.request({ method: 'GET', url: '/api/docs/' })
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toMatch(/^text\/html/)
      expect(res.body).not.toMatch(/https?:\/\//)

      const assets = [...res.body.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map((match) => match[1]!)
      expect(assets.some((asset) => asset.endsWith('.js'))).toBe(true)
      expect(assets.some((asset) => asset.endsWith('.css'))).toBe(true)
      for (const asset of assets) {
        const url = new URL(asset, 'http://localhost/api/docs/')
        expect(url.host, asset).toBe('localhost')
        const served = await t.request({ method: 'GET', url: url.pathname })
        expect(served.statusCode, url.pathname).toBe(200)
        expect(served.body.length, url.pathname).toBeGreaterThan(0)
      }
    })

    it('loads its spec from the app, not from a remote validator or URL', async () => {
      const initializer = await t.request({ method: 'GET', url: '/api/docs/static/swagger-initializer.js' })
      expect(initializer.statusCode).toBe(200)
      expect(initializer.body).toMatch(/validatorUrl: null\b/)
      expect(initializer.body).toContain("url: resolveUrl('./json')")
    })

    it('serves its own copy of the spec at /api/docs/json', async () => {
      const res = await t.request({ method: 'GET', url: '/api/docs/json' })
      expect(res.statusCode).toBe(200)
      expect(res.json<OpenApiDocument>().paths).toEqual(document.paths)
    })
  })
})

describe('API_DOCS_ENABLED=false', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ env: { API_DOCS_ENABLED: 'false' } })
  })
  afterAll(() => t.close())

  it('answers 404 for /api/docs/ and /api/schema/', async () => {
    for (const url of ['/api/docs/', '/api/docs/json', '/api/schema/']) {
      const res = await t.request({ method: 'GET', url })
      expect(res.statusCode, url).toBe(404)
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    }
    expect((await t.request({ method: 'GET', url: '/health/live/' })).statusCode).toBe(200)
  })
})
