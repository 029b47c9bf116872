/**
 * Coupons: discount codes with a validity window, a minimum subtotal and usage limits (in all and
 * per customer). The cart validates a code; checkout redeems it inside its own transaction, where
 * the last use can be taken by one checkout only; a cancelled or expired unpaid order releases it.
 *
 * A customer is "user:<id>" for a signed-in user, "email:<address>" for a guest (customerKey).
 */
import type { Ctx } from '../../core/context.js'
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors.js'
import * as q from './coupon-queries.js'
import type { CouponRow, NewCoupon } from './coupon-queries.js'
import type { CouponTerms } from './pricing.js'
import { COUPON_CODE_PATTERN, type CouponDto, type CreateCouponInput, type UpdateCouponInput } from './pricing-schemas.js'

const CODE = new RegExp(COUPON_CODE_PATTERN)

/** Why a coupon cannot be used: each is the problem code `coupon_<reason>` of a 422. */
export type CouponRefusal = 'unknown' | 'inactive' | 'not_started' | 'expired' | 'used_up' | 'already_used' | 'below_minimum'

/** A 422 naming why the code cannot be used, under `errors.code`, with `reason` for programs. */
export class CouponRefusedError extends ValidationError {
  constructor(readonly reason: CouponRefusal, message: string, extensions: Record<string, unknown> = {}) {
    super(message, { code: [message] }, `coupon_${reason}`)
    this.extensions = { reason, ...extensions }
  }
}

/** The code as stored: trimmed, upper case. */
export function normalizeCouponCode(code: string): string {
  return code.trim().toUpperCase()
}

/** The key per-customer limits count by: the user when signed in, else the guest's email (lower case); null when neither is known yet. */
export function customerKey(who: { userId?: string | null; email?: string | null }): string | null {
  if (who.userId) return `user:${who.userId}`
  if (who.email) return `email:${who.email.trim().toLowerCase()}`
  return null
}

