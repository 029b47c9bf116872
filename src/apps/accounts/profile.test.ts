/**
 * The signed-in user's own resources: /api/accounts/me/ (profile), /me/password/ and the address
 * book under /me/addresses/, through real requests on a migrated database.
 */
import { randomUUID } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { addresses, users } from './tables.js'
import { expectProblem } from '../../../test/problems.js'

let t: TestApp
let f: ReturnType<typeof factories>
beforeAll(async () => {
  t = await createTestApp()
  f = factories(t)
})
afterAll(() => t.close())



const login = (email: string, password: string) => t.request({ method: 'POST', url: '/api/auth/login/', payload: { email, password } })

const userRow = async (id: string) => (await t.app.platform.database.db.select().from(users).where(eq(users.id, id)))[0]!

describe('GET /api/accounts/me/', () => {
  it('answers the profile fields when signed in', async () => {
    const user = await f.user({ first_name: 'Ada', last_name: 'Lovelace' })
    const res = await t.request({ method: 'GET', url: '/api/accounts/me/', headers: await f.auth(user) })
    expect(res.statusCode).toBe(200)
    const body = res.json() as Record<string, unknown>
    expect(body).toMatchObject({ id: user.id, email: user.email, first_name: 'Ada', last_name: 'Lovelace', role: 'customer', email_verified: false })
    const row = await userRow(user.id)
    expect(body.date_joined).toBe(row.date_joined.toISOString())
    // Never the secrets of the account.
    for (const secret of ['password_hash', 'mfa_secret', 'mfa_pending_secret']) expect(body).not.toHaveProperty(secret)
    expect(JSON.stringify(body)).not.toContain(row.password_hash)
  })

  it('answers 401 without a token', async () => {
    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/me/' }), 401)
  })

  it('answers 401 for a token that is not ours', async () => {
    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/me/', headers: { authorization: 'Bearer not.a.token' } }), 401, 'invalid_token')
  })
})

describe('PATCH /api/accounts/me/', () => {
  it('updates the names and persists them when given both', async () => {
    const user = await f.user()
    const headers = await f.auth(user)
    const res = await t.request({ method: 'PATCH', url: '/api/accounts/me/', headers, payload: { first_name: 'Grace', last_name: 'Hopper' } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: user.id, first_name: 'Grace', last_name: 'Hopper' })
    const again = await t.request({ method: 'GET', url: '/api/accounts/me/', headers })
    expect(again.json()).toMatchObject({ first_name: 'Grace', last_name: 'Hopper' })
    expect(await userRow(user.id)).toMatchObject({ first_name: 'Grace', last_name: 'Hopper' })
  })

  it('changes only the given name when one is given', async () => {
    const user = await f.user({ first_name: 'Keep', last_name: 'Old' })
    const res = await t.request({ method: 'PATCH', url: '/api/accounts/me/', headers: await f.auth(user), payload: { last_name: 'New' } })
    expect(res.statusCode).toBe(200)
    expect(await userRow(user.id)).toMatchObject({ first_name: 'Keep', last_name: 'New' })
  })

  it('answers 422 when the body is empty', async () => {
    const user = await f.user()
    expectProblem(await t.request({ method: 'PATCH', url: '/api/accounts/me/', headers: await f.auth(user), payload: {} }), 422, 'validation_error')
  })

  it('answers 422 naming the field when a name has the wrong type or is too long', async () => {
    const user = await f.user({ first_name: 'Same' })
    const headers = await f.auth(user)
    const wrongType = expectProblem(await t.request({ method: 'PATCH', url: '/api/accounts/me/', headers, payload: { first_name: { nested: true } } }), 422, 'validation_error')
    expect(Object.keys(wrongType.errors ?? {})).toContain('first_name')
    const tooLong = expectProblem(await t.request({ method: 'PATCH', url: '/api/accounts/me/', headers, payload: { last_name: 'x'.repeat(151) } }), 422, 'validation_error')
    expect(Object.keys(tooLong.errors ?? {})).toContain('last_name')
    expect((await userRow(user.id)).first_name).toBe('Same')
  })

  it('ignores role and email in the body, so a customer cannot escalate', async () => {
    const user = await f.user()
    const headers = await f.auth(user)
    const res = await t.request({ method: 'PATCH', url: '/api/accounts/me/', headers, payload: { first_name: 'Mallory', role: 'admin', email: 'taken-over@example.com', is_active: true, email_verified: true } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ role: 'customer', email: user.email, email_verified: false, first_name: 'Mallory' })
    expect(await userRow(user.id)).toMatchObject({ role: 'customer', email: user.email, email_verified: false })
    // Alone, they are dropped as unknown fields: nothing changes either way.
    const alone = await t.request({ method: 'PATCH', url: '/api/accounts/me/', headers, payload: { role: 'admin' } })
    expect([200, 422]).toContain(alone.statusCode)
    expect((await userRow(user.id)).role).toBe('customer')
    // The same token still cannot reach staff routes.
    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/users/', headers }), 403)
  })

  it('answers 401 without a token', async () => {
    expectProblem(await t.request({ method: 'PATCH', url: '/api/accounts/me/', payload: { first_name: 'X' } }), 401)
  })
})

