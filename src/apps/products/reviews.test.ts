/**
 * Product reviews: GET/POST /api/products/{slug}/reviews/, the author's own review at
 * /reviews/mine/ (GET, PATCH, DELETE), staff deletion by id, and the product's rating and
 * review_count that every change recomputes. The service is also built directly with its ports
 * (purchases, authors, onChange) against this file's database. Concurrency is proven on
 * PostgreSQL behind a gate (PGlite runs one statement at a time, so a race there proves nothing).
 */
import { randomUUID } from 'node:crypto'
import { and, eq, sql } from 'drizzle-orm'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { behindRowLock } from '../../../test/lock-waiters.js'
import { expectProblem } from '../../../test/problems.js'
import { createUserTokens } from '../../core/auth.js'
import type { Actor } from '../../core/context.js'
import { NotFoundError } from '../../core/errors.js'
import { outboxEvents } from '../../core/events/tables.js'
import { createAccountsService } from '../accounts/service.js'
import type { ReviewDto } from './review-schemas.js'
import { authorName, createReviews } from './reviews.js'
import { products, reviews } from './tables.js'

/** Connections in the app's pool (PostgreSQL): enough for every racer to wait inside a transaction. */
const POOL = 24

let t: TestApp
let f: ReturnType<typeof factories>
let staff: MadeUser

beforeAll(async () => {
  t = await createTestApp(usesPostgres ? { env: { DB_POOL_MAX: String(POOL) } } : {})
  f = factories(t)
  staff = await f.user({ role: 'staff' })
})
afterAll(() => t.close())

interface ListBody {
  count: number | null
  next: string | null
  previous: string | null
  results: ReviewDto[]
}

const db = () => t.app.platform.database.db
const ctx = (actor: Actor | null = null) => t.app.platform.context({ actor })

/** A product on sale; answers its id and slug. */
async function product(): Promise<{ id: string; slug: string }> {
  const { id } = await f.product()
  const [row] = await db().select({ slug: products.slug }).from(products).where(eq(products.id, id))
  return { id, slug: row!.slug }
}

/** What the product shows of its reviews: rating as stored (numeric text, e.g. "4.33") and count. */
async function aggregate(productId: string): Promise<{ rating: string | null; review_count: number }> {
  const [row] = await db().select({ rating: products.rating, review_count: products.review_count }).from(products).where(eq(products.id, productId))
  return row!
}

async function reviewRows(productId: string) {
  return db().select().from(reviews).where(eq(reviews.product_id, productId)).orderBy(reviews.id)
}

const url = (slug: string, rest = '') => `/api/products/${slug}/reviews/${rest}`
const post = async (slug: string, user: MadeUser | null, payload: unknown) =>
  t.request({ method: 'POST', url: url(slug), headers: user ? await f.auth(user) : {}, payload: payload as object })
const list = (slug: string, query = '') => t.request({ method: 'GET', url: `${url(slug)}${query}` })
const patchMine = async (slug: string, user: MadeUser, payload: unknown) =>
  t.request({ method: 'PATCH', url: url(slug, 'mine/'), headers: await f.auth(user), payload: payload as object })
const deleteMine = async (slug: string, user: MadeUser) => t.request({ method: 'DELETE', url: url(slug, 'mine/'), headers: await f.auth(user) })
const deleteById = async (slug: string, user: MadeUser, id: string) => t.request({ method: 'DELETE', url: url(slug, `${id}/`), headers: await f.auth(user) })

async function review(slug: string, user: MadeUser, payload: Record<string, unknown>): Promise<ReviewDto> {
  const res = await post(slug, user, payload)
  expect(res.statusCode, res.body).toBe(201)
  return res.json<ReviewDto>()
}

/** The error a promise rejects with (fails when it resolves). */
async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => expect.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (err: unknown) => err,
  )
}

const catalogGeneration = async () => Number((await t.app.platform.cache.get<number | string>('catalog:gen:catalog')) ?? 0)