export function createCoupons(deps: { now?: () => Date } = {}) {
  const now = deps.now ?? (() => new Date())

  /** Refuses a coupon that is switched off or outside its dates (starts_at inclusive, ends_at exclusive). */
  const assertApplicable = (row: CouponRow, at: Date) => {
    if (!row.is_active) throw new CouponRefusedError('inactive', `The coupon ${row.code} is not active.`)
    if (row.starts_at && at < row.starts_at) throw new CouponRefusedError('not_started', `The coupon ${row.code} is valid from ${row.starts_at.toISOString()}.`, { starts_at: row.starts_at.toISOString() })
    if (row.ends_at && at >= row.ends_at) throw new CouponRefusedError('expired', `The coupon ${row.code} expired at ${row.ends_at.toISOString()}.`, { ends_at: row.ends_at.toISOString() })
  }
  const assertMinimum = (row: CouponRow, subtotal: number) => {
    if (subtotal < row.min_subtotal) {
      throw new CouponRefusedError('below_minimum', `The coupon ${row.code} needs a subtotal of at least ${row.min_subtotal}.`, { min_subtotal: row.min_subtotal })
    }
  }
  const assertCustomerAllowance = async (ctx: Ctx, row: CouponRow, customer: string | null) => {
    if (customer === null || row.per_customer_limit === null) return
    if ((await q.countRedemptionsBy(ctx.db, row.id, customer)) >= row.per_customer_limit) {
      throw new CouponRefusedError('already_used', `You have already used the coupon ${row.code}${row.per_customer_limit > 1 ? ` ${row.per_customer_limit} times` : ''}.`, { per_customer_limit: row.per_customer_limit })
    }
  }
  /** The coupon with this code in any case; a string that cannot be a code is not looked up. */
  const find = async (ctx: Ctx, code: string, lock: boolean) => {
    const normalized = normalizeCouponCode(code)
    if (!CODE.test(normalized)) return { normalized, row: undefined }
    return { normalized, row: lock ? await q.lockCouponByCode(ctx.db, normalized) : await q.findCouponByCode(ctx.db, normalized) }
  }
  /** For shoppers: an unknown code is a 422 (it is their input). */
  const usable = async (ctx: Ctx, code: string, lock: boolean) => {
    const { normalized, row } = await find(ctx, code, lock)
    // Only a well-formed code is echoed back: the input may be anything.
    if (!row) throw new CouponRefusedError('unknown', CODE.test(normalized) ? `There is no coupon ${normalized}.` : 'There is no coupon with this code.')
    return row
  }
  /** For staff: an unknown code is a 404 (it is in the path). */
  const byCode = async (ctx: Ctx, code: string, lock = false) => {
    const { normalized, row } = await find(ctx, code, lock)
    if (!row) throw new NotFoundError('Coupon', normalized)
    return row
  }

  return {
    /**
     * The coupon's terms if `code` can be used now on this subtotal by this customer (null: not
     * known yet, e.g. a guest before checkout: per-customer limits are then checked at redeem).
     * Otherwise a 422 CouponRefusedError naming why.
     */
    async validate(ctx: Ctx, code: string, input: { subtotal: number; customer: string | null }): Promise<CouponTerms> {
      const row = await usable(ctx, code, false)
      assertApplicable(row, now())
      if (row.usage_limit !== null && row.times_used >= row.usage_limit) throw new CouponRefusedError('used_up', `The coupon ${row.code} has been used up.`)
      await assertCustomerAllowance(ctx, row, input.customer)
      assertMinimum(row, input.subtotal)
      return termsOf(row)
    },

    /**
     * Takes one use of the coupon for an order, in the caller's transaction (checkout's). The
     * coupon row stays locked until that transaction ends, so redemptions of one coupon take
     * turns and the per-customer count cannot be raced; the use itself is one conditional
     * UPDATE. A use already taken by this order is answered again (idempotent).
     * Refusals: 422 CouponRefusedError as validate; 409 `coupon_exhausted` when no use is left.
     */
    async redeem(ctx: Ctx, code: string, input: { orderId: string; customer: string; subtotal: number }): Promise<CouponTerms> {
      return ctx.tx(async (tx) => {
        const row = await usable(tx, code, true)
        if (await q.findRedemption(tx.db, row.id, input.orderId)) return termsOf(row)
        assertApplicable(row, now())
        await assertCustomerAllowance(tx, row, input.customer)
        assertMinimum(row, input.subtotal)
        if (!(await q.takeCouponUse(tx.db, row.id))) throw new ConflictError('coupon_exhausted', `The coupon ${row.code} has just been used up.`)
        await q.insertRedemption(tx.db, { coupon_id: row.id, order_id: input.orderId, customer: input.customer })
        return termsOf(row)
      })
    },

    /**
     * Gives back the uses an order took (its unpaid reservation was cancelled or expired):
     * deletes its redemption rows and decrements the coupons' counters. Idempotent: a second
     * call finds nothing. Answers how many uses were given back.
     */
    async release(ctx: Ctx, orderId: string): Promise<number> {
      return ctx.tx(async (tx) => {
        const couponIds = await q.deleteRedemptionsOf(tx.db, orderId)
        for (const id of couponIds) await q.giveCouponUseBack(tx.db, id)
        return couponIds.length
      })
    },

    /** Staff: every coupon, by code. */
    async list(ctx: Ctx): Promise<CouponDto[]> {
      return (await q.listCoupons(ctx.db)).map(toDto)
    },

    async get(ctx: Ctx, code: string): Promise<CouponDto> {
      return toDto(await byCode(ctx, code))
    },

    /** Staff: a new coupon; a code taken (in any case) is a 409. */
    async create(ctx: Ctx, input: CreateCouponInput): Promise<CouponDto> {
      const values: NewCoupon = {
        code: normalizeCouponCode(input.code),
        kind: input.kind,
        value: input.value,
        min_subtotal: input.min_subtotal ?? 0,
        starts_at: dateOf(input.starts_at),
        ends_at: dateOf(input.ends_at),
        usage_limit: input.usage_limit ?? null,
        per_customer_limit: input.per_customer_limit ?? null,
        is_active: input.is_active ?? true,
      }
      assertValidTerms(values)
      return toDto(await q.insertCoupon(ctx.db, values))
    },

    /** Staff: changes a coupon's terms (not its code); the result is checked as a whole. */
    async update(ctx: Ctx, code: string, patch: UpdateCouponInput): Promise<CouponDto> {
      return ctx.tx(async (tx) => {
        const row = await byCode(tx, code, true)
        const changes: Partial<NewCoupon> = {
          ...(patch.kind !== undefined ? { kind: patch.kind } : {}),
          ...(patch.value !== undefined ? { value: patch.value } : {}),
          ...(patch.min_subtotal !== undefined ? { min_subtotal: patch.min_subtotal } : {}),
          ...(patch.starts_at !== undefined ? { starts_at: dateOf(patch.starts_at) } : {}),
          ...(patch.ends_at !== undefined ? { ends_at: dateOf(patch.ends_at) } : {}),
          ...(patch.usage_limit !== undefined ? { usage_limit: patch.usage_limit } : {}),
          ...(patch.per_customer_limit !== undefined ? { per_customer_limit: patch.per_customer_limit } : {}),
          ...(patch.is_active !== undefined ? { is_active: patch.is_active } : {}),
        }
        assertValidTerms({ ...row, ...changes })
        return toDto(await q.updateCoupon(tx.db, row.id, changes))
      })
    },

    /** Staff: deletes a coupon never redeemed (409 `coupon_redeemed` otherwise: deactivate it). */
    async remove(ctx: Ctx, code: string): Promise<void> {
      await ctx.tx(async (tx) => {
        // Redemptions are written under this row lock (redeem), so none can appear before the delete.
        const row = await byCode(tx, code, true)
        if (await q.hasRedemptions(tx.db, row.id)) throw new ConflictError('coupon_redeemed', `The coupon ${row.code} has been redeemed: deactivate it instead (is_active: false).`)
        await q.deleteCoupon(tx.db, row.id)
      })
    },
  }
}

