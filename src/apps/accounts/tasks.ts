/**
 * The accounts app's tasks: the verification and password reset emails, sent after the change
 * that asks for them committed (through the outbox), never inside the request.
 */
import { Type } from 'typebox'
import type { Settings } from '../../config/index.js'
import { htmlFromText } from '../../core/email.js'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import type { Platform } from '../../core/platform.js'
import { defineTask } from '../../core/queue/index.js'
import type { AccountsEvents } from './events.js'
import type { AccountsService } from './service.js'

export function registerAccountsTasks(platform: Platform, accounts: AccountsService): void {
  const { settings } = platform

  platform.tasks.register(
    defineTask({
      name: 'accounts.send_verification_email',
      schema: envelopeOf(Type.Object({ user_id: Type.String() })),
      async handler(event: EventEnvelope<AccountsEvents['user.registered']>) {
        const recipient = await accounts.createVerificationToken(platform.context(), event.payload.user_id)
        if (!recipient) return
        const link = `${settings.auth.frontendUrl}/verify-email?token=${encodeURIComponent(recipient.token)}`
        await platform.queue.enqueue('core.send_email', verificationEmail(settings, recipient.email, recipient.first_name, link, recipient.token))
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
        await platform.queue.enqueue('core.send_email', passwordResetEmail(settings, recipient.email, recipient.first_name, link, recipient.token))
      },
    }),
  )
  platform.tasks.subscribe('user.password_reset_requested', 'accounts.send_password_reset_email')
}

function greeting(firstName: string): string {
  return firstName ? `Hello ${firstName},` : 'Hello,'
}

function verificationEmail(settings: Settings, to: string, firstName: string, link: string, token: string) {
  const hours = Math.round(settings.auth.verifyEmailTtlMs / 3_600_000)
  const text = `${greeting(firstName)}\n\nPlease confirm your email address for ${settings.auth.shopName}:\n${link}\n\nOr use this code in the app: ${token}\nThe link works for ${hours} hours.\n`
  return { to, subject: `Confirm your email for ${settings.auth.shopName}`, text, html: htmlFromText(text, [link]) }
}

function passwordResetEmail(settings: Settings, to: string, firstName: string, link: string, token: string) {
  const minutes = Math.round(settings.auth.passwordResetTtlMs / 60_000)
  const text = `${greeting(firstName)}\n\nSomeone asked to reset the password of your ${settings.auth.shopName} account. If it was you, choose a new password here:\n${link}\n\nOr use this code in the app: ${token}\nThe link works for ${minutes} minutes. If it was not you, ignore this email: your password stays as it is.\n`
  return { to, subject: `Reset your ${settings.auth.shopName} password`, text, html: htmlFromText(text, [link]) }
}
