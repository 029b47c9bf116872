/**
 * The cart: POST/GET /api/cart/, lines (POST /api/cart/items/, PATCH/DELETE /api/cart/items/{id}/),
 * the coupon (POST/DELETE /api/cart/coupon/), the functions checkout calls (resolveCart,
 * checkoutLines, markCheckedOut), the cart.expire_carts task, and, on PostgreSQL, concurrent
 * creation of a user's cart. Guests are told apart by X-Cart-Token, users by their access token.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { asc, eq, sql } from 'drizzle-orm'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { waitForLockWaiters as lockWaitersReached } from '../../../test/lock-waiters.js'
import { expectProblem } from '../../../test/problems.js'
import { createMemoryCache } from '../../core/cache.js'
import { createCatalogCache } from '../products/catalog-cache.js'
import { createProductsService } from '../products/service.js'
import { createCoupons } from './coupons.js'
import { createCartService, type CartDto, type CreatedCartDto } from './service.js'
import { cartItems, carts, coupons } from './tables.js'

let t: TestApp
let f: ReturnType<typeof factories>
let staff: Record<string, string>
let cartService: ReturnType<typeof createCartService>
const products = createProductsService({ cache: createCatalogCache(createMemoryCache()) })

beforeAll(async () => {
  t = await createTestApp()
  f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  cartService = createCartService({ products, coupons: createCoupons(), settings: t.settings })
})
afterAll(() => t.close())

type Headers = Record<string, string>

const db = () => t.app.platform.database.db
const ctx = () => t.app.platform.context()
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const uid = () => randomUUID().slice(0, 8).toUpperCase()

const openCart = (headers: Headers = {}, extra: Headers = {}) => t.request({ method: 'POST', url: '/api/cart/', headers: { ...headers, ...extra } })
const getCart = (headers: Headers) => t.request({ method: 'GET', url: '/api/cart/', headers })
const addItem = (headers: Headers, payload: unknown) => t.request({ method: 'POST', url: '/api/cart/items/', headers, payload: payload as object })
const patchItem = (headers: Headers, id: string, payload: unknown) => t.request({ method: 'PATCH', url: `/api/cart/items/${id}/`, headers, payload: payload as object })
const deleteItem = (headers: Headers, id: string) => t.request({ method: 'DELETE', url: `/api/cart/items/${id}/`, headers })
const applyCoupon = (headers: Headers, code: unknown) => t.request({ method: 'POST', url: '/api/cart/coupon/', headers, payload: { code } as object })
const removeCoupon = (headers: Headers) => t.request({ method: 'DELETE', url: '/api/cart/coupon/', headers })

/** A new guest cart and the headers that reach it. */
async function guest(): Promise<{ cart: CreatedCartDto; headers: Headers }> {
  const res = await openCart()
  expect(res.statusCode, res.body).toBe(201)
  const cart = res.json<CreatedCartDto>()
  return { cart, headers: { 'x-cart-token': cart.token! } }
}

/** A customer with an open cart, and their headers. */
async function shopper(): Promise<{ user: MadeUser; cart: CreatedCartDto; headers: Headers }> {
  const user = await f.user()
  const headers = await f.auth(user)
  const res = await openCart(headers)
  expect(res.statusCode, res.body).toBe(201)
  return { user, cart: res.json<CreatedCartDto>(), headers }
}

async function added(headers: Headers, sku: string, quantity: number): Promise<CartDto> {
  const res = await addItem(headers, { sku, quantity })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<CartDto>()
}

async function cartOf(headers: Headers): Promise<CartDto> {
  const res = await getCart(headers)
  expect(res.statusCode, res.body).toBe(200)
  return res.json<CartDto>()
}

/** The cart's row and lines as stored, to prove a refused request changed nothing (activity time included). */
async function stored(cartId: string) {
  const [cart] = await db().select().from(carts).where(eq(carts.id, cartId))
  const items = await db().select().from(cartItems).where(eq(cartItems.cart_id, cartId)).orderBy(asc(cartItems.id))
  return { cart, items }
}

