/**
 * Product reviews: a rating of 1 to 5 stars with an optional title and body, one per user per
 * product (the unique index decides, so a second review, even a concurrent one, is a 409).
 *
 * The product's `rating` (average to two decimals, null without reviews) and `review_count` are
 * recomputed from the reviews table inside every change's transaction, after the product row is
 * locked FOR UPDATE: changes to one product's reviews run one after another, each aggregate counts
 * exactly the committed rows, and nothing can drift. Only products on sale (active, not deleted)
 * have readable or writable reviews; any other slug is a 404.
 *
 * `verified_purchase` comes from the `purchases` port (the orders app will answer it; until
 * orders exist the composition root passes `async () => false`). `onChange` runs after each
 * committed change (the catalog cache's invalidation: product pages show rating and count).
 * Publishes `catalog.products_changed` with every change, for the search index (rating ordering).
 */
import { assertOwnerOrStaff } from '../../core/auth.js'
import type { Ctx } from '../../core/context.js'
import { NotFoundError } from '../../core/errors.js'
import { decodeCursor, encodeCursor } from '../../core/http/pagination.js'
import * as q from './review-queries.js'
import type { ProductsEvents } from './events.js'
import type { ReviewPosition, ReviewRow } from './review-queries.js'
import type { CreateReviewInput, ReviewDto, UpdateReviewInput } from './review-schemas.js'

export interface AuthorName {
  first_name: string
  last_name: string
}

export interface ReviewsDeps {
  /** Whether the user bought the product. Supplied by orders; `async () => false` until orders exist. */
  purchases: (ctx: Ctx, userId: string, productId: string) => Promise<boolean>
  /** Called after every committed change (the catalog cache's invalidation). */
  onChange: (ctx: Ctx) => Promise<void>
  /**
   * Names of users by id, in one lookup (the accounts service). Without it `author` is null.
   * Users missing from the answer are shown with a null author.
   */
  authors?: (ctx: Ctx, userIds: string[]) => Promise<Map<string, AuthorName>>
}

export interface ReviewPage {
  /** The product's review_count. */
  count: number
  results: ReviewDto[]
  /** Opaque cursor of the next page, or null on the last one. */
  next_cursor: string | null
}

