/**
 * Shipping methods: ways to ship with a flat rate per destination country ('*': every country
 * without a rate of its own) and an optional free-shipping threshold. Shoppers list what ships
 * to their country; checkout quotes the chosen method; staff manage methods and rates.
 */
import type { Ctx } from '../../core/context.js'
import { NotFoundError, ValidationError } from '../../core/errors.js'
import * as q from './pricing-queries.js'
import type { ShippingMethodRow } from './pricing-queries.js'
import type { ShippingQuote } from './pricing.js'
import type { CreateShippingMethodInput, ShippingMethodDto, ShippingOption, UpdateShippingMethodInput } from './pricing-schemas.js'

type RateInput = CreateShippingMethodInput['rates'][number]

export function createShipping() {
  const byCode = async (ctx: Ctx, code: string, lock = false) => {
    const row = await q.findShippingMethod(ctx.db, code, { lock })
    if (!row) throw new NotFoundError('Shipping method', code)
    return row
  }
  const dtoOf = async (ctx: Ctx, row: ShippingMethodRow): Promise<ShippingMethodDto> => ({
    code: row.code,
    name: row.name,
    estimated_days: { min: row.estimated_days_min, max: row.estimated_days_max },
    is_active: row.is_active,
    rates: (await q.ratesOf(ctx.db, row.id)).map((rate) => ({ country: rate.country, price: rate.price, free_over: rate.free_over })),
  })

  return {
    /** Active methods that ship to `country` (ISO alpha-2, any case), cheapest first, priced for that country. */
    async methodsFor(ctx: Ctx, country: string, currency: string): Promise<ShippingOption[]> {
      const rows = await q.shippingOptionsFor(ctx.db, country.toUpperCase())
      return rows.map((row) => ({
        code: row.code,
        name: row.name,
        price: row.price,
        free_over: row.free_over,
        currency,
        estimated_days: { min: row.estimated_days_min, max: row.estimated_days_max },
      }))
    },

    /**
     * The chosen method's terms for `country`, for computeTotals. A 422 under
     * `errors.shipping_method`: `shipping_method_unknown` (no such active method) or
     * `shipping_method_unavailable` (it does not ship there).
     */
    async quote(ctx: Ctx, code: string, country: string): Promise<ShippingQuote> {
      const row = await q.shippingMethodWithRate(ctx.db, code, country.toUpperCase())
      if (!row || !row.is_active) {
        throw new ValidationError(`There is no shipping method "${code}".`, { shipping_method: [`Unknown shipping method "${code}".`] }, 'shipping_method_unknown')
      }
      if (row.price === null) {
        const message = `${row.name} does not ship to ${country.toUpperCase()}.`
        throw new ValidationError(message, { shipping_method: [message] }, 'shipping_method_unavailable')
      }
      return { code: row.code, name: row.name, price: row.price, free_over: row.free_over }
    },

    /** Staff: one method with all its rates (inactive ones too). */
    async get(ctx: Ctx, code: string): Promise<ShippingMethodDto> {
      return dtoOf(ctx, await byCode(ctx, code))
    },

    /** Staff: a new method with its rates; a code taken is a 409. */
    async create(ctx: Ctx, input: CreateShippingMethodInput): Promise<ShippingMethodDto> {
      assertDays(input.estimated_days)
      const rates = normalizeRates(input.rates)
      return ctx.tx(async (tx) => {
        const row = await q.insertShippingMethod(tx.db, {
          code: input.code,
          name: input.name.trim(),
          estimated_days_min: input.estimated_days.min,
          estimated_days_max: input.estimated_days.max,
          is_active: input.is_active ?? true,
        })
        await q.insertRates(tx.db, row.id, rates)
        return dtoOf(tx, row)
      })
    },

    /** Staff: changes a method; `rates`, when given, is the full list (the rest are removed). */
    async update(ctx: Ctx, code: string, patch: UpdateShippingMethodInput): Promise<ShippingMethodDto> {
      if (patch.estimated_days) assertDays(patch.estimated_days)
      const rates = patch.rates ? normalizeRates(patch.rates) : undefined
      return ctx.tx(async (tx) => {
        const row = await byCode(tx, code, true)
        const changes = {
          ...(patch.name !== undefined ? { name: patch.name.trim() } : {}),
          ...(patch.estimated_days ? { estimated_days_min: patch.estimated_days.min, estimated_days_max: patch.estimated_days.max } : {}),
          ...(patch.is_active !== undefined ? { is_active: patch.is_active } : {}),
        }
        await q.updateShippingMethod(tx.db, row.id, changes)
        if (rates) {
          await q.deleteRatesOf(tx.db, row.id)
          await q.insertRates(tx.db, row.id, rates)
        }
        return dtoOf(tx, { ...row, ...changes })
      })
    },

    /** Staff: deletes a method and its rates (orders keep the method's code as they copied it). */
    async remove(ctx: Ctx, code: string): Promise<void> {
      await ctx.tx(async (tx) => q.deleteShippingMethod(tx.db, (await byCode(tx, code, true)).id))
    },
  }
}

export type Shipping = ReturnType<typeof createShipping>

function assertDays(days: { min: number; max: number }): void {
  if (days.max < days.min) throw new ValidationError('The delivery estimate is not valid.', { estimated_days: ['max must be at least min.'] })
}

/** Upper-cases the countries and refuses one listed twice. */
function normalizeRates(rates: RateInput[]): Array<{ country: string; price: number; free_over: number | null }> {
  const seen = new Set<string>()
  const duplicates = new Set<string>()
  const normalized = rates.map((rate) => {
    const country = rate.country.toUpperCase()
    if (seen.has(country)) duplicates.add(country)
    seen.add(country)
    return { country, price: rate.price, free_over: rate.free_over ?? null }
  })
  if (duplicates.size > 0) throw new ValidationError('A country has more than one rate.', { rates: [`Listed more than once: ${[...duplicates].join(', ')}.`] })
  return normalized
}
