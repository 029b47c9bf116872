import { Type } from 'typebox'
import { noUnknownFields } from '../../core/http/schemas.js'
import { ORDER_NUMBER_PATTERN } from './numbers.js'
import { orderStatuses } from './tables.js'

const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength, pattern: '^[^\\u0000]*\\S[^\\u0000]*$' })

export const AddressSchema = Type.Object(
  {
    name: Text(200),
    line1: Text(200),
    line2: Type.Optional(Type.String({ maxLength: 200, pattern: '^[^\\u0000]*$' })),
    city: Text(100),
    region: Type.Optional(Type.String({ maxLength: 100, pattern: '^[^\\u0000]*$', description: 'state or province; picks a regional tax rate where one is set' })),
    postal_code: Text(20),
    country: Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2' }),
    phone: Type.Optional(Type.String({ maxLength: 40, pattern: '^[0-9+() .-]*$' })),
  },
  noUnknownFields,
)

export const CheckoutBody = Type.Object(
  {
    email: Type.Optional(Type.String({ format: 'email', maxLength: 254, description: 'required for guests; a signed-in user orders with their account email' })),
    shipping_address: AddressSchema,
    billing_address: Type.Optional(AddressSchema),
    shipping_method: Type.String({ minLength: 1, maxLength: 50 }),
  },
  noUnknownFields,
)

export const OrderStatusSchema = Type.Enum(orderStatuses)

const Money = Type.Integer()
export const OrderSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  number: Type.String(),
  status: OrderStatusSchema,
  payment_status: Type.Enum(['unpaid', 'paid', 'refunded', 'partially_refunded', 'void']),
  email: Type.String(),
  currency: Type.String(),
  items: Type.Array(
    Type.Object({
      sku: Type.String(),
      product_name: Type.String(),
      variant_name: Type.String(),
      quantity: Type.Integer(),
      unit_price: Money,
      discount: Money,
      tax_rate_bp: Type.Integer({ description: 'basis points: 2000 = 20 %' }),
      tax: Money,
      total: Money,
    }),
  ),
  totals: Type.Object({ subtotal: Money, discount: Money, shipping: Money, tax: Money, total: Money }),
  prices_include_tax: Type.Boolean(),
  coupon_code: Type.Union([Type.String(), Type.Null()]),
  shipping_method: Type.String(),
  shipping_address: AddressSchema,
  billing_address: AddressSchema,
  tracking_number: Type.Union([Type.String(), Type.Null()]),
  reservation_expires_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  payment: Type.Union([
    Type.Object({
      id: Type.String({ format: 'uuid' }),
      provider: Type.String({ description: '`stripe`, or `dummy` for local use' }),
      status: Type.String({ description: 'pending, processing, succeeded, failed or canceled' }),
      client_secret: Type.Union([Type.String(), Type.Null()], { description: "Stripe's client secret for the browser; only for the customer paying" }),
    }),
    Type.Null(),
  ], { description: 'the current payment; null if none could be created yet (POST /api/payments/ makes one)' }),
  events: Type.Array(
    Type.Object({
      type: Type.String(),
      from_status: Type.Union([Type.String(), Type.Null()]),
      to_status: Type.Union([Type.String(), Type.Null()]),
      note: Type.Union([Type.String(), Type.Null()]),
      created_at: Type.String({ format: 'date-time' }),
    }),
  ),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
})

export const NumberParams = Type.Object({ number: Type.String({ pattern: ORDER_NUMBER_PATTERN }) })
export const OrderLookupQuery = Type.Object({ email: Type.Optional(Type.String({ maxLength: 254 })) })
export const OrderListQuery = Type.Object({
  status: Type.Optional(OrderStatusSchema),
  email: Type.Optional(Type.String({ maxLength: 254, description: 'staff only' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
})
export const CancelBody = Type.Object({ note: Type.Optional(Type.String({ maxLength: 1000, pattern: '^[^\\u0000]*$' })) }, noUnknownFields)
export const TransitionBody = Type.Object(
  {
    status: OrderStatusSchema,
    tracking_number: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000]*$' })),
    note: Type.Optional(Type.String({ maxLength: 1000, pattern: '^[^\\u0000]*$' })),
  },
  noUnknownFields,
)