export function createReviews(deps: ReviewsDeps) {
  const namesOf = async (ctx: Ctx, rows: ReviewRow[]): Promise<Map<string, AuthorName>> =>
    deps.authors && rows.length > 0 ? deps.authors(ctx, [...new Set(rows.map((row) => row.user_id))]) : new Map()

  const present = async (ctx: Ctx, row: ReviewRow): Promise<ReviewDto> => toReviewDto(row, await namesOf(ctx, [row]))

  const listedProduct = async (ctx: Ctx, slug: string) => {
    const product = await q.findListedProduct(ctx.db, slug)
    if (!product) throw new NotFoundError('Product', slug)
    return product
  }

  /**
   * One change to a product's reviews: lock the product, apply `fn`, recompute the aggregate and
   * publish `catalog.products_changed`, all in one transaction; then tell `onChange`. A failed
   * invalidation is logged, not returned to the client as an error: the change is committed, and
   * cached entries expire on their own.
   */
  const change = async <T>(ctx: Ctx, slug: string, fn: (tx: Ctx, productId: string) => Promise<T>): Promise<T> => {
    const result = await ctx.tx(async (tx) => {
      const product = await q.lockListedProduct(tx.db, slug)
      if (!product) throw new NotFoundError('Product', slug)
      const value = await fn(tx, product.id)
      await q.refreshRating(tx.db, product.id)
      // Rating and count are part of the product's public view: the search index follows this event.
      await tx.events.publish('catalog.products_changed', { product_ids: [product.id] } satisfies ProductsEvents['catalog.products_changed'])
      return value
    })
    try {
      await deps.onChange(ctx)
    } catch (err) {
      ctx.log.warn({ err }, 'review change committed, but the change hook failed')
    }
    return result
  }

  return {
    /** A product's reviews, newest first, keyset-paginated. An invalid cursor is a 422 on `cursor`. */
    async list(ctx: Ctx, slug: string, page: { limit?: number; cursor?: string } = {}): Promise<ReviewPage> {
      const limit = page.limit ?? 20
      const after = page.cursor === undefined ? undefined : decodePosition(page.cursor)
      const product = await listedProduct(ctx, slug)
      const rows = await q.listReviews(ctx.db, product.id, { limit: limit + 1, ...(after ? { after } : {}) })
      const shown = rows.slice(0, limit)
      const names = await namesOf(ctx, shown)
      const last = shown[shown.length - 1]
      return {
        count: product.review_count,
        results: shown.map((row) => toReviewDto(row, names)),
        next_cursor: rows.length > limit && last ? encodeCursor([last.position, last.id]) : null,
      }
    },

    /** The user's own review of the product; 404 when they have none. */
    async mine(ctx: Ctx, slug: string, userId: string): Promise<ReviewDto> {
      const product = await listedProduct(ctx, slug)
      const row = await q.findReviewByAuthor(ctx.db, product.id, userId)
      if (!row) throw new NotFoundError('Review')
      return present(ctx, row)
    },

    /** Creates the user's review (409 `review_exists` when they have one) and updates the product's rating. */
    async create(ctx: Ctx, slug: string, userId: string, input: CreateReviewInput): Promise<ReviewDto> {
      const row = await change(ctx, slug, async (tx, productId) =>
        q.insertReview(tx.db, {
          product_id: productId,
          user_id: userId,
          rating: input.rating,
          title: input.title?.trim() ?? '',
          body: input.body?.trim() ?? '',
          verified_purchase: await deps.purchases(tx, userId, productId),
        }),
      )
      return present(ctx, row)
    },

    /**
     * Edits the user's own review (404 when they have none). `verified_purchase` is asked again,
     * so a review written before the purchase becomes verified on its next edit.
     */
    async update(ctx: Ctx, slug: string, userId: string, patch: UpdateReviewInput): Promise<ReviewDto> {
      const row = await change(ctx, slug, async (tx, productId) => {
        const updated = await q.updateReviewByAuthor(tx.db, productId, userId, {
          ...(patch.rating !== undefined ? { rating: patch.rating } : {}),
          ...(patch.title !== undefined ? { title: patch.title.trim() } : {}),
          ...(patch.body !== undefined ? { body: patch.body.trim() } : {}),
          verified_purchase: await deps.purchases(tx, userId, productId),
        })
        if (!updated) throw new NotFoundError('Review')
        return updated
      })
      return present(ctx, row)
    },

    /** Deletes the user's own review; 404 when they have none. */
    async remove(ctx: Ctx, slug: string, userId: string): Promise<void> {
      await change(ctx, slug, async (tx, productId) => {
        const row = await q.findReviewByAuthor(tx.db, productId, userId)
        if (!row) throw new NotFoundError('Review')
        await q.deleteReview(tx.db, productId, row.id)
      })
    },

    /**
     * Staff moderation: deletes any review of the product by id. The route admits staff only
     * (403 for others); called by anyone else, someone else's review is a 404 here too.
     */
    async removeById(ctx: Ctx, slug: string, id: string): Promise<void> {
      await change(ctx, slug, async (tx, productId) => {
        const row = await q.findReview(tx.db, productId, id)
        if (!row) throw new NotFoundError('Review', id)
        assertOwnerOrStaff(tx.actor, row.user_id, 'Review', id)
        await q.deleteReview(tx.db, productId, id)
      })
    },
  }
}

export type Reviews = ReturnType<typeof createReviews>

/** "Ada L." from first and last name; the first name alone without a last one; null without either. */
export function authorName(name: AuthorName | undefined): string | null {
  if (!name) return null
  const first = name.first_name.trim()
  const initial = [...name.last_name.trim()][0]
  const shown = initial ? `${first} ${initial.toUpperCase()}.`.trim() : first
  return shown === '' ? null : shown
}

function toReviewDto(row: ReviewRow, names: Map<string, AuthorName>): ReviewDto {
  return {
    id: row.id,
    rating: row.rating,
    title: row.title,
    body: row.body,
    verified_purchase: row.verified_purchase,
    author: authorName(names.get(row.user_id)),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}

/**
 * A time as the list query writes it (UTC, microseconds) that names a real instant: JavaScript
 * rolls "02-30" over to March where PostgreSQL refuses it (a 500, not a 422), so the date must
 * survive a round trip.
 */
const isExactTime = (value: unknown): value is string => {
  // Year 0 exists in JavaScript, not in PostgreSQL.
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(value) || value.startsWith('0000')) return false
  const time = Date.parse(value)
  return !Number.isNaN(time) && new Date(time).toISOString().slice(0, 19) === value.slice(0, 19)
}

const isPosition = (value: unknown): value is [string, string] =>
  Array.isArray(value) &&
  value.length === 2 &&
  isExactTime(value[0]) &&
  typeof value[1] === 'string' &&
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value[1])

function decodePosition(cursor: string): ReviewPosition {
  const [created_at, id] = decodeCursor(cursor, isPosition)
  return { created_at, id }
}
