import { Type } from 'typebox'
import { Uuid } from '../../core/http/schemas.js'
import { listFilters, ProductSchema, SearchOrdering } from '../products/service.js'

export const SearchQuerystring = Type.Object({
  ...listFilters,
  // No NUL: PostgreSQL text cannot hold one (it was a 500).
  q: Type.String({ maxLength: 200, pattern: '^[^\\u0000]*$', description: 'what to look for: ranked, typo-tolerant, prefixes match, synonyms apply' }),
  ordering: Type.Optional(SearchOrdering),
})

const Count = Type.Integer({ minimum: 0 })

export const FacetsSchema = Type.Object({
  categories: Type.Array(Type.Object({ slug: Type.String(), name: Type.String(), count: Count }), { description: 'matching products per category, subcategories included' }),
  price_ranges: Type.Array(Type.Object({ min_price: Type.Integer(), max_price: Type.Union([Type.Integer(), Type.Null()]), count: Count }), { description: 'inclusive bounds: the same numbers as min_price/max_price filters' }),
  attributes: Type.Array(Type.Object({ name: Type.String(), values: Type.Array(Type.Object({ value: Type.String(), count: Count })) })),
})

export const SearchResultSchema = Type.Object({
  count: Type.Union([Type.Integer(), Type.Null()]),
  next: Type.Union([Type.String(), Type.Null()]),
  previous: Type.Union([Type.String(), Type.Null()]),
  results: Type.Array(
    Type.Intersect([
      ProductSchema,
      Type.Object({
        highlight: Type.Object(
          { name: Type.Union([Type.String(), Type.Null()]), description: Type.Union([Type.String(), Type.Null()]) },
          { description: 'HTML-escaped text, matches wrapped in <mark>' },
        ),
      }),
    ]),
  ),
  facets: FacetsSchema,
  corrections: Type.Record(Type.String(), Type.String(), { description: 'typed word → the catalog word searched instead' }),
})

const Term = Type.String({ minLength: 1, maxLength: 50, pattern: '\\S' })
export const SynonymBody = Type.Object({ terms: Type.Array(Term, { minItems: 2, maxItems: 20 }) })
export const SynonymSchema = Type.Object({ id: Uuid, terms: Type.Array(Type.String()), created_at: Type.String({ format: 'date-time' }), updated_at: Type.String({ format: 'date-time' }) })
export const IdParams = Type.Object({ id: Uuid })
