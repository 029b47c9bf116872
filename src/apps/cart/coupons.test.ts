/**
 * Coupons: the staff routes under /api/coupons/ (over HTTP), validate/redeem/release against the
 * database (a coupons service with a fixed clock, over the app's database), and redemptions under
 * real concurrent transactions (PostgreSQL only: PGlite runs one statement at a time). Every test
 * makes coupons with unique codes, so tests share the file's database without depending on order.
 */
import { randomUUID } from 'node:crypto'
import { and, eq } from 'drizzle-orm'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp, usesPostgres } from '../../../test/harness.js'
import { behindRowLock, waitForLockWaiters as lockWaitersReached } from '../../../test/lock-waiters.js'
import { expectProblem } from '../../../test/problems.js'
import { ConflictError } from '../../core/errors.js'
import { CouponRefusedError, createCoupons, customerKey } from './coupons.js'
import type { CouponDto, CreateCouponInput } from './pricing-schemas.js'
import { couponRedemptions, coupons as couponsTable } from './tables.js'

/** Connections in the app's pool: the most racers that can be inside a transaction at once. */
const POOL = 20
const NOW = new Date('2030-06-15T12:00:00.000Z')
const hoursFromNow = (hours: number) => new Date(NOW.getTime() + hours * 3_600_000).toISOString()

let t: TestApp
let staff: { authorization: string }
let customer: { authorization: string }
const coupons = createCoupons({ now: () => NOW })

beforeAll(async () => {
  t = await createTestApp({ env: { DB_POOL_MAX: String(POOL) } })
  const f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  customer = await f.auth(await f.user())
})
afterAll(() => t.close())

const db = () => t.app.platform.database.db
const ctx = () => t.app.platform.context()
/** A fresh upper-case code. */
const uid = () => `C${randomUUID().slice(0, 8).toUpperCase()}`
const customerA = () => `user:${randomUUID()}`

async function make(overrides: Partial<CreateCouponInput> = {}): Promise<CouponDto> {
  return coupons.create(ctx(), { code: uid(), kind: 'percent', value: 10, ...overrides })
}

async function couponRow(code: string) {
  const [row] = await db().select().from(couponsTable).where(eq(couponsTable.code, code))
  return row!
}

async function redemptionsOf(code: string) {
  const row = await couponRow(code)
  return db().select({ order_id: couponRedemptions.order_id, customer: couponRedemptions.customer }).from(couponRedemptions).where(eq(couponRedemptions.coupon_id, row.id))
}

const post = (payload: unknown, headers: Record<string, string> = staff) => t.request({ method: 'POST', url: '/api/coupons/', headers, payload: payload as object })
const patch = (code: string, payload: unknown) => t.request({ method: 'PATCH', url: `/api/coupons/${code}/`, headers: staff, payload: payload as object })

describe('POST /api/coupons/', () => {
  it('creates a coupon with its code upper-cased and the defaults filled in', async () => {
    const code = uid().toLowerCase()
    const res = await post({ code, kind: 'fixed', value: 500, min_subtotal: 2000, starts_at: '2030-01-01T00:00:00Z', ends_at: '2030-12-31T00:00:00+01:00', usage_limit: 100, per_customer_limit: 1 })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json()).toMatchObject({
      code: code.toUpperCase(), kind: 'fixed', value: 500, min_subtotal: 2000,
      starts_at: '2030-01-01T00:00:00.000Z', ends_at: '2030-12-30T23:00:00.000Z',
      usage_limit: 100, per_customer_limit: 1, times_used: 0, is_active: true,
    })
    const minimal = await post({ code: uid(), kind: 'percent', value: 100 })
    expect(minimal.json()).toMatchObject({ min_subtotal: 0, starts_at: null, ends_at: null, usage_limit: null, per_customer_limit: null, is_active: true })
  })

  it('answers 409 for a code already taken, in any case', async () => {
    const made = await make()
    expectProblem(await post({ code: made.code.toLowerCase(), kind: 'fixed', value: 1 }), 409, 'coupon_code_taken')
  })

  it('answers 422 naming the field for a percentage over 100, a zero amount, a bad code, dates in the wrong order or an unknown field', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['value', { code: uid(), kind: 'percent', value: 101 }],
      ['value', { code: uid(), kind: 'fixed', value: 0 }],
      ['value', { code: uid(), kind: 'percent', value: 12.5 }],
      ['code', { code: 'AB', kind: 'fixed', value: 100 }],
      ['code', { code: 'NO SPACES', kind: 'fixed', value: 100 }],
      ['code', { code: 'X'.repeat(33), kind: 'fixed', value: 100 }],
      ['ends_at', { code: uid(), kind: 'fixed', value: 100, starts_at: '2030-02-01T00:00:00Z', ends_at: '2030-02-01T00:00:00Z' }],
      ['ends_at', { code: uid(), kind: 'fixed', value: 100, ends_at: 'next tuesday' }],
      ['kind', { code: uid(), kind: 'bogof', value: 100 }],
      ['usage_limit', { code: uid(), kind: 'fixed', value: 100, usage_limit: 0 }],
      ['surprise', { code: uid(), kind: 'fixed', value: 100, surprise: true }],
    ]
    for (const [field, body] of cases) {
      const problem = expectProblem(await post(body), 422)
      expect(Object.keys(problem.errors ?? {}), JSON.stringify(body)).toContain(field)
    }
    const [row] = await db().select().from(couponsTable).where(eq(couponsTable.code, 'AB'))
    expect(row).toBeUndefined()
  })

  it('answers 401 without a token and 403 to a customer', async () => {
    expectProblem(await t.request({ method: 'POST', url: '/api/coupons/', payload: { code: uid(), kind: 'fixed', value: 1 } }), 401)
    expectProblem(await post({ code: uid(), kind: 'fixed', value: 1 }, customer), 403)
    expectProblem(await t.request({ method: 'GET', url: '/api/coupons/', headers: customer }), 403)
  })
})

