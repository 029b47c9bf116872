/** Drizzle queries for shipping methods, their rates and tax rates: one statement each (the seed aside). */
import { asc, eq, sql } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { isUniqueViolation, rowsOf } from '../../core/db/index.js'
import { ConflictError } from '../../core/errors.js'
import { shippingMethods, shippingRates, taxRates } from './tables.js'

export type ShippingMethodRow = typeof shippingMethods.$inferSelect
export type ShippingRateRow = typeof shippingRates.$inferSelect
export type TaxRateRow = typeof taxRates.$inferSelect

/** An active method with the rate that applies to one country. */
export interface ShippingOptionRow {
  code: string
  name: string
  estimated_days_min: number
  estimated_days_max: number
  price: number
  free_over: number | null
}

/**
 * Active methods that ship to `country`, each with the country's own rate or else the '*' rate,
 * cheapest first.
 */
export async function shippingOptionsFor(db: Db, country: string): Promise<ShippingOptionRow[]> {
  const result = await db.execute(sql`
    SELECT * FROM (
      SELECT DISTINCT ON (m.id) m.code, m.name, m.estimated_days_min, m.estimated_days_max, r.price, r.free_over
      FROM shipping_methods m JOIN shipping_rates r ON r.method_id = m.id
      WHERE m.is_active AND r.country IN (${country}, '*')
      ORDER BY m.id, r.country = '*'
    ) options
    ORDER BY price, code`)
  return rowsOf<ShippingOptionRow>(result)
}

/** A method by code with the rate for `country` (price null: it does not ship there). */
export async function shippingMethodWithRate(db: Db, code: string, country: string): Promise<(ShippingMethodRow & { price: number | null; free_over: number | null }) | undefined> {
  const result = await db.execute(sql`
    SELECT m.id, m.code, m.name, m.estimated_days_min, m.estimated_days_max, m.is_active, r.price, r.free_over
    FROM shipping_methods m
    LEFT JOIN LATERAL (
      SELECT price, free_over FROM shipping_rates
      WHERE method_id = m.id AND country IN (${country}, '*')
      ORDER BY country = '*' LIMIT 1
    ) r ON true
    WHERE m.code = ${code}`)
  return rowsOf<ShippingMethodRow & { price: number | null; free_over: number | null }>(result)[0]
}

export async function findShippingMethod(db: Db, code: string, options: { lock?: boolean } = {}): Promise<ShippingMethodRow | undefined> {
  const query = db.select().from(shippingMethods).where(eq(shippingMethods.code, code))
  const [row] = options.lock ? await query.for('update') : await query
  return row
}

export async function ratesOf(db: Db, methodId: string): Promise<ShippingRateRow[]> {
  // '*' sorts before letters: the fallback first, then countries alphabetically.
  return db.select().from(shippingRates).where(eq(shippingRates.method_id, methodId)).orderBy(asc(shippingRates.country))
}

export async function insertShippingMethod(db: Db, values: typeof shippingMethods.$inferInsert): Promise<ShippingMethodRow> {
  try {
    const [row] = await db.insert(shippingMethods).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('shipping_method_code_taken', `The shipping method code "${values.code}" is already used.`)
    throw err
  }
}

export async function updateShippingMethod(db: Db, id: string, patch: Partial<typeof shippingMethods.$inferInsert>): Promise<void> {
  if (Object.keys(patch).length === 0) return
  await db.update(shippingMethods).set(patch).where(eq(shippingMethods.id, id))
}

export async function deleteShippingMethod(db: Db, id: string): Promise<void> {
  await db.delete(shippingMethods).where(eq(shippingMethods.id, id))
}

export async function deleteRatesOf(db: Db, methodId: string): Promise<void> {
  await db.delete(shippingRates).where(eq(shippingRates.method_id, methodId))
}

export async function insertRates(db: Db, methodId: string, rates: Array<{ country: string; price: number; free_over: number | null }>): Promise<void> {
  if (rates.length === 0) return
  await db.insert(shippingRates).values(rates.map((rate) => ({ method_id: methodId, ...rate })))
}

