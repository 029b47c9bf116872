import { Type } from 'typebox'
import { noUnknownFields, Page, PageQuery, Uuid } from '../../core/http/schemas.js'
import { LOCKED_PREFERENCES } from './preferences.js'
import { notificationKinds } from './tables.js'

const Timestamp = Type.String({ format: 'date-time' })

export const NotificationSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  kind: Type.Enum(notificationKinds),
  type: Type.String({ description: 'what happened, for the icon and wording: `order.shipped`, `payment.failed`, …' }),
  title: Type.String(),
  body: Type.String(),
  link: Type.Union([Type.String(), Type.Null()], { description: 'where the shop front end shows more' }),
  data: Type.Record(Type.String(), Type.Unknown(), { description: 'facts of the event, e.g. `order_number`, `tracking_number`, `amount`' }),
  read: Type.Boolean(),
  read_at: Type.Union([Timestamp, Type.Null()]),
  created_at: Timestamp,
})

export const NotificationPageSchema = Type.Object({
  ...Page(NotificationSchema).properties,
  count: Type.Integer({ description: 'how many match the filter' }),
  unread_count: Type.Integer({ description: 'how many of all your notifications are unread' }),
})

export const NotificationListQuery = Type.Object({
  unread: Type.Optional(Type.Boolean({ description: '`true`: only unread ones; `false`: only read ones' })),
  ...PageQuery.properties,
})

export const NotificationParams = Type.Object({ id: Uuid })

export const ReadAllAnswer = Type.Object({ updated: Type.Integer({ description: 'how many were unread' }) })

const ChannelPreferencesSchema = Type.Object({
  account: Type.Boolean({ description: 'sign-in, security and account messages' }),
  order_updates: Type.Boolean({ description: 'your orders: confirmed, shipped, delivered, cancelled, refunded; payment problems' }),
  marketing: Type.Boolean({ description: 'offers and news; off until you opt in' }),
})

export const PreferencesSchema = Type.Object({
  email: ChannelPreferencesSchema,
  in_app: ChannelPreferencesSchema,
  locked: Type.Array(Type.Enum(LOCKED_PREFERENCES), { description: 'transactional email: always sent, cannot be turned off' }),
  marketing_consent_at: Type.Union([Timestamp, Type.Null()], { description: 'when marketing email was turned on; null while it is off' }),
})

const ChannelPatch = Type.Object(
  {
    account: Type.Optional(Type.Boolean()),
    order_updates: Type.Optional(Type.Boolean()),
    marketing: Type.Optional(Type.Boolean()),
  },
  noUnknownFields,
)

export const PreferencesPatchBody = Type.Object({ email: Type.Optional(ChannelPatch), in_app: Type.Optional(ChannelPatch) }, noUnknownFields)