describe('GET /api/coupons/ and /api/coupons/{code}/', () => {
  it('lists coupons by code and reads one by its code in any case', async () => {
    const b = await make({ code: `ZB${uid()}` })
    const a = await make({ code: `ZA${uid()}` })
    const list = (await t.request({ method: 'GET', url: '/api/coupons/', headers: staff })).json<CouponDto[]>()
    const codes = list.map((c) => c.code)
    expect(codes.indexOf(a.code)).toBeGreaterThanOrEqual(0)
    expect(codes.indexOf(a.code)).toBeLessThan(codes.indexOf(b.code))
    const one = await t.request({ method: 'GET', url: `/api/coupons/${a.code.toLowerCase()}/`, headers: staff })
    expect(one.statusCode).toBe(200)
    expect(one.json()).toEqual(a)
  })

  it('answers 404 for an unknown code, whatever its characters', async () => {
    expectProblem(await t.request({ method: 'GET', url: `/api/coupons/${uid()}/`, headers: staff }), 404, 'not_found')
    expectProblem(await t.request({ method: 'GET', url: '/api/coupons/no%20such%20code!/', headers: staff }), 404, 'not_found')
  })
})

describe('PATCH /api/coupons/{code}/', () => {
  it('changes the terms it is given and keeps the others', async () => {
    const made = await make({ kind: 'fixed', value: 300, usage_limit: 5 })
    const res = await patch(made.code.toLowerCase(), { value: 450, ends_at: '2031-01-01T00:00:00Z', is_active: false })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ code: made.code, kind: 'fixed', value: 450, usage_limit: 5, ends_at: '2031-01-01T00:00:00.000Z', is_active: false })
    expect(await couponRow(made.code)).toMatchObject({ value: 450, is_active: false })
  })

  it('checks the changed coupon as a whole: a fixed 500 turned into a percentage is a 422', async () => {
    const made = await make({ kind: 'fixed', value: 500, starts_at: '2030-03-01T00:00:00Z' })
    expect(expectProblem(await patch(made.code, { kind: 'percent' }), 422).errors).toHaveProperty('value')
    expect(expectProblem(await patch(made.code, { ends_at: '2030-02-01T00:00:00Z' }), 422).errors).toHaveProperty('ends_at')
    expect(await couponRow(made.code)).toMatchObject({ kind: 'fixed', value: 500, ends_at: null })
  })

  it('refuses a usage limit below the uses already made', async () => {
    const made = await make({ usage_limit: 5 })
    for (let i = 0; i < 3; i += 1) await coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 1000 })
    expect(expectProblem(await patch(made.code, { usage_limit: 2 }), 422).errors).toHaveProperty('usage_limit')
    expect((await patch(made.code, { usage_limit: 3 })).json()).toMatchObject({ usage_limit: 3, times_used: 3 })
  })

  it('answers 404 for an unknown code and 422 for an empty body', async () => {
    expectProblem(await patch(uid(), { value: 5 }), 404)
    expectProblem(await patch((await make()).code, {}), 422)
  })
})