describe('GET /api/products/{slug}/reviews/', () => {
  it('answers an empty page to anyone when the product has no reviews', async () => {
    const { slug } = await product()
    const res = await list(slug)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toEqual({ count: 0, next: null, previous: null, results: [] })
  })

  it('answers 404 for an unknown, an inactive and a soft-deleted product, for reading and writing alike', async () => {
    const inactive = await product()
    const deleted = await product()
    await db().update(products).set({ is_active: false }).where(eq(products.id, inactive.id))
    await db().update(products).set({ deleted_at: new Date() }).where(eq(products.id, deleted.id))
    const customer = await f.user()
    for (const slug of [`no-such-${randomUUID().slice(0, 8)}`, inactive.slug, deleted.slug]) {
      expectProblem(await list(slug), 404, 'not_found')
      expectProblem(await post(slug, customer, { rating: 5 }), 404, 'not_found')
    }
    expect(await reviewRows(inactive.id)).toEqual([])
    expect(await reviewRows(deleted.id)).toEqual([])
  })

  it('lists every review exactly once across pages while new reviews arrive between page fetches', async () => {
    const { id, slug } = await product()
    const before = []
    for (let i = 0; i < 4; i += 1) before.push(await review(slug, await f.user(), { rating: (i % 5) + 1 }))
    // Four more sharing one timestamp to the microsecond, as rows of one transaction would: a page
    // boundary inside the tie must fall back on the id order.
    const tied = await db()
      .insert(reviews)
      .values(Array.from({ length: 4 }, () => ({ product_id: id, user_id: randomUUID(), rating: 3, created_at: sql`'2024-03-01T10:00:00.123456Z'::timestamptz` })))
      .returning({ id: reviews.id })
    const existing = new Set([...before.map((row) => row.id), ...tied.map((row) => row.id)])

    const seen: string[] = []
    const added: string[] = []
    let next: string | null = url(slug, '?limit=3')
    for (let page = 0; next !== null; page += 1) {
      expect(page).toBeLessThan(5)
      const res = await t.request({ method: 'GET', url: next })
      expect(res.statusCode, res.body).toBe(200)
      const body = res.json<ListBody>()
      seen.push(...body.results.map((row) => row.id))
      expect(body.previous).toBeNull()
      next = body.next === null ? null : `${new URL(body.next).pathname}${new URL(body.next).search}`
      if (next) expect(new URL(body.next!).searchParams.get('limit')).toBe('3')
      // Someone reviews while the reader is between pages: newer than everything, so on no later page.
      added.push((await review(slug, await f.user(), { rating: 4 })).id)
    }
    expect(new Set(seen).size).toBe(seen.length)
    expect(new Set(seen)).toEqual(existing)
    expect(seen.some((reviewId) => added.includes(reviewId))).toBe(false)
    // Newest first: the API's reviews (newest last created) before the tied, older rows, those by id descending.
    expect(seen.slice(0, 4)).toEqual(before.map((row) => row.id).reverse())
    expect(seen.slice(4)).toEqual(tied.map((row) => row.id).sort().reverse())
    // A fresh first page shows the added reviews first; the count (recomputed from the table) has them all.
    const fresh = (await list(slug, '?limit=100')).json<ListBody>()
    expect(fresh.results.slice(0, added.length).map((row) => row.id)).toEqual([...added].reverse())
    expect(fresh.count).toBe(existing.size + added.length)
  })

  it('answers 422 on cursor for a cursor it did not make, and 422 for a limit out of range', async () => {
    const { slug } = await product()
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const garbage = [
      'not-a-cursor!!',
      encode(null),
      encode({ created_at: '2024-01-01T00:00:00.000000Z', id: randomUUID() }),
      encode(['2024-01-01T00:00:00Z', randomUUID()]),
      // JavaScript would roll these over to a real date; PostgreSQL refuses them.
      encode(['2024-02-30T00:00:00.000000Z', randomUUID()]),
      encode(['0000-01-01T00:00:00.000000Z', randomUUID()]),
      encode(['2024-01-01T00:00:00.000000Z', 'z'.repeat(36)]),
    ]
    for (const cursor of garbage) {
      const body = expectProblem(await list(slug, `?cursor=${encodeURIComponent(cursor)}`), 422)
      expect(Object.keys(body.errors ?? {}), cursor).toContain('cursor')
    }
    expectProblem(await list(slug, '?limit=0'), 422)
    expectProblem(await list(slug, '?limit=101'), 422)
  })
})

