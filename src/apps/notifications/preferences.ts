/**
 * What a user receives, per channel and kind: stored choices over the defaults. Pure: the
 * service reads and writes the rows, this file decides what they mean.
 */
import { ValidationError } from '../../core/errors.js'
import { notificationChannels, notificationKinds, type NotificationChannel, type NotificationKind } from './tables.js'

export type ChannelPreferences = Record<NotificationKind, boolean>

export interface PreferencesDto {
  email: ChannelPreferences
  in_app: ChannelPreferences
  /** `channel.kind` entries that cannot be turned off. */
  locked: LockedPreference[]
  /** When the user opted in to marketing email; null while they have not (or opted out since). */
  marketing_consent_at: string | null
}

/** A partial change, as PATCH sends it. */
export type PreferencesPatch = Partial<Record<NotificationChannel, Partial<ChannelPreferences>>>

export interface StoredPreference {
  channel: NotificationChannel
  kind: NotificationKind
  enabled: boolean
  updated_at: Date
}

/** Transactional mail: the account's security messages and the orders the customer placed. */
export const LOCKED_PREFERENCES = ['email.account', 'email.order_updates'] as const
export type LockedPreference = (typeof LOCKED_PREFERENCES)[number]

/** Without a stored choice: everything about the account and orders, no marketing (it needs consent). */
const DEFAULTS: ChannelPreferences = { account: true, order_updates: true, marketing: false }

export function isLocked(channel: NotificationChannel, kind: NotificationKind): boolean {
  return (LOCKED_PREFERENCES as readonly string[]).includes(`${channel}.${kind}`)
}

export function effectivePreferences(rows: StoredPreference[]): PreferencesDto {
  const channel = (name: NotificationChannel): ChannelPreferences =>
    Object.fromEntries(notificationKinds.map((kind) => [kind, isLocked(name, kind) || (rows.find((row) => row.channel === name && row.kind === kind)?.enabled ?? DEFAULTS[kind])])) as ChannelPreferences
  const consent = rows.find((row) => row.channel === 'email' && row.kind === 'marketing' && row.enabled)
  return { email: channel('email'), in_app: channel('in_app'), locked: [...LOCKED_PREFERENCES], marketing_consent_at: consent?.updated_at.toISOString() ?? null }
}

/** The patch as single changes, locked ones that stay on left out; turning a locked one off is a 422. */
export function changesOf(patch: PreferencesPatch): Array<{ channel: NotificationChannel; kind: NotificationKind; enabled: boolean }> {
  const changes = notificationChannels.flatMap((channel) =>
    notificationKinds.flatMap((kind) => {
      const enabled = patch[channel]?.[kind]
      return enabled === undefined ? [] : [{ channel, kind, enabled }]
    }),
  )
  assertNotLockedOff(changes)
  return changes.filter((change) => !isLocked(change.channel, change.kind))
}

export function assertNotLockedOff(changes: Array<{ channel: NotificationChannel; kind: NotificationKind; enabled: boolean }>): void {
  const refused = changes.filter((change) => !change.enabled && isLocked(change.channel, change.kind))
  if (refused.length === 0) return
  throw new ValidationError(
    'Transactional email cannot be turned off.',
    Object.fromEntries(refused.map((change) => [`${change.channel}.${change.kind}`, [`${change.kind === 'account' ? 'Account' : 'Order update'} emails are transactional: they are always sent.`]])),
    'preference_locked',
  )
}
