/**
 * Merging a guest cart at sign-in: POST /api/auth/login/ (and the second step /login/mfa/) with
 * the guest's X-Cart-Token adds the guest lines to the user's open cart (created when none):
 * quantities add, capped by stock and by 1000 per line; lines no longer for sale are dropped; the
 * guest's coupon carries over when the user has none; the guest cart becomes 'merged'. A second
 * sign-in with the same token changes nothing.
 */
import { randomUUID } from 'node:crypto'
import { asc, eq } from 'drizzle-orm'
import { Secret, TOTP } from 'otpauth'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import type { CartDto, CreatedCartDto } from './service.js'
import { cartItems, carts, coupons } from './tables.js'

let t: TestApp
let f: ReturnType<typeof factories>
let staff: Record<string, string>

beforeAll(async () => {
  t = await createTestApp()
  f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
})
afterAll(() => t.close())

type Headers = Record<string, string>
const db = () => t.app.platform.database.db

const login = (user: MadeUser, headers: Headers = {}, password = user.password) =>
  t.request({ method: 'POST', url: '/api/auth/login/', headers, payload: { email: user.email, password } })
const getCart = (headers: Headers) => t.request({ method: 'GET', url: '/api/cart/', headers })

async function newCart(headers: Headers = {}): Promise<CreatedCartDto> {
  const res = await t.request({ method: 'POST', url: '/api/cart/', headers })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<CreatedCartDto>()
}

async function add(headers: Headers, sku: string, quantity: number): Promise<void> {
  const res = await t.request({ method: 'POST', url: '/api/cart/items/', headers, payload: { sku, quantity } })
  expect(res.statusCode, res.body).toBe(201)
}

async function applyCoupon(headers: Headers, code: string): Promise<void> {
  const res = await t.request({ method: 'POST', url: '/api/cart/coupon/', headers, payload: { code } })
  expect(res.statusCode, res.body).toBe(200)
}

/** A guest cart holding these lines, and its token header. */
async function guestWith(lines: Array<[string, number]>): Promise<{ cart: CreatedCartDto; headers: Headers }> {
  const cart = await newCart()
  const headers = { 'x-cart-token': cart.token! }
  for (const [sku, quantity] of lines) await add(headers, sku, quantity)
  return { cart, headers }
}

/** Signs in with the token and answers the user's cart as the new session sees it. */
async function signInWith(user: MadeUser, token: Headers): Promise<CartDto> {
  const res = await login(user, token)
  expect(res.statusCode, res.body).toBe(200)
  const { access } = res.json<{ access: string }>()
  const cart = await getCart({ authorization: `Bearer ${access}` })
  expect(cart.statusCode, cart.body).toBe(200)
  return cart.json<CartDto>()
}

const quantities = (cart: CartDto) => Object.fromEntries(cart.items.map((line) => [line.sku, line.quantity]))
const statusOf = async (id: string) => (await db().select({ status: carts.status }).from(carts).where(eq(carts.id, id)))[0]!.status
const linesOf = async (id: string) => db().select().from(cartItems).where(eq(cartItems.cart_id, id)).orderBy(asc(cartItems.id))
const userCarts = async (user: MadeUser) => db().select().from(carts).where(eq(carts.user_id, user.id))

async function makeCoupon(): Promise<string> {
  const code = `M${randomUUID().slice(0, 8).toUpperCase()}`
  await db().insert(coupons).values({ code, kind: 'percent', value: 10 })
  return code
}

