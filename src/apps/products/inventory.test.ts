/**
 * Inventory: the staff stock routes (GET/PATCH /api/products/variants/{sku}/stock/) and the
 * reservation functions checkout calls (reserve, release, commit). After every test the stock
 * ledger must account for every variant's stock (test/stock-ledger.ts).
 */
import { randomUUID } from 'node:crypto'
import { asc, eq, sql } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { stockLedger, stockQueries } from '../../../test/stock-ledger.js'
import type { Actor } from '../../core/context.js'
import { AppError } from '../../core/errors.js'
import { AlreadyReservedError, InvalidQuantityError, NotForSaleError, OutOfStockError, UnknownSkuError } from './errors.js'
import { createMemoryCache } from '../../core/cache.js'
import { createCatalogCache } from './catalog-cache.js'
import { createProductsService } from './service.js'
import { products as productRows, reservations, stockLevels, variants } from './tables.js'

let t: TestApp
let f: ReturnType<typeof factories>
let ledger: ReturnType<typeof stockLedger>
let staff: MadeUser
const products = createProductsService({ cache: createCatalogCache(createMemoryCache()) })

beforeAll(async () => {
  t = await createTestApp()
  f = factories(t)
  ledger = stockLedger(t)
  staff = await f.user({ role: 'staff' })
})
afterEach(async () => {
  await ledger.expectBalanced()
})
afterAll(() => t.close())

const db = () => t.app.platform.database.db
const ctx = (actor: Actor | null = null) => t.app.platform.context({ actor })
const staffActor = (user: MadeUser): Actor => ({ kind: 'user', id: user.id, role: 'staff' })
const reference = () => `ORD-${randomUUID().slice(0, 8).toUpperCase()}`

const { variantId, stockOf, movementsOf } = stockQueries(() => t)

async function reservationsOf(ref: string) {
  return db()
    .select({ sku: variants.sku, quantity: reservations.quantity, status: reservations.status })
    .from(reservations)
    .innerJoin(variants, eq(variants.id, reservations.variant_id))
    .where(eq(reservations.reference, ref))
    .orderBy(asc(variants.sku))
}

/** Everything a stock change could touch for these SKUs, to compare before and after a refusal. */
async function snapshot(...skus: string[]) {
  return Promise.all(skus.map(async (sku) => ({ sku, stock: await stockOf(sku), movements: await movementsOf(sku) })))
}

/** The error a promise rejects with (fails when it resolves). */
async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => expect.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (err: unknown) => err,
  )
}

/** The driver's error under Drizzle's wrapper (PostgreSQL and PGlite both carry code and constraint). */
async function sqlError(promise: Promise<unknown>): Promise<{ code?: string; constraint?: string }> {
  const err = (await caught(promise)) as { code?: string; constraint?: string; cause?: { code?: string; constraint?: string } }
  return err.cause?.code ? err.cause : err
}

const stockUrl = (sku: string) => `/api/products/variants/${encodeURIComponent(sku)}/stock/`
const patchStock = async (sku: string, payload: unknown, user: MadeUser | null = staff) =>
  t.request({ method: 'PATCH', url: stockUrl(sku), payload: payload as object, headers: user ? await f.auth(user) : {} })
const getStock = async (sku: string, user: MadeUser | null = staff) =>
  t.request({ method: 'GET', url: stockUrl(sku), headers: user ? await f.auth(user) : {} })

