/**
 * Two-factor sign-in: TOTP setup/enable/disable under /api/auth/mfa/ and the second login step
 * /api/auth/login/mfa/. Codes are computed here with `otpauth` from the secret the API hands out,
 * independently of the app's own TOTP code; a staff account under REQUIRE_STAFF_MFA goes last.
 */
import { eq } from 'drizzle-orm'
import { decodeJwt, SignJWT } from 'jose'
import { Secret, TOTP } from 'otpauth'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { users } from './tables.js'
import { expectProblem } from '../../../test/problems.js'

const SHOP_NAME = 'Test Shop & Co'

let t: TestApp
let f: ReturnType<typeof factories>
beforeAll(async () => {
  t = await createTestApp({ env: { SHOP_NAME } })
  f = factories(t)
})
afterAll(() => t.close())



const totp = (secret: string) => new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' })
/** The code of the period after the current one (accepted within the drift window, and newer than any code used so far). */
const nextCode = (secret: string) => totp(secret).generate({ timestamp: Date.now() + 30_000 })

const login = (email: string, password: string) => t.request({ method: 'POST', url: '/api/auth/login/', payload: { email, password } })
const loginMfa = (mfa_token: string, code: string) => t.request({ method: 'POST', url: '/api/auth/login/mfa/', payload: { mfa_token, code } })
const post = async (user: MadeUser, url: string, payload?: Record<string, unknown>) =>
  t.request({ method: 'POST', url, headers: await f.auth(user), ...(payload ? { payload } : {}) })
const userRow = async (id: string) => (await t.app.platform.database.db.select().from(users).where(eq(users.id, id)))[0]!

/** A user with two-factor on: the secret, the code that enabled it and the recovery codes. */
async function userWithMfa(overrides: Parameters<typeof f.user>[0] = {}) {
  const user = await f.user(overrides)
  const setup = (await post(user, '/api/auth/mfa/setup/')).json() as { secret: string; otpauth_url: string }
  const enableCode = totp(setup.secret).generate()
  const enabled = await post(user, '/api/auth/mfa/enable/', { code: enableCode })
  expect(enabled.statusCode, JSON.stringify(enabled.json())).toBe(200)
  return { user, secret: setup.secret, enableCode, recoveryCodes: (enabled.json() as { recovery_codes: string[] }).recovery_codes }
}

async function mfaToken(user: MadeUser): Promise<string> {
  const res = await login(user.email, user.password)
  expect(res.statusCode).toBe(200)
  const body = res.json() as { mfa_required?: boolean; mfa_token?: string; access?: string }
  expect(body.mfa_required).toBe(true)
  return body.mfa_token!
}

describe('POST /api/auth/mfa/setup/', () => {
  it('answers a base32 secret and an otpauth URL naming the secret and the issuer', async () => {
    const user = await f.user()
    const res = await post(user, '/api/auth/mfa/setup/')
    expect(res.statusCode).toBe(200)
    const { secret, otpauth_url } = res.json() as { secret: string; otpauth_url: string }
    expect(secret).toMatch(/^[A-Z2-7]{32}$/)
    const url = new URL(otpauth_url)
    expect(url.protocol).toBe('otpauth:')
    expect(url.host).toBe('totp')
    expect(url.searchParams.get('secret')).toBe(secret)
    expect(url.searchParams.get('issuer')).toBe(SHOP_NAME)
    expect(decodeURIComponent(url.pathname)).toContain(user.email)
    // Pending only: signing in still needs no second factor.
    expect((await userRow(user.id)).mfa_enabled).toBe(false)
    expect((await login(user.email, user.password)).json()).toHaveProperty('access')
  })

  it('stores the secret encrypted, never as the base32 text', async () => {
    const { user, secret } = await userWithMfa()
    const row = await userRow(user.id)
    expect(row.mfa_enabled).toBe(true)
    expect(row.mfa_secret).toEqual(expect.any(String))
    expect(row.mfa_secret).not.toContain(secret)
    expect(row.mfa_secret!.toUpperCase()).not.toContain(secret)
    expect(row.mfa_pending_secret).toBeNull()

    const pending = await f.user()
    const setup = (await post(pending, '/api/auth/mfa/setup/')).json() as { secret: string }
    expect((await userRow(pending.id)).mfa_pending_secret).not.toContain(setup.secret)
  })

  it('answers 409 when two-factor is already on', async () => {
    const { user } = await userWithMfa()
    expectProblem(await post(user, '/api/auth/mfa/setup/'), 409, 'mfa_state')
  })

  it('answers 401 without a token', async () => {
    expectProblem(await t.request({ method: 'POST', url: '/api/auth/mfa/setup/' }), 401)
  })
})

