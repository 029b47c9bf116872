/**
 * Marketing only with consent: a staff broadcast reaches by email exactly the customers who turned
 * marketing email on (with RFC 8058 one-click `List-Unsubscribe`), in the app those who turned it
 * on there; the link unsubscribes (by POST only: a GET asks first), a forged link changes nothing,
 * and a broadcast handed out twice sends nothing twice.
 */
import { randomUUID } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { createNotificationsService } from './service.js'
import { notifications } from './tables.js'

type Headers = Record<string, string>

let t: TestApp
let f: ReturnType<typeof factories>
let staff: Headers
const PUBLIC_URL = 'https://api.shop.example'

beforeAll(async () => {
  t = await createTestApp({ env: { PUBLIC_URL } })
  f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
})
afterAll(() => t?.close())
beforeEach(() => {
  t.app.platform.mailer.outbox.length = 0
})

async function customer(preferences?: { email?: { marketing: boolean }; in_app?: { marketing: boolean } }) {
  const user = await f.user({ first_name: 'Ada' })
  const auth = await f.auth(user)
  if (preferences) {
    const res = await t.request({ method: 'PATCH', url: '/api/notifications/preferences/', headers: auth, payload: preferences })
    expect(res.statusCode).toBe(200)
  }
  return { ...user, auth }
}

const preferencesOf = async (auth: Headers) => (await t.request({ url: '/api/notifications/preferences/', headers: auth })).json<{ email: { marketing: boolean }; marketing_consent_at: string | null }>()
const mailsTo = (email: string) => t.app.platform.mailer.outbox.filter((mail) => mail.to === email)
const news = (subject = `Spring sale ${randomUUID().slice(0, 6)}`) => ({ subject, body: 'Everything 20 % off.\n\nUntil Sunday.', link: 'https://shop.example/sale', link_label: 'Shop the sale' })

async function broadcast(payload: object = news()) {
  const res = await t.request({ method: 'POST', url: '/api/notifications/broadcasts/', headers: staff, payload })
  await t.settle()
  return res
}

/** The one-click URL of the latest marketing email to this address. */
function unsubscribeUrlOf(email: string): string {
  const header = mailsTo(email).at(-1)!.headers!['List-Unsubscribe']!
  return /^<(.+)>$/.exec(header)![1]!
}
const pathOf = (url: string) => url.slice(PUBLIC_URL.length)

