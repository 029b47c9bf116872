import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../../test/harness.js'
import { loadSettings } from '../config/index.js'
import { createMailer, createSendEmailTask, type Mailer } from './email.js'
import { createLogger } from './logging.js'
import { createInProcessQueue, TaskPayloadError, TaskRegistry } from './queue/index.js'

const silent = createLogger({ log: { level: 'silent', pretty: false } })

function mailerFor(env: Record<string, string>, log = silent): Mailer {
  return createMailer(loadSettings({ ENVIRONMENT: 'test', DEFAULT_FROM_EMAIL: 'Shop <shop@example.com>', ...env }), log)
}

const message = { to: ['alice@example.com', 'bob@example.com'], subject: 'Your order ORD-7F3K9Q2M', text: 'Thanks for your order.' }

interface Receipt {
  from: string | undefined
  to: string[]
  data: string
}

/** A real SMTP server on loopback; `reject` refuses every message with a 550 after reading it. */
async function startSmtp(options: { reject?: boolean } = {}) {
  const receipts: Receipt[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        const envelope = session.envelope
        receipts.push({
          from: envelope.mailFrom ? envelope.mailFrom.address : undefined,
          to: envelope.rcptTo.map((rcpt) => rcpt.address),
          data: Buffer.concat(chunks).toString('utf8'),
        })
        if (options.reject) callback(Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 }))
        else callback()
      })
    },
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.server.address() as AddressInfo).port
  return { receipts, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

describe(createMailer.name, () => {
  it('keeps the message in outbox with its raw RFC 5322 text when the backend is memory', async () => {
    const mailer = mailerFor({ EMAIL_BACKEND: 'memory' })
    const { message_id } = await mailer.send(message)
    expect(mailer.backend).toBe('memory')
    expect(mailer.outbox).toHaveLength(1)
    const sent = mailer.outbox[0]!
    expect(sent).toMatchObject({ ...message, from: 'Shop <shop@example.com>', message_id })
    expect(message_id).toMatch(/^<[0-9a-f-]{36}@example\.com>$/)
    expect(sent.raw).toMatch(/^Subject: Your order ORD-7F3K9Q2M$/m)
    expect(sent.raw).toMatch(/^From: Shop <shop@example\.com>$/m)
    expect(sent.raw).toMatch(/^To: alice@example\.com, bob@example\.com$/m)
    expect(sent.raw).toContain(`Message-ID: ${message_id}`)
    expect(sent.raw).toContain('Thanks for your order.')
    mailer.close()
  })

  it('writes one .eml file per message when the backend is file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shop-email-'))
    try {
      const mailer = mailerFor({ EMAIL_BACKEND: 'file', EMAIL_FILE_PATH: join(dir, 'outgoing') })
      await mailer.send(message)
      await mailer.send({ ...message, to: 'carol@example.com', subject: 'Second' })
      mailer.close()
      const files = (await readdir(join(dir, 'outgoing'))).sort()
      expect(files).toHaveLength(2)
      expect(files.every((file) => file.endsWith('.eml'))).toBe(true)
      const contents = await Promise.all(files.map((file) => readFile(join(dir, 'outgoing', file), 'utf8')))
      const first = contents.find((text) => text.includes('Subject: Your order ORD-7F3K9Q2M'))
      const second = contents.find((text) => text.includes('Subject: Second'))
      expect(first).toMatch(/^To: alice@example\.com, bob@example\.com$/m)
      expect(first).toMatch(/^From: Shop <shop@example\.com>$/m)
      expect(second).toMatch(/^To: carol@example\.com$/m)
      expect(mailer.outbox).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('logs the message and stores nothing when the backend is console', async () => {
    const lines: Array<Record<string, unknown>> = []
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>)
        done()
      },
    })
    const mailer = mailerFor({ EMAIL_BACKEND: 'console' }, createLogger({ log: { level: 'info', pretty: false } }, destination))
    const { message_id } = await mailer.send(message)
    mailer.close()
    expect(mailer.outbox).toEqual([])
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 30, to: message.to, subject: message.subject, message_id })
    expect(lines[0]!.msg).toMatch(/^email\n/)
    expect(lines[0]!.msg).toContain('Subject: Your order ORD-7F3K9Q2M')
  })

  it('maps a Django dotted backend name to memory', async () => {
    const mailer = mailerFor({ EMAIL_BACKEND: 'django.core.mail.backends.locmem.EmailBackend' })
    expect(mailer.backend).toBe('memory')
    await mailer.send(message)
    expect(mailer.outbox).toHaveLength(1)
    mailer.close()
  })

  describe('smtp backend', () => {
    let smtp: Awaited<ReturnType<typeof startSmtp>>
    beforeAll(async () => {
      smtp = await startSmtp()
    })
    afterAll(() => smtp.close())

    it('delivers the message to the SMTP server when the backend is smtp', async () => {
      const mailer = mailerFor({ EMAIL_BACKEND: 'smtp', EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(smtp.port) })
      const { message_id } = await mailer.send(message)
      mailer.close()
      expect(mailer.outbox).toEqual([])
      expect(smtp.receipts).toHaveLength(1)
      const [receipt] = smtp.receipts
      expect(receipt!.from).toBe('shop@example.com')
      expect(receipt!.to).toEqual(['alice@example.com', 'bob@example.com'])
      expect(receipt!.data).toMatch(/^Subject: Your order ORD-7F3K9Q2M\r?$/m)
      expect(receipt!.data).toContain(`Message-ID: ${message_id}`)
      expect(receipt!.data).toContain('Thanks for your order.')
    })
  })
})