describe('POST /api/auth/mfa/enable/', () => {
  it('answers 422 invalid_mfa_code for a wrong code and keeps two-factor off', async () => {
    const user = await f.user()
    const { secret } = (await post(user, '/api/auth/mfa/setup/')).json() as { secret: string }
    const right = totp(secret).generate()
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0')
    expectProblem(await post(user, '/api/auth/mfa/enable/', { code: wrong }), 422, 'invalid_mfa_code')
    expectProblem(await post(user, '/api/auth/mfa/enable/', { code: 'abcdef' }), 422, 'invalid_mfa_code')
    expect((await userRow(user.id)).mfa_enabled).toBe(false)
  })

  it('answers ten distinct recovery codes for the current code', async () => {
    const { user, recoveryCodes } = await userWithMfa()
    expect(recoveryCodes).toHaveLength(10)
    expect(new Set(recoveryCodes).size).toBe(10)
    for (const code of recoveryCodes) expect(code).toMatch(/^\S{6,}$/)
    expect((await userRow(user.id)).mfa_enabled).toBe(true)
  })

  it('answers 409 when setup was never started', async () => {
    const user = await f.user()
    expectProblem(await post(user, '/api/auth/mfa/enable/', { code: '123456' }), 409, 'mfa_state')
  })

  it('answers 422 for a code from a secret other than the pending one', async () => {
    const user = await f.user()
    const first = (await post(user, '/api/auth/mfa/setup/')).json() as { secret: string }
    // A second setup replaces the pending secret: codes of the first one no longer count.
    const second = (await post(user, '/api/auth/mfa/setup/')).json() as { secret: string }
    expect(second.secret).not.toBe(first.secret)
    expectProblem(await post(user, '/api/auth/mfa/enable/', { code: totp(first.secret).generate() }), 422, 'invalid_mfa_code')
    expect((await post(user, '/api/auth/mfa/enable/', { code: totp(second.secret).generate() })).statusCode).toBe(200)
  })
})

