import { Type } from 'typebox'
import { noUnknownFields, PageQuery, Uuid } from '../../core/http/schemas.js'
import { URL_MAX_LENGTH } from './receiver-url.js'
import { deliveryStatuses } from './tables.js'

const Timestamp = Type.String({ format: 'date-time' })
const NullableTimestamp = Type.Union([Timestamp, Type.Null()])
const NullableString = Type.Union([Type.String(), Type.Null()])

const Url = Type.String({ minLength: 1, maxLength: URL_MAX_LENGTH, description: 'http(s) URL of the receiver, without credentials; private and loopback addresses are refused unless WEBHOOK_ALLOW_PRIVATE' })
const Events = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
  minItems: 1,
  maxItems: 50,
  description: 'public event types (GET /api/webhooks/event-types/), or "*" for every one',
})
const Description = Type.String({ maxLength: 500, pattern: '^[^\\u0000]*$' })

export const EndpointSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  url: Type.String(),
  events: Type.Array(Type.String()),
  is_active: Type.Boolean(),
  description: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
  updated_at: Timestamp,
})

export const EndpointWithSecretSchema = Type.Object({
  ...EndpointSchema.properties,
  secret: Type.String({ description: 'whsec_…: the HMAC-SHA256 key of Webhook-Signature. Shown only in this answer.' }),
})

export const DeliverySchema = Type.Object({
  id: Type.String({ format: 'uuid', description: 'the Webhook-Id header: the same on every attempt and replay' }),
  endpoint_id: Type.String({ format: 'uuid' }),
  event_id: Type.String({ format: 'uuid', description: 'the `id` of the body: the domain event' }),
  event: Type.String({ description: 'public event type, e.g. order.paid' }),
  status: Type.Enum(deliveryStatuses, { description: 'pending while it is being tried; failed after the last attempt' }),
  attempts: Type.Integer(),
  response_code: Type.Union([Type.Integer(), Type.Null()]),
  response_body: Type.Union([Type.String({ description: "the first KB of the receiver's answer" }), Type.Null()]),
  last_error: NullableString,
  next_attempt_at: NullableTimestamp,
  delivered_at: NullableTimestamp,
  created_at: Timestamp,
  updated_at: Timestamp,
})

export const EventTypeSchema = Type.Object({ type: Type.String(), description: Type.String() })

export const CreateEndpointBody = Type.Object(
  {
    url: Url,
    events: Events,
    is_active: Type.Optional(Type.Boolean({ default: true })),
    description: Type.Optional(Description),
  },
  noUnknownFields,
)

export const UpdateEndpointBody = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Events),
    is_active: Type.Optional(Type.Boolean()),
    description: Type.Optional(Type.Union([Description, Type.Null()])),
  },
  { ...noUnknownFields, minProperties: 1 },
)

export const EndpointParams = Type.Object({ id: Uuid })
export const DeliveryParams = Type.Object({ id: Uuid })
export const EndpointListQuery = PageQuery
export const DeliveryListQuery = Type.Object({ ...PageQuery.properties, status: Type.Optional(Type.Enum(deliveryStatuses)) })
