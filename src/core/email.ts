/**
 * Outgoing email through nodemailer. Backends: console (logs the message), smtp, file (one .eml
 * per message in EMAIL_FILE_PATH) and memory (kept in `outbox`, for tests). Apps never send from a
 * request: they enqueue the `core.send_email` task.
 */
import { randomUUID } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import nodemailer from 'nodemailer'
import type { Transporter } from 'nodemailer'
import { Type } from 'typebox'
import type { Settings } from '../config/index.js'
import type { Logger } from './logging.js'
import { defineTask } from './queue/index.js'

export const EmailMessageSchema = Type.Object({
  to: Type.Union([Type.String({ minLength: 3 }), Type.Array(Type.String({ minLength: 3 }), { minItems: 1 })]),
  subject: Type.String({ minLength: 1 }),
  text: Type.String(),
  html: Type.Optional(Type.String()),
  headers: Type.Optional(Type.Record(Type.String(), Type.String())),
})
export interface EmailMessage {
  to: string | string[]
  subject: string
  text: string
  html?: string
  headers?: Record<string, string>
}

export interface SentEmail extends EmailMessage {
  from: string
  message_id: string
  /** The whole RFC 5322 message as sent. */
  raw: string
}

export interface Mailer {
  readonly backend: Settings['email']['backend']
  send(message: EmailMessage): Promise<{ message_id: string }>
  /** Messages sent with the memory backend, oldest first. */
  readonly outbox: SentEmail[]
  close(): void
}

export function createMailer(settings: Pick<Settings, 'email'>, log: Logger): Mailer {
  const config = settings.email
  const outbox: SentEmail[] = []
  const transport: Transporter =
    config.backend === 'smtp'
      ? nodemailer.createTransport({
          host: config.host,
          port: config.port,
          secure: config.useSsl,
          requireTLS: config.useTls,
          ignoreTLS: !config.useTls && !config.useSsl,
          ...(config.user ? { auth: { user: config.user, pass: config.password ?? '' } } : {}),
          connectionTimeout: config.timeoutMs,
          greetingTimeout: config.timeoutMs,
          socketTimeout: config.timeoutMs,
        })
      : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })

  return {
    backend: config.backend,
    outbox,
    async send(payload) {
      const message = messageFields(payload)
      const envelope = { from: config.from, ...message, messageId: `<${randomUUID()}@${domainOf(config.from)}>` }
      const info = await transport.sendMail(envelope)
      const message_id = envelope.messageId
      if (config.backend === 'smtp') return { message_id }
      const raw = (info.message as Buffer).toString('utf8')
      switch (config.backend) {
        case 'memory':
          outbox.push({ ...message, from: config.from, message_id, raw })
          break
        case 'file':
          await mkdir(config.filePath, { recursive: true })
          await writeFile(join(config.filePath, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID()}.eml`), raw)
          break
        case 'console':
          log.info({ to: message.to, subject: message.subject, message_id }, `email\n${raw}`)
          break
      }
      return { message_id }
    },
    close: () => transport.close(),
  }
}

/**
 * Only the message's own fields reach nodemailer. The task schema lets extra keys through, and
 * nodemailer would act on them: `attachments` reads local files or URLs, `bcc`/`envelope` add recipients.
 */
function messageFields({ to, subject, text, html, headers }: EmailMessage): EmailMessage {
  return { to, subject, text, ...(html !== undefined ? { html } : {}), ...(headers !== undefined ? { headers } : {}) }
}

function domainOf(address: string): string {
  return /@([^>\s]+)/.exec(address)?.[1] ?? 'localhost'
}

/** The task apps enqueue to send an email. Any failure (server down, message refused) retries with backoff, then the job is kept as failed. */
export function createSendEmailTask(mailer: Mailer) {
  return defineTask({
    name: 'core.send_email',
    schema: EmailMessageSchema,
    attempts: 5,
    async handler(message, job) {
      const { message_id } = await mailer.send(message)
      job.log.info({ message_id }, 'email sent')
    },
  })
}

/** An amount in minor units as people read it: 1999 USD → $19.99 (the currency's own decimals). */
export function formatMoney(amount: number, currency: string): string {
  const format = new Intl.NumberFormat('en', { style: 'currency', currency })
  return format.format(amount / 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2))
}