describe('PATCH /api/products/variants/{sku}/stock/', () => {
  it('sets on-hand stock to the counted quantity and records one count movement when staff send {quantity}', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const res = await patchStock(sku!, { quantity: 25 })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toEqual({ sku, on_hand: 25, reserved: 0, available: 25 })
    expect(await stockOf(sku!)).toEqual({ on_hand: 25, reserved: 0, available: 25 })
    expect(await movementsOf(sku!)).toEqual([{ delta_on_hand: 15, delta_reserved: 0, reason: 'count', reference: null, actor: `user:${staff.id}` }])
  })

  it('records the given reason when a count comes with one', async () => {
    const { skus: [sku] } = await ledger.product([10])
    expect((await patchStock(sku!, { quantity: 4, reason: 'stocktake' })).json()).toMatchObject({ on_hand: 4, available: 4 })
    expect(await movementsOf(sku!)).toEqual([{ delta_on_hand: -6, delta_reserved: 0, reason: 'stocktake', reference: null, actor: `user:${staff.id}` }])
  })

  it('adds a delivery to on-hand stock when staff send {delta, reason}', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const res = await patchStock(sku!, { delta: 5, reason: 'delivery' })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toEqual({ sku, on_hand: 15, reserved: 0, available: 15 })
    expect(await movementsOf(sku!)).toEqual([{ delta_on_hand: 5, delta_reserved: 0, reason: 'delivery', reference: null, actor: `user:${staff.id}` }])
  })

  it('takes stock away with a negative delta down to exactly zero', async () => {
    const { skus: [sku] } = await ledger.product([10])
    expect((await patchStock(sku!, { delta: -4, reason: 'damaged' })).json()).toEqual({ sku, on_hand: 6, reserved: 0, available: 6 })
    expect((await patchStock(sku!, { delta: -6, reason: 'lost' })).json()).toEqual({ sku, on_hand: 0, reserved: 0, available: 0 })
    expect((await movementsOf(sku!)).map((row) => [row.delta_on_hand, row.reason])).toEqual([[-4, 'damaged'], [-6, 'lost']])
  })

  it('lets an admin change stock too', async () => {
    const admin = await f.user({ role: 'admin' })
    const { skus: [sku] } = await ledger.product([1])
    expect((await patchStock(sku!, { delta: 2, reason: 'return' }, admin)).json()).toMatchObject({ on_hand: 3 })
    expect((await movementsOf(sku!)).map((row) => row.actor)).toEqual([`user:${admin.id}`])
  })

  it('answers 422 naming delta and changes nothing when a delta would take stock below zero', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const before = await snapshot(sku!)
    const body = expectProblem(await patchStock(sku!, { delta: -100, reason: 'shrinkage' }), 422, 'validation_error')
    expect(body.errors).toEqual({ delta: ['Stock cannot go below zero.'] })
    expect(await snapshot(sku!)).toEqual(before)
  })

  it.each([
    ['a zero delta', { delta: 0, reason: 'nothing' }],
    ['a delta without a reason', { delta: 5 }],
    ['a delta with an empty reason', { delta: 5, reason: '' }],
    ['both quantity and delta', { quantity: 5, delta: 5, reason: 'both' }],
    ['a negative quantity', { quantity: -1 }],
    ['a fractional quantity', { quantity: 1.5 }],
    ['a quantity sent as text', { quantity: '5' }],
    ['an empty body', {}],
  ])('answers 422 and changes nothing for %s', async (_case, payload) => {
    const { skus: [sku] } = await ledger.product([10])
    const before = await snapshot(sku!)
    expectProblem(await patchStock(sku!, payload), 422, 'validation_error')
    expect(await snapshot(sku!)).toEqual(before)
    expect(before[0]!.movements).toEqual([])
  })

  it('answers 409 stock_below_reserved and changes nothing when on-hand stock would go below what is reserved', async () => {
    const { skus: [sku] } = await ledger.product([10])
    await products.reserve(ctx(), reference(), [{ sku: sku!, quantity: 4 }])
    const before = await snapshot(sku!)
    for (const payload of [{ quantity: 3 }, { delta: -7, reason: 'damaged' }]) {
      const body = expectProblem(await patchStock(sku!, payload), 409, 'stock_below_reserved')
      expect(body).toMatchObject({ sku, reserved: 4 })
      expect(await snapshot(sku!)).toEqual(before)
    }
    // Exactly what is reserved is allowed: nothing left to sell.
    expect((await patchStock(sku!, { quantity: 4 })).json()).toEqual({ sku, on_hand: 4, reserved: 4, available: 0 })
    expect((await movementsOf(sku!)).map((row) => row.reason)).toEqual(['reserve', 'count'])
  })

  it('answers 404 for an unknown SKU', async () => {
    const body = expectProblem(await patchStock('NO-SUCH-SKU', { quantity: 1 }), 404, 'not_found')
    expect(body.detail).toContain('NO-SUCH-SKU')
  })

  it('answers 403 to a customer and changes nothing', async () => {
    const customer = await f.user()
    const { skus: [sku] } = await ledger.product([10])
    expectProblem(await patchStock(sku!, { quantity: 0 }, customer), 403, 'permission_denied')
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
    expect(await movementsOf(sku!)).toEqual([])
  })

  it('answers 401 without a token, before validating the body', async () => {
    const { skus: [sku] } = await ledger.product([10])
    expectProblem(await patchStock(sku!, { quantity: 0 }, null), 401, 'not_authenticated')
    expectProblem(await patchStock(sku!, { delta: 0 }, null), 401, 'not_authenticated')
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
    expect(await movementsOf(sku!)).toEqual([])
  })

  it('creates the stock row of a variant that has none on its first change', async () => {
    const { id } = await ledger.product([1])
    const sku = `SKU-BARE-${randomUUID().slice(0, 8)}`.toUpperCase()
    await db().insert(variants).values({ product_id: id, sku, price: 500, currency: t.settings.currency })
    ledger.track(sku)
    expect((await getStock(sku)).json()).toEqual({ sku, on_hand: 0, reserved: 0, available: 0 })
    expect(await stockOf(sku)).toBeUndefined()
    expect((await patchStock(sku, { delta: 3, reason: 'delivery' })).json()).toEqual({ sku, on_hand: 3, reserved: 0, available: 3 })
    expect(await stockOf(sku)).toEqual({ on_hand: 3, reserved: 0, available: 3 })
    expect(await movementsOf(sku)).toHaveLength(1)
  })
})