async function backdate(cartId: string, days: number): Promise<void> {
  await db().update(carts).set({ updated_at: sql`now() - make_interval(days => ${days})` }).where(eq(carts.id, cartId))
}

async function makeCoupon(values: Partial<typeof coupons.$inferInsert> = {}): Promise<string> {
  const code = `C${uid()}`
  await db().insert(coupons).values({ code, kind: 'percent', value: 10, ...values })
  return code
}

const setPrice = (slug: string, sku: string, price: number) =>
  t.request({ method: 'PATCH', url: `/api/products/${slug}/`, headers: staff, payload: { variants: [{ sku, price }] } })
const setActive = (slug: string, is_active: boolean) => t.request({ method: 'PATCH', url: `/api/products/${slug}/`, headers: staff, payload: { is_active } })
const setStock = (sku: string, quantity: number) => t.request({ method: 'PATCH', url: `/api/products/variants/${sku}/stock/`, headers: staff, payload: { quantity } })

describe('POST /api/cart/', () => {
  it('gives a guest a new empty cart with a 32-byte base64url token, storing only its sha256', async () => {
    const { cart } = await guest()
    expect(cart).toMatchObject({ items: [], subtotal: 0, discount: 0, total: 0, coupon: null, currency: t.settings.currency })
    expect(cart.token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Buffer.from(cart.token!, 'base64url')).toHaveLength(32)
    const { cart: row } = await stored(cart.id)
    expect(row).toMatchObject({ token_hash: sha256(cart.token!), user_id: null, status: 'open' })
    expect(JSON.stringify(row)).not.toContain(cart.token!)
  })

  it('gives every guest call a different cart and token, even with the same Idempotency-Key (the token is never kept for replays)', async () => {
    const first = await openCart({}, { 'idempotency-key': 'same-key-for-both' })
    const second = await openCart({}, { 'idempotency-key': 'same-key-for-both' })
    expect([first.statusCode, second.statusCode]).toEqual([201, 201])
    expect(first.json<CreatedCartDto>().id).not.toBe(second.json<CreatedCartDto>().id)
    expect(first.json<CreatedCartDto>().token).not.toBe(second.json<CreatedCartDto>().token)
  })

  it("creates a user's open cart (201, no token), then answers that same cart (200) with its lines", async () => {
    const { skus: [sku] } = await f.product({ stock: [5], price: 700 })
    const { cart, headers, user } = await shopper()
    expect(cart.token).toBeNull()
    await added(headers, sku!, 2)
    const again = await openCart(headers)
    expect(again.statusCode).toBe(200)
    expect(again.json()).toMatchObject({ id: cart.id, token: null, subtotal: 1400, items: [{ sku, quantity: 2 }] })
    const rows = await db().select().from(carts).where(eq(carts.user_id, user.id))
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ token_hash: null, status: 'open' })
  })

  it('gives a user a new cart once their cart was checked out', async () => {
    const { cart, headers } = await shopper()
    await cartService.markCheckedOut(ctx(), cart.id)
    const next = await openCart(headers)
    expect(next.statusCode).toBe(201)
    expect(next.json<CreatedCartDto>().id).not.toBe(cart.id)
  })
})

