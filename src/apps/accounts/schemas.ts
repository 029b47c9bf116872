import { Type, type Static } from 'typebox'
import { Uuid } from '../../core/http/schemas.js'

const Email = Type.String({ format: 'email', maxLength: 254 })
const Name = Type.String({ maxLength: 150 })
/** Strength is checked by the service (it needs the email); the schema only bounds the size. */
const Password = Type.String({ minLength: 1, maxLength: 256 })
const Role = Type.Union([Type.Literal('customer'), Type.Literal('staff'), Type.Literal('admin')])
const Timestamp = Type.String({ format: 'date-time' })

export const UserSchema = Type.Object({
  id: Uuid,
  email: Type.String(),
  first_name: Type.String(),
  last_name: Type.String(),
  role: Role,
  is_active: Type.Boolean(),
  email_verified: Type.Boolean(),
  mfa_enabled: Type.Boolean(),
  date_joined: Timestamp,
  last_login: Type.Union([Timestamp, Type.Null()]),
})
export type UserDto = Static<typeof UserSchema>

export const RegisterBody = Type.Object({ email: Email, password: Password, first_name: Type.Optional(Name), last_name: Type.Optional(Name) })
export const LoginBody = Type.Object({ email: Type.String({ minLength: 1, maxLength: 254 }), password: Password })
export const TokenPairSchema = Type.Object({ access: Type.String(), refresh: Type.String() })
export const SessionSchema = Type.Object({ access: Type.String(), refresh: Type.String(), user: UserSchema })
export const MfaChallengeSchema = Type.Object({ mfa_required: Type.Literal(true), mfa_token: Type.String() })
export const RefreshBody = Type.Object({ refresh: Type.String({ minLength: 1, maxLength: 512 }) })
export const TokenBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }) })
export const EmailBody = Type.Object({ email: Email })
export const ResetConfirmBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }), password: Password })
export const MfaLoginBody = Type.Object({ mfa_token: Type.String({ minLength: 1, maxLength: 2048 }), code: Type.String({ minLength: 1, maxLength: 32 }) })
export const MfaCodeBody = Type.Object({ code: Type.String({ minLength: 1, maxLength: 32 }) })
export const MfaSetupSchema = Type.Object({ secret: Type.String(), otpauth_url: Type.String() })
export const RecoveryCodesSchema = Type.Object({ recovery_codes: Type.Array(Type.String()) })
export const DetailSchema = Type.Object({ detail: Type.String() })

export const UpdateMeBody = Type.Object({ first_name: Type.Optional(Name), last_name: Type.Optional(Name) }, { minProperties: 1 })
export const ChangePasswordBody = Type.Object({ current_password: Password, new_password: Password })

export const UserListQuery = Type.Object({
  search: Type.Optional(Type.String({ maxLength: 100 })),
  role: Type.Optional(Role),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
})
export const UpdateUserBody = Type.Object({ role: Type.Optional(Role), is_active: Type.Optional(Type.Boolean()) }, { minProperties: 1 })
export const IdParams = Type.Object({ id: Uuid })

const AddressFields = {
  full_name: Type.String({ minLength: 1, maxLength: 200 }),
  line1: Type.String({ minLength: 1, maxLength: 200 }),
  line2: Type.String({ maxLength: 200 }),
  city: Type.String({ minLength: 1, maxLength: 100 }),
  region: Type.String({ maxLength: 100 }),
  postal_code: Type.String({ maxLength: 20 }),
  country: Type.String({ pattern: '^[A-Za-z]{2}$', description: 'ISO 3166-1 alpha-2 code' }),
  phone: Type.String({ maxLength: 32, pattern: '^[0-9+() .-]*$' }),
  is_default_shipping: Type.Boolean(),
  is_default_billing: Type.Boolean(),
}
export const AddressSchema = Type.Object({ id: Uuid, ...AddressFields, country: Type.String() })
export type AddressDto = Static<typeof AddressSchema>
export const CreateAddressBody = Type.Object({
  full_name: AddressFields.full_name,
  line1: AddressFields.line1,
  line2: Type.Optional(AddressFields.line2),
  city: AddressFields.city,
  region: Type.Optional(AddressFields.region),
  postal_code: Type.Optional(AddressFields.postal_code),
  country: AddressFields.country,
  phone: Type.Optional(AddressFields.phone),
  is_default_shipping: Type.Optional(AddressFields.is_default_shipping),
  is_default_billing: Type.Optional(AddressFields.is_default_billing),
})
export type CreateAddressInput = Static<typeof CreateAddressBody>
export const UpdateAddressBody = Type.Partial(CreateAddressBody, { minProperties: 1 })
export type UpdateAddressInput = Static<typeof UpdateAddressBody>