describe('GET /api/products/variants/{sku}/stock/', () => {
  it('answers on hand, reserved and available for staff', async () => {
    const { skus: [sku] } = await ledger.product([10])
    await products.reserve(ctx(), reference(), [{ sku: sku!, quantity: 3 }])
    const res = await getStock(sku!)
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ sku, on_hand: 10, reserved: 3, available: 7 })
  })

  it('answers the same figures the last PATCH answered', async () => {
    const { skus: [sku] } = await ledger.product([10])
    await products.reserve(ctx(), reference(), [{ sku: sku!, quantity: 2 }])
    const patched = await patchStock(sku!, { delta: 8, reason: 'delivery' })
    expect(patched.json()).toEqual({ sku, on_hand: 18, reserved: 2, available: 16 })
    expect((await getStock(sku!)).json()).toEqual(patched.json())
  })

  it('answers 404 for an unknown SKU, 403 to a customer and 401 without a token', async () => {
    const { skus: [sku] } = await ledger.product([10])
    expectProblem(await getStock('NO-SUCH-SKU'), 404, 'not_found')
    expectProblem(await getStock(sku!, await f.user()), 403, 'permission_denied')
    expectProblem(await getStock(sku!, null), 401, 'not_authenticated')
  })
})

describe('ProductsService.reserve', () => {
  it('holds stock for a reference with one active reservation and one ledger row', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(staffActor(staff)), ref, [{ sku: sku!, quantity: 3 }])
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 3, available: 7 })
    expect(await reservationsOf(ref)).toEqual([{ sku, quantity: 3, status: 'active' }])
    expect(await movementsOf(sku!)).toEqual([{ delta_on_hand: 0, delta_reserved: 3, reason: 'reserve', reference: ref, actor: `user:${staff.id}` }])
  })

  it('records a service or the system as the actor', async () => {
    const { skus: [a, b] } = await ledger.product([5, 5])
    await products.reserve(ctx({ kind: 'service', id: 'checkout' }), reference(), [{ sku: a!, quantity: 1 }])
    await products.reserve(ctx(), reference(), [{ sku: b!, quantity: 1 }])
    expect((await movementsOf(a!)).map((row) => row.actor)).toEqual(['service:checkout'])
    expect((await movementsOf(b!)).map((row) => row.actor)).toEqual(['system'])
  })

  it('reserves every line of a multi-SKU call', async () => {
    const { skus: [a, b] } = await ledger.product([10, 3])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: a!, quantity: 2 }, { sku: b!, quantity: 3 }])
    expect(await reservationsOf(ref)).toEqual([{ sku: a, quantity: 2, status: 'active' }, { sku: b, quantity: 3, status: 'active' }])
    expect(await stockOf(a!)).toMatchObject({ reserved: 2, available: 8 })
    expect(await stockOf(b!)).toMatchObject({ reserved: 3, available: 0 })
  })

  it('throws OutOfStockError (409 out_of_stock with sku and available) and changes nothing when more is asked than available', async () => {
    const { skus: [sku] } = await ledger.product([10])
    await products.reserve(ctx(), reference(), [{ sku: sku!, quantity: 4 }])
    const before = await snapshot(sku!)
    const ref = reference()
    const err = await caught(products.reserve(ctx(), ref, [{ sku: sku!, quantity: 7 }]))
    expect(err).toBeInstanceOf(OutOfStockError)
    expect(err).toMatchObject({ status: 409, code: 'out_of_stock', extensions: { sku, available: 6 }, message: `Only 6 of ${sku} are available.` })
    expect(await snapshot(sku!)).toEqual(before)
    expect(await reservationsOf(ref)).toEqual([])
  })

  it('leaves every line untouched when a later line of the same call is short (all or nothing)', async () => {
    const { skus } = await ledger.product([10, 10])
    // Lines are reserved in variant id order: make the line reserved second the short one, so the
    // first line's update has really run before the call fails.
    const ordered = (await Promise.all(skus.map(async (sku) => ({ sku, id: await variantId(sku) })))).sort((x, y) => (x.id < y.id ? -1 : 1))
    const [first, second] = ordered.map((row) => row.sku)
    const before = await snapshot(first!, second!)
    const ref = reference()
    for (const lines of [
      [{ sku: first!, quantity: 2 }, { sku: second!, quantity: 11 }],
      [{ sku: second!, quantity: 11 }, { sku: first!, quantity: 2 }],
    ]) {
      const err = await caught(products.reserve(ctx(), ref, lines))
      expect(err).toBeInstanceOf(OutOfStockError)
      expect(err).toMatchObject({ extensions: { sku: second, available: 10 } })
      expect(await snapshot(first!, second!)).toEqual(before)
      expect(await reservationsOf(ref)).toEqual([])
    }
  })

  it('sums duplicate SKU lines into one reservation', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 2 }, { sku: sku!, quantity: 3 }])
    expect(await reservationsOf(ref)).toEqual([{ sku, quantity: 5, status: 'active' }])
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 5, available: 5 })
    expect((await movementsOf(sku!)).map((row) => row.delta_reserved)).toEqual([5])
  })

  it('refuses duplicate lines whose sum is more than available, though each alone would fit', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const err = await caught(products.reserve(ctx(), reference(), [{ sku: sku!, quantity: 6 }, { sku: sku!, quantity: 6 }]))
    expect(err).toMatchObject({ code: 'out_of_stock', extensions: { sku, available: 10 } })
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
  })

  it.each([0, -1, 1.5, Number.NaN])('throws a 422 naming quantity and changes nothing for quantity %s', async (quantity) => {
    const { skus: [a, b] } = await ledger.product([10, 10])
    const before = await snapshot(a!, b!)
    const err = await caught(products.reserve(ctx(), reference(), [{ sku: a!, quantity: 1 }, { sku: b!, quantity }]))
    expect(err).toBeInstanceOf(InvalidQuantityError)
    expect(err).toMatchObject({ status: 422, code: 'validation_error', errors: { quantity: ['Quantities are whole numbers of at least 1.'] } })
    expect(await snapshot(a!, b!)).toEqual(before)
  })

  it('throws a 404 naming an unknown SKU and leaves the known lines untouched', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    const err = await caught(products.reserve(ctx(), ref, [{ sku: sku!, quantity: 1 }, { sku: 'NO-SUCH-SKU', quantity: 1 }]))
    expect(err).toBeInstanceOf(UnknownSkuError)
    expect(err).toMatchObject({ status: 404, code: 'not_found', message: 'Variant "NO-SUCH-SKU" was not found.' })
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
    expect(await reservationsOf(ref)).toEqual([])
  })

  it('throws 409 not_for_sale for a dropped variant or a product taken off sale, reserving no line', async () => {
    const { id, skus: [kept, dropped] } = await ledger.product([10, 10])
    const db = t.app.platform.database.db
    await db.update(variants).set({ is_active: false }).where(eq(variants.sku, dropped!))
    const ref = reference()
    const err = await caught(products.reserve(ctx(), ref, [{ sku: kept!, quantity: 1 }, { sku: dropped!, quantity: 1 }]))
    expect(err).toBeInstanceOf(NotForSaleError)
    expect(err).toMatchObject({ status: 409, code: 'not_for_sale', sku: dropped })
    expect(await reservationsOf(ref)).toEqual([])

    await db.update(productRows).set({ is_active: false }).where(eq(productRows.id, id))
    await expect(products.reserve(ctx(), ref, [{ sku: kept!, quantity: 1 }])).rejects.toMatchObject({ code: 'not_for_sale', sku: kept })
    await db.update(productRows).set({ is_active: true, deleted_at: new Date() }).where(eq(productRows.id, id))
    await expect(products.reserve(ctx(), ref, [{ sku: kept!, quantity: 1 }])).rejects.toMatchObject({ code: 'not_for_sale', sku: kept })
    expect(await stockOf(kept!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
  })

  it('throws 409 already_reserved when the same reference reserves the same SKU again, keeping the first hold', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 2 }])
    const before = await snapshot(sku!)
    const err = await caught(products.reserve(ctx(), ref, [{ sku: sku!, quantity: 3 }]))
    expect(err).toBeInstanceOf(AlreadyReservedError)
    expect(err).toMatchObject({ status: 409, code: 'already_reserved' })
    expect(await snapshot(sku!)).toEqual(before)
    expect(await reservationsOf(ref)).toEqual([{ sku, quantity: 2, status: 'active' }])
  })

  it('lets a reference hold the same SKU again once its earlier hold was released', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 2 }])
    expect(await products.release(ctx(), ref)).toBe(1)
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 4 }])
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 4, available: 6 })
    expect(await reservationsOf(ref)).toEqual(expect.arrayContaining([{ sku, quantity: 2, status: 'released' }, { sku, quantity: 4, status: 'active' }]))
  })

  it('leaves no trace when the caller\'s transaction throws after reserving', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    const err = await caught(
      ctx().tx(async (tx) => {
        await products.reserve(tx, ref, [{ sku: sku!, quantity: 3 }])
        // Inside the caller's transaction the hold is visible...
        expect((await tx.db.select().from(reservations).where(eq(reservations.reference, ref))).length).toBe(1)
        throw new Error('order insert failed')
      }),
    )
    expect((err as Error).message).toBe('order insert failed')
    // ...and it goes with the transaction.
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
    expect(await reservationsOf(ref)).toEqual([])
    expect(await movementsOf(sku!)).toEqual([])
  })

  it('commits with the caller\'s transaction when it succeeds', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await ctx().tx((tx) => products.reserve(tx, ref, [{ sku: sku!, quantity: 3 }]))
    expect(await reservationsOf(ref)).toEqual([{ sku, quantity: 3, status: 'active' }])
    expect(await stockOf(sku!)).toMatchObject({ reserved: 3 })
  })
})