describe('GET /api/cart/', () => {
  it('answers 401 without a user or a cart token', async () => {
    expectProblem(await getCart({}), 401, 'not_authenticated')
  })

  it("answers 404 to a token that matches no cart, and to a user's token sent as a cart token", async () => {
    expectProblem(await getCart({ 'x-cart-token': randomBytes(32).toString('base64url') }), 404, 'not_found')
    expectProblem(await getCart({ 'x-cart-token': 'x' }), 404, 'not_found')
    const { cart } = await shopper()
    // A user's cart has no token: its id is no token either.
    expectProblem(await getCart({ 'x-cart-token': cart.id }), 404, 'not_found')
  })

  it('answers 404 to a user without an open cart', async () => {
    expectProblem(await getCart(await f.auth(await f.user())), 404, 'not_found')
  })

  it('shows each line with live catalog data and the totals', async () => {
    const product = await f.product({ stock: [10, 3], price: 1250 })
    const [a, b] = product.skus
    const { cart, headers } = await guest()
    await added(headers, a!, 2)
    await added(headers, b!, 3)
    const body = await cartOf(headers)
    expect(body).toMatchObject({ id: cart.id, coupon: null, coupon_error: null, subtotal: 6250, discount: 0, total: 6250, currency: t.settings.currency })
    expect(body.items).toEqual([
      { id: expect.any(String), sku: a, product_name: expect.stringMatching(/^Product /), variant_name: 'Variant 0', quantity: 2, unit_price: 1250, line_total: 2500, currency: t.settings.currency, available: 10, in_stock: true, for_sale: true },
      { id: expect.any(String), sku: b, product_name: expect.stringMatching(/^Product /), variant_name: 'Variant 1', quantity: 3, unit_price: 1250, line_total: 3750, currency: t.settings.currency, available: 3, in_stock: true, for_sale: true },
    ])
  })

  it('follows a catalog price change on the next read', async () => {
    const product = await f.product({ stock: [10], price: 1000 })
    const sku = product.skus[0]!
    const { headers } = await shopper()
    expect((await added(headers, sku, 2)).subtotal).toBe(2000)
    expect((await setPrice(product.slug, sku, 1250)).statusCode).toBe(200)
    const body = await cartOf(headers)
    expect(body.items[0]).toMatchObject({ sku, unit_price: 1250, line_total: 2500 })
    expect(body).toMatchObject({ subtotal: 2500, total: 2500 })
  })

  it('flags a line no longer for sale and leaves it out of the totals; the shopper can still remove it', async () => {
    const kept = await f.product({ stock: [10], price: 500 })
    const dropped = await f.product({ stock: [10], price: 900 })
    const { headers } = await guest()
    await added(headers, kept.skus[0]!, 1)
    await added(headers, dropped.skus[0]!, 2)
    expect((await setActive(dropped.slug, false)).statusCode).toBe(200)
    const body = await cartOf(headers)
    expect(body.items.map((line) => [line.sku, line.for_sale, line.line_total])).toEqual([
      [kept.skus[0], true, 500],
      [dropped.skus[0], false, 0],
    ])
    expect(body).toMatchObject({ subtotal: 500, total: 500 })
    const line = body.items[1]!
    expectProblem(await patchItem(headers, line.id, { quantity: 1 }), 409, 'not_for_sale')
    expect((await deleteItem(headers, line.id)).statusCode).toBe(204)
    expect((await cartOf(headers)).items.map((item) => item.sku)).toEqual([kept.skus[0]])
  })

  it('shows in_stock false when the stock fell below the quantity in the cart', async () => {
    const { skus: [sku] } = await f.product({ stock: [5] })
    const { headers } = await guest()
    await added(headers, sku!, 4)
    expect((await setStock(sku!, 2)).statusCode).toBe(200)
    expect((await cartOf(headers)).items[0]).toMatchObject({ quantity: 4, available: 2, in_stock: false })
  })

  it("uses a signed-in user's own cart even when the request carries a guest's X-Cart-Token", async () => {
    const { skus: [sku] } = await f.product()
    const { cart: guestCart, headers: guestHeaders } = await guest()
    await added(guestHeaders, sku!, 1)
    const { cart, headers } = await shopper()
    const body = await cartOf({ ...headers, ...guestHeaders })
    expect(body).toMatchObject({ id: cart.id, items: [] })
    expect((await added({ ...headers, ...guestHeaders }, sku!, 2)).id).toBe(cart.id)
    expect((await cartOf(guestHeaders)).items).toMatchObject([{ sku, quantity: 1 }])
    expect(guestCart.id).not.toBe(cart.id)
  })
})

