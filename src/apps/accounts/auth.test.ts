/**
 * /api/auth/ through real HTTP: registration, email verification, password sign-in and password
 * reset, with the emails read from the memory mailer after the outbox and the tasks have run.
 * Tokens, refresh and logout are in auth-tokens.test.ts; rate limits in auth-rate-limits.test.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { count, eq, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { users } from './tables.js'
import { expectProblem, type ProblemBody as Problem } from '../../../test/problems.js'


let t: TestApp
let make: ReturnType<typeof factories>
beforeAll(async () => {
  t = await createTestApp()
  make = factories(t)
})
afterAll(() => t.close())

const post = (url: string, payload: object, headers: Record<string, string> = {}) => t.request({ method: 'POST', url, payload, headers })
const newEmail = (prefix = 'shopper') => `${prefix}-${randomUUID()}@example.com`
const STRONG = 'correct horse battery staple'


/** Runs the outbox and the tasks; the event task enqueues the email task, hence two rounds. */
async function settle(): Promise<void> {
  for (let round = 0; round < 2; round += 1) {
    await t.app.platform.relay.flush()
    await t.app.platform.queue.drain()
  }
}

const emailsTo = (address: string) => t.app.platform.mailer.outbox.filter((mail) => [mail.to].flat().includes(address))

/** The code of the one email sent to this address so far (the text says "Or use this code in the app: <token>"). */
function codeSentTo(address: string): string {
  const mails = emailsTo(address)
  expect(mails).toHaveLength(1)
  const code = /Or use this code in the app: (\S+)/.exec(mails[0]!.text)?.[1]
  expect(code).toBeTruthy()
  return code!
}

const userCount = async () => (await t.app.platform.database.db.select({ n: count() }).from(users))[0]!.n
const userRow = async (id: string) => (await t.app.platform.database.db.select().from(users).where(eq(users.id, id)))[0]!
const login = (email: string, password: string) => post('/api/auth/login/', { email, password })

describe('POST /api/auth/register/', () => {
  it('creates an unverified customer and answers 201 without password fields when the input is valid', async () => {
    const email = newEmail()
    const res = await post('/api/auth/register/', { email, password: STRONG, first_name: ' Ada ', last_name: 'Lovelace' })
    expect(res.statusCode).toBe(201)
    const body = res.json<Record<string, unknown>>()
    expect(body).toMatchObject({ email, first_name: 'Ada', last_name: 'Lovelace', role: 'customer', email_verified: false, is_active: true })
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(Object.keys(body).filter((key) => /password|hash|secret/i.test(key))).toEqual([])
    expect(res.body).not.toContain(STRONG)
    const row = await userRow(body.id as string)
    expect(row.password_hash).toMatch(/^\$argon2id\$/)
  })

  it('emails a verification code that verifies the address when the account is created', async () => {
    const email = newEmail()
    const res = await post('/api/auth/register/', { email, password: STRONG })
    expect(res.statusCode).toBe(201)
    await settle()
    const [mail] = emailsTo(email)
    expect(mail?.subject).toMatch(/confirm your email/i)
    const token = codeSentTo(email)
    expect(mail!.text).toContain(`/verify-email?token=${encodeURIComponent(token)}`)
    const verified = await post('/api/auth/verify-email/', { token })
    expect(verified.statusCode).toBe(200)
    expect(verified.json()).toMatchObject({ id: res.json<{ id: string }>().id, email_verified: true })
  })

  it('answers 409 email_taken and creates nothing when the email exists in another case', async () => {
    const email = newEmail('Case')
    expect((await post('/api/auth/register/', { email, password: STRONG })).statusCode).toBe(201)
    const before = await userCount()
    const res = await post('/api/auth/register/', { email: email.toLowerCase(), password: STRONG })
    expectProblem(res, 409, 'email_taken')
    expect(await userCount()).toBe(before)
  })

  const weak: Array<[string, (local: string) => string, RegExp]> = [
    ['too short', () => 'Xq7!kp', /too short/],
    ['common', () => 'password1234', /too common/],
    ['entirely numeric', () => '73920184657302', /entirely numeric/],
    ['containing the email local part', (local) => `my ${local} passphrase`, /similar to your email/],
  ]
  it.each(weak)('answers 422 weak_password and creates nothing when the password is %s', async (_name, password, message) => {
    const local = `weak${randomBytes(4).toString('hex')}`
    const before = await userCount()
    const res = await post('/api/auth/register/', { email: `${local}@example.com`, password: password(local) })
    const body = expectProblem(res, 422, 'weak_password')
    expect(body.errors?.password?.some((problem) => message.test(problem))).toBe(true)
    expect(await userCount()).toBe(before)
  })

  it('answers 422 with errors.email and creates nothing when the email is malformed', async () => {
    const before = await userCount()
    const body = expectProblem(await post('/api/auth/register/', { email: 'not-an-email', password: STRONG }), 422)
    expect(Object.keys(body.errors ?? {})).toEqual(['email'])
    expect(await userCount()).toBe(before)
  })

  it('answers 422 naming each missing field when the body is empty', async () => {
    const before = await userCount()
    const body = expectProblem(await post('/api/auth/register/', {}), 422)
    expect(Object.keys(body.errors ?? {}).sort()).toEqual(['email', 'password'])
    expect(await userCount()).toBe(before)
  })
})

