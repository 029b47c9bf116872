/**
 * Order totals through POST /api/checkout/, against amounts computed by hand with the rule of
 * src/apps/cart/pricing.ts (integers in minor units, half up, discount spread by largest
 * remainder, shipping free from `free_over` on the discounted subtotal, tax per line on the net).
 * Pricing defaults: standard 499, free from 5000; express 1499; US-CA 725 bp, DE 1900 bp.
 * One app prices tax-exclusive (the default), another with PRICES_INCLUDE_TAX=true.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto } from './service.js'

type Headers = Record<string, string>

const CA = { name: 'Ada Lovelace', line1: '1 Main St', city: 'San Francisco', region: 'CA', postal_code: '94105', country: 'US' }
const NY = { ...CA, city: 'New York', region: 'NY', postal_code: '10001' }
const DE = { name: 'Ada Lovelace', line1: 'Hauptstr. 1', city: 'Berlin', postal_code: '10115', country: 'DE' }

let exclusive: TestApp
let inclusive: TestApp

beforeAll(async () => {
  ;[exclusive, inclusive] = await Promise.all([createTestApp(), createTestApp({ env: { PRICES_INCLUDE_TAX: 'true' } })])
  await Promise.all([seedPricingDefaults(exclusive.app.platform.database.db), seedPricingDefaults(inclusive.app.platform.database.db)])
})
afterAll(async () => {
  await Promise.all([exclusive?.close(), inclusive?.close()])
})

interface Purchase {
  /** Unit price and quantity of each line, one product each. */
  lines: Array<[price: number, quantity: number]>
  coupon?: { kind: 'percent' | 'fixed'; value: number }
  address?: object
  method?: string
}

/** Checks out a guest cart with these lines; answers the order and the SKU of each line, in order. */
async function order(t: TestApp, purchase: Purchase): Promise<{ order: OrderDto; skus: string[] }> {
  const f = factories(t)
  const skus: string[] = []
  for (const [price] of purchase.lines) skus.push((await f.product({ stock: [100], price })).skus[0]!)
  const created = await t.request({ method: 'POST', url: '/api/cart/' })
  const cart: Headers = { 'x-cart-token': created.json<{ token: string }>().token }
  for (const [i, [, quantity]] of purchase.lines.entries()) {
    const res = await t.request({ method: 'POST', url: '/api/cart/items/', headers: cart, payload: { sku: skus[i], quantity } })
    expect(res.statusCode, res.body).toBe(201)
  }
  if (purchase.coupon) {
    const code = `T${randomUUID().slice(0, 8)}`.toUpperCase()
    const staff = await f.auth(await f.user({ role: 'staff' }))
    const made = await t.request({ method: 'POST', url: '/api/coupons/', headers: staff, payload: { code, ...purchase.coupon } })
    expect(made.statusCode, made.body).toBe(201)
    const applied = await t.request({ method: 'POST', url: '/api/cart/coupon/', headers: cart, payload: { code } })
    expect(applied.statusCode, applied.body).toBe(200)
  }
  const res = await t.request({
    method: 'POST',
    url: '/api/checkout/',
    headers: { ...cart, 'idempotency-key': randomUUID() },
    payload: { email: 'buyer@example.com', shipping_address: purchase.address ?? CA, shipping_method: purchase.method ?? 'standard' },
  })
  expect(res.statusCode, res.body).toBe(201)
  return { order: res.json<OrderDto>(), skus }
}

/** The order's items as {sku: amounts}, so the assertion does not depend on the items' order. */
function itemsBySku(order: OrderDto) {
  return Object.fromEntries(order.items.map(({ sku, quantity, unit_price, discount, tax_rate_bp, tax, total }) => [sku, { quantity, unit_price, discount, tax_rate_bp, tax, total }]))
}