describe('POST /api/cart/items/', () => {
  it('adds to the existing line of the same variant', async () => {
    const { skus: [sku] } = await f.product({ stock: [10], price: 300 })
    const { headers } = await guest()
    const first = await added(headers, sku!, 2)
    const second = await added(headers, sku!, 3)
    expect(second.items).toHaveLength(1)
    expect(second.items[0]).toMatchObject({ id: first.items[0]!.id, quantity: 5, line_total: 1500 })
  })

  it('answers 409 insufficient_stock naming the SKU and what is available when the cart would hold more, and changes nothing', async () => {
    const { skus: [sku] } = await f.product({ stock: [5] })
    const { cart, headers } = await guest()
    await added(headers, sku!, 3)
    const before = await stored(cart.id)
    const problem = expectProblem(await addItem(headers, { sku, quantity: 3 }), 409, 'insufficient_stock')
    expect(problem).toMatchObject({ sku, available: 5, in_cart: 3 })
    expect(problem.detail).toContain(sku!)
    expect(await stored(cart.id)).toEqual(before)
    expect((await added(headers, sku!, 2)).items[0]!.quantity).toBe(5)
  })

  it('answers 404 for an unknown SKU and 409 not_for_sale for a variant no longer sold', async () => {
    const product = await f.product()
    const { cart, headers } = await guest()
    expectProblem(await addItem(headers, { sku: `NOPE-${uid()}`, quantity: 1 }), 404, 'not_found')
    expect((await setActive(product.slug, false)).statusCode).toBe(200)
    expect(expectProblem(await addItem(headers, { sku: product.skus[0], quantity: 1 }), 409, 'not_for_sale')).toMatchObject({ sku: product.skus[0] })
    expect((await stored(cart.id)).items).toEqual([])
  })

  it('answers 422 to bad bodies and to more than 1000 on one line, changing nothing', async () => {
    const { skus: [sku] } = await f.product({ stock: [5000] })
    const { cart, headers } = await guest()
    await added(headers, sku!, 600)
    const before = await stored(cart.id)
    for (const payload of [{ sku, quantity: 0 }, { sku, quantity: -1 }, { sku, quantity: 1001 }, { sku, quantity: 1.5 }, { sku, quantity: '2' }, { quantity: 1 }, { sku }, { sku: '', quantity: 1 }, { sku, quantity: 1, price: 1 }, { sku: 'A\u0000B', quantity: 1 }]) {
      expectProblem(await addItem(headers, payload), 422)
    }
    const problem = expectProblem(await addItem(headers, { sku, quantity: 401 }), 422, 'validation_error')
    expect(problem.errors?.quantity).toBeDefined()
    expect(await stored(cart.id)).toEqual(before)
    expect((await added(headers, sku!, 400)).items[0]!.quantity).toBe(1000)
  })

  it('answers 422 too_many_lines for a 101st line, while existing lines can still grow', async () => {
    const { skus } = await f.product({ stock: Array.from({ length: 101 }, () => 5) })
    const { cart, headers } = await guest()
    const rows = (await products.variantsForSale(ctx(), { skus })).sort((a, b) => a.sku.localeCompare(b.sku))
    const last = rows.pop()!
    await db().insert(cartItems).values(rows.map((row) => ({ cart_id: cart.id, variant_id: row.variant_id, quantity: 1 })))
    const before = await stored(cart.id)
    expectProblem(await addItem(headers, { sku: last.sku, quantity: 1 }), 422, 'too_many_lines')
    expect(await stored(cart.id)).toEqual(before)
    const grown = await added(headers, rows[0]!.sku, 1)
    expect(grown.items).toHaveLength(100)
  })

  it('answers 401 before looking at the body when neither signed in nor holding a cart token', async () => {
    expectProblem(await addItem({}, { nonsense: true }), 401)
  })
})