describe('ProductsService.release', () => {
  it('gives back what a reference holds, marks it released, records it and answers the count', async () => {
    const { skus: [a, b] } = await ledger.product([10, 5])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: a!, quantity: 3 }, { sku: b!, quantity: 1 }])
    expect(await products.release(ctx(staffActor(staff)), ref)).toBe(2)
    expect(await stockOf(a!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
    expect(await stockOf(b!)).toEqual({ on_hand: 5, reserved: 0, available: 5 })
    expect((await reservationsOf(ref)).map((row) => row.status)).toEqual(['released', 'released'])
    expect((await movementsOf(a!)).at(-1)).toEqual({ delta_on_hand: 0, delta_reserved: -3, reason: 'release', reference: ref, actor: `user:${staff.id}` })
    expect((await movementsOf(b!)).at(-1)).toEqual({ delta_on_hand: 0, delta_reserved: -1, reason: 'release', reference: ref, actor: `user:${staff.id}` })
  })

  it('answers 0 and changes nothing the second time', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 3 }])
    expect(await products.release(ctx(), ref)).toBe(1)
    const before = await snapshot(sku!)
    expect(await products.release(ctx(), ref)).toBe(0)
    expect(await snapshot(sku!)).toEqual(before)
    expect(await reservationsOf(ref)).toEqual([{ sku, quantity: 3, status: 'released' }])
  })

  it('answers 0 for a reference that holds nothing', async () => {
    expect(await products.release(ctx(), reference())).toBe(0)
  })

  it('changes nothing after a commit', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 3 }])
    await products.commit(ctx(), ref)
    const before = await snapshot(sku!)
    expect(await products.release(ctx(), ref)).toBe(0)
    expect(await snapshot(sku!)).toEqual(before)
    expect(await reservationsOf(ref)).toEqual([{ sku, quantity: 3, status: 'committed' }])
  })
})