describe('POST /api/products/{slug}/reviews/', () => {
  it('answers 401 without a token and writes nothing', async () => {
    const { id, slug } = await product()
    expectProblem(await post(slug, null, { rating: 5 }), 401)
    expect(await reviewRows(id)).toEqual([])
    expect(await aggregate(id)).toEqual({ rating: null, review_count: 0 })
  })

  it('creates the review (201, unverified, signed with the author first name and initial) and answers 409 review_exists to a second one, changing nothing', async () => {
    const { id, slug } = await product()
    const customer = await f.user()
    const created = await review(slug, customer, { rating: 4, title: '  Solid  ', body: 'Does what it says.' })
    expect(created).toEqual({
      id: expect.any(String),
      rating: 4,
      title: 'Solid',
      body: 'Does what it says.',
      verified_purchase: false,
      author: 'Test U.',
      created_at: expect.any(String),
      updated_at: created.created_at,
    })
    const rowsBefore = await reviewRows(id)
    expect(await aggregate(id)).toEqual({ rating: '4.00', review_count: 1 })

    expectProblem(await post(slug, customer, { rating: 1, title: 'Changed my mind' }), 409, 'review_exists')
    expect(await reviewRows(id)).toEqual(rowsBefore)
    expect(await aggregate(id)).toEqual({ rating: '4.00', review_count: 1 })
    expect((await list(slug)).json<ListBody>()).toMatchObject({ count: 1, results: [created] })
  })

  it('defaults title and body to empty strings', async () => {
    const { slug } = await product()
    expect(await review(slug, await f.user(), { rating: 2 })).toMatchObject({ rating: 2, title: '', body: '' })
  })

  it('answers 422 for a rating out of range, not an integer, not a number or missing, and for text too long, changing nothing', async () => {
    const { id, slug } = await product()
    const customer = await f.user()
    const invalid: Array<[unknown, string]> = [
      [{ rating: 0 }, 'rating'],
      [{ rating: 6 }, 'rating'],
      [{ rating: -1 }, 'rating'],
      [{ rating: 4.5 }, 'rating'],
      [{ rating: '5' }, 'rating'],
      [{ rating: null }, 'rating'],
      [{ title: 'No stars' }, 'rating'],
      [{ rating: 5, title: 'x'.repeat(201) }, 'title'],
      [{ rating: 5, body: 'x'.repeat(5001) }, 'body'],
      [{ rating: 5, title: 12 }, 'title'],
    ]
    for (const [payload, field] of invalid) {
      const body = expectProblem(await post(slug, customer, payload), 422)
      expect(JSON.stringify(body.errors), JSON.stringify(payload)).toContain(field)
    }
    expect(await reviewRows(id)).toEqual([])
    expect(await aggregate(id)).toEqual({ rating: null, review_count: 0 })
    // The limits themselves are accepted.
    expect(await review(slug, customer, { rating: 5, title: 'x'.repeat(200), body: 'y'.repeat(5000) })).toMatchObject({ rating: 5 })
  })

  it('keeps rating and review_count in step through creates, an edit and deletes', async () => {
    const { id, slug } = await product()
    const [a, b, c] = [await f.user(), await f.user(), await f.user()]
    await review(slug, a, { rating: 5 })
    await review(slug, b, { rating: 4 })
    const third = await review(slug, c, { rating: 4 })
    expect(await aggregate(id)).toEqual({ rating: '4.33', review_count: 3 })
    expect((await list(slug)).json<ListBody>().count).toBe(3)

    const edited = await patchMine(slug, c, { rating: 1 })
    expect(edited.statusCode, edited.body).toBe(200)
    expect(await aggregate(id)).toEqual({ rating: '3.33', review_count: 3 })

    expect((await deleteMine(slug, a)).statusCode).toBe(204)
    expect(await aggregate(id)).toEqual({ rating: '2.50', review_count: 2 })

    expect((await deleteById(slug, staff, third.id)).statusCode).toBe(204)
    expect(await aggregate(id)).toEqual({ rating: '4.00', review_count: 1 })

    expect((await deleteMine(slug, b)).statusCode).toBe(204)
    expect(await aggregate(id)).toEqual({ rating: null, review_count: 0 })
  })

  it('marks catalog caches stale and records catalog.products_changed for every change, not for a refused one', async () => {
    const { id, slug } = await product()
    const customer = await f.user()
    const changesOf = async () =>
      (await db().select({ payload: outboxEvents.payload }).from(outboxEvents).where(and(eq(outboxEvents.name, 'catalog.products_changed'), sql`${outboxEvents.payload} @> ${JSON.stringify({ product_ids: [id] })}::jsonb`))).length

    const generation = await catalogGeneration()
    await review(slug, customer, { rating: 3 })
    expect(await catalogGeneration()).toBe(generation + 1)
    expect(await changesOf()).toBe(1)

    expectProblem(await post(slug, customer, { rating: 3 }), 409)
    expect(await catalogGeneration()).toBe(generation + 1)
    expect(await changesOf()).toBe(1)

    expect((await patchMine(slug, customer, { title: 'Better now' })).statusCode).toBe(200)
    expect((await deleteMine(slug, customer)).statusCode).toBe(204)
    expect(await catalogGeneration()).toBe(generation + 3)
    expect(await changesOf()).toBe(3)
  })

  it('shows the new rating and count on the (cached) product page right after each change', async () => {
    const { slug } = await product()
    const page = async () => {
      const res = await t.request({ method: 'GET', url: `/api/products/${slug}/` })
      expect(res.statusCode, res.body).toBe(200)
      return res.json<{ rating: number | null; review_count: number }>()
    }
    // Read twice first, so the page is in the cache when the review arrives.
    expect(await page()).toMatchObject({ rating: null, review_count: 0 })
    expect(await page()).toMatchObject({ rating: null, review_count: 0 })
    const customer = await f.user()
    await review(slug, customer, { rating: 4 })
    expect(await page()).toMatchObject({ rating: 4, review_count: 1 })
    await review(slug, await f.user(), { rating: 5 })
    expect(await page()).toMatchObject({ rating: 4.5, review_count: 2 })
    expect((await patchMine(slug, customer, { rating: 2 })).statusCode).toBe(200)
    expect(await page()).toMatchObject({ rating: 3.5, review_count: 2 })
    expect((await deleteMine(slug, customer)).statusCode).toBe(204)
    expect(await page()).toMatchObject({ rating: 5, review_count: 1 })
  })

  it('accepts 20 concurrent reviews by 20 users: count 20 and the exact average', async () => {
    const { id, slug } = await product()
    const ratings = [5, 4, 4, 3, 5, 1, 2, 5, 4, 4, 3, 5, 5, 4, 2, 1, 5, 4, 3, 5]
    const authors = await Promise.all(ratings.map(() => f.user()))
    const headers = await Promise.all(authors.map((user) => f.auth(user)))
    const answers = await Promise.all(ratings.map((rating, i) => t.request({ method: 'POST', url: url(slug), headers: headers[i]!, payload: { rating } })))
    expect(answers.map((res) => res.statusCode)).toEqual(ratings.map(() => 201))
    const sum = ratings.reduce((total, rating) => total + rating, 0)
    expect(await aggregate(id)).toEqual({ rating: (sum / ratings.length).toFixed(2), review_count: 20 })
    expect(await reviewRows(id)).toHaveLength(20)
  })
})

