/**
 * Tax rates by destination: a country's rate (region '') and, where set, a region's (a state, a
 * province) that replaces it there. Rates are basis points (2000 = 20 %); whether prices include
 * tax is the store's setting (PRICES_INCLUDE_TAX), applied by computeTotals.
 */
import type { Ctx } from '../../core/context.js'
import { NotFoundError } from '../../core/errors.js'
import * as q from './pricing-queries.js'
import type { TaxRateRow } from './pricing-queries.js'
import type { CreateTaxRateInput, TaxRateDto, UpdateTaxRateInput } from './pricing-schemas.js'

/** The rate that applies at a destination; `name` is null where no rate is set (rate 0). */
export interface AppliedTaxRate {
  rate_bp: number
  name: string | null
}

export function createTaxes() {
  return {
    /** The region's rate when one exists, else the country's, else 0. Codes in any case. */
    async rateFor(ctx: Ctx, country: string, region?: string | null): Promise<AppliedTaxRate> {
      const row = await q.taxRateFor(ctx.db, country.trim().toUpperCase(), (region ?? '').trim().toUpperCase())
      return row ? { rate_bp: row.rate_bp, name: row.name } : { rate_bp: 0, name: null }
    },

    /** Staff: every rate, by country then region. */
    async list(ctx: Ctx): Promise<TaxRateDto[]> {
      return (await q.listTaxRates(ctx.db)).map(toDto)
    },

    /** Staff: a new rate; a second one for the same country and region is a 409. */
    async create(ctx: Ctx, input: CreateTaxRateInput): Promise<TaxRateDto> {
      return toDto(await q.insertTaxRate(ctx.db, { country: input.country.toUpperCase(), region: (input.region ?? '').toUpperCase(), name: input.name.trim(), rate_bp: input.rate_bp }))
    },

    async update(ctx: Ctx, id: string, patch: UpdateTaxRateInput): Promise<TaxRateDto> {
      return ctx.tx(async (tx) => {
        const current = await q.findTaxRate(tx.db, id)
        if (!current) throw new NotFoundError('Tax rate', id)
        const changes = {
          ...(patch.country !== undefined ? { country: patch.country.toUpperCase() } : {}),
          ...(patch.region !== undefined ? { region: patch.region.toUpperCase() } : {}),
          ...(patch.name !== undefined ? { name: patch.name.trim() } : {}),
          ...(patch.rate_bp !== undefined ? { rate_bp: patch.rate_bp } : {}),
        }
        const row = await q.updateTaxRate(tx.db, id, changes, { country: changes.country ?? current.country, region: changes.region ?? current.region })
        if (!row) throw new NotFoundError('Tax rate', id)
        return toDto(row)
      })
    },

    async remove(ctx: Ctx, id: string): Promise<void> {
      if (!(await q.deleteTaxRate(ctx.db, id))) throw new NotFoundError('Tax rate', id)
    },
  }
}

export type Taxes = ReturnType<typeof createTaxes>

function toDto(row: TaxRateRow): TaxRateDto {
  return { id: row.id, country: row.country, region: row.region, name: row.name, rate_bp: row.rate_bp }
}
