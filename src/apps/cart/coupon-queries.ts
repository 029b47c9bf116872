/** Drizzle queries for coupons and their redemptions: one statement each. */
import { and, asc, count, eq, isNull, lt, or, sql } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { isUniqueViolation, sqlStateOf } from '../../core/db/index.js'
import { ConflictError, ValidationError } from '../../core/errors.js'
import { couponRedemptions, coupons } from './tables.js'

export type CouponRow = typeof coupons.$inferSelect
export type NewCoupon = typeof coupons.$inferInsert

export async function listCoupons(db: Db): Promise<CouponRow[]> {
  return db.select().from(coupons).orderBy(asc(coupons.code))
}

export async function findCouponByCode(db: Db, code: string): Promise<CouponRow | undefined> {
  const [row] = await db.select().from(coupons).where(eq(coupons.code, code))
  return row
}

/** The coupon, its row locked until the transaction ends: redemptions of one coupon take turns. */
export async function lockCouponByCode(db: Db, code: string): Promise<CouponRow | undefined> {
  const [row] = await db.select().from(coupons).where(eq(coupons.code, code)).for('update')
  return row
}

export async function insertCoupon(db: Db, values: NewCoupon): Promise<CouponRow> {
  try {
    const [row] = await db.insert(coupons).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('coupon_code_taken', `The coupon code "${values.code}" is already used.`)
    throw err
  }
}

export async function updateCoupon(db: Db, id: string, patch: Partial<NewCoupon>): Promise<CouponRow> {
  try {
    const [row] = await db.update(coupons).set({ ...patch, updated_at: sql`now()` }).where(eq(coupons.id, id)).returning()
    return row!
  } catch (err) {
    // coupons_usage_check: a usage limit below the uses already made.
    if (sqlStateOf(err) === '23514') throw new ValidationError('The coupon has been used more often than that.', { usage_limit: ['Must be at least the number of times the coupon has been used.'] })
    throw err
  }
}

/** Deletes a coupon; the caller checks it was never redeemed (the foreign key refuses it anyway). */
export async function deleteCoupon(db: Db, id: string): Promise<void> {
  await db.delete(coupons).where(eq(coupons.id, id))
}

export async function hasRedemptions(db: Db, couponId: string): Promise<boolean> {
  const [row] = await db.select({ id: couponRedemptions.id }).from(couponRedemptions).where(eq(couponRedemptions.coupon_id, couponId)).limit(1)
  return row !== undefined
}

/**
 * Takes one use if any is left: the condition and the increment are one statement, so
 * concurrent redemptions can never go past usage_limit. Answers false when none was left.
 */
export async function takeCouponUse(db: Db, id: string): Promise<boolean> {
  const rows = await db
    .update(coupons)
    .set({ times_used: sql`${coupons.times_used} + 1`, updated_at: sql`now()` })
    .where(and(eq(coupons.id, id), or(isNull(coupons.usage_limit), lt(coupons.times_used, coupons.usage_limit))))
    .returning({ id: coupons.id })
  return rows.length > 0
}

export async function giveCouponUseBack(db: Db, id: string): Promise<void> {
  await db
    .update(coupons)
    .set({ times_used: sql`${coupons.times_used} - 1`, updated_at: sql`now()` })
    .where(and(eq(coupons.id, id), sql`${coupons.times_used} > 0`))
}

export async function countRedemptionsBy(db: Db, couponId: string, customer: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(couponRedemptions).where(and(eq(couponRedemptions.coupon_id, couponId), eq(couponRedemptions.customer, customer)))
  return row!.n
}

export async function findRedemption(db: Db, couponId: string, orderId: string): Promise<boolean> {
  const [row] = await db.select({ id: couponRedemptions.id }).from(couponRedemptions).where(and(eq(couponRedemptions.coupon_id, couponId), eq(couponRedemptions.order_id, orderId)))
  return row !== undefined
}

export async function insertRedemption(db: Db, values: { coupon_id: string; order_id: string; customer: string }): Promise<void> {
  await db.insert(couponRedemptions).values(values)
}

/** Deletes an order's redemptions; answers the coupons they used, each once per row deleted. */
export async function deleteRedemptionsOf(db: Db, orderId: string): Promise<string[]> {
  const rows = await db.delete(couponRedemptions).where(eq(couponRedemptions.order_id, orderId)).returning({ coupon_id: couponRedemptions.coupon_id })
  return rows.map((row) => row.coupon_id)
}