describe('POST /api/auth/verify-email/', () => {
  async function registered(): Promise<{ id: string; token: string }> {
    const email = newEmail()
    const res = await post('/api/auth/register/', { email, password: STRONG })
    expect(res.statusCode).toBe(201)
    await settle()
    return { id: res.json<{ id: string }>().id, token: codeSentTo(email) }
  }

  it('marks the email verified when the emailed token is sent', async () => {
    const { id, token } = await registered()
    const res = await post('/api/auth/verify-email/', { token })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id, email_verified: true })
    expect((await userRow(id)).email_verified).toBe(true)
  })

  it('answers 422 invalid_token when the token was already used', async () => {
    const { token } = await registered()
    expect((await post('/api/auth/verify-email/', { token })).statusCode).toBe(200)
    const body = expectProblem(await post('/api/auth/verify-email/', { token }), 422, 'invalid_token')
    expect(body.errors).toHaveProperty('token')
  })

  it('answers 422 invalid_token when the token is unknown', async () => {
    expectProblem(await post('/api/auth/verify-email/', { token: randomBytes(32).toString('base64url') }), 422, 'invalid_token')
  })

  it('answers 422 invalid_token and leaves the email unverified when the token expired', async () => {
    const { id, token } = await registered()
    await t.app.platform.database.db.execute(sql`UPDATE one_time_tokens SET expires_at = now() - interval '1 minute' WHERE user_id = ${id}`)
    expectProblem(await post('/api/auth/verify-email/', { token }), 422, 'invalid_token')
    expect((await userRow(id)).email_verified).toBe(false)
  })
})