describe('DELETE /api/coupons/{code}/', () => {
  it('deletes a coupon never redeemed', async () => {
    const made = await make()
    const res = await t.request({ method: 'DELETE', url: `/api/coupons/${made.code}/`, headers: staff })
    expect(res.statusCode).toBe(204)
    expectProblem(await t.request({ method: 'GET', url: `/api/coupons/${made.code}/`, headers: staff }), 404)
  })

  it('answers 409 for a redeemed coupon and keeps it', async () => {
    const made = await make()
    await coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 1000 })
    expectProblem(await t.request({ method: 'DELETE', url: `/api/coupons/${made.code}/`, headers: staff }), 409, 'coupon_redeemed')
    expect(await couponRow(made.code)).toMatchObject({ times_used: 1 })
  })
})

describe('coupons.validate', () => {
  const refusal = async (code: string, input: { subtotal: number; customer: string | null }) => {
    const err = await coupons.validate(ctx(), code, input).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(CouponRefusedError)
    const refused = err as CouponRefusedError
    expect(refused.status).toBe(422)
    expect(refused.code).toBe(`coupon_${refused.reason}`)
    expect(refused.errors?.code).toHaveLength(1)
    return refused
  }

  it('answers the terms of a usable code, matched in any case and with spaces around', async () => {
    const made = await make({ kind: 'fixed', value: 700, min_subtotal: 1000 })
    expect(await coupons.validate(ctx(), ` ${made.code.toLowerCase()} `, { subtotal: 1000, customer: null })).toEqual({ code: made.code, kind: 'fixed', value: 700, min_subtotal: 1000 })
  })

  it('names an unknown code, and one that cannot be a code', async () => {
    expect((await refusal(uid(), { subtotal: 1000, customer: null })).reason).toBe('unknown')
    expect((await refusal('!!', { subtotal: 1000, customer: null })).reason).toBe('unknown')
  })

  it('names an inactive coupon', async () => {
    const made = await make({ is_active: false })
    expect((await refusal(made.code, { subtotal: 1000, customer: null })).reason).toBe('inactive')
  })

  it('is valid from starts_at inclusive until ends_at exclusive', async () => {
    const early = await make({ starts_at: hoursFromNow(1) })
    const refused = await refusal(early.code, { subtotal: 1000, customer: null })
    expect(refused).toMatchObject({ reason: 'not_started', extensions: { starts_at: hoursFromNow(1) } })
    const startsNow = await make({ starts_at: NOW.toISOString(), ends_at: hoursFromNow(1) })
    expect(await coupons.validate(ctx(), startsNow.code, { subtotal: 1000, customer: null })).toMatchObject({ code: startsNow.code })
    const endsNow = await make({ starts_at: hoursFromNow(-2), ends_at: NOW.toISOString() })
    expect(await refusal(endsNow.code, { subtotal: 1000, customer: null })).toMatchObject({ reason: 'expired' })
  })

  it('names the minimum subtotal it needs, and accepts the minimum itself', async () => {
    const made = await make({ min_subtotal: 5000 })
    const refused = await refusal(made.code, { subtotal: 4999, customer: null })
    expect(refused).toMatchObject({ reason: 'below_minimum', extensions: { min_subtotal: 5000 } })
    expect(refused.errors!.code![0]).toContain('5000')
    expect(await coupons.validate(ctx(), made.code, { subtotal: 5000, customer: null })).toMatchObject({ min_subtotal: 5000 })
  })

  it('names a coupon used up', async () => {
    const made = await make({ usage_limit: 2 })
    await coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 1000 })
    await coupons.validate(ctx(), made.code, { subtotal: 1000, customer: null })
    await coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 1000 })
    expect((await refusal(made.code, { subtotal: 1000, customer: null })).reason).toBe('used_up')
  })

  it('names a coupon this customer has used up to its per-customer limit; others, and unknown customers, may still use it', async () => {
    const made = await make({ per_customer_limit: 2 })
    const ada = customerKey({ userId: randomUUID() })!
    for (let i = 0; i < 2; i += 1) {
      await coupons.validate(ctx(), made.code, { subtotal: 1000, customer: ada })
      await coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: ada, subtotal: 1000 })
    }
    expect(await refusal(made.code, { subtotal: 1000, customer: ada })).toMatchObject({ reason: 'already_used', extensions: { per_customer_limit: 2 } })
    await coupons.validate(ctx(), made.code, { subtotal: 1000, customer: customerKey({ email: 'someone@example.com' }) })
    await coupons.validate(ctx(), made.code, { subtotal: 1000, customer: null })
  })
})

