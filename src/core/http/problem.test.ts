import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sql } from 'drizzle-orm'
import { Type } from 'typebox'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { ConflictError } from '../errors.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({
    env: { DATA_UPLOAD_MAX_MEMORY_SIZE: '2048' },
    captureLogs: true,
    setup(app) {
      app.post('/test/echo/', {
        schema: {
          body: Type.Object({ email: Type.String({ format: 'email' }), quantity: Type.Integer({ minimum: 1 }) }),
        },
      }, async (request) => request.body)
      app.get('/test/sum/', { schema: { querystring: Type.Object({ a: Type.Integer(), b: Type.Integer() }) } }, async (request) => {
        const { a, b } = request.query as { a: number; b: number }
        return { sum: a + b }
      })
      app.get('/test/boom/', async () => {
        throw new Error('database password is hunter2')
      })
      app.post('/test/store/', { schema: { body: Type.Object({ text: Type.String(), data: Type.Record(Type.String(), Type.String()) }) } }, async (request) => {
        const { text, data } = request.body as { text: string; data: Record<string, string> }
        await t.app.platform.database.db.execute(sql`SELECT ${text}::text AS text, ${JSON.stringify(data)}::jsonb AS data`)
        return { stored: true }
      })
      app.get('/test/sort/', { schema: { querystring: Type.Object({ ordering: Type.Enum(['name', '-name']) }) } }, async () => ({ ok: true }))
      app.post('/test/strict/', { schema: { body: Type.Object({ name: Type.String() }, { additionalProperties: Type.Never() }) } }, async () => ({ ok: true }))
      app.get('/test/conflict/', async () => {
        throw new ConflictError('out_of_stock', 'Only 2 left.')
      })
      app.get('/test/clashing-extensions/', async () => {
        throw Object.assign(new ConflictError('not_payable', 'Cancelled.'), { extensions: { status: 'cancelled', code: 'other', left: 2 } })
      })
    },
  })
})
afterAll(() => t.close())

const expectProblem = (res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, status: number, code: string) => {
  expect(res.statusCode).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
  const body = res.json() as Record<string, unknown>
  expect(body).toMatchObject({ status, code, type: `/problems/${code}` })
  expect(typeof body.title).toBe('string')
  expect(typeof body.detail).toBe('string')
  expect(body.request_id).toBe(res.headers['x-request-id'])
  return body
}

describe('problem details', () => {
  it('keeps its own members when an error carries extensions of the same name', async () => {
    const body = expectProblem(await t.request({ method: 'GET', url: '/test/clashing-extensions/' }), 409, 'not_payable')
    expect(body.left).toBe(2)
  })

  it('answers 404 for an unknown route', async () => {
    const res = await t.request({ method: 'GET', url: '/api/nothing-here/?q=1' })
    const body = expectProblem(res, 404, 'not_found')
    expect(body.instance).toBe('/api/nothing-here/')
  })

  it('answers 400 for malformed JSON', async () => {
    const res = await t.request({ method: 'POST', url: '/test/echo/', headers: { 'content-type': 'application/json' }, payload: '{"email": ' })
    expectProblem(res, 400, 'malformed_json')
  })

  it('answers 422 unsupported_character when the database refuses a NUL in text or in JSON, and 200 without it', async () => {
    expectProblem(await t.request({ method: 'POST', url: '/test/store/', payload: { text: 'a\u0000b', data: {} } }), 422, 'unsupported_character')
    expectProblem(await t.request({ method: 'POST', url: '/test/store/', payload: { text: 'ab', data: { k: 'a\u0000b' } } }), 422, 'unsupported_character')
    expect((await t.request({ method: 'POST', url: '/test/store/', payload: { text: 'ab', data: { k: 'ab' } } })).json()).toEqual({ stored: true })
  })

  it('lists the allowed values when a value is not one of them', async () => {
    const body = expectProblem(await t.request({ method: 'GET', url: '/test/sort/?ordering=size' }), 422, 'validation_error')
    expect(body.errors).toEqual({ ordering: ['Must be one of: name, -name.'] })
  })

  it('names an unknown field of a schema that refuses extra fields', async () => {
    const body = expectProblem(await t.request({ method: 'POST', url: '/test/strict/', payload: { name: 'Mug', colour: 'red' } }), 422, 'validation_error')
    expect(body.errors).toEqual({ colour: ['Unknown field.'] })
  })

  it('answers 422 with per-field errors for a schema violation', async () => {
    const res = await t.request({ method: 'POST', url: '/test/echo/', payload: { email: 'not-an-email', quantity: 0 } })
    const body = expectProblem(res, 422, 'validation_error')
    expect(Object.keys(body.errors as object).sort()).toEqual(['email', 'quantity'])
  })

  it('names a missing field as required', async () => {
    const res = await t.request({ method: 'POST', url: '/test/echo/', payload: { email: 'a@example.com' } })
    expect(expectProblem(res, 422, 'validation_error').errors).toEqual({ quantity: ['This field is required.'] })
  })

  it('validates JSON bodies strictly: a number sent as text is a 422, not converted', async () => {
    for (const quantity of ['5', null, [5], true]) {
      const res = await t.request({ method: 'POST', url: '/test/echo/', payload: { email: 'a@example.com', quantity } })
      expect(expectProblem(res, 422, 'validation_error').errors).toHaveProperty('quantity')
    }
  })

  it('converts query string values to the types their schema names', async () => {
    const res = await t.request({ method: 'GET', url: '/test/sum/?a=2&b=40' })
    expect(res.json()).toEqual({ sum: 42 })
    expectProblem(await t.request({ method: 'GET', url: '/test/sum/?a=2&b=x' }), 422, 'validation_error')
  })

  it('answers 413 for a body over the limit', async () => {
    const res = await t.request({ method: 'POST', url: '/test/echo/', payload: { email: 'a@example.com', quantity: 1, pad: 'x'.repeat(4096) } })
    expectProblem(res, 413, 'payload_too_large')
  })

  it('answers 415 for a content type the route does not take', async () => {
    const res = await t.request({ method: 'POST', url: '/test/echo/', headers: { 'content-type': 'application/xml' }, payload: '<a/>' })
    expectProblem(res, 415, 'unsupported_media_type')
  })

  it('keeps a domain error status and code', async () => {
    const res = await t.request({ method: 'GET', url: '/test/conflict/' })
    expect(expectProblem(res, 409, 'out_of_stock').detail).toBe('Only 2 left.')
  })

  it('answers 500 with a generic body and logs the detail with the request id', async () => {
    const res = await t.request({ method: 'GET', url: '/test/boom/', headers: { 'x-request-id': 'trace-abc-123456' } })
    const body = expectProblem(res, 500, 'internal_error')
    expect(JSON.stringify(body)).not.toContain('hunter2')
    expect(body.request_id).toBe('trace-abc-123456')
    const logged = t.logs.find((line) => line.request_id === 'trace-abc-123456' && line.level === 50)
    expect(JSON.stringify(logged)).toContain('hunter2')
    expect(JSON.stringify(logged)).toContain('stack')
  })
})