describe('GET, PATCH, DELETE /api/products/{slug}/reviews/mine/', () => {
  it('answers 401 without a token', async () => {
    const { slug } = await product()
    expectProblem(await t.request({ method: 'GET', url: url(slug, 'mine/') }), 401)
    expectProblem(await t.request({ method: 'PATCH', url: url(slug, 'mine/'), payload: { rating: 2 } }), 401)
    expectProblem(await t.request({ method: 'DELETE', url: url(slug, 'mine/') }), 401)
  })

  it("answers the user's own review, and 404 to a user without one", async () => {
    const { slug } = await product()
    const author = await f.user()
    const created = await review(slug, author, { rating: 5, title: 'Mine' })
    const res = await t.request({ method: 'GET', url: url(slug, 'mine/'), headers: await f.auth(author) })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toEqual(created)
    expectProblem(await t.request({ method: 'GET', url: url(slug, 'mine/'), headers: await f.auth(await f.user()) }), 404)
  })

  it('edits the given fields only, keeps created_at, and answers 404 when the user has no review', async () => {
    const { id, slug } = await product()
    const author = await f.user()
    const created = await review(slug, author, { rating: 5, title: 'Great', body: 'Loved it.' })
    const res = await patchMine(slug, author, { body: 'Broke after a week.', rating: 2 })
    expect(res.statusCode, res.body).toBe(200)
    const edited = res.json<ReviewDto>()
    expect(edited).toMatchObject({ id: created.id, rating: 2, title: 'Great', body: 'Broke after a week.', created_at: created.created_at })
    expect(Date.parse(edited.updated_at)).toBeGreaterThan(Date.parse(created.updated_at))
    expect(await aggregate(id)).toEqual({ rating: '2.00', review_count: 1 })

    expectProblem(await patchMine(slug, await f.user(), { rating: 3 }), 404)
    expect(await aggregate(id)).toEqual({ rating: '2.00', review_count: 1 })
  })

  it('answers 422 for an empty patch or an invalid rating, changing nothing', async () => {
    const { id, slug } = await product()
    const author = await f.user()
    await review(slug, author, { rating: 3 })
    const rowsBefore = await reviewRows(id)
    for (const payload of [{}, { rating: 0 }, { rating: 3.5 }, { rating: null }, { title: 'x'.repeat(201) }]) {
      expectProblem(await patchMine(slug, author, payload), 422)
    }
    expect(await reviewRows(id)).toEqual(rowsBefore)
    expect(await aggregate(id)).toEqual({ rating: '3.00', review_count: 1 })
  })

  it("deletes only the caller's own review, and answers 404 when there is none", async () => {
    const { id, slug } = await product()
    const [author, other] = [await f.user(), await f.user()]
    await review(slug, author, { rating: 1 })
    const kept = await review(slug, other, { rating: 5 })
    expect((await deleteMine(slug, author)).statusCode).toBe(204)
    expectProblem(await deleteMine(slug, author), 404)
    expect((await reviewRows(id)).map((row) => row.id)).toEqual([kept.id])
    expect(await aggregate(id)).toEqual({ rating: '5.00', review_count: 1 })
  })
})