describe('PATCH /api/cart/items/{id}/', () => {
  it('sets the quantity; raising it beyond the stock is a 409, lowering it is always accepted', async () => {
    const { skus: [sku] } = await f.product({ stock: [5], price: 100 })
    const { cart, headers } = await shopper()
    const line = (await added(headers, sku!, 2)).items[0]!
    const res = await patchItem(headers, line.id, { quantity: 5 })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: cart.id, subtotal: 500, items: [{ id: line.id, quantity: 5 }] })
    const before = await stored(cart.id)
    expect(expectProblem(await patchItem(headers, line.id, { quantity: 6 }), 409, 'insufficient_stock')).toMatchObject({ sku, available: 5 })
    expect(await stored(cart.id)).toEqual(before)

    expect((await setStock(sku!, 2)).statusCode).toBe(200)
    expect((await patchItem(headers, line.id, { quantity: 4 })).json()).toMatchObject({ items: [{ quantity: 4, available: 2, in_stock: false }] })
    expectProblem(await patchItem(headers, line.id, { quantity: 5 }), 409, 'insufficient_stock')
  })

  it('answers 422 to bad quantities and ids, changing nothing', async () => {
    const { skus: [sku] } = await f.product()
    const { cart, headers } = await guest()
    const line = (await added(headers, sku!, 2)).items[0]!
    const before = await stored(cart.id)
    for (const payload of [{ quantity: 0 }, { quantity: 1001 }, { quantity: null }, {}, { quantity: 1, sku }]) {
      expectProblem(await patchItem(headers, line.id, payload), 422)
    }
    expectProblem(await patchItem(headers, 'not-a-uuid', { quantity: 1 }), 422)
    expect(await stored(cart.id)).toEqual(before)
  })

  it("answers 404 for another cart's line (another user's or another guest's) and leaves it alone", async () => {
    const { skus: [sku] } = await f.product()
    const owner = await shopper()
    const line = (await added(owner.headers, sku!, 2)).items[0]!
    const before = await stored(owner.cart.id)
    const other = await shopper()
    const stranger = await guest()
    for (const headers of [other.headers, stranger.headers]) {
      expectProblem(await patchItem(headers, line.id, { quantity: 1 }), 404, 'not_found')
      expectProblem(await deleteItem(headers, line.id), 404, 'not_found')
    }
    expectProblem(await patchItem({ 'x-cart-token': 'wrong' }, line.id, { quantity: 1 }), 404, 'not_found')
    expect(await stored(owner.cart.id)).toEqual(before)
  })
})

describe('DELETE /api/cart/items/{id}/', () => {
  it('removes the line (204), then answers 404 for it', async () => {
    const { skus: [a, b] } = await f.product({ stock: [5, 5], price: 100 })
    const { headers } = await guest()
    await added(headers, a!, 1)
    const line = (await added(headers, b!, 2)).items[1]!
    const res = await deleteItem(headers, line.id)
    expect(res.statusCode).toBe(204)
    expect(res.body).toBe('')
    expect(await cartOf(headers)).toMatchObject({ subtotal: 100, items: [{ sku: a }] })
    expectProblem(await deleteItem(headers, line.id), 404, 'not_found')
  })
})