describe('POST /api/auth/login/mfa/', () => {
  it('asks for the second factor instead of answering tokens when two-factor is on', async () => {
    const { user } = await userWithMfa()
    const res = await login(user.email, user.password)
    expect(res.statusCode).toBe(200)
    const body = res.json() as Record<string, unknown>
    expect(body).toEqual({ mfa_required: true, mfa_token: expect.any(String) })
    expect(body).not.toHaveProperty('access')
    expect(body).not.toHaveProperty('refresh')
    // The mfa token is not an access token.
    expectProblem(await t.request({ method: 'GET', url: '/api/accounts/me/', headers: { authorization: `Bearer ${body.mfa_token as string}` } }), 401)
  })

  it('refuses the code that enabled two-factor (replay) and accepts the next period once, with an mfa session', async () => {
    const { user, secret, enableCode } = await userWithMfa()
    const token = await mfaToken(user)
    expectProblem(await loginMfa(token, enableCode), 422, 'invalid_mfa_code')

    const code = nextCode(secret)
    const res = await loginMfa(token, code)
    expect(res.statusCode, JSON.stringify(res.json())).toBe(200)
    const session = res.json() as { access: string; refresh: string; user: { id: string; mfa_enabled: boolean } }
    expect(session.user).toMatchObject({ id: user.id, mfa_enabled: true })
    expect(decodeJwt(session.access)).toMatchObject({ sub: user.id, mfa: true, typ: 'access' })
    expect((await t.request({ method: 'GET', url: '/api/accounts/me/', headers: { authorization: `Bearer ${session.access}` } })).statusCode).toBe(200)

    // The same code again, even with a fresh mfa token, is a replay.
    expectProblem(await loginMfa(await mfaToken(user), code), 422, 'invalid_mfa_code')

    // A refreshed session keeps the second factor it was signed in with.
    const refreshed = await t.request({ method: 'POST', url: '/api/auth/refresh/', payload: { refresh: session.refresh } })
    expect(refreshed.statusCode).toBe(200)
    expect(decodeJwt((refreshed.json() as { access: string }).access)).toMatchObject({ mfa: true })
  })

  it('accepts a recovery code once, in any case and spacing, and refuses it the second time', async () => {
    const { user, recoveryCodes } = await userWithMfa()
    const [first, second] = recoveryCodes as [string, string]
    const res = await loginMfa(await mfaToken(user), first)
    expect(res.statusCode).toBe(200)
    expect(decodeJwt((res.json() as { access: string }).access)).toMatchObject({ sub: user.id, mfa: true })
    expectProblem(await loginMfa(await mfaToken(user), first), 422, 'invalid_mfa_code')
    expect((await loginMfa(await mfaToken(user), ` ${second.toUpperCase()} `)).statusCode).toBe(200)
  })

  it('answers 422 for a wrong code', async () => {
    const { user, secret } = await userWithMfa()
    const token = await mfaToken(user)
    const right = nextCode(secret)
    const wrong = String((Number(right) + 500_000) % 1_000_000).padStart(6, '0')
    expectProblem(await loginMfa(token, wrong), 422, 'invalid_mfa_code')
    expectProblem(await loginMfa(token, 'zzzz-zzzz'), 422, 'invalid_mfa_code')
  })

  it('answers 401 for an expired, a tampered or a foreign-key mfa token, and for an access token', async () => {
    const { user, secret, recoveryCodes } = await userWithMfa()
    const auth = t.settings.auth
    const key = new TextEncoder().encode(auth.signingKey)
    const mfaClaims = () =>
      new SignJWT({ role: user.role, mfa: false, typ: 'mfa' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(user.id).setIssuer(auth.issuer).setAudience(`${auth.audience}:mfa`)
    const now = Math.floor(Date.now() / 1000)
    const expired = await mfaClaims().setIssuedAt(now - 600).setExpirationTime(now - 60).sign(key)
    const foreign = await mfaClaims().setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode('some-other-signing-key-of-enough-length-0123456789'))

    const genuine = await mfaToken(user)
    const [header, payload, signature] = genuine.split('.') as [string, string, string]
    const forgedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(genuine), sub: '00000000-0000-4000-8000-000000000000' })).toString('base64url')
    const tampered = [`${header}.${forgedPayload}.${signature}`, `${header}.${payload}.${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`]

    const access = (await f.auth(user)).authorization.slice('Bearer '.length)
    for (const token of [expired, foreign, ...tampered, access]) {
      expectProblem(await loginMfa(token, recoveryCodes[0]!), 401, 'invalid_mfa_token')
    }
    // None of them spent the recovery code or the TOTP step.
    expect((await loginMfa(genuine, recoveryCodes[0]!)).statusCode).toBe(200)
    expect((await loginMfa(await mfaToken(user), nextCode(secret))).statusCode).toBe(200)
  })

  it('answers 401 when the account was deactivated after the password step', async () => {
    const { user, recoveryCodes } = await userWithMfa()
    const token = await mfaToken(user)
    await t.app.platform.database.db.update(users).set({ is_active: false }).where(eq(users.id, user.id))
    expectProblem(await loginMfa(token, recoveryCodes[0]!), 401)
  })
})

describe('POST /api/auth/mfa/disable/', () => {
  it('turns two-factor off with a valid code, after which login answers tokens again', async () => {
    const { user, secret, enableCode } = await userWithMfa()
    // The code that enabled it cannot be replayed here either.
    expectProblem(await post(user, '/api/auth/mfa/disable/', { code: enableCode }), 422, 'invalid_mfa_code')
    expect((await userRow(user.id)).mfa_enabled).toBe(true)

    const res = await post(user, '/api/auth/mfa/disable/', { code: nextCode(secret) })
    expect(res.statusCode, JSON.stringify(res.json())).toBe(200)
    const row = await userRow(user.id)
    expect(row).toMatchObject({ mfa_enabled: false, mfa_secret: null })
    const session = (await login(user.email, user.password)).json() as Record<string, unknown>
    expect(session).toHaveProperty('access')
    expect(session).not.toHaveProperty('mfa_required')
    expect(decodeJwt(session.access as string)).toMatchObject({ mfa: false })
  })

  it('turns two-factor off with a recovery code and answers 409 when it is already off', async () => {
    const { user, recoveryCodes } = await userWithMfa()
    expectProblem(await post(user, '/api/auth/mfa/disable/', { code: 'wrong-code' }), 422, 'invalid_mfa_code')
    expect((await post(user, '/api/auth/mfa/disable/', { code: recoveryCodes[3]! })).statusCode).toBe(200)
    expectProblem(await post(user, '/api/auth/mfa/disable/', { code: recoveryCodes[4]! }), 409, 'mfa_state')
  })

  it('answers 401 without a token', async () => {
    expectProblem(await t.request({ method: 'POST', url: '/api/auth/mfa/disable/', payload: { code: '123456' } }), 401)
  })
})