describe('ProductsService.commit', () => {
  it('turns the hold into goods sold: on hand and reserved both go down, status committed, one ledger row', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 3 }])
    expect(await products.commit(ctx({ kind: 'service', id: 'payments' }), ref)).toBe(1)
    expect(await stockOf(sku!)).toEqual({ on_hand: 7, reserved: 0, available: 7 })
    expect(await reservationsOf(ref)).toEqual([{ sku, quantity: 3, status: 'committed' }])
    expect(await movementsOf(sku!)).toEqual([
      { delta_on_hand: 0, delta_reserved: 3, reason: 'reserve', reference: ref, actor: 'system' },
      { delta_on_hand: -3, delta_reserved: -3, reason: 'commit', reference: ref, actor: 'service:payments' },
    ])
  })

  it('answers 0 and changes nothing the second time', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 3 }])
    expect(await products.commit(ctx(), ref)).toBe(1)
    const before = await snapshot(sku!)
    expect(await products.commit(ctx(), ref)).toBe(0)
    expect(await snapshot(sku!)).toEqual(before)
  })

  it('changes nothing after a release', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const ref = reference()
    await products.reserve(ctx(), ref, [{ sku: sku!, quantity: 3 }])
    await products.release(ctx(), ref)
    const before = await snapshot(sku!)
    expect(await products.commit(ctx(), ref)).toBe(0)
    expect(await snapshot(sku!)).toEqual(before)
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
  })

  it('keeps other references\' holds on the same SKU', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const [mine, theirs] = [reference(), reference()]
    await products.reserve(ctx(), mine, [{ sku: sku!, quantity: 3 }])
    await products.reserve(ctx(), theirs, [{ sku: sku!, quantity: 4 }])
    expect(await products.commit(ctx(), mine)).toBe(1)
    expect(await stockOf(sku!)).toEqual({ on_hand: 7, reserved: 4, available: 3 })
    expect(await reservationsOf(theirs)).toEqual([{ sku, quantity: 4, status: 'active' }])
  })
})

