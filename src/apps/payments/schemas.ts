import { Type } from 'typebox'
import { noUnknownFields, Uuid } from '../../core/http/schemas.js'
import { ORDER_NUMBER_PATTERN } from '../orders/numbers.js'
import { REFUND_REASONS } from './service.js'
import { paymentStatuses, refundStatuses } from './tables.js'

const Money = Type.Integer({ description: 'minor units of `currency`' })
const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()])

export const RefundSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  payment_id: Type.String({ format: 'uuid' }),
  amount: Money,
  currency: Type.String(),
  status: Type.Enum(refundStatuses, { description: 'pending until the provider confirms; failed refunds keep their reason' }),
  reason: Type.String(),
  note: Nullable(Type.String()),
  failure_message: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
})

export const PaymentSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  order_number: Type.String(),
  provider: Type.String({ description: '`stripe`, or `dummy` (built in, for local use and demos)' }),
  status: Type.Enum(paymentStatuses),
  amount: Money,
  currency: Type.String(),
  amount_refunded: Money,
  client_secret: Nullable(Type.String({ description: "Stripe's client secret for Stripe.js; only for the paying customer, while the payment is open" })),
  publishable_key: Nullable(Type.String({ description: 'STRIPE_PUBLISHABLE_KEY, for Stripe.js' })),
  flagged: Nullable(Type.String({ description: 'why a person must look (an amount that does not match the order, a dispute)' })),
  failure_message: Nullable(Type.String()),
  refunds: Type.Array(RefundSchema),
  created_at: Timestamp,
  updated_at: Timestamp,
})

export const CreatePaymentBody = Type.Object(
  {
    order_number: Type.String({ pattern: ORDER_NUMBER_PATTERN }),
    email: Type.Optional(Type.String({ maxLength: 254, description: "guests: the order's email" })),
  },
  noUnknownFields,
)

export const PaymentParams = Type.Object({ id: Uuid })
export const GuestAccessQuery = Type.Object({ email: Type.Optional(Type.String({ maxLength: 254, description: "guests: the order's email" })) })

export const RefundBody = Type.Object(
  {
    amount: Type.Optional(Type.Integer({ minimum: 1, description: 'minor units; the whole refundable remainder when absent' })),
    reason: Type.Optional(Type.Enum(REFUND_REASONS, { default: 'requested_by_customer' })),
    note: Type.Optional(Type.String({ maxLength: 1000, pattern: '^[^\\u0000]*$' })),
  },
  noUnknownFields,
)

export const WebhookAnswer = Type.Object({ received: Type.Boolean(), duplicate: Type.Boolean(), outcome: Type.String() })
