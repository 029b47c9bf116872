/**
 * Staff and admin user management: GET /api/accounts/users/ (search, role filter, keyset
 * pagination) and PATCH /api/accounts/users/{id}/ (role, is_active, the last-admin rule), with a
 * PostgreSQL-only check that two admins demoting each other at once leave one admin.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { and, eq, inArray, notInArray, sql } from 'drizzle-orm'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { waitForLockWaiters as lockWaitersReached } from '../../../test/lock-waiters.js'
import { outboxEvents } from '../../core/events/tables.js'
import { users } from './tables.js'
import { expectProblem } from '../../../test/problems.js'

let t: TestApp
let f: ReturnType<typeof factories>
beforeAll(async () => {
  t = await createTestApp()
  f = factories(t)
})
afterAll(() => t.close())


interface ListBody {
  count: number | null
  next: string | null
  previous: string | null
  results: Array<{ id: string; email: string; first_name: string; last_name: string; role: string; is_active: boolean }>
}


const marker = () => `m${randomBytes(5).toString('hex')}`
const db = () => t.app.platform.database.db
const userRow = async (id: string) => (await db().select().from(users).where(eq(users.id, id)))[0]!

const list = async (actor: MadeUser, query = '') => t.request({ method: 'GET', url: `/api/accounts/users/${query}`, headers: await f.auth(actor) })
const listIds = async (actor: MadeUser, query: string) => {
  const res = await list(actor, query)
  expect(res.statusCode, JSON.stringify(res.json())).toBe(200)
  return (res.json() as ListBody).results.map((row) => row.id)
}
const patchUser = async (actor: MadeUser, id: string, payload: Record<string, unknown>) =>
  t.request({ method: 'PATCH', url: `/api/accounts/users/${id}/`, headers: await f.auth(actor), payload })

/** Leaves exactly these active admins: every other admin row becomes staff (tests share one database). */
async function onlyAdmins(...admins: MadeUser[]): Promise<void> {
  const ids = admins.map((admin) => admin.id)
  await db().update(users).set({ role: 'staff' }).where(and(eq(users.role, 'admin'), notInArray(users.id, ids)))
}

const activeAdminCount = async () => (await db().select({ id: users.id }).from(users).where(and(eq(users.role, 'admin'), eq(users.is_active, true)))).length