describe('POST /api/accounts/me/password/', () => {
  const NEW_PASSWORD = 'another-quite-long-passphrase-42'

  it('answers 422 on errors.current_password when the current password is wrong', async () => {
    const user = await f.user()
    const res = await t.request({ method: 'POST', url: '/api/accounts/me/password/', headers: await f.auth(user), payload: { current_password: 'not-the-password-at-all', new_password: NEW_PASSWORD } })
    const body = expectProblem(res, 422)
    expect(body.errors?.current_password?.length).toBeGreaterThan(0)
    expect((await login(user.email, user.password)).statusCode).toBe(200)
  })

  it('answers 422 on errors.new_password when the new password is weak', async () => {
    const user = await f.user()
    const headers = await f.auth(user)
    for (const weak of ['short1', 'password123', '12345678901234', user.email]) {
      const res = await t.request({ method: 'POST', url: '/api/accounts/me/password/', headers, payload: { current_password: user.password, new_password: weak } })
      const body = expectProblem(res, 422, 'weak_password')
      expect(body.errors?.new_password?.length, weak).toBeGreaterThan(0)
    }
    expect((await login(user.email, user.password)).statusCode).toBe(200)
  })

  it('changes the password and revokes earlier refresh tokens when the current one is right', async () => {
    const user = await f.user()
    const session = (await login(user.email, user.password)).json() as { access: string; refresh: string }
    const res = await t.request({ method: 'POST', url: '/api/accounts/me/password/', headers: { authorization: `Bearer ${session.access}` }, payload: { current_password: user.password, new_password: NEW_PASSWORD } })
    expect(res.statusCode).toBe(200)

    expectProblem(await login(user.email, user.password), 401, 'invalid_credentials')
    const fresh = await login(user.email, NEW_PASSWORD)
    expect(fresh.statusCode).toBe(200)
    expect((fresh.json() as { user: { id: string } }).user.id).toBe(user.id)
    expectProblem(await t.request({ method: 'POST', url: '/api/auth/refresh/', payload: { refresh: session.refresh } }), 401)
    // The session opened after the change is not affected.
    const refreshed = await t.request({ method: 'POST', url: '/api/auth/refresh/', payload: { refresh: (fresh.json() as { refresh: string }).refresh } })
    expect(refreshed.statusCode).toBe(200)
  })

  it('answers 401 without a token', async () => {
    expectProblem(await t.request({ method: 'POST', url: '/api/accounts/me/password/', payload: { current_password: 'a', new_password: NEW_PASSWORD } }), 401)
  })
})

