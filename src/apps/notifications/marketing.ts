/**
 * Marketing: staff send news to the customers who agreed to it, by email (with a one-click
 * `List-Unsubscribe`, RFC 8058) and in the app. The request only records the broadcast as an event;
 * a task writes to the audience in batches, one email job per person keyed by broadcast and person,
 * so running it twice sends nothing twice.
 */
import { randomUUID } from 'node:crypto'
import type { Ctx } from '../../core/context.js'
import type { EmailMessage } from '../../core/email.js'
import type { EmailTemplates } from '../../core/email-templates.js'
import type { TaskQueue } from '../../core/queue/index.js'
import type { NotificationsEvents } from './events.js'
import type { NotificationsService } from './service.js'
import { audienceIds, countAudience } from './queries.js'
import type { NotificationChannel } from './tables.js'
import type { UnsubscribeTokens } from './unsubscribe-tokens.js'

export interface BroadcastInput {
  subject: string
  body: string
  link?: string
  link_label?: string
}

export interface Recipient {
  id: string
  email: string
  first_name: string
}

export interface MarketingDeps {
  notifications: NotificationsService
  tokens: UnsubscribeTokens
  emails: EmailTemplates
  queue: TaskQueue
  /** Active accounts among these ids (the accounts app). */
  recipients(ctx: Ctx, ids: string[]): Promise<Recipient[]>
  /** The API's public URL: the unsubscribe link points at this API. */
  publicUrl: string
}

const BATCH = 500

export function createMarketing(deps: MarketingDeps) {
  const unsubscribeUrl = async (userId: string) => `${deps.publicUrl}/api/notifications/unsubscribe/?token=${await deps.tokens.sign(userId, 'marketing')}`

  const emailTo = async (person: Recipient, news: Broadcast): Promise<EmailMessage> => {
    const url = await unsubscribeUrl(person.id)
    const email = deps.emails.render('marketing', {
      subject: news.subject,
      first_name: person.first_name,
      paragraphs: paragraphsOf(news.body),
      link: news.link,
      link_label: news.link_label ?? 'Have a look',
      unsubscribe_url: url,
    })
    // One click in the mail client unsubscribes (RFC 8058); the link in the footer asks first.
    return { to: person.email, ...email, headers: { 'List-Unsubscribe': `<${url}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } }
  }

  return {
    /** Records the broadcast (sent by a task after commit); answers its id and how many agreed to receive it. */
    async broadcast(ctx: Ctx, input: BroadcastInput): Promise<{ id: string; email_recipients: number; in_app_recipients: number }> {
      const id = randomUUID()
      return ctx.tx(async (tx) => {
        await tx.events.publish('notifications.broadcast_requested', { broadcast_id: id, subject: input.subject, body: input.body, link: input.link ?? null, link_label: input.link_label ?? null })
        return { id, email_recipients: await countAudience(tx.db, 'email'), in_app_recipients: await countAudience(tx.db, 'in_app') }
      })
    },

    /** The task's work: every consenting person gets the email and the in-app notice once. */
    async send(ctx: Ctx, news: Broadcast): Promise<{ emails: number; notices: number }> {
      let emails = 0
      for await (const people of audience(ctx, 'email')) {
        for (const person of people) {
          await deps.queue.enqueue('core.send_email', await emailTo(person, news), { jobId: `broadcast:${news.broadcast_id}:${person.id}` })
          emails += 1
        }
      }
      let notices = 0
      for await (const people of audience(ctx, 'in_app')) {
        for (const person of people) {
          const notice = await deps.notifications.notify(ctx, {
            user_id: person.id,
            kind: 'marketing',
            type: 'marketing.news',
            title: news.subject,
            body: news.body,
            link: news.link,
            // The broadcast, not the delivery of its event: however often it is handed out, one notice.
            source_event_id: news.broadcast_id,
          })
          if (notice) notices += 1
        }
      }
      return { emails, notices }
    },

    /** The unsubscribe link's action: marketing email off. Null when the token is not ours. */
    async unsubscribe(ctx: Ctx, token: string): Promise<{ kind: 'marketing' } | null> {
      const subject = await deps.tokens.verify(token)
      if (!subject) return null
      await deps.notifications.setPreference(ctx, subject.userId, 'email', subject.kind, false)
      return { kind: 'marketing' }
    },

    unsubscribeUrl,
  }

  /** Batches of people who turned marketing on for `channel`, by user id (keyset). */
  async function* audience(ctx: Ctx, channel: NotificationChannel): AsyncGenerator<Recipient[]> {
    for (let after: string | null = null; ; ) {
      const ids = await audienceIds(ctx.db, channel, after, BATCH)
      if (ids.length === 0) return
      yield await deps.recipients(ctx, ids)
      after = ids.at(-1)!
    }
  }
}

export type Marketing = ReturnType<typeof createMarketing>

type Broadcast = NotificationsEvents['notifications.broadcast_requested']

/** Blank lines separate paragraphs; single line breaks stay inside one. */
function paragraphsOf(body: string): string[] {
  return body
    .split(/\n\s*\n/)
    .map((paragraph) => paragraph.trim())
    .filter(Boolean)
}
