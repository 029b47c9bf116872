/** Shapes shared by every app's schemas. */
import { Type, type Static, type TSchema } from 'typebox'

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI reference naming the problem, /problems/<code>' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String({ description: 'the request path' }),
    code: Type.String({ description: 'stable machine-readable code' }),
    request_id: Type.String(),
    errors: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()), { description: 'field → messages (422)' })),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details', additionalProperties: true },
)
export type Problem = Static<typeof ProblemSchema>

/** Reference to the shared Problem schema, for route `response` maps. */
export const Problem = Type.Unsafe<Problem>(Type.Ref('Problem'))

/** A plain UUID (the `uuid` format alone also admits a `urn:uuid:` prefix, which PostgreSQL refuses). */
export const Uuid = Type.String({ format: 'uuid', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' })

export function Page<T extends TSchema>(item: T) {
  return Type.Object({
    count: Type.Union([Type.Integer(), Type.Null()]),
    next: Type.Union([Type.String(), Type.Null()]),
    previous: Type.Union([Type.String(), Type.Null()]),
    results: Type.Array(item),
  })
}

export const PageQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
})

/**
 * Spread into an object schema's options to answer unknown fields with a 422 naming them. Not
 * `additionalProperties: false`: the body validator's removeAdditional would drop them silently.
 */
export const noUnknownFields = { additionalProperties: Type.Never() }
