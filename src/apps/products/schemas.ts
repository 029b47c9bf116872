import { Type } from 'typebox'
import type { CategoryNode } from './categories.js'

export const SkuParams = Type.Object({ sku: Type.String({ minLength: 1, maxLength: 64 }) })

export const StockSchema = Type.Object({
  sku: Type.String(),
  on_hand: Type.Integer(),
  reserved: Type.Integer(),
  available: Type.Integer(),
})

const Reason = Type.String({ minLength: 1, maxLength: 200 })

// Not additionalProperties: false: Ajv's removeAdditional would strip `delta` while trying the
// first branch, so `{delta, reason}` failed and `{quantity, delta}` passed. `not` keeps them apart.
export const StockChangeBody = Type.Union(
  [
    Type.Object({ quantity: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }), reason: Type.Optional(Reason) }, { not: { required: ['delta'] } }),
    Type.Object({ delta: Type.Integer({ minimum: -1_000_000_000, maximum: 1_000_000_000, not: { const: 0 } }), reason: Reason }, { not: { required: ['quantity'] } }),
  ],
  { description: 'Either `{quantity}` (a count: the new on-hand stock) or `{delta, reason}` (a change, e.g. a delivery).' },
)

const Slug = Type.String({ minLength: 1, maxLength: 80, pattern: '^[a-z0-9]+(?:-[a-z0-9]+)*$' })

/** A category with its subtree: recursive, so a plain JSON schema registered once (addSchema). */
export const CategorySchemaDefinition = {
  $id: 'Category',
  type: 'object',
  required: ['id', 'name', 'slug', 'parent', 'children'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    slug: { type: 'string' },
    parent: { type: ['string', 'null'], description: 'slug of the parent' },
    children: { type: 'array', items: { $ref: 'Category' } },
  },
} as const
export const CategorySchema = Type.Unsafe<CategoryNode>(Type.Ref('Category'))
export const SlugParams = Type.Object({ slug: Type.String({ minLength: 1, maxLength: 80 }) })
export const CreateCategoryBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 120, pattern: '\\S' }),
  slug: Type.Optional(Slug),
  parent: Type.Optional(Type.Union([Slug, Type.Null()], { description: 'slug of the parent; null or absent for a top-level category' })),
})
export const UpdateCategoryBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 120, pattern: '\\S' })),
    slug: Type.Optional(Slug),
    parent: Type.Optional(Type.Union([Slug, Type.Null()], { description: 'new parent slug; null moves it to the top' })),
  },
  { minProperties: 1 },
)