describe('DELETE /api/products/{slug}/reviews/{id}/', () => {
  it("lets staff delete someone's review", async () => {
    const { id, slug } = await product()
    const target = await review(slug, await f.user(), { rating: 1, title: 'Spam' })
    await review(slug, await f.user(), { rating: 4 })
    expect((await deleteById(slug, staff, target.id)).statusCode).toBe(204)
    expect((await reviewRows(id)).map((row) => row.id)).not.toContain(target.id)
    expect(await aggregate(id)).toEqual({ rating: '4.00', review_count: 1 })
  })

  it("answers 403 to a customer, even for someone else's review, and deletes nothing", async () => {
    const { id, slug } = await product()
    const target = await review(slug, await f.user(), { rating: 5 })
    const customer = await f.user()
    await review(slug, customer, { rating: 1 })
    expectProblem(await deleteById(slug, customer, target.id), 403, 'permission_denied')
    expectProblem(await t.request({ method: 'DELETE', url: url(slug, `${target.id}/`) }), 401)
    expect(await reviewRows(id)).toHaveLength(2)
    expect(await aggregate(id)).toEqual({ rating: '3.00', review_count: 2 })
  })

  it("answers 404 to staff for an unknown id or another product's review, 422 for an id that is not a UUID", async () => {
    const first = await product()
    const second = await product()
    const elsewhere = await review(second.slug, await f.user(), { rating: 2 })
    expectProblem(await deleteById(first.slug, staff, randomUUID()), 404)
    expectProblem(await deleteById(first.slug, staff, elsewhere.id), 404)
    expectProblem(await deleteById(first.slug, staff, 'not-a-uuid'), 422)
    expect(await reviewRows(second.id)).toHaveLength(1)
    expect(await aggregate(second.id)).toEqual({ rating: '2.00', review_count: 1 })
  })
})