describe('POST /api/auth/login/', () => {
  it('answers 200 with tokens and the user, sets last_login and the access token works when the password is right', async () => {
    const user = await make.user()
    const started = Date.now()
    const res = await login(user.email, user.password)
    expect(res.statusCode).toBe(200)
    const body = res.json<{ access: string; refresh: string; user: { id: string; email: string; last_login: string | null } }>()
    expect(body.access.split('.')).toHaveLength(3)
    expect(body.refresh.length).toBeGreaterThanOrEqual(32)
    expect(body.user).toMatchObject({ id: user.id, email: user.email, role: 'customer' })
    expect(Object.keys(body.user).filter((key) => /password|hash|secret/i.test(key))).toEqual([])
    // The database clock may differ from ours by a little; a second either way is plenty.
    expect(new Date(body.user.last_login!).getTime()).toBeGreaterThan(started - 1_000)
    expect((await userRow(user.id)).last_login).not.toBeNull()

    const me = await t.request({ method: 'GET', url: '/api/accounts/me/', headers: { authorization: `Bearer ${body.access}` } })
    expect(me.statusCode).toBe(200)
    expect(me.json()).toMatchObject({ id: user.id, email: user.email })
  })

  it('signs in when the email is typed in another case and with spaces around it', async () => {
    const user = await make.user()
    const res = await login(`  ${user.email.toUpperCase()} `, user.password)
    expect(res.statusCode).toBe(200)
    expect(res.json<{ user: { id: string } }>().user.id).toBe(user.id)
  })

  it('answers the same 401 invalid_credentials when the password is wrong as when the email is unknown', async () => {
    const user = await make.user()
    const wrong = expectProblem(await login(user.email, 'not the right passphrase'), 401, 'invalid_credentials')
    const unknown = expectProblem(await login(newEmail('nobody'), 'not the right passphrase'), 401, 'invalid_credentials')
    const comparable = ({ request_id: _id, instance: _instance, ...rest }: Problem) => rest
    expect(comparable(unknown)).toEqual(comparable(wrong))
    expect((await userRow(user.id)).last_login).toBeNull()
  })

  it('answers 401 invalid_credentials when the account is inactive even with the right password', async () => {
    const user = await make.user({ is_active: false })
    expectProblem(await login(user.email, user.password), 401, 'invalid_credentials')
  })

  it('answers the same route without the trailing slash', async () => {
    const user = await make.user()
    expect((await post('/api/auth/login', { email: user.email, password: user.password })).statusCode).toBe(200)
  })

  it('answers 422 when the password is missing', async () => {
    const body = expectProblem(await post('/api/auth/login/', { email: newEmail() }), 422)
    expect(body.errors).toHaveProperty('password')
  })
})