export type Coupons = ReturnType<typeof createCoupons>

/** Rules the schema cannot express: they depend on two fields together. */
function assertValidTerms(values: Pick<NewCoupon, 'code' | 'kind' | 'value' | 'starts_at' | 'ends_at'>): void {
  const errors: Record<string, string[]> = {}
  if (!CODE.test(values.code)) errors.code = ['3 to 32 letters, digits, "_" or "-".']
  if (values.kind === 'percent' && (values.value < 1 || values.value > 100)) errors.value = ['A percentage is between 1 and 100.']
  if (values.kind === 'fixed' && values.value < 1) errors.value = ['A fixed discount is more than 0 (minor units).']
  if (values.starts_at && values.ends_at && values.ends_at <= values.starts_at) errors.ends_at = ['Must be after starts_at.']
  if (Object.keys(errors).length > 0) throw new ValidationError('The coupon is not valid.', errors)
}

function termsOf(row: CouponRow): CouponTerms {
  return { code: row.code, kind: row.kind, value: row.value, min_subtotal: row.min_subtotal }
}

function dateOf(value: string | null | undefined): Date | null {
  return value ? new Date(value) : null
}

function toDto(row: CouponRow): CouponDto {
  return {
    id: row.id,
    code: row.code,
    kind: row.kind,
    value: row.value,
    min_subtotal: row.min_subtotal,
    starts_at: row.starts_at?.toISOString() ?? null,
    ends_at: row.ends_at?.toISOString() ?? null,
    usage_limit: row.usage_limit,
    per_customer_limit: row.per_customer_limit,
    times_used: row.times_used,
    is_active: row.is_active,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }
}
