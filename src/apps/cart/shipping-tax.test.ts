/**
 * Shipping methods (GET /api/checkout/shipping-methods/ for anyone, staff CRUD, quotes), tax
 * rates (staff CRUD under /api/tax-rates/, rateFor) and the development defaults. Methods and
 * rates are global, so each test makes its own codes and countries and looks only at those.
 */
import { randomUUID } from 'node:crypto'
import { count, eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { seedPricingDefaults } from './pricing-queries.js'
import type { ShippingMethodDto, ShippingOption, TaxRateDto } from './pricing-schemas.js'
import { createShipping } from './shipping.js'
import { shippingMethods, shippingRates, taxRates } from './tables.js'
import { createTaxes } from './tax.js'

let t: TestApp
let staff: { authorization: string }
let customer: { authorization: string }
const shipping = createShipping()
const taxes = createTaxes()

beforeAll(async () => {
  t = await createTestApp()
  const f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  customer = await f.auth(await f.user())
})
afterAll(() => t.close())

const db = () => t.app.platform.database.db
const ctx = () => t.app.platform.context()
const uid = () => `m-${randomUUID().slice(0, 8)}`

interface MethodBody {
  code?: string
  name?: string
  estimated_days?: { min: number; max: number }
  is_active?: boolean
  rates?: Array<{ country: string; price: number; free_over?: number | null }>
}

async function createMethod(body: MethodBody): Promise<ShippingMethodDto> {
  const res = await t.request({ method: 'POST', url: '/api/checkout/shipping-methods/', headers: staff, payload: { code: uid(), name: 'Method', estimated_days: { min: 2, max: 4 }, rates: [{ country: '*', price: 500 }], ...body } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<ShippingMethodDto>()
}

/** The public list for a country, only the methods this test made. */
async function optionsFor(country: string, codes: string[]): Promise<ShippingOption[]> {
  const res = await t.request({ method: 'GET', url: `/api/checkout/shipping-methods/?country=${country}` })
  expect(res.statusCode, res.body).toBe(200)
  return res.json<ShippingOption[]>().filter((option) => codes.includes(option.code))
}

describe('GET /api/checkout/shipping-methods/', () => {
  it("answers anyone the active methods with the country's own rate or else the '*' rate, cheapest first", async () => {
    const everywhere = await createMethod({ name: 'Everywhere', estimated_days: { min: 3, max: 5 }, rates: [{ country: '*', price: 700, free_over: 5000 }, { country: 'qx', price: 300, free_over: null }] })
    const pricey = await createMethod({ name: 'Pricey', estimated_days: { min: 1, max: 1 }, rates: [{ country: '*', price: 400 }] })
    const onlyQy = await createMethod({ name: 'Only QY', rates: [{ country: 'QY', price: 100 }] })
    const off = await createMethod({ name: 'Off', is_active: false, rates: [{ country: '*', price: 1 }] })
    const codes = [everywhere.code, pricey.code, onlyQy.code, off.code]

    expect(await optionsFor('qx', codes)).toEqual([
      { code: everywhere.code, name: 'Everywhere', price: 300, free_over: null, currency: t.settings.currency, estimated_days: { min: 3, max: 5 } },
      { code: pricey.code, name: 'Pricey', price: 400, free_over: null, currency: t.settings.currency, estimated_days: { min: 1, max: 1 } },
    ])
    expect(await optionsFor('QY', codes)).toEqual([
      expect.objectContaining({ code: onlyQy.code, price: 100 }),
      expect.objectContaining({ code: pricey.code, price: 400 }),
      expect.objectContaining({ code: everywhere.code, price: 700, free_over: 5000 }),
    ])
    expect((await optionsFor('QZ', codes)).map((option) => option.code)).toEqual([pricey.code, everywhere.code])
  })

  it('answers 422 without a country or with one that is not two letters', async () => {
    for (const query of ['', '?country=', '?country=USA', '?country=1A', '?country=%00%00']) {
      const problem = expectProblem(await t.request({ method: 'GET', url: `/api/checkout/shipping-methods/${query}` }), 422, 'validation_error')
      expect(problem.errors, query).toHaveProperty('country')
    }
  })
})

describe('POST /api/checkout/shipping-methods/', () => {
  it('creates a method with its rates, countries upper-cased and listed with the fallback first', async () => {
    const code = uid()
    const made = await createMethod({ code, name: '  Courier ', estimated_days: { min: 0, max: 1 }, rates: [{ country: 'gb', price: 900, free_over: 10000 }, { country: '*', price: 1500 }, { country: 'DE', price: 1000 }] })
    expect(made).toEqual({
      code, name: 'Courier', estimated_days: { min: 0, max: 1 }, is_active: true,
      rates: [{ country: '*', price: 1500, free_over: null }, { country: 'DE', price: 1000, free_over: null }, { country: 'GB', price: 900, free_over: 10000 }],
    })
    const get = await t.request({ method: 'GET', url: `/api/checkout/shipping-methods/${code}/`, headers: staff })
    expect(get.json()).toEqual(made)
  })

  it('answers 409 for a code taken', async () => {
    const made = await createMethod({})
    expectProblem(await t.request({ method: 'POST', url: '/api/checkout/shipping-methods/', headers: staff, payload: { code: made.code, name: 'Again', estimated_days: { min: 1, max: 2 }, rates: [{ country: '*', price: 1 }] } }), 409, 'shipping_method_code_taken')
  })

  it('answers 422 naming the field, and creates nothing', async () => {
    const valid = { name: 'M', estimated_days: { min: 1, max: 2 }, rates: [{ country: '*', price: 100 }] }
    const cases: Array<[string, Record<string, unknown>]> = [
      ['code', { ...valid, code: 'Std!' }],
      ['rates', { ...valid, code: uid(), rates: [{ country: 'FR', price: 100 }, { country: 'fr', price: 200 }] }],
      ['rates', { ...valid, code: uid(), rates: [] }],
      ['rates.0.country', { ...valid, code: uid(), rates: [{ country: 'FRA', price: 100 }] }],
      ['rates.0.price', { ...valid, code: uid(), rates: [{ country: 'FR', price: -1 }] }],
      ['estimated_days', { ...valid, code: uid(), estimated_days: { min: 5, max: 2 } }],
      ['name', { ...valid, code: uid(), name: '   ' }],
      ['extra', { ...valid, code: uid(), extra: 1 }],
    ]
    for (const [field, body] of cases) {
      const problem = expectProblem(await t.request({ method: 'POST', url: '/api/checkout/shipping-methods/', headers: staff, payload: body }), 422)
      expect(Object.keys(problem.errors ?? {}).some((key) => key.startsWith(field)), `${field}: ${JSON.stringify(problem.errors)}`).toBe(true)
      const [row] = await db().select({ n: count() }).from(shippingMethods).where(eq(shippingMethods.code, String(body.code)))
      expect(row!.n).toBe(0)
    }
  })

  it('answers 401 without a token and 403 to a customer', async () => {
    const body = { code: uid(), name: 'M', estimated_days: { min: 1, max: 2 }, rates: [{ country: '*', price: 1 }] }
    expectProblem(await t.request({ method: 'POST', url: '/api/checkout/shipping-methods/', payload: body }), 401)
    expectProblem(await t.request({ method: 'POST', url: '/api/checkout/shipping-methods/', headers: customer, payload: body }), 403)
    expectProblem(await t.request({ method: 'GET', url: `/api/checkout/shipping-methods/${body.code}/`, headers: customer }), 403)
  })
})

describe('PATCH and DELETE /api/checkout/shipping-methods/{code}/', () => {
  it('replaces the rates with the full list given, and keeps them when none is given', async () => {
    const made = await createMethod({ rates: [{ country: '*', price: 500 }, { country: 'QV', price: 200 }] })
    const res = await t.request({ method: 'PATCH', url: `/api/checkout/shipping-methods/${made.code}/`, headers: staff, payload: { rates: [{ country: 'qw', price: 250, free_over: 3000 }] } })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<ShippingMethodDto>().rates).toEqual([{ country: 'QW', price: 250, free_over: 3000 }])
    // No '*' any more: it ships to QW only.
    expect(await optionsFor('QV', [made.code])).toEqual([])
    expect(await optionsFor('QW', [made.code])).toEqual([expect.objectContaining({ price: 250, free_over: 3000 })])

    const renamed = await t.request({ method: 'PATCH', url: `/api/checkout/shipping-methods/${made.code}/`, headers: staff, payload: { name: 'Renamed', estimated_days: { min: 4, max: 9 } } })
    expect(renamed.json()).toMatchObject({ name: 'Renamed', estimated_days: { min: 4, max: 9 }, rates: [{ country: 'QW', price: 250, free_over: 3000 }] })
  })

  it('hides a deactivated method from shoppers and quotes', async () => {
    const made = await createMethod({})
    const res = await t.request({ method: 'PATCH', url: `/api/checkout/shipping-methods/${made.code}/`, headers: staff, payload: { is_active: false } })
    expect(res.json()).toMatchObject({ is_active: false })
    expect(await optionsFor('QT', [made.code])).toEqual([])
    await expect(shipping.quote(ctx(), made.code, 'QT')).rejects.toMatchObject({ status: 422, code: 'shipping_method_unknown' })
  })

  it('answers 422 for duplicate countries or days in the wrong order, and changes nothing', async () => {
    const made = await createMethod({ estimated_days: { min: 1, max: 3 } })
    const patch = (payload: object) => t.request({ method: 'PATCH', url: `/api/checkout/shipping-methods/${made.code}/`, headers: staff, payload })
    expect(expectProblem(await patch({ rates: [{ country: '*', price: 1 }, { country: '*', price: 2 }] }), 422).errors).toHaveProperty('rates')
    expect(expectProblem(await patch({ estimated_days: { min: 3, max: 1 } }), 422).errors).toHaveProperty('estimated_days')
    expectProblem(await patch({}), 422)
    expect((await shipping.get(ctx(), made.code))).toEqual(made)
  })

  it('deletes a method and its rates; an unknown code is a 404', async () => {
    const made = await createMethod({})
    const res = await t.request({ method: 'DELETE', url: `/api/checkout/shipping-methods/${made.code}/`, headers: staff })
    expect(res.statusCode).toBe(204)
    expectProblem(await t.request({ method: 'GET', url: `/api/checkout/shipping-methods/${made.code}/`, headers: staff }), 404)
    expectProblem(await t.request({ method: 'DELETE', url: `/api/checkout/shipping-methods/${made.code}/`, headers: staff }), 404)
    expectProblem(await t.request({ method: 'PATCH', url: `/api/checkout/shipping-methods/${made.code}/`, headers: staff, payload: { name: 'x' } }), 404)
    const rates = await db().select({ n: count() }).from(shippingRates).innerJoin(shippingMethods, eq(shippingMethods.id, shippingRates.method_id)).where(eq(shippingMethods.code, made.code))
    expect(rates[0]!.n).toBe(0)
  })
})

describe('shipping.quote', () => {
  it("answers the country's own rate, else the '*' rate, as a ShippingQuote", async () => {
    const made = await createMethod({ name: 'Quoted', rates: [{ country: '*', price: 800, free_over: 6000 }, { country: 'QS', price: 350 }] })
    expect(await shipping.quote(ctx(), made.code, 'qs')).toEqual({ code: made.code, name: 'Quoted', price: 350, free_over: null })
    expect(await shipping.quote(ctx(), made.code, 'QR')).toEqual({ code: made.code, name: 'Quoted', price: 800, free_over: 6000 })
  })

  it('answers 422 under shipping_method for an unknown method, or one that does not ship to the country', async () => {
    await expect(shipping.quote(ctx(), uid(), 'QS')).rejects.toMatchObject({ status: 422, code: 'shipping_method_unknown', errors: { shipping_method: [expect.any(String)] } })
    const made = await createMethod({ name: 'Local', rates: [{ country: 'QP', price: 100 }] })
    await expect(shipping.quote(ctx(), made.code, 'QO')).rejects.toMatchObject({ status: 422, code: 'shipping_method_unavailable', errors: { shipping_method: ['Local does not ship to QO.'] } })
  })
})

describe('/api/tax-rates/', () => {
  const post = (payload: object, headers: Record<string, string> = staff) => t.request({ method: 'POST', url: '/api/tax-rates/', headers, payload })

  it('creates rates with codes upper-cased, lists them by country and region, and answers 409 for a second one at the same place', async () => {
    const country = await post({ country: 'qa', name: ' Q VAT ', rate_bp: 1700 })
    expect(country.statusCode, country.body).toBe(201)
    expect(country.json()).toMatchObject({ country: 'QA', region: '', name: 'Q VAT', rate_bp: 1700 })
    const region = await post({ country: 'QA', region: 'n1', name: 'North', rate_bp: 800 })
    expect(region.json()).toMatchObject({ country: 'QA', region: 'N1', rate_bp: 800 })
    expectProblem(await post({ country: 'QA', region: 'N1', name: 'Again', rate_bp: 1 }), 409, 'tax_rate_exists')
    expectProblem(await post({ country: 'qa', name: 'Again', rate_bp: 1 }), 409, 'tax_rate_exists')

    const list = (await t.request({ method: 'GET', url: '/api/tax-rates/', headers: staff })).json<TaxRateDto[]>()
    expect(list.filter((rate) => rate.country === 'QA').map((rate) => [rate.region, rate.rate_bp])).toEqual([['', 1700], ['N1', 800]])
  })

  it('answers 422 naming the field for a rate over 100 %, a bad country or region, a blank name', async () => {
    const cases: Array<[string, object]> = [
      ['rate_bp', { country: 'QB', name: 'X', rate_bp: 10_001 }],
      ['rate_bp', { country: 'QB', name: 'X', rate_bp: -1 }],
      ['country', { country: 'QBB', name: 'X', rate_bp: 100 }],
      ['region', { country: 'QB', region: 'NORTH', name: 'X', rate_bp: 100 }],
      ['name', { country: 'QB', name: ' ', rate_bp: 100 }],
    ]
    for (const [field, body] of cases) expect(expectProblem(await post(body), 422).errors, field).toHaveProperty(field)
    expect(await taxes.rateFor(ctx(), 'QB')).toEqual({ rate_bp: 0, name: null })
  })

  it('changes a rate, refuses to move it onto another one (409), and 404s an unknown id', async () => {
    const a = (await post({ country: 'QC', name: 'A', rate_bp: 500 })).json<TaxRateDto>()
    await post({ country: 'QC', region: 'X', name: 'B', rate_bp: 600 })
    const res = await t.request({ method: 'PATCH', url: `/api/tax-rates/${a.id}/`, headers: staff, payload: { rate_bp: 550, name: 'A2' } })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toEqual({ ...a, rate_bp: 550, name: 'A2' })
    expectProblem(await t.request({ method: 'PATCH', url: `/api/tax-rates/${a.id}/`, headers: staff, payload: { region: 'x' } }), 409, 'tax_rate_exists')
    expect(await taxes.rateFor(ctx(), 'QC')).toEqual({ rate_bp: 550, name: 'A2' })
    expectProblem(await t.request({ method: 'PATCH', url: `/api/tax-rates/${randomUUID()}/`, headers: staff, payload: { rate_bp: 1 } }), 404)
    expectProblem(await t.request({ method: 'PATCH', url: '/api/tax-rates/not-a-uuid/', headers: staff, payload: { rate_bp: 1 } }), 422)
  })

  it('deletes a rate; a second delete is a 404', async () => {
    const made = (await post({ country: 'QD', name: 'D', rate_bp: 900 })).json<TaxRateDto>()
    expect((await t.request({ method: 'DELETE', url: `/api/tax-rates/${made.id}/`, headers: staff })).statusCode).toBe(204)
    expectProblem(await t.request({ method: 'DELETE', url: `/api/tax-rates/${made.id}/`, headers: staff }), 404)
    expect(await taxes.rateFor(ctx(), 'QD')).toEqual({ rate_bp: 0, name: null })
  })

  it('answers 401 without a token and 403 to a customer', async () => {
    expectProblem(await t.request({ method: 'GET', url: '/api/tax-rates/' }), 401)
    expectProblem(await t.request({ method: 'GET', url: '/api/tax-rates/', headers: customer }), 403)
    expectProblem(await post({ country: 'QE', name: 'E', rate_bp: 1 }, customer), 403)
  })
})

describe('taxes.rateFor', () => {
  it("answers the region's rate where one exists, else the country's, else 0, codes in any case", async () => {
    await taxes.create(ctx(), { country: 'QF', name: 'Federal', rate_bp: 500 })
    await taxes.create(ctx(), { country: 'QF', region: 'ON', name: 'Provincial', rate_bp: 1300 })
    await taxes.create(ctx(), { country: 'QG', region: 'S1', name: 'Only a region', rate_bp: 400 })
    expect(await taxes.rateFor(ctx(), 'qf', 'on')).toEqual({ rate_bp: 1300, name: 'Provincial' })
    expect(await taxes.rateFor(ctx(), 'QF', 'BC')).toEqual({ rate_bp: 500, name: 'Federal' })
    expect(await taxes.rateFor(ctx(), 'QF')).toEqual({ rate_bp: 500, name: 'Federal' })
    expect(await taxes.rateFor(ctx(), 'QF', null)).toEqual({ rate_bp: 500, name: 'Federal' })
    expect(await taxes.rateFor(ctx(), 'QG', 'S1')).toEqual({ rate_bp: 400, name: 'Only a region' })
    expect(await taxes.rateFor(ctx(), 'QG', 'S2')).toEqual({ rate_bp: 0, name: null })
    expect(await taxes.rateFor(ctx(), 'QH')).toEqual({ rate_bp: 0, name: null })
  })
})

describe(seedPricingDefaults.name, () => {
  it('gives an empty database two methods everywhere and four tax rates, once, even when two starts run together', async () => {
    const fresh = await createTestApp()
    try {
      const freshDb = fresh.app.platform.database.db
      const freshCtx = fresh.app.platform.context()
      const results = await Promise.all([seedPricingDefaults(freshDb), seedPricingDefaults(freshDb)])
      expect(results.reduce((sum, r) => sum + r.shipping_methods, 0)).toBe(2)
      expect(results.reduce((sum, r) => sum + r.tax_rates, 0)).toBe(4)
      expect(await seedPricingDefaults(freshDb)).toEqual({ shipping_methods: 0, tax_rates: 0 })

      expect(await shipping.methodsFor(freshCtx, 'us', 'USD')).toEqual([
        { code: 'standard', name: 'Standard shipping', price: 499, free_over: 5000, currency: 'USD', estimated_days: { min: 3, max: 5 } },
        { code: 'express', name: 'Express shipping', price: 1499, free_over: null, currency: 'USD', estimated_days: { min: 1, max: 2 } },
      ])
      expect(await taxes.rateFor(freshCtx, 'US', 'CA')).toEqual({ rate_bp: 725, name: 'California sales tax' })
      expect(await taxes.rateFor(freshCtx, 'US', 'NY')).toEqual({ rate_bp: 0, name: null })
      expect((await taxes.list(freshCtx)).map((rate) => `${rate.country}${rate.region ? `-${rate.region}` : ''}:${rate.rate_bp}`)).toEqual(['DE:1900', 'FR:2000', 'GB:2000', 'US-CA:725'])

      // What staff removed or changed stays so: defaults only fill empty tables.
      await shipping.remove(freshCtx, 'express')
      const [gb] = (await taxes.list(freshCtx)).filter((rate) => rate.country === 'GB')
      await taxes.update(freshCtx, gb!.id, { rate_bp: 1750 })
      expect(await seedPricingDefaults(freshDb)).toEqual({ shipping_methods: 0, tax_rates: 0 })
      expect((await shipping.methodsFor(freshCtx, 'US', 'USD')).map((option) => option.code)).toEqual(['standard'])
      expect(await taxes.rateFor(freshCtx, 'GB')).toMatchObject({ rate_bp: 1750 })
      const [methods] = await freshDb.select({ n: count() }).from(shippingMethods)
      const [rates] = await freshDb.select({ n: count() }).from(taxRates)
      expect([methods!.n, rates!.n]).toEqual([1, 4])
    } finally {
      await fresh.close()
    }
  })
})