describe('POST /api/auth/password-reset/', () => {
  const requestReset = (email: string) => post('/api/auth/password-reset/', { email })

  async function resetCodeFor(user: MadeUser): Promise<string> {
    expect((await requestReset(user.email)).statusCode).toBe(202)
    await settle()
    return codeSentTo(user.email)
  }

  it('answers the same 202 for an existing and an unknown email and emails only the existing one', async () => {
    const user = await make.user()
    const stranger = newEmail('stranger')
    const existing = await requestReset(user.email)
    const unknown = await requestReset(stranger)
    expect(existing.statusCode).toBe(202)
    expect(unknown.statusCode).toBe(202)
    expect(unknown.json()).toEqual(existing.json())
    await settle()
    expect(emailsTo(user.email)).toHaveLength(1)
    expect(emailsTo(user.email)[0]!.subject).toMatch(/reset/i)
    expect(emailsTo(stranger)).toEqual([])
  })

  it('answers 422 with errors.email when the email is malformed', async () => {
    const body = expectProblem(await requestReset('nope'), 422)
    expect(Object.keys(body.errors ?? {})).toEqual(['email'])
  })

  // The request does no hashing and sends no email itself (a task does, after commit), so an
  // existing and an unknown address take about as long.
  it('answers an existing and an unknown email in about the same time', async () => {
    const user = await make.user()
    const time = async (email: string) => {
      const started = performance.now()
      expect((await requestReset(email)).statusCode).toBe(202)
      const elapsed = performance.now() - started
      // Background work of one request must not slow down the next one being measured.
      await settle()
      return elapsed
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
    const existing: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 10; i += 1) {
      existing.push(await time(user.email))
      unknown.push(await time(newEmail('ghost')))
    }
    const [fast, slow] = [median(existing), median(unknown)].sort((a, b) => a - b) as [number, number]
    expect(slow - fast).toBeLessThan(Math.max(50, fast * 4))
  })

  describe('POST /api/auth/password-reset/confirm/', () => {
    it('sets the new password and revokes every earlier refresh token when the token is valid', async () => {
      const user = await make.user()
      const sessions = [await login(user.email, user.password), await login(user.email, user.password)].map((res) => res.json<{ refresh: string }>().refresh)
      const token = await resetCodeFor(user)
      const newPassword = 'a brand new reset passphrase'

      const res = await post('/api/auth/password-reset/confirm/', { token, password: newPassword })
      expect(res.statusCode).toBe(200)
      expect(res.json<{ detail: string }>().detail).toBeTruthy()

      expectProblem(await login(user.email, user.password), 401, 'invalid_credentials')
      expect((await login(user.email, newPassword)).statusCode).toBe(200)
      for (const refresh of sessions) expectProblem(await post('/api/auth/refresh/', { refresh }), 401)
    })

    it('refuses access tokens issued before the reset at once, and accepts a new sign-in', async () => {
      const user = await make.user()
      const before = (await login(user.email, user.password)).json<{ access: string }>().access
      const me = (access: string) => t.request({ method: 'GET', url: '/api/accounts/me/', headers: { authorization: `Bearer ${access}` } })
      expect((await me(before)).statusCode).toBe(200)
      const newPassword = 'another brand new passphrase'
      expect((await post('/api/auth/password-reset/confirm/', { token: await resetCodeFor(user), password: newPassword })).statusCode).toBe(200)
      expectProblem(await me(before), 401, 'invalid_token')
      const after = (await login(user.email, newPassword)).json<{ access: string }>().access
      expect((await me(after)).statusCode).toBe(200)
    })

    it('answers 422 invalid_token when the token was already used', async () => {
      const user = await make.user()
      const token = await resetCodeFor(user)
      expect((await post('/api/auth/password-reset/confirm/', { token, password: 'first reset passphrase ok' })).statusCode).toBe(200)
      expectProblem(await post('/api/auth/password-reset/confirm/', { token, password: 'second reset passphrase ok' }), 422, 'invalid_token')
      expect((await login(user.email, 'first reset passphrase ok')).statusCode).toBe(200)
    })

    it('answers 422 weak_password and keeps the token usable when the new password is weak', async () => {
      const user = await make.user()
      const token = await resetCodeFor(user)
      const body = expectProblem(await post('/api/auth/password-reset/confirm/', { token, password: 'password1234' }), 422, 'weak_password')
      expect(body.errors?.password?.length).toBeGreaterThan(0)
      // Nothing changed: the old password still works and the token can still be used.
      expect((await login(user.email, user.password)).statusCode).toBe(200)
      expect((await post('/api/auth/password-reset/confirm/', { token, password: STRONG })).statusCode).toBe(200)
    })

    it('answers 422 invalid_token when the token is unknown', async () => {
      expectProblem(await post('/api/auth/password-reset/confirm/', { token: randomBytes(32).toString('base64url'), password: STRONG }), 422, 'invalid_token')
    })

    it('answers 422 invalid_token when the token is a verification token', async () => {
      const email = newEmail()
      expect((await post('/api/auth/register/', { email, password: STRONG })).statusCode).toBe(201)
      await settle()
      expectProblem(await post('/api/auth/password-reset/confirm/', { token: codeSentTo(email), password: 'some other long passphrase' }), 422, 'invalid_token')
    })
  })
})

describe('GET /api/schema/', () => {
  it('documents every /api/auth/ route of the contract', async () => {
    const res = await t.request({ method: 'GET', url: '/api/schema/' })
    expect(res.statusCode).toBe(200)
    const paths = res.json<{ paths: Record<string, Record<string, { tags?: string[] }>> }>().paths
    const routes = ['register', 'login', 'refresh', 'logout', 'verify-email', 'password-reset', 'password-reset/confirm', 'login/mfa', 'mfa/setup', 'mfa/enable', 'mfa/disable']
    for (const route of routes) {
      const path = `/api/auth/${route}/`
      expect(paths[path]?.post, `POST ${path} is not documented`).toBeDefined()
      expect(paths[path]!.post!.tags).toContain('auth')
    }
  })
})
