/**
 * Contract checks over every documented route, so a route added later cannot forget them:
 * routes that declare bearer security answer 401 problem+json without a token (before looking at
 * the body), and staff routes answer 403 to a customer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../test/factories.js'
import { createTestApp, type TestApp } from '../../test/harness.js'
import { expectProblem } from '../../test/problems.js'

interface Operation {
  method: string
  path: string
  security?: Array<Record<string, unknown>>
  responses: Record<string, unknown>
}

let t: TestApp
let operations: Operation[]
beforeAll(async () => {
  t = await createTestApp()
  const schema = (await t.request({ method: 'GET', url: '/api/schema/' })).json<{ paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>> }>()
  operations = Object.entries(schema.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ ...operation, method: method.toUpperCase(), path })),
  )
})
afterAll(() => t.close())

/** Routes open to customers whose 403 guards one staff-only option (`?email=` on the order list). */
const PARTLY_STAFF = new Set(['GET /api/orders/'])

/** A concrete URL for a templated path ({id} → a random uuid). */
const urlOf = (path: string) => path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000')
const needsBearer = (operation: Operation) => operation.security?.some((entry) => 'bearerAuth' in entry) ?? false

describe('every bearer-secured route', () => {
  it('exists in the document (the check below is not vacuous)', () => {
    expect(operations.filter(needsBearer).length).toBeGreaterThanOrEqual(14)
  })

  it('answers 401 problem+json without a token, whatever the body', async () => {
    for (const operation of operations.filter(needsBearer)) {
      const res = await t.request({ method: operation.method as 'GET', url: urlOf(operation.path), ...(operation.method === 'GET' || operation.method === 'DELETE' ? {} : { payload: { unexpected: true } }) })
      expect(res.statusCode, `${operation.method} ${operation.path}`).toBe(401)
      expectProblem(res, 401)
    }
  })

  it('answers 403 to a customer on routes that document a 403', async () => {
    const customer = await factories(t).user()
    const headers = await factories(t).auth(customer)
    const staffOnly = operations.filter((operation) => needsBearer(operation) && '403' in operation.responses && !PARTLY_STAFF.has(`${operation.method} ${operation.path}`))
    expect(staffOnly.length).toBeGreaterThanOrEqual(2)
    for (const operation of staffOnly) {
      const res = await t.request({ method: operation.method as 'GET', url: urlOf(operation.path), headers, ...(operation.method === 'GET' ? {} : { payload: { unexpected: true } }) })
      expect(res.statusCode, `${operation.method} ${operation.path}`).toBe(403)
    }
  })
})

describe('GET /api/schema/', () => {
  it('documents every path with a trailing slash, except /.well-known/jwks.json', () => {
    const paths = [...new Set(operations.map((operation) => operation.path))]
    expect(paths).toContain('/.well-known/jwks.json')
    expect(paths.length).toBeGreaterThanOrEqual(20)
    expect(paths.filter((path) => !path.endsWith('/') && path !== '/.well-known/jwks.json')).toEqual([])
  })
})