describe('stock_levels constraints', () => {
  it('refuses a direct UPDATE that sets reserved above on hand', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const id = await variantId(sku!)
    const err = await sqlError(db().update(stockLevels).set({ reserved: 11 }).where(eq(stockLevels.variant_id, id)))
    expect(err).toMatchObject({ code: '23514', constraint: 'stock_levels_reserved_check' })
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
  })

  it('refuses a direct UPDATE that sets on hand below zero', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const id = await variantId(sku!)
    const err = await sqlError(db().update(stockLevels).set({ on_hand: -1 }).where(eq(stockLevels.variant_id, id)))
    expect(err).toMatchObject({ code: '23514', constraint: 'stock_levels_on_hand_check' })
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 0, available: 10 })
  })

  it('refuses a direct UPDATE that lowers on hand below what is reserved, or reserved below zero', async () => {
    const { skus: [sku] } = await ledger.product([10])
    await products.reserve(ctx(), reference(), [{ sku: sku!, quantity: 5 }])
    const id = await variantId(sku!)
    expect(await sqlError(db().update(stockLevels).set({ on_hand: 4 }).where(eq(stockLevels.variant_id, id)))).toMatchObject({ code: '23514', constraint: 'stock_levels_reserved_check' })
    expect(await sqlError(db().update(stockLevels).set({ reserved: sql`${stockLevels.reserved} - 6` }).where(eq(stockLevels.variant_id, id)))).toMatchObject({ code: '23514', constraint: 'stock_levels_reserved_check' })
    expect(await stockOf(sku!)).toEqual({ on_hand: 10, reserved: 5, available: 5 })
  })
})

