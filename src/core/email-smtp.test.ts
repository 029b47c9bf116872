/**
 * The smtp email backend against a real SMTP server on loopback (smtp-server), the received
 * messages parsed back with mailparser: what arrives, logging in, and how `core.send_email`
 * behaves when the server refuses a message, is down or never answers.
 */
import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../../test/harness.js'
import { loadSettings } from '../config/index.js'
import { createMailer, type EmailMessage, type Mailer } from './email.js'
import { createLogger } from './logging.js'
import { planOf } from './queue/index.js'

const FROM = 'Shop <shop@example.com>'
const silent = createLogger({ log: { level: 'silent', pretty: false } })

function smtpMailer(port: number, env: Record<string, string> = {}): Mailer {
  const settings = loadSettings({ ENVIRONMENT: 'test', EMAIL_BACKEND: 'smtp', EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(port), DEFAULT_FROM_EMAIL: FROM, ...env })
  return createMailer(settings, silent)
}

interface Refusal {
  at: 'RCPT TO' | 'DATA'
  code: number
  text: string
}

interface Delivery {
  from: string | undefined
  to: string[]
  /** Who the client logged in as; undefined when it did not. */
  user: string | undefined
  mail: ParsedMail
}

interface SmtpOptions {
  /** When set, only these credentials log in and mail from a client that has not is refused. */
  credentials?: { username: string; password: string }
  /** The answer to the nth (from 1) attempt to send to a recipient; undefined accepts it. */
  refuse?: (recipient: string, attempt: number) => Refusal | undefined
}

/** An error smtp-server answers with the given reply code. */
function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code })
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address')
  return address.port
}