describe('REQUIRE_STAFF_MFA=true', () => {
  let strict: TestApp
  let sf: ReturnType<typeof factories>
  beforeAll(async () => {
    strict = await createTestApp({ env: { REQUIRE_STAFF_MFA: 'true' } })
    sf = factories(strict)
  })
  afterAll(() => strict.close())

  it('answers 403 mfa_required to a staff token without a second factor, and 200 with one', async () => {
    const staff = await sf.user({ role: 'staff' })
    const denied = await strict.request({ method: 'GET', url: '/api/accounts/users/', headers: await sf.auth(staff) })
    expect(denied.statusCode).toBe(403)
    expect((denied.json() as { code: string }).code).toBe('mfa_required')
    const allowed = await strict.request({ method: 'GET', url: '/api/accounts/users/', headers: await sf.auth(staff, { mfa: true }) })
    expect(allowed.statusCode).toBe(200)
  })

  it('applies to admin routes too', async () => {
    const [admin, target] = await Promise.all([sf.user({ role: 'admin' }), sf.user()])
    const patch = async (mfa: boolean) => strict.request({ method: 'PATCH', url: `/api/accounts/users/${target.id}/`, headers: await sf.auth(admin, { mfa }), payload: { role: 'staff' } })
    const denied = await patch(false)
    expect(denied.statusCode).toBe(403)
    expect((denied.json() as { code: string }).code).toBe('mfa_required')
    expect((await patch(true)).statusCode).toBe(200)
  })

  it("leaves customers' own routes alone", async () => {
    const customer = await sf.user()
    const headers = await sf.auth(customer)
    expect((await strict.request({ method: 'GET', url: '/api/accounts/me/', headers })).statusCode).toBe(200)
    expect((await strict.request({ method: 'GET', url: '/api/accounts/me/addresses/', headers })).statusCode).toBe(200)
    // Still a customer: 403 for the plain role reason, not for a missing second factor.
    const staffRoute = await strict.request({ method: 'GET', url: '/api/accounts/users/', headers: await sf.auth(customer, { mfa: true }) })
    expect(staffRoute.statusCode).toBe(403)
    expect((staffRoute.json() as { code: string }).code).not.toBe('mfa_required')
  })

  it('lets a staff member who signs in with two-factor use staff routes', async () => {
    const staff = await sf.user({ role: 'staff' })
    const setup = (await strict.request({ method: 'POST', url: '/api/auth/mfa/setup/', headers: await sf.auth(staff) })).json() as { secret: string }
    // Setting up two-factor is open to a staff session without it (otherwise nobody could start).
    const enabled = await strict.request({ method: 'POST', url: '/api/auth/mfa/enable/', headers: await sf.auth(staff), payload: { code: totp(setup.secret).generate() } })
    expect(enabled.statusCode).toBe(200)

    const password = await strict.request({ method: 'POST', url: '/api/auth/login/', payload: { email: staff.email, password: staff.password } })
    const { mfa_token } = password.json() as { mfa_token: string }
    const second = await strict.request({ method: 'POST', url: '/api/auth/login/mfa/', payload: { mfa_token, code: nextCode(setup.secret) } })
    expect(second.statusCode).toBe(200)
    const { access } = second.json() as { access: string }
    expect((await strict.request({ method: 'GET', url: '/api/accounts/users/', headers: { authorization: `Bearer ${access}` } })).statusCode).toBe(200)
  })
})