describe('the stock ledger', () => {
  it('accounts for every variant after a mixed sequence of changes', async () => {
    const { skus: [a, b] } = await ledger.product([10, 4])
    const [r1, r2] = [reference(), reference()]
    await products.reserve(ctx(), r1, [{ sku: a!, quantity: 3 }, { sku: b!, quantity: 4 }])
    await patchStock(b!, { delta: 6, reason: 'delivery' })
    await products.reserve(ctx(), r2, [{ sku: a!, quantity: 7 }, { sku: b!, quantity: 2 }])
    await caught(products.reserve(ctx(), reference(), [{ sku: a!, quantity: 1 }]))
    await products.commit(ctx(), r1)
    await products.release(ctx(), r2)
    await patchStock(a!, { quantity: 20 })
    expect(await stockOf(a!)).toEqual({ on_hand: 20, reserved: 0, available: 20 })
    expect(await stockOf(b!)).toEqual({ on_hand: 6, reserved: 0, available: 6 })
    // Explicitly here too; afterEach checks it after every test of this file.
    expect(await ledger.expectBalanced()).toBeGreaterThanOrEqual(2)
  })

  it('is an error the invariant check catches when stock moves without a ledger row', async () => {
    const { skus: [sku] } = await ledger.product([10])
    const id = await variantId(sku!)
    await db().update(stockLevels).set({ on_hand: 11 }).where(eq(stockLevels.variant_id, id))
    await expect(ledger.expectBalanced()).rejects.toThrow()
    // Put it back so the file's afterEach check holds.
    await db().update(stockLevels).set({ on_hand: 10 }).where(eq(stockLevels.variant_id, id))
  })
})

// AppError is what the problem handler maps; the service's errors must be ones.
describe('inventory errors', () => {
  it('are AppErrors with the status the API documents', () => {
    expect(new OutOfStockError('A', 1)).toBeInstanceOf(AppError)
    expect(new OutOfStockError('A', 1).message).toBe('Only 1 of A is available.')
    expect(new AlreadyReservedError('ORD-1')).toMatchObject({ status: 409, code: 'already_reserved' })
  })
})