describe('GET /api/accounts/users/', () => {
  it('answers 401 without a token and 403 to a customer', async () => {
    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/users/' }), 401)
    expectProblem(await list(await f.user()), 403, 'permission_denied')
  })

  it('answers the list envelope with count null to staff and to admins', async () => {
    for (const role of ['staff', 'admin'] as const) {
      const res = await list(await f.user({ role }))
      expect(res.statusCode).toBe(200)
      const body = res.json() as ListBody
      expect(body.count).toBeNull()
      expect(body.previous).toBeNull()
      expect(body.results.length).toBeGreaterThan(0)
      expect(body.results[0]).toEqual(expect.objectContaining({ id: expect.any(String), email: expect.any(String), role: expect.any(String), date_joined: expect.any(String) }))
      expect(body.results[0]).not.toHaveProperty('password_hash')
    }
  })

  it('filters by role when ?role= is given', async () => {
    const tag = marker()
    const [staff, customer, admin] = await Promise.all([f.user({ role: 'staff', last_name: tag }), f.user({ last_name: tag }), f.user({ role: 'admin', last_name: tag })])
    const viewer = await f.user({ role: 'staff' })
    expect(await listIds(viewer, `?search=${tag}&role=staff`)).toEqual([staff.id])
    expect(await listIds(viewer, `?search=${tag}&role=customer`)).toEqual([customer.id])
    expect(await listIds(viewer, `?search=${tag}&role=admin`)).toEqual([admin.id])
    const everyStaff = (await list(viewer, '?role=staff&limit=100')).json() as ListBody
    expect(everyStaff.results.every((row) => row.role === 'staff')).toBe(true)
    expect(everyStaff.results.map((row) => row.id)).toContain(staff.id)
    expectProblem(await list(viewer, '?role=superuser'), 422, 'validation_error')
  })

  it('matches email, first and last name case-insensitively when ?search= is given', async () => {
    const tag = marker()
    const [byEmail, byFirst, byLast] = await Promise.all([
      f.user({ email: `${tag}-Mailbox@Example.com` }),
      f.user({ first_name: `Anne${tag}` }),
      f.user({ last_name: `${tag}Smith` }),
      f.user({ first_name: 'Unrelated' }),
    ])
    const viewer = await f.user({ role: 'staff' })
    expect((await listIds(viewer, `?search=${tag.toUpperCase()}`)).sort()).toEqual([byEmail.id, byFirst.id, byLast.id].sort())
    expect(await listIds(viewer, `?search=${tag}-mailbox@example`)).toEqual([byEmail.id])
    expect(await listIds(viewer, `?search=anne${tag.toUpperCase()}`)).toEqual([byFirst.id])
    expect(await listIds(viewer, `?search=${tag}sMITH`)).toEqual([byLast.id])
  })

  it('treats % and _ in ?search= as literal characters', async () => {
    const tag = marker()
    const [percent, , underscore] = await Promise.all([
      f.user({ first_name: `${tag}50%off` }),
      f.user({ first_name: `${tag}50Xoff` }),
      f.user({ last_name: `${tag}a_b` }),
      f.user({ last_name: `${tag}aXb` }),
    ])
    const viewer = await f.user({ role: 'staff' })
    expect(await listIds(viewer, `?search=${encodeURIComponent(`${tag}50%off`)}`)).toEqual([percent.id])
    expect(await listIds(viewer, `?search=${encodeURIComponent(`${tag}a_b`)}`)).toEqual([underscore.id])
    expect(await listIds(viewer, `?search=${encodeURIComponent('%%%_%')}`)).toEqual([])
    expect(await listIds(viewer, `?search=${encodeURIComponent('\\')}`)).toEqual([])
  })

  it('walks every user exactly once, newest first, when following next links', async () => {
    const tag = marker()
    const base = Date.UTC(2024, 0, 1)
    // Five users share each timestamp, so the order within a tie (by id) is exercised too.
    const made = await Promise.all(Array.from({ length: 25 }, (_, i) => f.user({ last_name: tag, date_joined: new Date(base + Math.floor(i / 5) * 60_000) })))
    const rows = await db().select({ id: users.id, date_joined: users.date_joined }).from(users).where(inArray(users.id, made.map((user) => user.id)))
    const expected = rows
      .sort((a, b) => b.date_joined.getTime() - a.date_joined.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      .map((row) => row.id)

    const viewer = await f.user({ role: 'staff' })
    const headers = await f.auth(viewer)
    const seen: string[] = []
    const pageSizes: number[] = []
    let url: string | null = `/api/accounts/users/?search=${tag}&limit=10`
    while (url) {
      const res = await t.request({ method: 'GET', url, headers })
      expect(res.statusCode, JSON.stringify(res.json())).toBe(200)
      const body = res.json() as ListBody
      expect(body.count).toBeNull()
      pageSizes.push(body.results.length)
      seen.push(...body.results.map((row) => row.id))
      if (body.next) {
        const next = new URL(body.next)
        // The filter and the page size travel with the cursor.
        expect(next.searchParams.get('search')).toBe(tag)
        expect(next.searchParams.get('limit')).toBe('10')
        url = `${next.pathname}${next.search}`
      } else {
        url = null
      }
      expect(pageSizes.length).toBeLessThanOrEqual(4)
    }
    expect(pageSizes).toEqual([10, 10, 5])
    expect(seen).toEqual(expected)
  })

  it('walks every user exactly once when timestamps carry microseconds and a page ends inside a tie', async () => {
    const tag = marker()
    const made = await Promise.all(Array.from({ length: 25 }, () => f.user({ last_name: tag })))
    const ids = made.map((user) => user.id)
    // As rows written in one transaction get them: one now(), finer than JavaScript's milliseconds.
    await db().update(users).set({ date_joined: sql`'2023-06-01T12:00:00.123456Z'::timestamptz` }).where(inArray(users.id, ids))
    const viewer = await f.user({ role: 'staff' })
    const seen: string[] = []
    let query: string | null = `?search=${tag}&limit=10`
    for (let page = 0; query && page < 4; page += 1) {
      const body = (await list(viewer, query)).json() as ListBody
      seen.push(...body.results.map((row) => row.id))
      query = body.next ? new URL(body.next).search : null
    }
    expect(seen).toEqual([...ids].sort().reverse())
  })

  it('continues after the cursor position when the last user of the previous page was deleted', async () => {
    const tag = marker()
    const base = Date.UTC(2022, 0, 1)
    const made = await Promise.all(Array.from({ length: 5 }, (_, i) => f.user({ last_name: tag, date_joined: new Date(base - i * 1000) })))
    const viewer = await f.user({ role: 'staff' })
    const first = (await list(viewer, `?search=${tag}&limit=2`)).json() as ListBody
    expect(first.results.map((row) => row.id)).toEqual([made[0]!.id, made[1]!.id])
    await db().delete(users).where(eq(users.id, made[1]!.id))
    const second = (await list(viewer, new URL(first.next!).search)).json() as ListBody
    expect(second.results.map((row) => row.id)).toEqual([made[2]!.id, made[3]!.id])
  })

  it('answers 422 for a garbage cursor and for a limit out of range', async () => {
    const viewer = await f.user({ role: 'staff' })
    const garbage = ['garbage!!', Buffer.from('null').toString('base64url'), Buffer.from('["not a date","x"]').toString('base64url'), Buffer.from(`["2024-01-01T00:00:00Z","${'z'.repeat(36)}"]`).toString('base64url')]
    for (const cursor of garbage) {
      const body = expectProblem(await list(viewer, `?cursor=${encodeURIComponent(cursor)}`), 422)
      expect(Object.keys(body.errors ?? {}), cursor).toContain('cursor')
    }
    expectProblem(await list(viewer, '?limit=0'), 422)
    expectProblem(await list(viewer, '?limit=101'), 422)
  })
})

describe('PATCH /api/accounts/users/{id}/', () => {
  it('answers 403 to staff and to customers, and 401 without a token', async () => {
    const target = await f.user()
    expectProblem(await patchUser(await f.user({ role: 'staff' }), target.id, { role: 'staff' }), 403)
    expectProblem(await patchUser(await f.user(), target.id, { role: 'admin' }), 403)
    expectProblem(await t.request({ method: 'PATCH', url: `/api/accounts/users/${target.id}/`, payload: { role: 'admin' } }), 401)
    expect((await userRow(target.id)).role).toBe('customer')
  })

  it('changes the role when an admin asks, and the change applies to the user at once', async () => {
    const [admin, target] = await Promise.all([f.user({ role: 'admin' }), f.user()])
    // A token minted while the user was a customer.
    const oldToken = await f.auth(target)
    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/users/', headers: oldToken }), 403)

    const res = await patchUser(admin, target.id, { role: 'staff' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: target.id, role: 'staff', is_active: true })
    expect((await userRow(target.id)).role).toBe('staff')
    expect((await t.request({ method: 'GET', url: '/api/accounts/users/', headers: oldToken })).statusCode).toBe(200)
  })

  it("deactivates a user: their refresh tokens and access token stop working", async () => {
    const [admin, target] = await Promise.all([f.user({ role: 'admin' }), f.user()])
    const session = (await t.request({ method: 'POST', url: '/api/auth/login/', payload: { email: target.email, password: target.password } })).json() as { access: string; refresh: string }
    const bearer = { authorization: `Bearer ${session.access}` }
    expect((await t.request({ method: 'GET', url: '/api/accounts/me/', headers: bearer })).statusCode).toBe(200)

    const res = await patchUser(admin, target.id, { is_active: false })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: target.id, is_active: false })

    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/me/', headers: bearer }), 401)
    expectProblem(await t.request({ method: 'POST', url: '/api/auth/refresh/', payload: { refresh: session.refresh } }), 401)
    expectProblem(await t.request({ method: 'POST', url: '/api/auth/login/', payload: { email: target.email, password: target.password } }), 401)
    const events = await db().select().from(outboxEvents).where(eq(outboxEvents.name, 'user.deactivated'))
    expect(events.map((event) => event.payload)).toContainEqual({ user_id: target.id })

    // Reactivated: signing in works again, but the revoked refresh token stays revoked.
    expect((await patchUser(admin, target.id, { is_active: true })).statusCode).toBe(200)
    expect((await t.request({ method: 'POST', url: '/api/auth/login/', payload: { email: target.email, password: target.password } })).statusCode).toBe(200)
    expectProblem(await t.request({ method: 'POST', url: '/api/auth/refresh/', payload: { refresh: session.refresh } }), 401)
  })

  it('answers 404 for an unknown id and 422 for an invalid role, an empty body or a bad id', async () => {
    const [admin, target] = await Promise.all([f.user({ role: 'admin' }), f.user()])
    expectProblem(await patchUser(admin, randomUUID(), { role: 'staff' }), 404, 'not_found')
    const bad = expectProblem(await patchUser(admin, target.id, { role: 'superuser' }), 422, 'validation_error')
    expect(Object.keys(bad.errors ?? {})).toContain('role')
    expectProblem(await patchUser(admin, target.id, {}), 422, 'validation_error')
    expectProblem(await patchUser(admin, target.id, { is_active: 'sometimes' }), 422, 'validation_error')
    const badId = await patchUser(admin, 'not-a-uuid', { role: 'staff' })
    expect([404, 422]).toContain(badId.statusCode)
    expect((await userRow(target.id)).role).toBe('customer')
  })

  it('refuses with 409 last_admin when the only active admin demotes or deactivates themself', async () => {
    const admin = await f.user({ role: 'admin' })
    await onlyAdmins(admin)
    expectProblem(await patchUser(admin, admin.id, { role: 'staff' }), 409, 'last_admin')
    expectProblem(await patchUser(admin, admin.id, { is_active: false }), 409, 'last_admin')
    expect(await userRow(admin.id)).toMatchObject({ role: 'admin', is_active: true })
    // Changing nothing that matters is fine.
    expect((await patchUser(admin, admin.id, { role: 'admin' })).statusCode).toBe(200)
  })

  it('lets one of two admins demote the other, after which the survivor is the last admin', async () => {
    const [first, second] = await Promise.all([f.user({ role: 'admin' }), f.user({ role: 'admin' })])
    await onlyAdmins(first, second)
    const res = await patchUser(first, second.id, { role: 'staff' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ role: 'staff' })
    // The demoted admin's token no longer passes the admin guard.
    expectProblem(await patchUser(second, first.id, { role: 'staff' }), 403)
    expectProblem(await patchUser(first, first.id, { is_active: false }), 409, 'last_admin')
    expect(await activeAdminCount()).toBe(1)
  })

  it('counts only active admins: an inactive admin does not save the last active one', async () => {
    const [active, dormant] = await Promise.all([f.user({ role: 'admin' }), f.user({ role: 'admin' })])
    await onlyAdmins(active, dormant)
    expect((await patchUser(active, dormant.id, { is_active: false })).statusCode).toBe(200)
    expectProblem(await patchUser(active, active.id, { role: 'customer' }), 409, 'last_admin')
  })
})