describe('POST and DELETE /api/cart/coupon/', () => {
  it('applies a valid coupon (any case) and discounts the total; DELETE removes it', async () => {
    const code = await makeCoupon({ kind: 'percent', value: 15 })
    const { skus: [sku] } = await f.product({ stock: [10], price: 999 })
    const { cart, headers } = await guest()
    await added(headers, sku!, 3)
    const res = await applyCoupon(headers, ` ${code.toLowerCase()} `)
    expect(res.statusCode, res.body).toBe(200)
    // 15 % of 2997 = 449.55, rounded half up.
    expect(res.json()).toMatchObject({ id: cart.id, coupon: code, coupon_error: null, subtotal: 2997, discount: 450, total: 2547 })
    expect((await stored(cart.id)).cart!.coupon_code).toBe(code)
    expect(await cartOf(headers)).toMatchObject({ coupon: code, discount: 450, total: 2547 })

    const removed = await removeCoupon(headers)
    expect(removed.statusCode).toBe(204)
    expect(await cartOf(headers)).toMatchObject({ coupon: null, discount: 0, total: 2997 })
  })

  it('answers 422 to an unknown or expired code and keeps the coupon the cart had', async () => {
    const good = await makeCoupon({ kind: 'fixed', value: 200 })
    const expired = await makeCoupon({ ends_at: new Date(Date.now() - 60_000) })
    const { skus: [sku] } = await f.product({ stock: [10], price: 1000 })
    const { cart, headers } = await shopper()
    await added(headers, sku!, 1)
    expect((await applyCoupon(headers, good)).statusCode).toBe(200)
    const before = await stored(cart.id)
    expectProblem(await applyCoupon(headers, `NOPE${uid()}`), 422, 'coupon_unknown')
    expectProblem(await applyCoupon(headers, expired), 422, 'coupon_expired')
    expectProblem(await applyCoupon(headers, ''), 422)
    expect(await stored(cart.id)).toEqual(before)
    expect(await cartOf(headers)).toMatchObject({ coupon: good, discount: 200, total: 800 })
  })

  it('keeps a coupon that stopped applying on the cart, without discount and with the reason', async () => {
    const code = await makeCoupon({ kind: 'percent', value: 10, min_subtotal: 2000 })
    const { skus: [sku] } = await f.product({ stock: [10], price: 1000 })
    const { headers } = await guest()
    const line = (await added(headers, sku!, 2)).items[0]!
    expect((await applyCoupon(headers, code)).json()).toMatchObject({ discount: 200, total: 1800 })
    await patchItem(headers, line.id, { quantity: 1 })
    const body = await cartOf(headers)
    expect(body).toMatchObject({ coupon: code, discount: 0, total: 1000, coupon_error: { code: 'coupon_below_minimum' } })
    expect(body.coupon_error!.detail).toContain(code)
    await patchItem(headers, line.id, { quantity: 3 })
    expect(await cartOf(headers)).toMatchObject({ coupon: code, coupon_error: null, discount: 300, total: 2700 })
    await db().update(coupons).set({ is_active: false }).where(eq(coupons.code, code))
    expect(await cartOf(headers)).toMatchObject({ coupon: code, discount: 0, coupon_error: { code: 'coupon_inactive' } })
  })

  it('answers 404 without an open cart and 401 without any credentials', async () => {
    const code = await makeCoupon()
    expectProblem(await applyCoupon({ 'x-cart-token': 'unknown' }, code), 404, 'not_found')
    expectProblem(await removeCoupon({ 'x-cart-token': 'unknown' }), 404, 'not_found')
    expectProblem(await applyCoupon({}, code), 401)
    expectProblem(await removeCoupon({}), 401)
  })
})

describe('a cart that is no longer open', () => {
  it('answers 404 on every cart route once checked out, for a guest and for a user', async () => {
    const { skus: [sku] } = await f.product()
    const code = await makeCoupon()
    for (const { cart, headers } of [await guest(), await shopper()]) {
      const line = (await added(headers, sku!, 1)).items[0]!
      await cartService.markCheckedOut(ctx(), cart.id)
      expectProblem(await getCart(headers), 404)
      expectProblem(await addItem(headers, { sku, quantity: 1 }), 404)
      expectProblem(await patchItem(headers, line.id, { quantity: 2 }), 404)
      expectProblem(await deleteItem(headers, line.id), 404)
      expectProblem(await applyCoupon(headers, code), 404)
      expectProblem(await removeCoupon(headers), 404)
      expect((await stored(cart.id)).items).toMatchObject([{ id: line.id, quantity: 1 }])
    }
  })
})

