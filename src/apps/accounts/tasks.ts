/**
 * The accounts app's tasks: the verification and password reset emails, sent after the change
 * that asks for them committed (through the outbox), never inside the request; and the daily
 * cleanup of tokens that can no longer be used.
 */
import { Type } from 'typebox'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import { defineCleanupTask } from '../../core/housekeeping.js'
import type { Platform } from '../../core/platform.js'
import { defineTask } from '../../core/queue/index.js'
import type { AccountsEvents } from './events.js'
import { deleteSpentTokens } from './queries.js'
import type { AccountsService } from './service.js'

export const CLEAN_SPENT_TOKENS_TASK = 'accounts.clean_spent_tokens'

export function registerAccountsTasks(platform: Platform, accounts: AccountsService): void {
  const { settings } = platform

  platform.tasks.register(defineCleanupTask(CLEAN_SPENT_TOKENS_TASK, () => deleteSpentTokens(platform.database.db)))

  platform.tasks.register(
    defineTask({
      name: 'accounts.send_verification_email',
      schema: envelopeOf(Type.Object({ user_id: Type.String() })),
      async handler(event: EventEnvelope<AccountsEvents['user.registered']>) {
        const recipient = await accounts.createVerificationToken(platform.context(), event.payload.user_id)
        if (!recipient) return
        const link = `${settings.auth.frontendUrl}/verify-email?token=${encodeURIComponent(recipient.token)}`
        const hours = Math.round(settings.auth.verifyEmailTtlMs / 3_600_000)
        const email = platform.emails.render('verify_email', { first_name: recipient.first_name, link, code: recipient.token, hours })
        await platform.queue.enqueue('core.send_email', { to: recipient.email, ...email })
      },
    }),
  )
  platform.tasks.subscribe('user.registered', 'accounts.send_verification_email')

  platform.tasks.register(
    defineTask({
      name: 'accounts.send_password_reset_email',
      schema: envelopeOf(Type.Object({ email: Type.String() })),
      async handler(event: EventEnvelope<AccountsEvents['user.password_reset_requested']>) {
        const recipient = await accounts.createPasswordResetToken(platform.context(), event.payload.email)
        if (!recipient) return
        const link = `${settings.auth.frontendUrl}/reset-password?token=${encodeURIComponent(recipient.token)}`
        const minutes = Math.round(settings.auth.passwordResetTtlMs / 60_000)
        const email = platform.emails.render('password_reset', { first_name: recipient.first_name, link, code: recipient.token, minutes })
        await platform.queue.enqueue('core.send_email', { to: recipient.email, ...email })
      },
    }),
  )
  platform.tasks.subscribe('user.password_reset_requested', 'accounts.send_password_reset_email')
}