describe.runIf(usesPostgres)('PATCH /api/accounts/users/{id}/ concurrently', () => {
  let base: string
  let gate: pg.Client
  beforeAll(async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
    const settings = t.settings.db
    if (settings.kind !== 'postgres') throw new Error('expected PostgreSQL')
    gate = new pg.Client({ connectionString: settings.url })
    await gate.connect()
  })
  afterAll(() => gate.end())

  const waitForLockWaiters = (count: number) => lockWaitersReached(gate, count)

  it('lets exactly one of two admins demoting each other at once succeed, leaving one admin', async () => {
    const [a, b] = await Promise.all([f.user({ role: 'admin' }), f.user({ role: 'admin' })])
    await onlyAdmins(a, b)
    const demote = async (actor: MadeUser, target: MadeUser) =>
      fetch(`${base}/api/accounts/users/${target.id}/`, {
        method: 'PATCH',
        headers: { ...(await f.auth(actor)), 'content-type': 'application/json' },
        body: JSON.stringify({ role: 'staff' }),
      })

    // Hold the admin rows, so both requests are past the guard and inside their transactions
    // before either can take the lock: the check-then-update must be serialised by the database.
    await gate.query('BEGIN')
    await gate.query("SELECT id FROM users WHERE role = 'admin' FOR UPDATE")
    const racing = Promise.all([demote(a, b), demote(b, a)])
    try {
      await waitForLockWaiters(2)
    } finally {
      await gate.query('COMMIT')
    }
    const responses = await racing
    const statuses = responses.map((res) => res.status).sort()
    const bodies = await Promise.all(responses.map((res) => res.json() as Promise<{ code?: string }>))
    expect(statuses, JSON.stringify(bodies)).toEqual([200, 409])
    expect(bodies.find((body) => body.code)?.code).toBe('last_admin')

    const rows = await db().select({ id: users.id, role: users.role }).from(users).where(inArray(users.id, [a.id, b.id]))
    expect(rows.filter((row) => row.role === 'admin')).toHaveLength(1)
    expect(await activeAdminCount()).toBe(1)
  })
})