describe(customerKey.name, () => {
  it('prefers the user, lower-cases a guest email and knows nobody without either', () => {
    expect(customerKey({ userId: 'u1', email: 'A@B.C' })).toBe('user:u1')
    expect(customerKey({ email: ' Ada@Example.COM ' })).toBe('email:ada@example.com')
    expect(customerKey({})).toBeNull()
  })
})

describe('coupons.redeem and coupons.release', () => {
  it('takes one use, records who took it for which order, and answers the terms', async () => {
    const made = await make({ kind: 'percent', value: 15, usage_limit: 3 })
    const orderId = randomUUID()
    const who = customerKey({ email: 'Guest@Example.com' })!
    expect(await coupons.redeem(ctx(), made.code.toLowerCase(), { orderId, customer: who, subtotal: 100 })).toEqual({ code: made.code, kind: 'percent', value: 15, min_subtotal: 0 })
    expect(await couponRow(made.code)).toMatchObject({ times_used: 1 })
    expect(await redemptionsOf(made.code)).toEqual([{ order_id: orderId, customer: 'email:guest@example.com' }])
  })

  it('answers the same order again without taking a second use', async () => {
    const made = await make({ usage_limit: 1 })
    const orderId = randomUUID()
    const who = customerA()
    await coupons.redeem(ctx(), made.code, { orderId, customer: who, subtotal: 100 })
    expect(await coupons.redeem(ctx(), made.code, { orderId, customer: who, subtotal: 100 })).toMatchObject({ code: made.code })
    expect(await couponRow(made.code)).toMatchObject({ times_used: 1 })
    expect(await redemptionsOf(made.code)).toHaveLength(1)
  })

  it('answers 409 coupon_exhausted when no use is left, and changes nothing', async () => {
    const made = await make({ usage_limit: 1 })
    await coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 100 })
    await expect(coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 100 })).rejects.toMatchObject({ status: 409, code: 'coupon_exhausted' })
    expect(await couponRow(made.code)).toMatchObject({ times_used: 1 })
    expect(await redemptionsOf(made.code)).toHaveLength(1)
  })

  it('refuses what validate refuses: inactive, expired, below the minimum, over the per-customer limit', async () => {
    const redeem = (code: string, customer = customerA(), subtotal = 1000) => coupons.redeem(ctx(), code, { orderId: randomUUID(), customer, subtotal })
    await expect(redeem((await make({ is_active: false })).code)).rejects.toMatchObject({ status: 422, code: 'coupon_inactive' })
    await expect(redeem((await make({ ends_at: hoursFromNow(-1) })).code)).rejects.toMatchObject({ code: 'coupon_expired' })
    await expect(redeem((await make({ min_subtotal: 1001 })).code)).rejects.toMatchObject({ code: 'coupon_below_minimum' })
    await expect(redeem(uid())).rejects.toMatchObject({ code: 'coupon_unknown' })
    const once = await make({ per_customer_limit: 1 })
    const who = customerA()
    await redeem(once.code, who)
    await expect(redeem(once.code, who)).rejects.toMatchObject({ status: 422, code: 'coupon_already_used' })
    expect(await couponRow(once.code)).toMatchObject({ times_used: 1 })
  })

  it("commits or rolls back with the caller's transaction", async () => {
    const made = await make({ usage_limit: 1 })
    const failed = ctx().tx(async (tx) => {
      await coupons.redeem(tx, made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 100 })
      throw new Error('checkout failed later')
    })
    await expect(failed).rejects.toThrow('checkout failed later')
    expect(await couponRow(made.code)).toMatchObject({ times_used: 0 })
    expect(await redemptionsOf(made.code)).toEqual([])
  })

  it('gives an order’s use back once: the redemption row goes, times_used goes down, a second release does nothing', async () => {
    const made = await make({ usage_limit: 1, per_customer_limit: 1 })
    const orderId = randomUUID()
    const who = customerA()
    await coupons.redeem(ctx(), made.code, { orderId, customer: who, subtotal: 100 })
    expect(await coupons.release(ctx(), orderId)).toBe(1)
    expect(await couponRow(made.code)).toMatchObject({ times_used: 0 })
    expect(await redemptionsOf(made.code)).toEqual([])
    expect(await coupons.release(ctx(), orderId)).toBe(0)
    expect(await couponRow(made.code)).toMatchObject({ times_used: 0 })
    // The use and the customer's allowance are free again.
    await coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: who, subtotal: 100 })
    expect(await couponRow(made.code)).toMatchObject({ times_used: 1 })
  })

  it('releases nothing for an order that redeemed nothing', async () => {
    expect(await coupons.release(ctx(), randomUUID())).toBe(0)
  })
})