describe('core.send_email', () => {
  it('rejects a payload without subject at enqueue with TaskPayloadError', async () => {
    const mailer = mailerFor({ EMAIL_BACKEND: 'memory' })
    const registry = new TaskRegistry().register(createSendEmailTask(mailer))
    const queue = createInProcessQueue({ registry, log: silent, settings: { backoffMs: 1, defaultAttempts: 3, defaultTimeoutMs: 1000 } })
    await expect(queue.enqueue('core.send_email', { to: 'alice@example.com', text: 'Hi' })).rejects.toBeInstanceOf(TaskPayloadError)
    await expect(queue.enqueue('core.send_email', { to: 'alice@example.com', subject: '', text: 'Hi' })).rejects.toThrow(/\/subject/)
    await queue.drain()
    expect(mailer.outbox).toEqual([])
    expect((await queue.stats())).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 })
    mailer.close()
  })

  describe('when the SMTP server refuses the message', () => {
    let smtp: Awaited<ReturnType<typeof startSmtp>>
    let t: TestApp
    beforeAll(async () => {
      smtp = await startSmtp({ reject: true })
      t = await createTestApp({ env: { EMAIL_BACKEND: 'smtp', EMAIL_HOST: '127.0.0.1', EMAIL_PORT: String(smtp.port) } })
    })
    afterAll(async () => {
      await t.close()
      await smtp.close()
    })

    it('retries, then keeps the job as failed with the server error', async () => {
      expect(t.app.platform.mailer.backend).toBe('smtp')
      const payload = { to: 'alice@example.com', subject: 'Refused', text: 'Hello' }
      const { id } = await t.app.platform.queue.enqueue('core.send_email', payload)
      await t.app.platform.queue.drain()

      // The task allows 5 attempts; each one reached the server.
      expect(smtp.receipts).toHaveLength(5)
      expect(smtp.receipts.every((receipt) => receipt.to.join() === 'alice@example.com' && /^Subject: Refused\r?$/m.test(receipt.data))).toBe(true)
      const failed = (await t.app.platform.queue.failed()).filter((job) => job.id === id)
      expect(failed).toHaveLength(1)
      expect(failed[0]).toMatchObject({ task: 'core.send_email', payload, attempts: 5 })
      expect(failed[0]!.error).toMatch(/550 Mailbox unavailable/)
      expect((await t.app.platform.queue.stats())).toMatchObject({ completed: 0, failed: 1 })
    })
  })
})