describe(createReviews.name, () => {
  it('sets verified_purchase from the purchases port, asked with the user and the product, and again on edit', async () => {
    const { id, slug } = await product()
    const [buyer, browser] = [await f.user(), await f.user()]
    const bought = new Set([`${buyer.id}:${id}`])
    const asked: string[] = []
    const service = createReviews({
      purchases: async (_ctx, userId, productId) => {
        asked.push(`${userId}:${productId}`)
        return bought.has(`${userId}:${productId}`)
      },
      onChange: async () => undefined,
    })
    expect(await service.create(ctx(), slug, buyer.id, { rating: 5 })).toMatchObject({ verified_purchase: true })
    expect(await service.create(ctx(), slug, browser.id, { rating: 3 })).toMatchObject({ verified_purchase: false })
    expect(asked).toEqual([`${buyer.id}:${id}`, `${browser.id}:${id}`])
    // The browser buys later: their next edit shows the review as verified.
    bought.add(`${browser.id}:${id}`)
    expect(await service.update(ctx(), slug, browser.id, { title: 'Bought it since' })).toMatchObject({ verified_purchase: true })
    const listed = (await list(slug)).json<ListBody>().results
    expect(listed.map((row) => row.verified_purchase)).toEqual([true, true])
  })

  it('calls onChange once per committed change, after commit, and not for a refused change', async () => {
    const { id, slug } = await product()
    const author = await f.user()
    const seen: number[] = []
    const service = createReviews({
      purchases: async () => false,
      // Read through the pool, outside the change's transaction: only a committed review counts.
      onChange: async (changeCtx) => {
        expect(changeCtx.inTransaction).toBe(false)
        seen.push((await aggregate(id)).review_count)
      },
    })
    await service.create(ctx(), slug, author.id, { rating: 4 })
    expect(seen).toEqual([1])
    await expect(service.create(ctx(), slug, author.id, { rating: 4 })).rejects.toMatchObject({ status: 409, code: 'review_exists' })
    expect(seen).toEqual([1])
    await service.remove(ctx(), slug, author.id)
    expect(seen).toEqual([1, 0])
  })

  it('shows authors as first name and last initial through the accounts service', async () => {
    const { slug } = await product()
    const ada = await f.user({ first_name: 'Ada', last_name: 'lovelace' })
    const accounts = createAccountsService({ settings: t.settings, tokens: createUserTokens(t.settings.auth) })
    const lookups: string[][] = []
    const service = createReviews({
      purchases: async () => false,
      onChange: async () => undefined,
      authors: async (lookupCtx, ids) => {
        lookups.push(ids)
        return new Map(await Promise.all(ids.map(async (userId) => [userId, await accounts.getUserSummary(lookupCtx, userId)] as const)))
      },
    })
    expect(await service.create(ctx(), slug, ada.id, { rating: 5 })).toMatchObject({ author: 'Ada L.' })
    await service.create(ctx(), slug, (await f.user({ first_name: 'Grace', last_name: 'Hopper' })).id, { rating: 4 })
    const page = await service.list(ctx(), slug, { limit: 10 })
    expect(page.results.map((row) => row.author)).toEqual(['Grace H.', 'Ada L.'])
    // One lookup for the whole page, each user once.
    expect(lookups.at(-1)).toHaveLength(2)
  })

  it('formats author names from what the user filled in', () => {
    expect(authorName({ first_name: 'Ada', last_name: 'Lovelace' })).toBe('Ada L.')
    expect(authorName({ first_name: ' Ada ', last_name: ' ' })).toBe('Ada')
    expect(authorName({ first_name: '', last_name: 'Lovelace' })).toBe('L.')
    expect(authorName({ first_name: 'Zoë', last_name: 'Ørsted' })).toBe('Zoë Ø.')
    expect(authorName({ first_name: '', last_name: '' })).toBeNull()
    expect(authorName(undefined)).toBeNull()
  })

  it("answers 404 when someone who is neither staff nor the author deletes a review by id", async () => {
    const { id, slug } = await product()
    const author = await f.user()
    const stranger = await f.user()
    const service = createReviews({ purchases: async () => false, onChange: async () => undefined })
    const created = await service.create(ctx(), slug, author.id, { rating: 2 })
    expect(await caught(service.removeById(ctx({ kind: 'user', id: stranger.id, role: 'customer' }), slug, created.id))).toBeInstanceOf(NotFoundError)
    expect(await reviewRows(id)).toHaveLength(1)
    await service.removeById(ctx({ kind: 'user', id: author.id, role: 'customer' }), slug, created.id)
    expect(await aggregate(id)).toEqual({ rating: null, review_count: 0 })
  })
})