describe('sign-in with X-Cart-Token', () => {
  it("adds the guest lines to the user's cart: quantities add, capped by stock, the user's own quantity never lowered", async () => {
    const { skus: [shared, capped, guestOnly, userOnly, shrunk] } = await f.product({ stock: [10, 4, 6, 5, 8], price: 100 })
    const user = await f.user()
    const auth = await f.auth(user)
    const own = await newCart(auth)
    await add(auth, shared!, 2)
    await add(auth, capped!, 2)
    await add(auth, userOnly!, 1)
    await add(auth, shrunk!, 6)
    const guest = await guestWith([[shared!, 3], [capped!, 3], [guestOnly!, 2], [shrunk!, 1]])
    // Stock fell below what the user already holds: their line stays as it is.
    expect((await t.request({ method: 'PATCH', url: `/api/products/variants/${shrunk}/stock/`, headers: staff, payload: { quantity: 3 } })).statusCode).toBe(200)

    const merged = await signInWith(user, guest.headers)
    expect(merged.id).toBe(own.id)
    expect(quantities(merged)).toEqual({ [shared!]: 5, [capped!]: 4, [guestOnly!]: 2, [userOnly!]: 1, [shrunk!]: 6 })
    expect(merged.subtotal).toBe(1800)
    expect(await statusOf(guest.cart.id)).toBe('merged')
    expectProblem(await getCart(guest.headers), 404)
    expect(await userCarts(user)).toHaveLength(1)
  })

  it('changes nothing when the same token signs in again', async () => {
    const { skus: [sku] } = await f.product({ stock: [10] })
    const user = await f.user()
    const guest = await guestWith([[sku!, 3]])
    const first = await signInWith(user, guest.headers)
    expect(quantities(first)).toEqual({ [sku!]: 3 })
    const before = await linesOf(first.id)
    const [cartBefore] = await userCarts(user)

    const second = await signInWith(user, guest.headers)
    expect(second).toEqual(first)
    expect(await linesOf(first.id)).toEqual(before)
    expect(await userCarts(user)).toEqual([cartBefore])
  })

  it('creates the user\'s cart when they have none', async () => {
    const { skus: [a, b] } = await f.product({ stock: [5, 5], price: 250 })
    const user = await f.user()
    expect(await userCarts(user)).toEqual([])
    const guest = await guestWith([[a!, 1], [b!, 2]])
    const merged = await signInWith(user, guest.headers)
    expect(quantities(merged)).toEqual({ [a!]: 1, [b!]: 2 })
    expect(merged.id).not.toBe(guest.cart.id)
    expect(await userCarts(user)).toMatchObject([{ id: merged.id, status: 'open', token_hash: null }])
  })

  it('caps a merged line at 1000 and drops lines no longer for sale', async () => {
    const big = await f.product({ stock: [5000] })
    const gone = await f.product({ stock: [5] })
    const user = await f.user()
    const auth = await f.auth(user)
    await newCart(auth)
    await add(auth, big.skus[0]!, 700)
    const guest = await guestWith([[big.skus[0]!, 700], [gone.skus[0]!, 1]])
    expect((await t.request({ method: 'PATCH', url: `/api/products/${gone.slug}/`, headers: staff, payload: { is_active: false } })).statusCode).toBe(200)
    expect(quantities(await signInWith(user, guest.headers))).toEqual({ [big.skus[0]!]: 1000 })
  })

  it("carries the guest's coupon over when the user's cart has none, and keeps the user's own otherwise", async () => {
    const { skus: [sku] } = await f.product({ stock: [10], price: 1000 })
    const guestCode = await makeCoupon()
    const userCode = await makeCoupon()

    const plain = await f.user()
    const guest = await guestWith([[sku!, 1]])
    await applyCoupon(guest.headers, guestCode)
    expect(await signInWith(plain, guest.headers)).toMatchObject({ coupon: guestCode, discount: 100 })

    const withCoupon = await f.user()
    const auth = await f.auth(withCoupon)
    await newCart(auth)
    await add(auth, sku!, 1)
    await applyCoupon(auth, userCode)
    const other = await guestWith([[sku!, 1]])
    await applyCoupon(other.headers, guestCode)
    expect(await signInWith(withCoupon, other.headers)).toMatchObject({ coupon: userCode, items: [{ sku, quantity: 2 }] })
  })

  it('leaves the guest cart alone when the sign-in fails, and without a token or with an unknown one', async () => {
    const { skus: [sku] } = await f.product({ stock: [10] })
    const user = await f.user()
    const guest = await guestWith([[sku!, 2]])
    expectProblem(await login(user, guest.headers, 'a-wrong-password-entirely'), 401)
    expect(await statusOf(guest.cart.id)).toBe('open')

    const auth = await f.auth(user)
    const own = await newCart(auth)
    expect((await login(user)).statusCode).toBe(200)
    expect((await login(user, { 'x-cart-token': 'not-a-cart-token' })).statusCode).toBe(200)
    expect(await linesOf(own.id)).toEqual([])
    expect(await statusOf(guest.cart.id)).toBe('open')
    expect(quantities((await getCart(guest.headers)).json<CartDto>())).toEqual({ [sku!]: 2 })
  })

  it('merges at the second step of a two-factor sign-in, not at the first', async () => {
    const { skus: [sku] } = await f.product({ stock: [10] })
    const user = await f.user()
    const auth = await f.auth(user)
    const setup = (await t.request({ method: 'POST', url: '/api/auth/mfa/setup/', headers: auth })).json<{ secret: string }>()
    const code = new TOTP({ secret: Secret.fromBase32(setup.secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate()
    const enabled = await t.request({ method: 'POST', url: '/api/auth/mfa/enable/', headers: auth, payload: { code } })
    expect(enabled.statusCode, enabled.body).toBe(200)
    const [recovery] = enabled.json<{ recovery_codes: string[] }>().recovery_codes

    const guest = await guestWith([[sku!, 4]])
    const first = await login(user, guest.headers)
    expect(first.json()).toMatchObject({ mfa_required: true })
    expect(await statusOf(guest.cart.id)).toBe('open')

    const second = await t.request({ method: 'POST', url: '/api/auth/login/mfa/', headers: guest.headers, payload: { mfa_token: first.json<{ mfa_token: string }>().mfa_token, code: recovery } })
    expect(second.statusCode, second.body).toBe(200)
    expect(await statusOf(guest.cart.id)).toBe('merged')
    const cart = await getCart({ authorization: `Bearer ${second.json<{ access: string }>().access}` })
    expect(quantities(cart.json<CartDto>())).toEqual({ [sku!]: 4 })
  })
})
