/**
 * Users' tokens through real HTTP: the bearer guard of core/auth (forged, expired, misused and
 * stale tokens), refresh token rotation with reuse detection, and logout.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { rowsOf } from '../../core/db/index.js'
import { expectProblem } from '../../../test/problems.js'

interface Session {
  access: string
  refresh: string
}

let t: TestApp
let make: ReturnType<typeof factories>
beforeAll(async () => {
  t = await createTestApp()
  make = factories(t)
})
afterAll(() => t.close())

const post = (url: string, payload: object, headers: Record<string, string> = {}) => t.request({ method: 'POST', url, payload, headers })
const me = (authorization?: string) => t.request({ method: 'GET', url: '/api/accounts/me/', headers: authorization === undefined ? {} : { authorization } })
const refresh = (token: string) => post('/api/auth/refresh/', { refresh: token })
const execute = (query: ReturnType<typeof sql>) => t.app.platform.database.db.execute(query)
const countOf = async (query: ReturnType<typeof sql>) => rowsOf<{ n: number }>(await execute(query))[0]!.n


async function signIn(user: MadeUser): Promise<Session> {
  const res = await post('/api/auth/login/', { email: user.email, password: user.password })
  expect(res.statusCode).toBe(200)
  return res.json<Session>()
}

/** A token signed like the app signs access tokens; `claims` and `options` change one thing at a time. */
async function forge(user: MadeUser, claims: Record<string, unknown> = {}, options: { audience?: string; issuer?: string; exp?: number; key?: string } = {}) {
  const auth = t.settings.auth
  const now = Math.floor(Date.now() / 1000)
  const token = await new SignJWT({ role: user.role, mfa: false, typ: 'access', ver: 0, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user.id)
    .setIssuer(options.issuer ?? auth.issuer)
    .setAudience(options.audience ?? auth.audience)
    .setIssuedAt(now - 120)
    .setJti(randomUUID())
    .setExpirationTime(options.exp ?? now + 300)
    .sign(new TextEncoder().encode(options.key ?? auth.signingKey))
  return `Bearer ${token}`
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>

describe('GET /api/accounts/me/ (user token guard)', () => {
  it('answers 200 for a token signed with the app key and claims, so the forgeries below differ in one thing only', async () => {
    const user = await make.user()
    const res = await me(await forge(user))
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: user.id })
  })

  it('answers 401 when there is no Authorization header', async () => {
    expectProblem(await me(), 401, 'not_authenticated')
  })

  it('answers 401 invalid_token when the bearer token is garbage', async () => {
    expectProblem(await me('Bearer garbage'), 401, 'invalid_token')
  })

  it('answers 401 invalid_token when the scheme is not Bearer', async () => {
    expectProblem(await me('Basic eHl6OnBhc3N3b3Jk'), 401, 'invalid_token')
  })

  it('answers 401 when the access token expired', async () => {
    const user = await make.user()
    expectProblem(await me(await forge(user, {}, { exp: Math.floor(Date.now() / 1000) - 60 })), 401, 'invalid_token')
  })

  it('answers 401 when the payload was changed and the signature kept', async () => {
    const user = await make.user()
    const genuine = (await make.auth(user)).authorization.slice('Bearer '.length)
    const [header, , signature] = genuine.split('.')
    const tampered = `${header}.${b64({ ...payloadOf(genuine), role: 'admin' })}.${signature}`
    expectProblem(await me(`Bearer ${tampered}`), 401, 'invalid_token')
    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/users/', headers: { authorization: `Bearer ${tampered}` } }), 401, 'invalid_token')
  })

  it('answers 401 when the token is unsigned (alg none)', async () => {
    const user = await make.user()
    const genuine = (await make.auth(user)).authorization.slice('Bearer '.length)
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...payloadOf(genuine), role: 'admin' })}.`
    expectProblem(await me(`Bearer ${unsigned}`), 401, 'invalid_token')
  })

  it('answers 401 when the audience, the issuer or the key is another one', async () => {
    const user = await make.user()
    expectProblem(await me(await forge(user, {}, { audience: 'another-api' })), 401, 'invalid_token')
    expectProblem(await me(await forge(user, {}, { issuer: 'someone-else' })), 401, 'invalid_token')
    expectProblem(await me(await forge(user, {}, { key: randomBytes(32).toString('hex') })), 401, 'invalid_token')
  })

  it('answers 401 when an mfa_token of the sign-in step is used as an access token', async () => {
    const user = await make.user({ mfa_enabled: true })
    const res = await post('/api/auth/login/', { email: user.email, password: user.password })
    expect(res.statusCode).toBe(200)
    const challenge = res.json<{ mfa_required: boolean; mfa_token: string }>()
    expect(challenge.mfa_required).toBe(true)
    expectProblem(await me(`Bearer ${challenge.mfa_token}`), 401, 'invalid_token')
    // Even with the access audience, typ 'mfa' is refused.
    expectProblem(await me(await forge(user, { typ: 'mfa' })), 401, 'invalid_token')
  })

  it('answers 401 at once when the user is deactivated after the token was issued', async () => {
    const user = await make.user()
    const { authorization } = await make.auth(user)
    expect((await me(authorization)).statusCode).toBe(200)
    await execute(sql`UPDATE users SET is_active = false WHERE id = ${user.id}`)
    expectProblem(await me(authorization), 401, 'invalid_token')
  })

  it('answers 403 on a staff route when a staff user was demoted after the token was issued', async () => {
    const staff = await make.user({ role: 'staff' })
    const { authorization } = await make.auth(staff)
    const list = () => t.request({ method: 'GET', url: '/api/accounts/users/', headers: { authorization } })
    expect((await list()).statusCode).toBe(200)
    await execute(sql`UPDATE users SET role = 'customer' WHERE id = ${staff.id}`)
    expectProblem(await list(), 403)
    expect((await me(authorization)).json()).toMatchObject({ role: 'customer' })
  })
})

describe('POST /api/auth/refresh/', () => {
  it('answers a new working pair and spends the old refresh token', async () => {
    const user = await make.user()
    const first = await signIn(user)
    const res = await refresh(first.refresh)
    expect(res.statusCode).toBe(200)
    const next = res.json<Session>()
    expect(next.refresh).not.toBe(first.refresh)
    expect(next.access).not.toBe(first.access)
    expect((await me(`Bearer ${next.access}`)).json()).toMatchObject({ id: user.id })
    expect(await countOf(sql`SELECT count(*)::int AS n FROM refresh_tokens WHERE user_id = ${user.id} AND used_at IS NOT NULL`)).toBe(1)
    // The new one rotates again.
    expect((await refresh(next.refresh)).statusCode).toBe(200)
  })

  it('answers 401 refresh_token_reused and revokes the newer token of its family, but not another sign-in, when a spent token is presented', async () => {
    const user = await make.user()
    const stolen = await signIn(user)
    const otherDevice = await signIn(user)
    const rotated = (await refresh(stolen.refresh)).json<Session>()

    expectProblem(await refresh(stolen.refresh), 401, 'refresh_token_reused')
    expectProblem(await refresh(rotated.refresh), 401, 'invalid_refresh_token')
    expect((await refresh(otherDevice.refresh)).statusCode).toBe(200)
  })

  it('answers 401 when the refresh token expired', async () => {
    const user = await make.user()
    const session = await signIn(user)
    await execute(sql`UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' WHERE user_id = ${user.id}`)
    expectProblem(await refresh(session.refresh), 401, 'invalid_refresh_token')
  })

  it('answers 401 when the refresh token is unknown', async () => {
    expectProblem(await refresh(randomBytes(32).toString('base64url')), 401, 'invalid_refresh_token')
  })

  it('answers 401 when the user was deactivated after signing in', async () => {
    const user = await make.user()
    const session = await signIn(user)
    await execute(sql`UPDATE users SET is_active = false WHERE id = ${user.id}`)
    expectProblem(await refresh(session.refresh), 401, 'invalid_refresh_token')
  })

  it('answers 422 when the refresh field is missing', async () => {
    expectProblem(await post('/api/auth/refresh/', {}), 422)
  })

  // PGlite runs one statement at a time; only PostgreSQL shows whether the row lock holds.
  describe.runIf(usesPostgres)('concurrently', () => {
    it('answers exactly one 200 when the same refresh token is sent five times at once', async () => {
      const user = await make.user()
      const session = await signIn(user)
      const address = await t.app.listen({ host: '127.0.0.1', port: 0 })
      const send = () =>
        fetch(`${address}/api/auth/refresh/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh: session.refresh }) })
      const answers = await Promise.all(Array.from({ length: 5 }, send))
      const statuses = answers.map((res) => res.status).sort()
      await Promise.all(answers.map((res) => res.arrayBuffer()))
      expect(statuses).toEqual([200, 401, 401, 401, 401])
      // One rotation only: the original and its single successor.
      expect(await countOf(sql`SELECT count(*)::int AS n FROM refresh_tokens WHERE user_id = ${user.id}`)).toBe(2)
    })
  })
})

describe('POST /api/auth/logout/', () => {
  it('answers 204 and the refresh token no longer refreshes when signed in', async () => {
    const user = await make.user()
    const session = await signIn(user)
    const res = await post('/api/auth/logout/', { refresh: session.refresh }, { authorization: `Bearer ${session.access}` })
    expect(res.statusCode).toBe(204)
    expect(res.body).toBe('')
    expectProblem(await refresh(session.refresh), 401, 'invalid_refresh_token')
  })

  it('answers 401 and revokes nothing when there is no bearer token', async () => {
    const user = await make.user()
    const session = await signIn(user)
    expectProblem(await post('/api/auth/logout/', { refresh: session.refresh }), 401, 'not_authenticated')
    expect((await refresh(session.refresh)).statusCode).toBe(200)
  })

  it("answers 204 and leaves someone else's refresh token working when it is not the caller's", async () => {
    const caller = await make.user()
    const victim = await make.user()
    const theirs = await signIn(victim)
    const res = await post('/api/auth/logout/', { refresh: theirs.refresh }, await make.auth(caller))
    expect(res.statusCode).toBe(204)
    expect((await refresh(theirs.refresh)).statusCode).toBe(200)
  })
})