/**
 * Real races (PostgreSQL): a separate connection (the gate) holds the product row until every
 * racer's transaction is waiting for it, then lets them all go at once.
 */
describe.runIf(usesPostgres)('reviews under concurrent transactions', () => {
  let gate: pg.Client
  let observer: pg.Client

  beforeAll(async () => {
    if (t.settings.db.kind !== 'postgres') throw new Error('expected PostgreSQL')
    gate = new pg.Client({ connectionString: t.settings.db.url })
    observer = new pg.Client({ connectionString: t.settings.db.url })
    await Promise.all([gate.connect(), observer.connect()])
  })
  afterAll(async () => {
    await Promise.all([gate?.end(), observer?.end()])
  })


  const behindProductLock = <T>(productId: string, waiters: number, race: () => Promise<T>) => behindRowLock(gate, observer, { sql: 'SELECT 1 FROM products WHERE id = $1', params: [productId] }, waiters, race)

  it('keeps count and average exact when 20 users review one product at the same moment', async () => {
    const { id, slug } = await product()
    const ratings = [1, 2, 2, 3, 5, 5, 4, 4, 4, 3, 2, 5, 5, 5, 1, 4, 4, 3, 5, 4]
    const headers = await Promise.all(ratings.map(async () => f.auth(await f.user())))
    const answers = await behindProductLock(id, ratings.length, () =>
      Promise.all(ratings.map((rating, i) => t.request({ method: 'POST', url: url(slug), headers: headers[i]!, payload: { rating } }))),
    )
    expect(answers.map((res) => res.statusCode)).toEqual(ratings.map(() => 201))
    const sum = ratings.reduce((total, rating) => total + rating, 0)
    expect(await aggregate(id)).toEqual({ rating: (sum / ratings.length).toFixed(2), review_count: 20 })
  })

  it('lets exactly one of two simultaneous first reviews by the same user in (409 for the other), for 10 users at once', async () => {
    const { id, slug } = await product()
    const headers = await Promise.all(Array.from({ length: 10 }, async () => f.auth(await f.user())))
    const answers = await behindProductLock(id, 20, () =>
      Promise.all(headers.flatMap((auth) => [5, 1].map((rating) => t.request({ method: 'POST', url: url(slug), headers: auth, payload: { rating } })))),
    )
    const statuses = answers.map((res) => res.statusCode)
    expect(statuses.filter((status) => status === 201)).toHaveLength(10)
    expect(statuses.filter((status) => status === 409)).toHaveLength(10)
    for (const res of answers.filter((answer) => answer.statusCode === 409)) expectProblem(res, 409, 'review_exists')
    const rows = await reviewRows(id)
    expect(rows).toHaveLength(10)
    const average = rows.reduce((total, row) => total + row.rating, 0) / rows.length
    expect(await aggregate(id)).toEqual({ rating: average.toFixed(2), review_count: 10 })
  })
})
