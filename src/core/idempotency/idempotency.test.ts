import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { rowsOf } from '../db/index.js'
import { expectProblem } from '../../../test/problems.js'

let t: TestApp
let boomCalls = 0
let slowRuns = 0
/** Each waiter receives the release function of the next request that enters the slow handler. */
const waiters: Array<(release: () => void) => void> = []

beforeAll(async () => {
  t = await createTestApp({
    setup(app) {
      app.post('/test/items/', async (request, reply) => {
        const { name } = request.body as { name: string }
        const result = await app.platform.database.db.execute(sql`INSERT INTO idem_items (name) VALUES (${name}) RETURNING id, name`)
        const [row] = rowsOf<{ id: number; name: string }>(result)
        return reply.code(201).header('location', `/test/items/${row!.id}/`).send(row)
      })
      app.post('/test/required/', { config: { idempotency: 'required' } }, async (_request, reply) => reply.code(201).send({ ok: true }))
      app.post('/test/slow/', async (_request, reply) => {
        const waiter = waiters.shift()
        if (waiter) await new Promise<void>((resolve) => waiter(resolve))
        slowRuns += 1
        return reply.code(201).send({ run: slowRuns })
      })
      app.post('/test/boom/', async () => {
        boomCalls += 1
        throw new Error('boom')
      })
    },
  })
  await t.app.platform.database.db.execute(sql`CREATE TABLE idem_items (id serial PRIMARY KEY, name text NOT NULL)`)
})
afterAll(() => t.close())

async function countItems(name: string): Promise<number> {
  const result = await t.app.platform.database.db.execute(sql`SELECT count(*)::int AS n FROM idem_items WHERE name = ${name}`)
  return rowsOf<{ n: number }>(result)[0]!.n
}

async function countKeys(): Promise<number> {
  const result = await t.app.platform.database.db.execute(sql`SELECT count(*)::int AS n FROM idempotency_keys`)
  return rowsOf<{ n: number }>(result)[0]!.n
}

/** Resolves with the release function once the next slow request is inside its handler (its key claimed). */
function nextSlowEntry(): Promise<() => void> {
  return new Promise((resolve) => waiters.push(resolve))
}

const post = (url: string, key: string | null, payload: unknown, headers: Record<string, string> = {}) =>
  t.request({ method: 'POST', url, payload: payload as object, headers: { ...(key === null ? {} : { 'idempotency-key': key }), ...headers } })