describe.runIf(usesPostgres)('redemptions under concurrent transactions', () => {
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

  const waitForLockWaiters = (count: number) => lockWaitersReached(observer, count)

  /**
   * Runs `race` while the gate holds the coupon's row locked, opens the gate once every racer
   * waits on it (so they really contend), and answers every racer's outcome.
   */
  const behindGate = <T>(code: string, waiters: number, race: () => Promise<T>) => behindRowLock(gate, observer, { sql: 'SELECT 1 FROM coupons WHERE code = $1', params: [code] }, waiters, race)

  const failuresOf = (outcomes: PromiseSettledResult<unknown>[]) => outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []))

  it('lets exactly one of 20 concurrent checkouts take the last use', async () => {
    const made = await make({ usage_limit: 1 })
    const outcomes = await behindGate(made.code, POOL, () =>
      Promise.allSettled(Array.from({ length: 20 }, () => ctx().tx((tx) => coupons.redeem(tx, made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 1000 })))),
    )
    const failures = failuresOf(outcomes)
    expect(outcomes.length - failures.length).toBe(1)
    for (const err of failures) expect(err).toMatchObject({ status: 409, code: 'coupon_exhausted' })
    expect(failures.every((err) => err instanceof ConflictError)).toBe(true)
    expect(await couponRow(made.code)).toMatchObject({ times_used: 1 })
    expect(await redemptionsOf(made.code)).toHaveLength(1)
  })

  it('lets exactly 5 of 20 take the last 5 uses', async () => {
    const made = await make({ usage_limit: 5 })
    const outcomes = await behindGate(made.code, POOL, () =>
      Promise.allSettled(Array.from({ length: 20 }, () => coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 1000 }))),
    )
    const failures = failuresOf(outcomes)
    expect(outcomes.length - failures.length).toBe(5)
    for (const err of failures) expect(err).toMatchObject({ code: 'coupon_exhausted' })
    expect(await couponRow(made.code)).toMatchObject({ times_used: 5 })
    expect(await redemptionsOf(made.code)).toHaveLength(5)
  })

  it('lets one customer with a per-customer limit of 1 redeem once out of 20 concurrent checkouts', async () => {
    const made = await make({ per_customer_limit: 1 })
    const who = customerA()
    const outcomes = await behindGate(made.code, POOL, () =>
      Promise.allSettled(Array.from({ length: 20 }, () => coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: who, subtotal: 1000 }))),
    )
    const failures = failuresOf(outcomes)
    expect(outcomes.length - failures.length).toBe(1)
    for (const err of failures) expect(err).toMatchObject({ status: 422, code: 'coupon_already_used' })
    expect(await couponRow(made.code)).toMatchObject({ times_used: 1 })
    expect(await redemptionsOf(made.code)).toEqual([expect.objectContaining({ customer: who })])
  })

  it('gives a use back once when the same order is released 10 times at once', async () => {
    const made = await make({ usage_limit: 3 })
    const orderId = randomUUID()
    await coupons.redeem(ctx(), made.code, { orderId, customer: customerA(), subtotal: 1000 })
    await coupons.redeem(ctx(), made.code, { orderId: randomUUID(), customer: customerA(), subtotal: 1000 })
    // Gate on the redemption row: every release waits to delete it.
    await gate.query('BEGIN')
    let releases: Promise<number[]> | undefined
    try {
      const coupon = await couponRow(made.code)
      const { rowCount } = await gate.query('SELECT 1 FROM coupon_redemptions WHERE coupon_id = $1 AND order_id = $2 FOR UPDATE', [coupon.id, orderId])
      expect(rowCount).toBe(1)
      releases = Promise.all(Array.from({ length: 10 }, () => coupons.release(ctx(), orderId)))
      releases.catch(() => undefined)
      await waitForLockWaiters(10)
    } finally {
      await gate.query('COMMIT')
    }
    expect((await releases!).sort()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    expect(await couponRow(made.code)).toMatchObject({ times_used: 1 })
    const coupon = await couponRow(made.code)
    expect(await db().select().from(couponRedemptions).where(and(eq(couponRedemptions.coupon_id, coupon.id), eq(couponRedemptions.order_id, orderId)))).toEqual([])
  })
})
