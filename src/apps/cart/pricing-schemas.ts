/** TypeBox schemas of the pricing routes: coupons, shipping methods and tax rates. */
import { Type, type Static } from 'typebox'
import { Uuid } from '../../core/http/schemas.js'

const NO_NUL = '^[^\\u0000]*$'
/** Some visible character and no NUL. */
const NOT_BLANK = '^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$'
/** Rejects fields the schema does not name (Ajv's removeAdditional would drop them silently). */
const noUnknownFields = { additionalProperties: Type.Never() }
const Money = Type.Integer({ minimum: 0, maximum: 100_000_000, description: 'minor units of the store currency' })
const Timestamp = Type.String({ format: 'date-time' })
const NullableTimestamp = Type.Union([Timestamp, Type.Null()])
/** ISO 3166-1 alpha-2, either case (stored upper case). */
const Country = Type.String({ pattern: '^[A-Za-z]{2}$', description: 'ISO 3166-1 alpha-2 country code' })

// ---- coupons ----

export const COUPON_CODE_PATTERN = '^[A-Z0-9_-]{3,32}$'

export const CouponSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  code: Type.String({ description: 'upper case; matched case-insensitively' }),
  kind: Type.Enum(['percent', 'fixed']),
  value: Type.Integer({ description: 'percent (1–100) for `percent`, minor units for `fixed`' }),
  min_subtotal: Type.Integer(),
  starts_at: NullableTimestamp,
  ends_at: NullableTimestamp,
  usage_limit: Type.Union([Type.Integer(), Type.Null()], { description: 'redemptions in all; null: unlimited' }),
  per_customer_limit: Type.Union([Type.Integer(), Type.Null()], { description: 'redemptions per customer (user, or guest email); null: unlimited' }),
  times_used: Type.Integer(),
  is_active: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
})
export type CouponDto = Static<typeof CouponSchema>

const couponFields = {
  kind: Type.Enum(['percent', 'fixed']),
  value: Type.Integer({ minimum: 1, maximum: 100_000_000, description: 'percent (1–100) for `percent`, minor units (> 0) for `fixed`' }),
  min_subtotal: Type.Integer({ minimum: 0, maximum: 100_000_000, description: 'the coupon applies from this subtotal on; default 0' }),
  starts_at: Type.Union([Timestamp, Type.Null()], { description: 'valid from (inclusive); null: at once' }),
  ends_at: Type.Union([Timestamp, Type.Null()], { description: 'valid until (exclusive); null: no end; after starts_at' }),
  usage_limit: Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000_000 }), Type.Null()]),
  per_customer_limit: Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000_000 }), Type.Null()]),
  is_active: Type.Boolean(),
}

export const CreateCouponBody = Type.Object({
  code: Type.String({ pattern: '^[A-Za-z0-9_-]{3,32}$', description: '3–32 letters, digits, _ or -; stored upper case' }),
  kind: couponFields.kind,
  value: couponFields.value,
  min_subtotal: Type.Optional(couponFields.min_subtotal),
  starts_at: Type.Optional(couponFields.starts_at),
  ends_at: Type.Optional(couponFields.ends_at),
  usage_limit: Type.Optional(couponFields.usage_limit),
  per_customer_limit: Type.Optional(couponFields.per_customer_limit),
  is_active: Type.Optional(couponFields.is_active),
}, noUnknownFields)
export type CreateCouponInput = Static<typeof CreateCouponBody>

export const UpdateCouponBody = Type.Partial(Type.Object(couponFields), { minProperties: 1, ...noUnknownFields })
export type UpdateCouponInput = Static<typeof UpdateCouponBody>

/** Lenient on purpose: any code that is not a coupon is a 404, whatever its characters. */
export const CouponCodeParams = Type.Object({ code: Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL }) })

// ---- shipping ----

const EstimatedDays = Type.Object({ min: Type.Integer({ minimum: 0, maximum: 365 }), max: Type.Integer({ minimum: 0, maximum: 365 }) }, noUnknownFields)

