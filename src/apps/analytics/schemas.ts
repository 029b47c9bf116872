import { Type } from 'typebox'
import { noUnknownFields } from '../../core/http/schemas.js'
import { clientEventTypes } from './tables.js'

export const IngestBody = Type.Object(
  {
    type: Type.Enum(clientEventTypes, { description: '`product_view` and `add_to_cart` name a `product`; `search` a `query`' }),
    product: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[a-z0-9]+(?:-[a-z0-9]+)*$', description: "the product's slug" })),
    query: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })),
    session_id: Type.Optional(Type.String({ minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: "the client's anonymous session; after sign-in its earlier events count as the user's" })),
  },
  noUnknownFields,
)

export const IngestAnswer = Type.Object({ accepted: Type.Literal(true) })