describe('activity', () => {
  it('moves updated_at forward on every write', async () => {
    const { skus: [a, b] } = await f.product({ stock: [10, 10] })
    const code = await makeCoupon()
    const { cart, headers } = await guest()
    const line = (await added(headers, a!, 1)).items[0]!
    const writes: Array<() => Promise<{ statusCode: number }>> = [
      () => addItem(headers, { sku: b, quantity: 1 }),
      () => patchItem(headers, line.id, { quantity: 2 }),
      () => deleteItem(headers, line.id),
      () => applyCoupon(headers, code),
      () => removeCoupon(headers),
    ]
    for (const write of writes) {
      await backdate(cart.id, 3)
      const before = (await stored(cart.id)).cart!.updated_at
      expect((await write()).statusCode).toBeLessThan(300)
      const after = (await stored(cart.id)).cart!.updated_at
      expect(after.getTime() - before.getTime()).toBeGreaterThan(2 * 86_400_000)
    }
  })
})

describe('checkout functions', () => {
  it('resolveCart finds the open cart of a user or a guest token, else 404', async () => {
    const { cart, user } = await shopper()
    const { cart: guestCart } = await guest()
    expect((await cartService.resolveCart(ctx(), { userId: user.id, token: null })).id).toBe(cart.id)
    expect((await cartService.resolveCart(ctx(), { userId: null, token: guestCart.token })).id).toBe(guestCart.id)
    // A user is never served a guest cart by token.
    expect((await cartService.resolveCart(ctx(), { userId: user.id, token: guestCart.token })).id).toBe(cart.id)
    await expect(cartService.resolveCart(ctx(), { userId: null, token: 'nope' })).rejects.toMatchObject({ status: 404 })
    await expect(cartService.resolveCart(ctx(), { userId: null, token: null })).rejects.toMatchObject({ status: 404 })
    await expect(cartService.resolveCart(ctx(), { userId: (await f.user()).id, token: null })).rejects.toMatchObject({ status: 404 })
  })

  it('checkoutLines gives live prices, stock and for-sale flags, and the coupon code', async () => {
    const sold = await f.product({ stock: [7], price: 450 })
    const dropped = await f.product({ stock: [3], price: 800 })
    const code = await makeCoupon()
    const { cart, headers } = await guest()
    await added(headers, sold.skus[0]!, 2)
    await added(headers, dropped.skus[0]!, 1)
    await applyCoupon(headers, code)
    await setActive(dropped.slug, false)
    const row = await cartService.resolveCart(ctx(), { userId: null, token: cart.token })
    const { lines, couponCode } = await cartService.checkoutLines(ctx(), row)
    expect(couponCode).toBe(code)
    expect(lines).toEqual([
      { variant_id: expect.any(String), product_id: sold.id, sku: sold.skus[0], product_name: expect.any(String), variant_name: 'Variant 0', quantity: 2, unit_price: 450, currency: t.settings.currency, available: 7, for_sale: true },
      { variant_id: expect.any(String), product_id: dropped.id, sku: dropped.skus[0], product_name: expect.any(String), variant_name: 'Variant 0', quantity: 1, unit_price: 800, currency: t.settings.currency, available: 3, for_sale: false },
    ])
  })

  it('markCheckedOut closes an open cart once; a second time is 409 cart_not_open', async () => {
    const { cart } = await guest()
    await cartService.markCheckedOut(ctx(), cart.id)
    expect((await stored(cart.id)).cart!.status).toBe('checked_out')
    await expect(cartService.markCheckedOut(ctx(), cart.id)).rejects.toMatchObject({ status: 409, code: 'cart_not_open' })
    await expect(cartService.markCheckedOut(ctx(), randomUUID())).rejects.toMatchObject({ status: 409, code: 'cart_not_open' })
  })
})

