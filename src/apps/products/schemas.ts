import { Type } from 'typebox'
import { noUnknownFields } from '../../core/http/schemas.js'
import type { CategoryNode } from './categories.js'

// PostgreSQL text and jsonb cannot hold a NUL character: without these patterns one in a name, an
// attribute or a path parameter reached the database and answered 500 instead of 422.
const NO_NUL = '^[^\\u0000]*$'
/** Some visible character and no NUL. */
const NOT_BLANK = '^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$'

export const SkuParams = Type.Object({ sku: Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL }) })

export const StockSchema = Type.Object({
  sku: Type.String(),
  on_hand: Type.Integer(),
  reserved: Type.Integer(),
  available: Type.Integer(),
})

const Reason = Type.String({ minLength: 1, maxLength: 200, pattern: NO_NUL })

// Not additionalProperties: false: Ajv's removeAdditional would strip `delta` while trying the
// first branch, so `{delta, reason}` failed and `{quantity, delta}` passed. `not` keeps them apart.
export const StockChangeBody = Type.Union(
  [
    Type.Object({ quantity: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }), reason: Type.Optional(Reason) }, { not: { required: ['delta'] } }),
    Type.Object({ delta: Type.Integer({ minimum: -1_000_000_000, maximum: 1_000_000_000, not: { const: 0 } }), reason: Reason }, { not: { required: ['quantity'] } }),
  ],
  { description: 'Either `{quantity}` (a count: the new on-hand stock) or `{delta, reason}` (a change, e.g. a delivery).' },
)

/** POST /api/internal/inventory/adjust/: a signed change with its reason. */
export const InternalAdjustBody = Type.Object(
  {
    sku: Type.String({ minLength: 1, maxLength: 64 }),
    delta: Type.Integer({ minimum: -1_000_000_000, maximum: 1_000_000_000, not: { const: 0 } }),
    reason: Reason,
  },
  noUnknownFields,
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
export const SlugParams = Type.Object({ slug: Type.String({ minLength: 1, maxLength: 80, pattern: NO_NUL }) })
export const CreateCategoryBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 120, pattern: NOT_BLANK }),
  slug: Type.Optional(Slug),
  parent: Type.Optional(Type.Union([Slug, Type.Null()], { description: 'slug of the parent; null or absent for a top-level category' })),
})
export const UpdateCategoryBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 120, pattern: NOT_BLANK })),
    slug: Type.Optional(Slug),
    parent: Type.Optional(Type.Union([Slug, Type.Null()], { description: 'new parent slug; null moves it to the top' })),
  },
  { minProperties: 1 },
)

// The key pattern becomes patternProperties; a key outside it (empty, too long, with a NUL) is refused.
const Attributes = Type.Record(Type.String({ pattern: '^[^\\u0000]{1,50}$' }), Type.String({ maxLength: 200, pattern: NO_NUL }), {
  maxProperties: 30,
  description: 'name → value, e.g. {"material": "cotton"}',
  ...noUnknownFields,
})
const Money = Type.Integer({ minimum: 0, maximum: 100_000_000, description: 'minor units of the store currency' })

export const ImageSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  url: Type.String(),
  alt: Type.String(),
  width: Type.Union([Type.Integer(), Type.Null()]),
  height: Type.Union([Type.Integer(), Type.Null()]),
})

export const VariantSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  sku: Type.String(),
  name: Type.String(),
  attributes: Type.Record(Type.String(), Type.String()),
  price: Type.Integer(),
  compare_at_price: Type.Union([Type.Integer(), Type.Null()]),
  currency: Type.String(),
  in_stock: Type.Boolean(),
  stock_available: Type.Integer(),
})

export const ProductSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  name: Type.String(),
  description: Type.String(),
  category: Type.Union([Type.Object({ id: Type.String({ format: 'uuid' }), slug: Type.String(), name: Type.String() }), Type.Null()]),
  images: Type.Array(ImageSchema),
  attributes: Type.Record(Type.String(), Type.String()),
  price: Type.Union([Type.Integer(), Type.Null()], { description: 'the lowest price of its variants' }),
  currency: Type.String(),
  rating: Type.Union([Type.Number(), Type.Null()]),
  review_count: Type.Integer(),
  is_active: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  variants: Type.Array(VariantSchema),
})

const Sku = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' })

export const VariantInput = Type.Object({
  sku: Sku,
  name: Type.Optional(Type.String({ maxLength: 120, pattern: NO_NUL })),
  attributes: Type.Optional(Attributes),
  price: Money,
  compare_at_price: Type.Optional(Type.Union([Money, Type.Null()])),
  stock: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'initial on-hand stock of a new variant' })),
}, noUnknownFields)

const productFields = {
  name: Type.String({ minLength: 1, maxLength: 200, pattern: NOT_BLANK }),
  slug: Slug,
  description: Type.String({ maxLength: 20_000, pattern: NO_NUL }),
  category: Type.Union([Slug, Type.Null()], { description: 'category slug' }),
  attributes: Attributes,
  is_active: Type.Boolean(),
  variants: Type.Array(VariantInput, { minItems: 1, maxItems: 100, description: 'the full list: SKUs left out stop being sold' }),
}

export const CreateProductBody = Type.Object({
  name: productFields.name,
  slug: Type.Optional(productFields.slug),
  description: Type.Optional(productFields.description),
  category: Type.Optional(productFields.category),
  attributes: Type.Optional(productFields.attributes),
  is_active: Type.Optional(productFields.is_active),
  variants: productFields.variants,
}, noUnknownFields)

export const UpdateProductBody = Type.Partial(Type.Object(productFields), { minProperties: 1, ...noUnknownFields })

const orderings = ['price', '-price', 'created_at', '-created_at', 'name', '-name', 'rating', '-rating'] as const
export const ProductOrdering = Type.Enum(orderings, { description: 'sort field, `-` for descending; default -created_at' })
/** The search's orderings: relevance (the default) or any of the list's. */
export const SearchOrdering = Type.Enum(['relevance', ...orderings], { description: 'default relevance' })

/** The list's filters and paging, shared with search. */
export const listFilters = {
  category: Type.Optional(Type.String({ minLength: 1, maxLength: 80, pattern: NO_NUL, description: 'category slug; includes its subcategories' })),
  // Prices are PostgreSQL integers: a larger bound was a 500 (out of range), not an answer.
  min_price: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647, description: 'lowest price, minor units' })),
  max_price: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647, description: 'highest price, minor units' })),
  in_stock: Type.Optional(Type.Boolean()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  // A name-ordered cursor carries the name (up to 200 characters, 4 bytes each in UTF-8), base64.
  cursor: Type.Optional(Type.String({ maxLength: 2048 })),
}

export const ProductListQuery = Type.Object({
  ...listFilters,
  search: Type.Optional(Type.String({ maxLength: 200, pattern: NO_NUL, description: 'full-text search; results ranked by relevance unless `ordering` is given' })),
  ordering: Type.Optional(ProductOrdering),
})