/** The region's rate when there is one, else the whole country's (region ''). */
export async function taxRateFor(db: Db, country: string, region: string): Promise<TaxRateRow | undefined> {
  const [row] = await db
    .select()
    .from(taxRates)
    .where(sql`${taxRates.country} = ${country} AND ${taxRates.region} IN (${region}, '')`)
    // '' sorts first: descending puts the region's own rate ahead of the country's.
    .orderBy(sql`${taxRates.region} DESC`)
    .limit(1)
  return row
}

export async function listTaxRates(db: Db): Promise<TaxRateRow[]> {
  return db.select().from(taxRates).orderBy(asc(taxRates.country), asc(taxRates.region))
}

export async function findTaxRate(db: Db, id: string): Promise<TaxRateRow | undefined> {
  const [row] = await db.select().from(taxRates).where(eq(taxRates.id, id))
  return row
}

const taxRateTaken = (country: string, region: string) =>
  new ConflictError('tax_rate_exists', `${country}${region ? `-${region}` : ''} already has a tax rate: change that one.`)

export async function insertTaxRate(db: Db, values: typeof taxRates.$inferInsert): Promise<TaxRateRow> {
  try {
    const [row] = await db.insert(taxRates).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) throw taxRateTaken(values.country, values.region ?? '')
    throw err
  }
}

/** Answers the updated row, or undefined when there is no rate with this id. */
export async function updateTaxRate(db: Db, id: string, patch: Partial<typeof taxRates.$inferInsert>, next: { country: string; region: string }): Promise<TaxRateRow | undefined> {
  try {
    const [row] = await db.update(taxRates).set(patch).where(eq(taxRates.id, id)).returning()
    return row
  } catch (err) {
    if (isUniqueViolation(err)) throw taxRateTaken(next.country, next.region)
    throw err
  }
}

/** Answers whether a row was deleted. */
export async function deleteTaxRate(db: Db, id: string): Promise<boolean> {
  return (await db.delete(taxRates).where(eq(taxRates.id, id)).returning({ id: taxRates.id })).length > 0
}

/** Development defaults: two shipping methods everywhere and a few tax rates. */
const DEFAULT_METHODS = [
  { code: 'standard', name: 'Standard shipping', estimated_days_min: 3, estimated_days_max: 5, rate: { country: '*', price: 499, free_over: 5000 } },
  { code: 'express', name: 'Express shipping', estimated_days_min: 1, estimated_days_max: 2, rate: { country: '*', price: 1499, free_over: null } },
]
const DEFAULT_TAX_RATES = [
  { country: 'US', region: 'CA', name: 'California sales tax', rate_bp: 725 },
  { country: 'DE', region: '', name: 'MwSt', rate_bp: 1900 },
  { country: 'GB', region: '', name: 'VAT', rate_bp: 2000 },
  { country: 'FR', region: '', name: 'TVA', rate_bp: 2000 },
]

/**
 * Something to check out with in development: the default shipping methods when there are no
 * shipping methods at all, the default tax rates when there are no tax rates at all (so what
 * staff deleted or changed stays so). Idempotent and safe when several processes start together
 * (ON CONFLICT DO NOTHING). Answers how many methods and tax rates it created.
 */
export async function seedPricingDefaults(db: Db): Promise<{ shipping_methods: number; tax_rates: number }> {
  return db.transaction(async (trx) => {
    const tx = trx as unknown as Db
    let methods = 0
    const [anyMethod] = await tx.select({ id: shippingMethods.id }).from(shippingMethods).limit(1)
    if (!anyMethod) {
      for (const { rate, ...method } of DEFAULT_METHODS) {
        const [row] = await tx.insert(shippingMethods).values(method).onConflictDoNothing({ target: shippingMethods.code }).returning({ id: shippingMethods.id })
        if (!row) continue
        await tx.insert(shippingRates).values({ method_id: row.id, ...rate }).onConflictDoNothing()
        methods += 1
      }
    }
    const [anyRate] = await tx.select({ id: taxRates.id }).from(taxRates).limit(1)
    const taxes = anyRate ? [] : await tx.insert(taxRates).values(DEFAULT_TAX_RATES).onConflictDoNothing().returning({ id: taxRates.id })
    return { shipping_methods: methods, tax_rates: taxes.length }
  })
}