describe('/api/accounts/me/addresses/', () => {
  const address = (overrides: Record<string, unknown> = {}) => ({ full_name: 'Ada Lovelace', line1: '12 St James Square', city: 'London', country: 'gb', ...overrides })

  const create = async (user: MadeUser, overrides: Record<string, unknown> = {}) => {
    const res = await t.request({ method: 'POST', url: '/api/accounts/me/addresses/', headers: await f.auth(user), payload: address(overrides) })
    expect(res.statusCode, JSON.stringify(res.json())).toBe(201)
    return res.json() as Record<string, unknown> & { id: string }
  }

  const get = async (user: MadeUser, id: string) => t.request({ method: 'GET', url: `/api/accounts/me/addresses/${id}/`, headers: await f.auth(user) })

  const addressRow = async (id: string) => (await t.app.platform.database.db.select().from(addresses).where(eq(addresses.id, id)))[0]

  it('creates an address with the country upper-cased and the optional fields defaulted', async () => {
    const user = await f.user()
    const body = await create(user, { phone: '+44 (20) 7946-0000', postal_code: 'SW1Y 4LE' })
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      full_name: 'Ada Lovelace',
      line1: '12 St James Square',
      line2: '',
      city: 'London',
      region: '',
      postal_code: 'SW1Y 4LE',
      country: 'GB',
      phone: '+44 (20) 7946-0000',
      is_default_shipping: false,
      is_default_billing: false,
    })
    expect(await addressRow(body.id)).toMatchObject({ user_id: user.id, country: 'GB' })
  })

  it('answers 422 naming the field for a 3-letter country, a missing line1 or bad phone characters', async () => {
    const user = await f.user()
    const headers = await f.auth(user)
    const cases: Array<[string, Record<string, unknown>]> = [
      ['country', address({ country: 'GBR' })],
      ['line1', { full_name: 'A', city: 'London', country: 'GB' }],
      ['phone', address({ phone: '+44 20 <script>' })],
    ]
    for (const [field, payload] of cases) {
      const body = expectProblem(await t.request({ method: 'POST', url: '/api/accounts/me/addresses/', headers, payload }), 422, 'validation_error')
      expect(Object.keys(body.errors ?? {}), field).toContain(field)
    }
    const list = await t.request({ method: 'GET', url: '/api/accounts/me/addresses/', headers })
    expect((list.json() as { count: number }).count).toBe(0)
  })

  it("lists only the caller's addresses in the list envelope", async () => {
    const [owner, other] = await Promise.all([f.user(), f.user()])
    const first = await create(owner, { line1: 'First' })
    const second = await create(owner, { line1: 'Second' })
    await create(other, { line1: 'Not yours' })
    const res = await t.request({ method: 'GET', url: '/api/accounts/me/addresses/', headers: await f.auth(owner) })
    expect(res.statusCode).toBe(200)
    const body = res.json() as { count: number; next: unknown; previous: unknown; results: Array<{ id: string }> }
    expect(body).toMatchObject({ count: 2, next: null, previous: null })
    expect(body.results.map((row) => row.id).sort()).toEqual([first.id, second.id].sort())
  })

  it("answers 404 for another user's address on GET, PATCH and DELETE and changes nothing", async () => {
    const [owner, intruder] = await Promise.all([f.user(), f.user()])
    const mine = await create(owner, { line1: 'Untouched' })
    const headers = await f.auth(intruder)
    expectProblem(await t.request({ method: 'GET', url: `/api/accounts/me/addresses/${mine.id}/`, headers }), 404, 'not_found')
    expectProblem(await t.request({ method: 'PATCH', url: `/api/accounts/me/addresses/${mine.id}/`, headers, payload: { line1: 'Hijacked' } }), 404, 'not_found')
    expectProblem(await t.request({ method: 'DELETE', url: `/api/accounts/me/addresses/${mine.id}/`, headers }), 404, 'not_found')
    expect(await addressRow(mine.id)).toMatchObject({ user_id: owner.id, line1: 'Untouched' })
    expect((await get(owner, mine.id)).statusCode).toBe(200)
  })

  it('answers 404 for an unknown uuid and 422 for an id that is not a uuid', async () => {
    const user = await f.user()
    const headers = await f.auth(user)
    const unknown = randomUUID()
    expectProblem(await t.request({ method: 'GET', url: `/api/accounts/me/addresses/${unknown}/`, headers }), 404)
    expectProblem(await t.request({ method: 'PATCH', url: `/api/accounts/me/addresses/${unknown}/`, headers, payload: { line1: 'X' } }), 404)
    expectProblem(await t.request({ method: 'DELETE', url: `/api/accounts/me/addresses/${unknown}/`, headers }), 404)
    for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
      const res = await t.request({ method, url: "/api/accounts/me/addresses/not-a-uuid'--/", headers, ...(method === 'PATCH' ? { payload: { line1: 'X' } } : {}) })
      expect([404, 422], method).toContain(res.statusCode)
      expectProblem(res, res.statusCode)
    }
  })

  it('updates an address with PATCH and upper-cases a new country', async () => {
    const user = await f.user()
    const made = await create(user)
    const res = await t.request({ method: 'PATCH', url: `/api/accounts/me/addresses/${made.id}/`, headers: await f.auth(user), payload: { city: 'Paris', country: 'fr' } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: made.id, city: 'Paris', country: 'FR', line1: '12 St James Square' })
    expect(await addressRow(made.id)).toMatchObject({ city: 'Paris', country: 'FR' })
    expectProblem(await t.request({ method: 'PATCH', url: `/api/accounts/me/addresses/${made.id}/`, headers: await f.auth(user), payload: {} }), 422)
  })

  it('keeps one default shipping and one default billing address, independently, when another is made default', async () => {
    const user = await f.user()
    const bystander = await f.user()
    const foreign = await create(bystander, { is_default_shipping: true, is_default_billing: true })
    const first = await create(user, { line1: 'First', is_default_shipping: true, is_default_billing: true })
    const second = await create(user, { line1: 'Second', is_default_shipping: true })

    const flags = async (id: string) => {
      const row = await addressRow(id)
      return [row!.is_default_shipping, row!.is_default_billing]
    }
    // A new default shipping address clears the first one's shipping flag but not its billing flag.
    expect(await flags(first.id)).toEqual([false, true])
    expect(await flags(second.id)).toEqual([true, false])

    const patched = await t.request({ method: 'PATCH', url: `/api/accounts/me/addresses/${second.id}/`, headers: await f.auth(user), payload: { is_default_billing: true } })
    expect(patched.statusCode).toBe(200)
    expect(await flags(first.id)).toEqual([false, false])
    expect(await flags(second.id)).toEqual([true, true])

    const back = await t.request({ method: 'PATCH', url: `/api/accounts/me/addresses/${first.id}/`, headers: await f.auth(user), payload: { is_default_shipping: true } })
    expect(back.json()).toMatchObject({ is_default_shipping: true, is_default_billing: false })
    expect(await flags(second.id)).toEqual([false, true])
    // Another user's defaults are theirs alone.
    expect(await flags(foreign.id)).toEqual([true, true])
  })

  it('deletes with 204, after which the address is 404', async () => {
    const user = await f.user()
    const made = await create(user)
    const headers = await f.auth(user)
    const res = await t.request({ method: 'DELETE', url: `/api/accounts/me/addresses/${made.id}/`, headers })
    expect(res.statusCode).toBe(204)
    expect(res.body).toBe('')
    expectProblem(await get(user, made.id), 404)
    expectProblem(await t.request({ method: 'DELETE', url: `/api/accounts/me/addresses/${made.id}/`, headers }), 404)
    expect(await addressRow(made.id)).toBeUndefined()
  })

  it('answers 401 without a token', async () => {
    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/me/addresses/' }), 401)
    expectProblem(await t.request({ method: 'POST', url: '/api/accounts/me/addresses/', payload: address() }), 401)
  })
})