describe('POST /api/notifications/broadcasts/', () => {
  it('emails only those who agreed to marketing email, greets them by name, and notifies in the app those who agreed there', async () => {
    const both = await customer({ email: { marketing: true }, in_app: { marketing: true } })
    const emailOnly = await customer({ email: { marketing: true } })
    const appOnly = await customer({ in_app: { marketing: true } })
    const nothing = await customer()
    // Opted in, then the account was deactivated.
    const deactivated = await f.user({ is_active: false })
    await createNotificationsService().setPreference(t.app.platform.context(), deactivated.id, 'email', 'marketing', true)

    const payload = news()
    const res = await broadcast(payload)
    expect(res.statusCode).toBe(202)
    const answer = res.json<{ id: string; email_recipients: number; in_app_recipients: number }>()
    expect(answer.email_recipients).toBeGreaterThanOrEqual(3)

    for (const person of [both, emailOnly]) {
      const mails = mailsTo(person.email)
      expect(mails.map((mail) => mail.subject)).toEqual([payload.subject])
      expect(mails[0]!.text).toContain('Hello Ada,\n\nEverything 20 % off.\n\nUntil Sunday.\n\nShop the sale: https://shop.example/sale')
      expect(mails[0]!.html).toContain('<p>Everything 20 % off.</p>')
      expect(mails[0]!.headers).toMatchObject({ 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' })
      expect(unsubscribeUrlOf(person.email)).toMatch(/^https:\/\/api\.shop\.example\/api\/notifications\/unsubscribe\/\?token=[\w-]+\.[\w-]+\.[\w-]+$/)
      // The headers as they go over the wire (long lines folded), and the footer link.
      const unfolded = `\n${mails[0]!.raw}`.replace(/\r?\n[ \t]+/g, ' ')
      expect(unfolded).toContain(`\nList-Unsubscribe: <${unsubscribeUrlOf(person.email)}>\n`)
      expect(unfolded).toContain('\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n')
      expect(mails[0]!.text).toContain(`Unsubscribe: ${unsubscribeUrlOf(person.email)}`)
    }
    expect(mailsTo(appOnly.email)).toEqual([])
    expect(mailsTo(nothing.email)).toEqual([])
    expect(mailsTo(deactivated.email)).toEqual([])

    const inbox = async (auth: Headers) => (await t.request({ url: '/api/notifications/', headers: auth })).json<{ results: Array<{ kind: string; type: string; title: string; body: string; link: string }> }>().results
    expect(await inbox(both.auth)).toEqual([expect.objectContaining({ kind: 'marketing', type: 'marketing.news', title: payload.subject, body: payload.body, link: payload.link })])
    expect(await inbox(appOnly.auth)).toHaveLength(1)
    expect(await inbox(emailOnly.auth)).toEqual([])
    expect(await inbox(nothing.auth)).toEqual([])
  })

  it('sends nothing twice when the broadcast is handed out again (the outbox delivers at least once)', async () => {
    const person = await customer({ email: { marketing: true }, in_app: { marketing: true } })
    const res = await broadcast()
    const { id } = res.json<{ id: string }>()
    // The same broadcast handed to the task twice more, as further relay deliveries would.
    const envelope = { id: randomUUID(), name: 'notifications.broadcast_requested', occurred_at: new Date().toISOString(), payload: { broadcast_id: id, ...news(), link: null, link_label: null } }
    await t.app.platform.queue.enqueue('notifications.send_broadcast', envelope)
    await t.app.platform.queue.enqueue('notifications.send_broadcast', { ...envelope, id: randomUUID() })
    await t.settle()
    expect(mailsTo(person.email)).toHaveLength(1)
    const rows = await t.app.platform.database.db.select().from(notifications).where(eq(notifications.user_id, person.id))
    expect(rows).toHaveLength(1)
  })

  it('is for staff: 401 anonymous, 403 customers; bad input is a 422 that sends nothing', async () => {
    const person = await customer({ email: { marketing: true } })
    expectProblem(await t.request({ method: 'POST', url: '/api/notifications/broadcasts/', payload: news() }), 401)
    expectProblem(await t.request({ method: 'POST', url: '/api/notifications/broadcasts/', headers: person.auth, payload: news() }), 403)
    for (const bad of [{ ...news(), subject: '' }, { ...news(), subject: '   ' }, { ...news(), link: 'javascript:alert(1)' }, { ...news(), to: 'everyone' }, { body: 'no subject' }]) {
      expectProblem(await broadcast(bad), 422)
    }
    await t.settle()
    expect(mailsTo(person.email)).toEqual([])
  })
})

describe('the unsubscribe link', () => {
  it('turns marketing email off with one click (RFC 8058 form POST), again without harm, and the next broadcast skips the person', async () => {
    const person = await customer({ email: { marketing: true } })
    expect((await preferencesOf(person.auth)).marketing_consent_at).not.toBeNull()
    await broadcast()
    const url = unsubscribeUrlOf(person.email)

    for (let i = 0; i < 2; i++) {
      const res = await t.request({ method: 'POST', url: pathOf(url), headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({ unsubscribed: true, kind: 'marketing' })
    }
    expect((await preferencesOf(person.auth)).email.marketing).toBe(false)

    t.app.platform.mailer.outbox.length = 0
    await broadcast()
    expect(mailsTo(person.email)).toEqual([])
  })

  it('asks first on GET (a link scanner changes nothing), and a browser form POST gets a page back', async () => {
    const person = await customer({ email: { marketing: true } })
    await broadcast()
    const url = unsubscribeUrlOf(person.email)

    const asked = await t.request({ url: pathOf(url) })
    expect(asked.statusCode).toBe(200)
    expect(asked.headers['content-type']).toMatch(/^text\/html/)
    expect(asked.body).toContain(`<form method="post" action="${pathOf(url)}">`)
    expect((await preferencesOf(person.auth)).email.marketing).toBe(true)

    const confirmed = await t.request({ method: 'POST', url: pathOf(url), headers: { accept: 'text/html,application/xhtml+xml', 'content-type': 'application/x-www-form-urlencoded' }, payload: '' })
    expect(confirmed.statusCode).toBe(200)
    expect(confirmed.headers['content-type']).toMatch(/^text\/html/)
    expect(confirmed.body).toContain('You will not receive news by email any more.')
    expect((await preferencesOf(person.auth)).email.marketing).toBe(false)
  })

  it('refuses a tampered token, one signed with another key, and a sign-in token of the same person (400), changing nothing', async () => {
    const person = await customer({ email: { marketing: true } })
    await broadcast()
    const token = new URL(unsubscribeUrlOf(person.email)).searchParams.get('token')!
    const otherKey = await new SignJWT({ purpose: 'unsubscribe', kind: 'marketing' }).setProtectedHeader({ alg: 'HS256' }).setSubject(person.id).sign(new TextEncoder().encode('x'.repeat(32)))
    const accessToken = person.auth.authorization!.replace('Bearer ', '')
    for (const forged of [`${token.slice(0, -2)}xx`, otherKey, accessToken, 'not-a-token']) {
      expectProblem(await t.request({ method: 'POST', url: `/api/notifications/unsubscribe/?token=${encodeURIComponent(forged)}` }), 400, 'invalid_token')
    }
    expectProblem(await t.request({ method: 'POST', url: '/api/notifications/unsubscribe/' }), 422)
    expect((await preferencesOf(person.auth)).email.marketing).toBe(true)
  })
})