describe('Idempotency-Key', () => {
  it('replays the first response when the same key comes with the same body', async () => {
    const key = randomUUID()
    const name = `replay-${key}`
    const first = await post('/test/items/', key, { name })
    const second = await post('/test/items/', key, { name })

    expect(first.statusCode).toBe(201)
    expect(first.headers['idempotent-replayed']).toBeUndefined()
    expect(second.statusCode).toBe(201)
    expect(second.body).toBe(first.body)
    expect(second.headers['idempotent-replayed']).toBe('true')
    expect(second.headers['content-type']).toBe(first.headers['content-type'])
    expect(second.headers.location).toBe(first.headers.location)
    expect(await countItems(name)).toBe(1)
  })

  it('answers 422 idempotency_key_reused when the same key comes with another body', async () => {
    const key = randomUUID()
    const name = `reused-${key}`
    expect((await post('/test/items/', key, { name })).statusCode).toBe(201)

    const other = await post('/test/items/', key, { name: `${name}-other` })
    expectProblem(other, 422, 'idempotency_key_reused')
    expect(await countItems(name)).toBe(1)
    expect(await countItems(`${name}-other`)).toBe(0)
  })

  it('answers 409 while the first request with the key is still running, then replays it', async () => {
    const key = randomUUID()
    const entered = nextSlowEntry()
    const first = post('/test/slow/', key, { a: 1 })
    const release = await entered
    const runsBefore = slowRuns

    const during = await post('/test/slow/', key, { a: 1 })
    expectProblem(during, 409, 'idempotency_request_in_progress')

    release()
    const done = await first
    expect(done.statusCode).toBe(201)
    expect(slowRuns).toBe(runsBefore + 1)

    const retry = await post('/test/slow/', key, { a: 1 })
    expect(retry.statusCode).toBe(201)
    expect(retry.headers['idempotent-replayed']).toBe('true')
    expect(retry.body).toBe(done.body)
    expect(slowRuns).toBe(runsBefore + 1)
  })

  it('runs the request once per caller when two callers send the same key', async () => {
    const key = randomUUID()
    const name = `scoped-${key}`
    const a = await post('/test/items/', key, { name }, { 'x-cart-token': `cart-a-${key}` })
    const b = await post('/test/items/', key, { name }, { 'x-cart-token': `cart-b-${key}` })
    const againA = await post('/test/items/', key, { name }, { 'x-cart-token': `cart-a-${key}` })

    expect(a.statusCode).toBe(201)
    expect(b.statusCode).toBe(201)
    expect(b.headers['idempotent-replayed']).toBeUndefined()
    expect(b.json<{ id: number }>().id).not.toBe(a.json<{ id: number }>().id)
    expect(againA.headers['idempotent-replayed']).toBe('true')
    expect(againA.body).toBe(a.body)
    expect(await countItems(name)).toBe(2)
  })

  it('answers 400 idempotency_key_required when a route that needs a key gets none', async () => {
    expectProblem(await post('/test/required/', null, {}), 400, 'idempotency_key_required')
    expect((await post('/test/required/', randomUUID(), {})).statusCode).toBe(201)
  })

  it('answers 400 invalid_idempotency_key when the key is too long or has a space', async () => {
    expectProblem(await post('/test/required/', 'k'.repeat(256), {}), 400, 'invalid_idempotency_key')
    expectProblem(await post('/test/required/', 'has space', {}), 400, 'invalid_idempotency_key')
    // 255 visible characters is the longest key allowed.
    expect((await post('/test/required/', `${randomUUID()}${'k'.repeat(219)}`, {})).statusCode).toBe(201)
  })

  it('keeps no 500 answer, so the same key runs again after a failure', async () => {
    const key = randomUUID()
    const before = boomCalls
    expectProblem(await post('/test/boom/', key, { x: 1 }), 500, 'internal_error')
    const again = await post('/test/boom/', key, { x: 1 })
    expectProblem(again, 500, 'internal_error')
    expect(again.headers['idempotent-replayed']).toBeUndefined()
    expect(boomCalls).toBe(before + 2)
    const kept = await t.app.platform.database.db.execute(sql`SELECT 1 FROM idempotency_keys WHERE key = ${key}`)
    expect(rowsOf(kept)).toHaveLength(0)
  })

  it('runs anew when the key has expired', async () => {
    const key = randomUUID()
    const name = `expired-${key}`
    const first = await post('/test/items/', key, { name })
    await t.app.platform.database.db.execute(sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = ${key}`)

    const second = await post('/test/items/', key, { name })
    expect(second.statusCode).toBe(201)
    expect(second.headers['idempotent-replayed']).toBeUndefined()
    expect(second.body).not.toBe(first.body)
    expect(await countItems(name)).toBe(2)
  })

  it('takes over an in-progress claim older than the lock timeout', async () => {
    const key = randomUUID()
    const firstEntered = nextSlowEntry()
    const first = post('/test/slow/', key, { b: 1 })
    const releaseFirst = await firstEntered
    const staleSeconds = t.settings.idempotency.lockTimeoutMs / 1000 + 60
    await t.app.platform.database.db.execute(
      sql`UPDATE idempotency_keys SET locked_at = now() - make_interval(secs => ${staleSeconds}) WHERE key = ${key} AND state = 'in_progress'`,
    )

    // Reaching the handler proves the second request claimed the key instead of getting 409.
    const secondEntered = nextSlowEntry()
    const second = post('/test/slow/', key, { b: 1 })
    const releaseSecond = await secondEntered
    releaseSecond()
    const taken = await second
    expect(taken.statusCode).toBe(201)
    expect(taken.headers['idempotent-replayed']).toBeUndefined()
    releaseFirst()
    expect((await first).statusCode).toBe(201)
  })

  it('runs every time and stores nothing when the header is absent', async () => {
    const name = `plain-${randomUUID()}`
    const keysBefore = await countKeys()
    const first = await post('/test/items/', null, { name })
    const second = await post('/test/items/', null, { name })

    expect(first.statusCode).toBe(201)
    expect(second.statusCode).toBe(201)
    expect(second.headers['idempotent-replayed']).toBeUndefined()
    expect(await countItems(name)).toBe(2)
    expect(await countKeys()).toBe(keysBefore)
  })
})

describe.runIf(usesPostgres)('Idempotency-Key under concurrency', () => {
  it('executes once when ten requests with the same key arrive together', async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = t.app.server.address() as AddressInfo
    const key = randomUUID()
    const name = `concurrent-${key}`
    const answers = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const res = await fetch(`http://127.0.0.1:${port}/test/items/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({ name }),
        })
        return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: await res.text() }
      }),
    )

    expect(await countItems(name)).toBe(1)
    const created = answers.filter((answer) => answer.status === 201)
    const originals = created.filter((answer) => answer.replayed === null)
    expect(originals).toHaveLength(1)
    for (const answer of created) expect(answer.body).toBe(originals[0]!.body)
    for (const answer of answers.filter((item) => item.status !== 201)) {
      expect(answer.status).toBe(409)
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'idempotency_request_in_progress' })
    }
  })
})