describe('cart.expire_carts', () => {
  it(`expires only open carts idle for longer than CART_EXPIRY_DAYS (${30}), once`, async () => {
    expect(t.settings.commerce.cartExpiryDays).toBe(30)
    const idle = await guest()
    const idleUser = await shopper()
    const recent = await guest()
    const closed = await guest()
    await cartService.markCheckedOut(ctx(), closed.cart.id)
    await backdate(idle.cart.id, 31)
    await backdate(idleUser.cart.id, 45)
    await backdate(recent.cart.id, 29)
    await backdate(closed.cart.id, 60)

    expect(await cartService.expireIdleCarts(ctx())).toBe(2)
    expect(await cartService.expireIdleCarts(ctx())).toBe(0)
    const status = async (id: string) => (await stored(id)).cart!.status
    expect([await status(idle.cart.id), await status(idleUser.cart.id), await status(recent.cart.id), await status(closed.cart.id)]).toEqual(['expired', 'expired', 'open', 'checked_out'])
    expectProblem(await getCart(idle.headers), 404)
    expect((await cartOf(recent.headers)).id).toBe(recent.cart.id)
    // The user starts afresh.
    expect((await openCart(idleUser.headers)).statusCode).toBe(201)
  })

  it('runs as the registered task', async () => {
    const idle = await guest()
    const recent = await guest()
    await backdate(idle.cart.id, 40)
    await t.app.platform.queue.enqueue('cart.expire_carts', {})
    await t.app.platform.queue.drain()
    expect((await t.app.platform.queue.failed()).filter((job) => job.task === 'cart.expire_carts')).toEqual([])
    expect((await stored(idle.cart.id)).cart!.status).toBe('expired')
    expect((await stored(recent.cart.id)).cart!.status).toBe('open')
  })
})

describe.runIf(usesPostgres)('concurrent cart creation (PostgreSQL)', () => {
  let racing: TestApp
  let base: string
  let gate: pg.Client
  let observer: pg.Client

  beforeAll(async () => {
    racing = await createTestApp({ env: { DB_POOL_MAX: '20' } })
    await racing.app.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(racing.app.server.address() as AddressInfo).port}`
    if (racing.settings.db.kind !== 'postgres') throw new Error('expected PostgreSQL')
    gate = new pg.Client({ connectionString: racing.settings.db.url })
    observer = new pg.Client({ connectionString: racing.settings.db.url })
    await Promise.all([gate.connect(), observer.connect()])
  })
  afterAll(async () => {
    await Promise.all([gate?.end(), observer?.end()])
    await racing?.close()
  })

  const waitForLockWaiters = (count: number) => lockWaitersReached(observer, count)

  it('gives 10 concurrent POST /api/cart/ of one user one open cart: one 201, nine 200, all the same id', async () => {
    const rf = factories(racing)
    const user = await rf.user()
    const headers = await rf.auth(user)
    // The gate holds an uncommitted open cart of this user: every request's insert waits on it.
    // Rolled back once all ten wait, the requests race for the unique index among themselves.
    await gate.query('BEGIN')
    let answers: Promise<Array<{ status: number; body: CreatedCartDto }>> | undefined
    try {
      await gate.query('INSERT INTO carts (user_id) VALUES ($1)', [user.id])
      answers = Promise.all(
        Array.from({ length: 10 }, async () => {
          const res = await fetch(`${base}/api/cart/`, { method: 'POST', headers })
          return { status: res.status, body: (await res.json()) as CreatedCartDto }
        }),
      )
      answers.catch(() => undefined)
      await waitForLockWaiters(10)
    } finally {
      await gate.query('ROLLBACK')
    }
    const results = await answers!
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201])
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1)
    const { rows } = await observer.query('SELECT id, status FROM carts WHERE user_id = $1', [user.id])
    expect(rows).toEqual([{ id: results[0]!.body.id, status: 'open' }])
  })
})