/** A real SMTP server on loopback that records logins, attempts per recipient and accepted messages. */
async function startSmtpServer(options: SmtpOptions = {}) {
  const deliveries: Delivery[] = []
  const logins: Array<{ method: string; username: string | undefined; password: string | null | undefined }> = []
  const attempts = new Map<string, number>()
  // A refusal chosen at RCPT TO but answered after the message was read, by session.
  const refusalsAtData = new Map<string, Refusal>()
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    disabledCommands: ['STARTTLS'],
    authOptional: !options.credentials,
    // Plain-text AUTH is fine on loopback; STARTTLS is disabled here.
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      logins.push({ method: auth.method, username: auth.username, password: auth.password })
      const expected = options.credentials
      if (expected && auth.username === expected.username && auth.password === expected.password) callback(null, { user: auth.username })
      else callback(smtpError(535, '5.7.8 Authentication credentials invalid'))
    },
    onRcptTo(address, session, callback) {
      const attempt = (attempts.get(address.address) ?? 0) + 1
      attempts.set(address.address, attempt)
      const refusal = options.refuse?.(address.address, attempt)
      if (refusal?.at === 'RCPT TO') return callback(smtpError(refusal.code, refusal.text))
      if (refusal) refusalsAtData.set(session.id, refusal)
      callback()
    },
    onData(stream, session, callback) {
      const refusal = refusalsAtData.get(session.id)
      refusalsAtData.delete(session.id)
      if (refusal) {
        stream.on('end', () => callback(smtpError(refusal.code, refusal.text)))
        stream.resume()
        return
      }
      simpleParser(stream).then(
        (mail) => {
          const user = typeof session.user === 'string' ? session.user : undefined
          deliveries.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined, to: session.envelope.rcptTo.map((rcpt) => rcpt.address), user, mail })
          callback()
        },
        (err: Error) => callback(err),
      )
    },
  })
  const port = await listen(server.server)
  return {
    port,
    deliveries,
    logins,
    attemptsFor: (recipient: string) => attempts.get(recipient) ?? 0,
    deliveriesTo: (recipient: string) => deliveries.filter((delivery) => delivery.to.includes(recipient)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** Accepts TCP connections and never says a word: no SMTP greeting, ever. */
async function startSilentServer() {
  const sockets = new Set<Socket>()
  let connections = 0
  const server = createServer((socket) => {
    connections += 1
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  const port = await listen(server)
  return {
    port,
    connections: () => connections,
    async close() {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    },
  }
}

/** A port nothing listens on: bound once by the OS, then released. */
async function unusedPort(): Promise<number> {
  const server = createServer()
  const port = await listen(server)
  server.close()
  await once(server, 'close')
  return port
}

const headerLine = (mail: ParsedMail, name: string) => mail.headerLines.find((header) => header.key === name.toLowerCase())?.line

describe('smtp backend', () => {
  describe('without login', () => {
    let smtp: Awaited<ReturnType<typeof startSmtpServer>>
    beforeAll(async () => {
      smtp = await startSmtpServer()
    })
    afterAll(() => smtp.close())

    it('delivers the envelope, headers, text and HTML parts as sent', async () => {
      const mailer = smtpMailer(smtp.port)
      const message: EmailMessage = {
        to: ['alice@example.com', 'bob@example.com'],
        subject: 'Your order ORD-7F3K9Q2M has shipped — ✓',
        text: 'Hi Alice,\n\nYour parcel is on its way: 2 × Café crème.\n',
        html: '<p>Hi Alice,</p>\n<p>Your parcel is on its way: 2 × <b>Café crème</b>.</p>',
        headers: { 'List-Unsubscribe': '<https://shop.example.com/unsubscribe?u=42>', 'X-Shop-Event': 'order.shipped' },
      }
      const { message_id } = await mailer.send(message)
      mailer.close()

      expect(smtp.deliveries).toHaveLength(1)
      const { from, to, user, mail } = smtp.deliveries[0]!
      expect(from).toBe('shop@example.com')
      expect(to).toEqual(['alice@example.com', 'bob@example.com'])
      expect(user).toBeUndefined()
      expect(mail.from?.value).toEqual([{ name: 'Shop', address: 'shop@example.com' }])
      expect([mail.to].flat().flatMap((address) => address?.value.map((entry) => entry.address))).toEqual(['alice@example.com', 'bob@example.com'])
      expect(mail.subject).toBe(message.subject)
      expect(mail.messageId).toBe(message_id)
      expect(mail.text).toBe(message.text)
      expect(mail.html).toBe(message.html)
      expect(headerLine(mail, 'List-Unsubscribe')).toBe('List-Unsubscribe: <https://shop.example.com/unsubscribe?u=42>')
      expect(headerLine(mail, 'X-Shop-Event')).toBe('X-Shop-Event: order.shipped')
      expect(mailer.outbox).toEqual([])
    })

    it('refuses to send in clear text when EMAIL_USE_TLS is set and the server offers no STARTTLS', async () => {
      const mailer = smtpMailer(smtp.port, { EMAIL_USE_TLS: 'true', EMAIL_HOST_USER: 'mailer', EMAIL_HOST_PASSWORD: 'not-for-plain-text' })
      await expect(mailer.send({ to: 'tls@example.com', subject: 'Secret', text: 'Hello' })).rejects.toThrow(/STARTTLS/)
      mailer.close()
      expect(smtp.attemptsFor('tls@example.com')).toBe(0)
      expect(smtp.logins).toEqual([])
    })
  })

  describe('with EMAIL_HOST_USER and EMAIL_HOST_PASSWORD', () => {
    const credentials = { username: 'mailer@shop.example.com', password: 'correct horse battery staple' }
    let smtp: Awaited<ReturnType<typeof startSmtpServer>>
    beforeAll(async () => {
      smtp = await startSmtpServer({ credentials })
    })
    afterAll(() => smtp.close())

    it('logs in with those credentials before sending', async () => {
      const mailer = smtpMailer(smtp.port, { EMAIL_HOST_USER: credentials.username, EMAIL_HOST_PASSWORD: credentials.password })
      await mailer.send({ to: 'carol@example.com', subject: 'Welcome', text: 'Hello Carol\n' })
      mailer.close()
      expect(smtp.logins.at(-1)).toEqual({ method: 'PLAIN', ...credentials })
      const [delivery] = smtp.deliveriesTo('carol@example.com')
      expect(delivery?.user).toBe(credentials.username)
      expect(delivery?.mail.text).toBe('Hello Carol\n')
    })

    it('fails with the server answer when the password is wrong, and sends nothing', async () => {
      const mailer = smtpMailer(smtp.port, { EMAIL_HOST_USER: credentials.username, EMAIL_HOST_PASSWORD: 'wrong' })
      const error = await mailer.send({ to: 'dave@example.com', subject: 'Welcome', text: 'Hello Dave' }).catch((err: unknown) => err)
      mailer.close()
      expect(error).toMatchObject({ code: 'EAUTH', responseCode: 535 })
      expect(smtp.logins.at(-1)).toEqual({ method: 'PLAIN', username: credentials.username, password: 'wrong' })
      expect(smtp.attemptsFor('dave@example.com')).toBe(0)
      expect(smtp.deliveriesTo('dave@example.com')).toEqual([])
    })

    it('is refused by a server that requires a login when no user is configured', async () => {
      const mailer = smtpMailer(smtp.port)
      const error = await mailer.send({ to: 'erin@example.com', subject: 'Welcome', text: 'Hello Erin' }).catch((err: unknown) => err)
      mailer.close()
      expect(error).toMatchObject({ responseCode: 530 })
      expect(smtp.deliveriesTo('erin@example.com')).toEqual([])
    })
  })

  it('gives up after EMAIL_TIMEOUT when the server accepts the connection but never answers', async () => {
    const silentServer = await startSilentServer()
    try {
      const mailer = smtpMailer(silentServer.port, { EMAIL_TIMEOUT: '1' })
      const started = performance.now()
      const error = await mailer.send({ to: 'frank@example.com', subject: 'Hello', text: 'Hello' }).catch((err: unknown) => err)
      const elapsedMs = performance.now() - started
      mailer.close()
      expect(silentServer.connections()).toBe(1)
      expect(error).toMatchObject({ code: 'ETIMEDOUT', message: expect.stringMatching(/timeout/i) })
      // The 1 s setting is what ended it: not the 10 s default, nor the task's 30 s hard limit.
      expect(elapsedMs).toBeGreaterThanOrEqual(900)
      expect(elapsedMs).toBeLessThan(3_000)
    } finally {
      await silentServer.close()
    }
  })
})

describe('core.send_email through the smtp backend', () => {
  const logLines = (t: TestApp, jobId: string, msg: string) => t.logs.filter((line) => line.job_id === jobId && line.msg === msg)
  const plannedAttempts = (t: TestApp) => planOf(t.app.platform.tasks.get('core.send_email'), t.settings.queue).attempts

  describe('when the server refuses', () => {
    // Each test sends to its own recipient and says here how the server answers it.
    const answers = new Map<string, (attempt: number) => Refusal | undefined>()
    let smtp: Awaited<ReturnType<typeof startSmtpServer>>
    let t: TestApp
    beforeAll(async () => {
      smtp = await startSmtpServer({ refuse: (recipient, attempt) => answers.get(recipient)?.(attempt) })
      t = await createTestApp({ captureLogs: true, env: { EMAIL_BACKEND: 'smtp', EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(smtp.port), DEFAULT_FROM_EMAIL: FROM } })
    })
    afterAll(async () => {
      await t.close()
      await smtp.close()
    })

    it.each(['RCPT TO', 'DATA'] as const)('retries a 550 at %s, then keeps the job as failed with the SMTP error and logs an error', async (stage) => {
      const to = `refused-at-${stage.replace(' ', '-').toLowerCase()}@example.com`
      answers.set(to, () => ({ at: stage, code: 550, text: '5.1.1 Mailbox unavailable' }))
      const attempts = plannedAttempts(t)
      expect(attempts).toBeGreaterThan(1)

      const { id } = await t.app.platform.queue.enqueue('core.send_email', { to, subject: 'Refused', text: 'Hello' })
      await t.settle()

      expect(smtp.attemptsFor(to)).toBe(attempts)
      expect(smtp.deliveriesTo(to)).toEqual([])
      const failed = (await t.app.platform.queue.failed()).filter((job) => job.id === id)
      expect(failed).toHaveLength(1)
      expect(failed[0]).toMatchObject({ task: 'core.send_email', payload: { to, subject: 'Refused', text: 'Hello' }, attempts })
      expect(failed[0]!.error).toMatch(/550 5\.1\.1 Mailbox unavailable/)
      expect(logLines(t, id, 'task failed, will retry')).toHaveLength(attempts - 1)
      const errors = t.logs.filter((line) => line.job_id === id && line.level === 50)
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatchObject({ msg: 'task failed permanently', task: 'core.send_email', attempt: attempts, err: { responseCode: 550, message: expect.stringMatching(/Mailbox unavailable/) } })
    })

    it('sends exactly one message when the first attempt gets a temporary 451', async () => {
      const to = 'greylisted@example.com'
      answers.set(to, (attempt) => (attempt === 1 ? { at: 'RCPT TO', code: 451, text: '4.7.1 Greylisted, try again later' } : undefined))

      const { id } = await t.app.platform.queue.enqueue('core.send_email', { to, subject: 'Greylisted', text: 'Hello again' })
      await t.settle()

      expect(smtp.attemptsFor(to)).toBe(2)
      const deliveries = smtp.deliveriesTo(to)
      expect(deliveries).toHaveLength(1)
      expect(deliveries[0]!.mail.subject).toBe('Greylisted')
      expect((await t.app.platform.queue.failed()).map((job) => job.id)).not.toContain(id)
      expect(logLines(t, id, 'task failed, will retry')).toMatchObject([{ attempt: 1, err: { responseCode: 451 } }])
      expect(logLines(t, id, 'email sent')).toMatchObject([{ attempt: 2, message_id: deliveries[0]!.mail.messageId }])
    })

    it('delivers a failed email once it is retried after the server accepts again', async () => {
      const to = 'mailbox-full@example.com'
      let full = true
      answers.set(to, () => (full ? { at: 'DATA', code: 552, text: '5.2.2 Mailbox full' } : undefined))
      const { id } = await t.app.platform.queue.enqueue('core.send_email', { to, subject: 'Receipt', text: 'Paid' })
      await t.settle()
      expect((await t.app.platform.queue.failed()).map((job) => job.id)).toContain(id)
      expect(smtp.deliveriesTo(to)).toEqual([])

      full = false
      expect(await t.app.platform.queue.retry(id)).toBe(true)
      await t.settle()

      expect(smtp.deliveriesTo(to)).toHaveLength(1)
      expect((await t.app.platform.queue.failed()).map((job) => job.id)).not.toContain(id)
    })

    it('sends only the message fields of a payload: extra keys add no recipient, sender or attachment', async () => {
      const to = 'plain@example.com'
      const payload = {
        to,
        subject: 'Only this',
        text: 'Hello',
        from: 'ceo@bank.example',
        bcc: 'eavesdropper@example.net',
        envelope: { from: 'bounce@evil.example', to: ['eavesdropper@example.net'] },
        attachments: [{ filename: 'package.json', path: new URL('../../package.json', import.meta.url).pathname }],
      }
      const { id } = await t.app.platform.queue.enqueue('core.send_email', payload)
      await t.settle()

      expect((await t.app.platform.queue.failed()).map((job) => job.id)).not.toContain(id)
      expect(smtp.attemptsFor('eavesdropper@example.net')).toBe(0)
      const deliveries = smtp.deliveriesTo(to)
      expect(deliveries).toHaveLength(1)
      expect(deliveries[0]).toMatchObject({ from: 'shop@example.com', to: [to] })
      expect(deliveries[0]!.mail.from?.value).toEqual([{ name: 'Shop', address: 'shop@example.com' }])
      expect(deliveries[0]!.mail.attachments).toEqual([])
    })
  })

  describe('when nothing listens on EMAIL_PORT', () => {
    let t: TestApp
    beforeAll(async () => {
      t = await createTestApp({ captureLogs: true, env: { EMAIL_BACKEND: 'smtp', EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(await unusedPort()) } })
    })
    afterAll(() => t.close())

    it('retries, then keeps the job as failed with ECONNREFUSED', async () => {
      const attempts = plannedAttempts(t)
      const { id } = await t.app.platform.queue.enqueue('core.send_email', { to: 'grace@example.com', subject: 'Hello', text: 'Hello' })
      await t.settle()

      const failed = (await t.app.platform.queue.failed()).filter((job) => job.id === id)
      expect(failed).toMatchObject([{ task: 'core.send_email', attempts }])
      expect(failed[0]!.error).toMatch(/ECONNREFUSED/)
      expect(logLines(t, id, 'task failed, will retry')).toHaveLength(attempts - 1)
      expect(logLines(t, id, 'task failed permanently')).toMatchObject([{ level: 50, err: { message: expect.stringMatching(/ECONNREFUSED/) } }])
    })
  })

  describe('when the server never answers', () => {
    let silentServer: Awaited<ReturnType<typeof startSilentServer>>
    let t: TestApp
    beforeAll(async () => {
      silentServer = await startSilentServer()
      t = await createTestApp({ captureLogs: true, env: { EMAIL_BACKEND: 'smtp', EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(silentServer.port), EMAIL_TIMEOUT: '1' } })
    })
    afterAll(async () => {
      await t.close()
      await silentServer.close()
    })

    it('ends each attempt after EMAIL_TIMEOUT and keeps the job as failed with the timeout', async () => {
      // Two attempts keep the test short; the retry path is the same as with the task's five.
      const started = performance.now()
      const { id } = await t.app.platform.queue.enqueue('core.send_email', { to: 'heidi@example.com', subject: 'Hello', text: 'Hello' }, { attempts: 2 })
      await t.settle()
      const elapsedMs = performance.now() - started

      expect(silentServer.connections()).toBe(2)
      const failed = (await t.app.platform.queue.failed()).filter((job) => job.id === id)
      expect(failed).toMatchObject([{ task: 'core.send_email', attempts: 2, error: expect.stringMatching(/timeout/i) }])
      expect(logLines(t, id, 'task failed permanently')).toMatchObject([{ level: 50, err: { code: 'ETIMEDOUT' } }])
      expect(elapsedMs).toBeLessThan(6_000)
    })
  })
})