describe('prices exclusive of tax (US-CA 7.25 %)', () => {
  it('adds tax per line rounded half up, and ships free over 5000', async () => {
    const { order: o, skus } = await order(exclusive, { lines: [[1999, 2], [1250, 1]] })
    // 3998 × 7.25 % = 289.855 → 290; 1250 × 7.25 % = 90.625 → 91. Subtotal 5248 ≥ 5000: free.
    expect(o.totals).toEqual({ subtotal: 5248, discount: 0, shipping: 0, tax: 381, total: 5629 })
    expect(o.prices_include_tax).toBe(false)
    expect(itemsBySku(o)).toEqual({
      [skus[0]!]: { quantity: 2, unit_price: 1999, discount: 0, tax_rate_bp: 725, tax: 290, total: 4288 },
      [skus[1]!]: { quantity: 1, unit_price: 1250, discount: 0, tax_rate_bp: 725, tax: 91, total: 1341 },
    })
  })

  it('charges no tax where no rate is set (US-NY) and charges standard shipping below the threshold', async () => {
    const { order: o, skus } = await order(exclusive, { lines: [[1999, 1]], address: NY })
    expect(o.totals).toEqual({ subtotal: 1999, discount: 0, shipping: 499, tax: 0, total: 2498 })
    expect(itemsBySku(o)[skus[0]!]).toMatchObject({ tax_rate_bp: 0, tax: 0, total: 1999 })
  })

  it('charges express shipping (no free threshold) however large the order', async () => {
    const { order: o } = await order(exclusive, { lines: [[3000, 2]], method: 'express' })
    // 6000 × 7.25 % = 435.
    expect(o.totals).toEqual({ subtotal: 6000, discount: 0, shipping: 1499, tax: 435, total: 7934 })
    expect(o.shipping_method).toBe('express')
  })

  it('ships free at exactly the threshold (5000) and charges 499 one cent below it', async () => {
    const at = await order(exclusive, { lines: [[2500, 2]] })
    // 5000 × 7.25 % = 362.5 → 363 (half up).
    expect(at.order.totals).toEqual({ subtotal: 5000, discount: 0, shipping: 0, tax: 363, total: 5363 })
    const below = await order(exclusive, { lines: [[4999, 1]] })
    // 4999 × 7.25 % = 362.4275 → 362.
    expect(below.order.totals).toEqual({ subtotal: 4999, discount: 0, shipping: 499, tax: 362, total: 5860 })
  })

  it('rounds a percentage discount half up and spreads it over the lines by largest remainder', async () => {
    const { order: o, skus } = await order(exclusive, { lines: [[1111, 1], [2222, 1]], coupon: { kind: 'percent', value: 15 } })
    // 15 % of 3333 = 499.95 → 500. Shares: 1111 → 166.67, 2222 → 333.33; floors 166 + 333 = 499,
    // the unit left goes to the larger remainder (the first line): 167 and 333.
    // Net 944 and 1889; tax 944 × 7.25 % = 68.44 → 68, 1889 × 7.25 % = 136.95 → 137.
    // 3333 − 500 = 2833 < 5000: shipping 499. Total 3333 − 500 + 499 + 205 = 3537.
    expect(o.totals).toEqual({ subtotal: 3333, discount: 500, shipping: 499, tax: 205, total: 3537 })
    expect(o.coupon_code).toMatch(/^T/)
    expect(itemsBySku(o)).toEqual({
      [skus[0]!]: { quantity: 1, unit_price: 1111, discount: 167, tax_rate_bp: 725, tax: 68, total: 1012 },
      [skus[1]!]: { quantity: 1, unit_price: 2222, discount: 333, tax_rate_bp: 725, tax: 137, total: 2026 },
    })
  })

  it('rounds an exact half of a cent of discount up (10 % of 1005 = 100.5 → 101)', async () => {
    const { order: o } = await order(exclusive, { lines: [[1005, 1]], coupon: { kind: 'percent', value: 10 } })
    // Net 904; tax 904 × 7.25 % = 65.54 → 66; total 1005 − 101 + 499 + 66 = 1469.
    expect(o.totals).toEqual({ subtotal: 1005, discount: 101, shipping: 499, tax: 66, total: 1469 })
  })

  it('takes a fixed discount off before the shipping threshold: 5500 − 500 ships free, 5500 − 501 does not', async () => {
    const free = await order(exclusive, { lines: [[3000, 1], [2500, 1]], coupon: { kind: 'fixed', value: 500 } })
    // Shares of 500: 272.73 and 227.27 → 272 + 227, the unit left to the first line: 273 and 227.
    // Net 2727 and 2273 (5000: free). Tax 197.71 → 198 and 164.79 → 165. Total 5000 + 363.
    expect(free.order.totals).toEqual({ subtotal: 5500, discount: 500, shipping: 0, tax: 363, total: 5363 })
    expect(itemsBySku(free.order)).toEqual({
      [free.skus[0]!]: { quantity: 1, unit_price: 3000, discount: 273, tax_rate_bp: 725, tax: 198, total: 2925 },
      [free.skus[1]!]: { quantity: 1, unit_price: 2500, discount: 227, tax_rate_bp: 725, tax: 165, total: 2438 },
    })
    const charged = await order(exclusive, { lines: [[3000, 1], [2500, 1]], coupon: { kind: 'fixed', value: 501 } })
    // Shares of 501: 273.27 and 227.73 → 273 + 227, the unit left to the second line: 273 and 228.
    // Net 2727 and 2272 (4999: shipping 499). Tax 198 and 164.72 → 165.
    expect(charged.order.totals).toEqual({ subtotal: 5500, discount: 501, shipping: 499, tax: 363, total: 5861 })
    expect(itemsBySku(charged.order)[charged.skus[1]!]).toMatchObject({ discount: 228, tax: 165, total: 2437 })
  })

  it('caps a fixed discount at the subtotal: the order costs its shipping', async () => {
    const { order: o } = await order(exclusive, { lines: [[1999, 1]], coupon: { kind: 'fixed', value: 5000 } })
    expect(o.totals).toEqual({ subtotal: 1999, discount: 1999, shipping: 499, tax: 0, total: 499 })
  })
})

