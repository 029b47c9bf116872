import { Type, type Static } from 'typebox'

// Stricter than format uuid alone, which also accepts a "urn:uuid:" prefix the database would refuse.
const UserId = Type.String({ format: 'uuid', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' })

export const UserParams = Type.Object({ id: UserId })

/** What other services may know about a user. */
export const UserSummarySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String({ format: 'email' }),
  first_name: Type.String(),
  last_name: Type.String(),
  role: Type.Union([Type.Literal('customer'), Type.Literal('staff'), Type.Literal('admin')]),
  is_active: Type.Boolean(),
  email_verified: Type.Boolean(),
  date_joined: Type.String({ format: 'date-time', description: 'RFC 3339 UTC' }),
})
export type UserSummary = Static<typeof UserSummarySchema>

/** Public members only: anything else (a private `d`) is dropped by the serializer. */
const JwkSchema = Type.Object({
  kty: Type.String(),
  kid: Type.String(),
  alg: Type.String(),
  use: Type.Literal('sig'),
  n: Type.Optional(Type.String({ description: 'RSA modulus' })),
  e: Type.Optional(Type.String({ description: 'RSA exponent' })),
  crv: Type.Optional(Type.String({ description: 'curve (EC, OKP)' })),
  x: Type.Optional(Type.String()),
  y: Type.Optional(Type.String()),
})

export const JwksSchema = Type.Object({ keys: Type.Array(JwkSchema) })
export type Jwks = Static<typeof JwksSchema>
