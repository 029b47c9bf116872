/**
 * GET and PATCH /api/notifications/preferences/: the defaults, partial changes, transactional
 * email that cannot be turned off (422, nothing changed), unknown fields refused, the marketing
 * consent time (set on opt-in, kept when saying yes again, cleared on opt-out), 401 for anonymous
 * callers; and the service's `allows` / `setPreference` that mail and unsubscribe links use.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { createNotificationsService, type PreferencesDto } from './service.js'

type Headers = Record<string, string>

let t: TestApp
let f: ReturnType<typeof factories>
beforeAll(async () => {
  t = await createTestApp()
  f = factories(t)
})
afterAll(() => t?.close())

const URL = '/api/notifications/preferences/'
const service = createNotificationsService()
const ctx = () => t.app.platform.context()

async function newUser(): Promise<{ id: string; auth: Headers }> {
  const user = await f.user()
  return { id: user.id, auth: await f.auth(user) }
}

const get = async (auth: Headers) => {
  const res = await t.request({ method: 'GET', url: URL, headers: auth })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<PreferencesDto>()
}
const patch = (auth: Headers, payload: object) => t.request({ method: 'PATCH', url: URL, headers: auth, payload })

describe('GET /api/notifications/preferences/', () => {
  it('answers the defaults when nothing is stored: account and order updates on, marketing off, transactional email locked', async () => {
    const { auth } = await newUser()
    expect(await get(auth)).toEqual({
      email: { account: true, order_updates: true, marketing: false },
      in_app: { account: true, order_updates: true, marketing: false },
      locked: ['email.account', 'email.order_updates'],
      marketing_consent_at: null,
    })
  })

  it('answers 401 problem+json without a user', async () => {
    expectProblem(await t.request({ method: 'GET', url: URL }), 401)
    expectProblem(await t.request({ method: 'PATCH', url: URL, payload: { email: { marketing: true } } }), 401)
  })
})

describe('PATCH /api/notifications/preferences/', () => {
  it('changes only what it names and keeps it', async () => {
    const { auth } = await newUser()
    const res = await patch(auth, { in_app: { order_updates: false } })
    expect(res.statusCode, res.body).toBe(200)
    const expected = { email: { account: true, order_updates: true, marketing: false }, in_app: { account: true, order_updates: false, marketing: false } }
    expect(res.json()).toMatchObject(expected)
    expect(await get(auth)).toMatchObject(expected)

    // A second partial change leaves the first alone.
    expect((await patch(auth, { in_app: { marketing: true } })).json()).toMatchObject({ in_app: { account: true, order_updates: false, marketing: true } })
  })

  it('refuses to turn transactional email off with 422 naming it, and changes nothing else in the same request', async () => {
    const { auth } = await newUser()
    const res = await patch(auth, { email: { order_updates: false, marketing: true }, in_app: { account: false } })
    const problem = expectProblem(res, 422, 'preference_locked')
    expect(Object.keys(problem.errors ?? {})).toEqual(['email.order_updates'])
    expect(problem.errors!['email.order_updates']![0]).toMatch(/always sent/)
    expect(await get(auth)).toMatchObject({ email: { order_updates: true, marketing: false }, in_app: { account: true }, marketing_consent_at: null })

    expectProblem(await patch(auth, { email: { account: false } }), 422, 'preference_locked')
    // Asking for what is always on anyway is fine.
    expect((await patch(auth, { email: { account: true, order_updates: true } })).statusCode).toBe(200)
  })

  it('refuses unknown channels, kinds and values with 422', async () => {
    const { auth } = await newUser()
    for (const payload of [{ sms: { marketing: true } }, { email: { newsletter: true } }, { email: { marketing: 'yes please' } }, { marketing_consent_at: '2025-01-01T00:00:00Z' }]) {
      const problem = expectProblem(await patch(auth, payload), 422)
      expect(problem.errors, JSON.stringify(payload)).toBeDefined()
    }
    expect(await get(auth)).toMatchObject({ email: { marketing: false }, marketing_consent_at: null })
  })

  it('records when marketing email was consented to, keeps that time on a repeated yes, and clears it on opt-out', async () => {
    const { auth } = await newUser()
    const optedIn = (await patch(auth, { email: { marketing: true } })).json<PreferencesDto>()
    expect(optedIn.email.marketing).toBe(true)
    expect(optedIn.marketing_consent_at).toEqual(expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/))

    // Saying yes again (or changing something else) is not a new consent.
    expect((await patch(auth, { email: { marketing: true }, in_app: { marketing: true } })).json<PreferencesDto>().marketing_consent_at).toBe(optedIn.marketing_consent_at)

    const optedOut = (await patch(auth, { email: { marketing: false } })).json<PreferencesDto>()
    expect(optedOut).toMatchObject({ email: { marketing: false }, in_app: { marketing: true }, marketing_consent_at: null })

    // In-app marketing alone is no consent to marketing email.
    expect((await get(auth)).marketing_consent_at).toBeNull()

    const again = (await patch(auth, { email: { marketing: true } })).json<PreferencesDto>()
    expect(Date.parse(again.marketing_consent_at!)).toBeGreaterThanOrEqual(Date.parse(optedIn.marketing_consent_at!))
  })

  it("changes only the caller's own preferences", async () => {
    const alice = await newUser()
    const bob = await newUser()
    await patch(alice.auth, { email: { marketing: true }, in_app: { order_updates: false } })
    expect(await get(bob.auth)).toMatchObject({ email: { marketing: false }, in_app: { order_updates: true }, marketing_consent_at: null })
  })
})

describe('allows and setPreference', () => {
  it('answers the effective choice per channel and kind', async () => {
    const { id, auth } = await newUser()
    expect(await service.allows(ctx(), id, 'email', 'marketing')).toBe(false)
    expect(await service.allows(ctx(), id, 'in_app', 'order_updates')).toBe(true)

    await patch(auth, { email: { marketing: true }, in_app: { order_updates: false } })
    expect(await service.allows(ctx(), id, 'email', 'marketing')).toBe(true)
    expect(await service.allows(ctx(), id, 'in_app', 'order_updates')).toBe(false)
    expect(await service.allows(ctx(), id, 'email', 'order_updates')).toBe(true)
  })

  it('turns one choice off, as an unsubscribe link does, and refuses transactional email', async () => {
    const { id, auth } = await newUser()
    await patch(auth, { email: { marketing: true } })
    await service.setPreference(ctx(), id, 'email', 'marketing', false)
    expect(await get(auth)).toMatchObject({ email: { marketing: false }, marketing_consent_at: null })

    await expect(service.setPreference(ctx(), id, 'email', 'account', false)).rejects.toMatchObject({ status: 422, code: 'preference_locked' })
    expect((await get(auth)).email.account).toBe(true)
  })
})