describe('prices inclusive of tax (PRICES_INCLUDE_TAX=true, DE 19 %)', () => {
  it('reports the tax the prices contain without adding it', async () => {
    const { order: o, skus } = await order(inclusive, { lines: [[1190, 2], [999, 1]], address: DE })
    // 2380 × 19/119 = 380 exactly; 999 × 19/119 = 159.504 → 160. Total = 3379 + 499 shipping.
    expect(o.totals).toEqual({ subtotal: 3379, discount: 0, shipping: 499, tax: 540, total: 3878 })
    expect(o.prices_include_tax).toBe(true)
    expect(itemsBySku(o)).toEqual({
      [skus[0]!]: { quantity: 2, unit_price: 1190, discount: 0, tax_rate_bp: 1900, tax: 380, total: 2380 },
      [skus[1]!]: { quantity: 1, unit_price: 999, discount: 0, tax_rate_bp: 1900, tax: 160, total: 999 },
    })
  })

  it('takes the contained tax from the discounted lines', async () => {
    const { order: o, skus } = await order(inclusive, { lines: [[1190, 2], [999, 1]], address: DE, coupon: { kind: 'percent', value: 10 } })
    // 10 % of 3379 = 337.9 → 338. Shares 238.06 and 99.93 → 238 + 99, the unit left to the second
    // line (remainder 3141 > 238): 238 and 100. Net 2142 and 899: tax 2142 × 19/119 = 342 exactly,
    // 899 × 19/119 = 143.54 → 144. Total 3379 − 338 + 499 = 3540.
    expect(o.totals).toEqual({ subtotal: 3379, discount: 338, shipping: 499, tax: 486, total: 3540 })
    expect(itemsBySku(o)).toEqual({
      [skus[0]!]: { quantity: 2, unit_price: 1190, discount: 238, tax_rate_bp: 1900, tax: 342, total: 2142 },
      [skus[1]!]: { quantity: 1, unit_price: 999, discount: 100, tax_rate_bp: 1900, tax: 144, total: 899 },
    })
  })

  it('ships free from 5000 of the discounted subtotal, tax included', async () => {
    const { order: o } = await order(inclusive, { lines: [[5000, 1]], address: DE })
    // 5000 × 19/119 = 798.32 → 798.
    expect(o.totals).toEqual({ subtotal: 5000, discount: 0, shipping: 0, tax: 798, total: 5000 })
  })
})