export const ShippingOptionSchema = Type.Object({
  code: Type.String(),
  name: Type.String(),
  price: Type.Integer({ description: 'the rate for this country, before any free_over' }),
  free_over: Type.Union([Type.Integer(), Type.Null()], { description: 'shipping is free when the discounted subtotal reaches this' }),
  currency: Type.String(),
  estimated_days: Type.Object({ min: Type.Integer(), max: Type.Integer() }),
})
export type ShippingOption = Static<typeof ShippingOptionSchema>

export const ShippingMethodsQuery = Type.Object({ country: Country })

export const ShippingRateSchema = Type.Object({
  country: Type.String({ description: "ISO 3166-1 alpha-2, or '*' for every country without a rate of its own" }),
  price: Type.Integer(),
  free_over: Type.Union([Type.Integer(), Type.Null()]),
})
export type ShippingRate = Static<typeof ShippingRateSchema>

export const ShippingMethodSchema = Type.Object({
  code: Type.String(),
  name: Type.String(),
  estimated_days: Type.Object({ min: Type.Integer(), max: Type.Integer() }),
  is_active: Type.Boolean(),
  rates: Type.Array(ShippingRateSchema),
})
export type ShippingMethodDto = Static<typeof ShippingMethodSchema>

const RateInput = Type.Object({
  country: Type.String({ pattern: '^([A-Za-z]{2}|\\*)$', description: "ISO 3166-1 alpha-2, or '*'" }),
  price: Money,
  free_over: Type.Optional(Type.Union([Money, Type.Null()])),
}, noUnknownFields)
const shippingFields = {
  name: Type.String({ minLength: 1, maxLength: 120, pattern: NOT_BLANK }),
  estimated_days: EstimatedDays,
  is_active: Type.Boolean(),
  rates: Type.Array(RateInput, { minItems: 1, maxItems: 300, description: 'the full list, one per country' }),
}
export const CreateShippingMethodBody = Type.Object({
  code: Type.String({ pattern: '^[a-z0-9_-]{2,32}$', description: '2–32 lower-case letters, digits, _ or -' }),
  name: shippingFields.name,
  estimated_days: shippingFields.estimated_days,
  is_active: Type.Optional(shippingFields.is_active),
  rates: shippingFields.rates,
}, noUnknownFields)
export type CreateShippingMethodInput = Static<typeof CreateShippingMethodBody>
export const UpdateShippingMethodBody = Type.Partial(Type.Object(shippingFields), { minProperties: 1, ...noUnknownFields })
export type UpdateShippingMethodInput = Static<typeof UpdateShippingMethodBody>
export const ShippingMethodParams = Type.Object({ code: Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL }) })

// ---- tax ----

export const TaxRateSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  country: Type.String(),
  region: Type.String({ description: "empty for the whole country" }),
  name: Type.String(),
  rate_bp: Type.Integer({ description: 'basis points: 2000 = 20 %' }),
})
export type TaxRateDto = Static<typeof TaxRateSchema>

const taxFields = {
  country: Country,
  region: Type.String({ pattern: '^[A-Za-z0-9]{0,3}$', description: "subdivision code (ISO 3166-2 suffix, e.g. CA); '' or absent for the whole country" }),
  name: Type.String({ minLength: 1, maxLength: 80, pattern: NOT_BLANK }),
  rate_bp: Type.Integer({ minimum: 0, maximum: 10_000, description: 'basis points: 2000 = 20 %' }),
}
export const CreateTaxRateBody = Type.Object({
  country: taxFields.country,
  region: Type.Optional(taxFields.region),
  name: taxFields.name,
  rate_bp: taxFields.rate_bp,
}, noUnknownFields)
export type CreateTaxRateInput = Static<typeof CreateTaxRateBody>
export const UpdateTaxRateBody = Type.Partial(Type.Object(taxFields), { minProperties: 1, ...noUnknownFields })
export type UpdateTaxRateInput = Static<typeof UpdateTaxRateBody>
export const TaxRateParams = Type.Object({ id: Uuid })
