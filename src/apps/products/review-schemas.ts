/** TypeBox schemas of the review routes (GET, POST /api/products/{slug}/reviews/ and the rest). */
import { Type, type Static } from 'typebox'
import { PageQuery, Uuid } from '../../core/http/schemas.js'

export const ReviewSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  rating: Type.Integer({ minimum: 1, maximum: 5 }),
  title: Type.String(),
  body: Type.String(),
  verified_purchase: Type.Boolean({ description: 'the author bought the product (from their orders)' }),
  author: Type.Union([Type.String(), Type.Null()], { description: 'first name and last initial, e.g. "Ada L."; null when unknown' }),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
})
export type ReviewDto = Static<typeof ReviewSchema>

const Rating = Type.Integer({ minimum: 1, maximum: 5, description: 'whole stars, 1 to 5' })
const Title = Type.String({ maxLength: 200 })
const Body = Type.String({ maxLength: 5000 })

export const CreateReviewBody = Type.Object({
  rating: Rating,
  title: Type.Optional(Title),
  body: Type.Optional(Body),
})
export type CreateReviewInput = Static<typeof CreateReviewBody>

export const UpdateReviewBody = Type.Object(
  {
    rating: Type.Optional(Rating),
    title: Type.Optional(Title),
    body: Type.Optional(Body),
  },
  { minProperties: 1 },
)
export type UpdateReviewInput = Static<typeof UpdateReviewBody>

export const ProductSlugParams = Type.Object({ slug: Type.String({ minLength: 1, maxLength: 80 }) })
export const ReviewIdParams = Type.Object({ slug: Type.String({ minLength: 1, maxLength: 80 }), id: Uuid })

/** Newest first; `cursor` is the opaque position the `next` link carries. */
export const ReviewListQuery = PageQuery
