/**
 * computeTotals against hand-computed expectations. Each expectation's arithmetic is written next
 * to it, so a reader can check the rule (round half up at each computed amount) by hand.
 */
import { describe, expect, it } from 'vitest'
import { computeTotals, roundDiv, spread, type CouponTerms, type PricedLine, type ShippingQuote } from './pricing.js'

const line = (unit_price: number, quantity: number, tax_rate_bp = 0): PricedLine => ({ unit_price, quantity, tax_rate_bp })
const percent = (value: number, min_subtotal = 0): CouponTerms => ({ code: 'PCT', kind: 'percent', value, min_subtotal })
const fixed = (value: number, min_subtotal = 0): CouponTerms => ({ code: 'FIX', kind: 'fixed', value, min_subtotal })
const standard: ShippingQuote = { code: 'standard', name: 'Standard', price: 499, free_over: 5000 }
const flat: ShippingQuote = { code: 'flat', name: 'Flat', price: 499, free_over: null }

describe(roundDiv.name, () => {
  it('rounds halves up and everything else to the nearest integer', () => {
    expect([roundDiv(5n, 10n), roundDiv(4n, 10n), roundDiv(15n, 10n), roundDiv(14n, 10n), roundDiv(0n, 7n), roundDiv(9995n, 6n)]).toEqual([1n, 0n, 2n, 1n, 0n, 1666n])
  })
})

describe(spread.name, () => {
  it('gives the leftover units to the largest remainders, earlier lines first on a tie', () => {
    // 100 / 3 = 33 r 1 each: the tie goes to the first line.
    expect(spread(100n, [1000n, 1000n, 1000n])).toEqual([34n, 33n, 33n])
    // 2 over weights 1,1,1,1: the first two.
    expect(spread(2n, [1n, 1n, 1n, 1n])).toEqual([1n, 1n, 0n, 0n])
    expect(spread(0n, [5n, 5n])).toEqual([0n, 0n])
    expect(spread(7n, [0n, 3n, 0n])).toEqual([0n, 7n, 0n])
  })
})

describe(computeTotals.name, () => {
  it('adds tax to tax-exclusive prices and charges shipping below the free threshold', () => {
    // 1250 × 2 = 2500; tax 2500 × 19 % = 475; 2500 < 5000 so shipping 499; total 2500 + 499 + 475.
    expect(computeTotals({ lines: [line(1250, 2, 1900)], coupon: null, shipping: standard, pricesIncludeTax: false })).toEqual({
      subtotal: 2500, discount: 0, shipping: 499, tax: 475, total: 3474,
      lines: [{ subtotal: 2500, discount: 0, tax: 475, total: 2975 }],
    })
  })

  it('rounds exclusive tax half up per line', () => {
    // 1999 × 3 = 5997; 5997 × 725 / 10000 = 434.7825 → 435; 5997 ≥ 5000: free shipping.
    expect(computeTotals({ lines: [line(1999, 3, 725)], coupon: null, shipping: standard, pricesIncludeTax: false })).toMatchObject({ subtotal: 5997, shipping: 0, tax: 435, total: 6432 })
    // 15 × 10 % = 1.5 → 2; 5 × 10 % = 0.5 → 1: halves go up.
    expect(computeTotals({ lines: [line(15, 1, 1000), line(5, 1, 1000)], coupon: null, shipping: null, pricesIncludeTax: false })).toMatchObject({ subtotal: 20, tax: 3, total: 23 })
  })

  it('reports the tax contained in tax-inclusive prices without adding it', () => {
    // 1999 × 3 = 5997 at 20 %: contained tax 5997 × 2000 / 12000 = 999.5 → 1000; total 5997 + 499.
    expect(computeTotals({ lines: [line(1999, 3, 2000)], coupon: null, shipping: flat, pricesIncludeTax: true })).toEqual({
      subtotal: 5997, discount: 0, shipping: 499, tax: 1000, total: 6496,
      lines: [{ subtotal: 5997, discount: 0, tax: 1000, total: 5997 }],
    })
  })

  it('rounds a percentage discount half up on the whole subtotal', () => {
    // 15 % of 1999 × 3 = 5997 × 15 / 100 = 899.55 → 900.
    expect(computeTotals({ lines: [line(1999, 3)], coupon: percent(15), shipping: null, pricesIncludeTax: false })).toMatchObject({ subtotal: 5997, discount: 900, tax: 0, total: 5097 })
    // 15 % of 1990 = 298.5 → 299 (a half goes up).
    expect(computeTotals({ lines: [line(1990, 1)], coupon: percent(15), shipping: null, pricesIncludeTax: false })).toMatchObject({ discount: 299, total: 1691 })
    // Tax on the discounted amount: (5997 − 900) × 20 % = 1019.4 → 1019; total 5097 + 1019.
    expect(computeTotals({ lines: [line(1999, 3, 2000)], coupon: percent(15), shipping: null, pricesIncludeTax: false })).toMatchObject({ discount: 900, tax: 1019, total: 6116 })
    // Inclusive: the discount lowers the price the tax is contained in: 5097 × 2000 / 12000 = 849.5 → 850.
    expect(computeTotals({ lines: [line(1999, 3, 2000)], coupon: percent(15), shipping: null, pricesIncludeTax: true })).toMatchObject({ discount: 900, tax: 850, total: 5097 })
  })

  it('caps a fixed discount larger than the subtotal at the subtotal, and still charges shipping', () => {
    // min(5000, 1999) = 1999; 1999 − 1999 = 0 < 5000: shipping 499 is due; nothing left to tax.
    expect(computeTotals({ lines: [line(1999, 1, 2000)], coupon: fixed(5000), shipping: standard, pricesIncludeTax: false })).toEqual({
      subtotal: 1999, discount: 1999, shipping: 499, tax: 0, total: 499,
      lines: [{ subtotal: 1999, discount: 1999, tax: 0, total: 0 }],
    })
  })

  it('ignores a coupon whose minimum subtotal is not reached, and applies it from the minimum on', () => {
    expect(computeTotals({ lines: [line(2999, 1)], coupon: fixed(500, 3000), shipping: null, pricesIncludeTax: false })).toMatchObject({ discount: 0, total: 2999 })
    expect(computeTotals({ lines: [line(3000, 1)], coupon: fixed(500, 3000), shipping: null, pricesIncludeTax: false })).toMatchObject({ discount: 500, total: 2500 })
  })

  it('spreads a discount over three lines so the line discounts add up to it exactly', () => {
    // Subtotals 999, 3998, 1500 = 6497; 10 % = 649.7 → 650.
    // Exact shares: 650·999/6497 = 99 r 6147, 650·3998/6497 = 399 r 6397, 650·1500/6497 = 150 r 450.
    // Floors add to 648; the 2 units left go to the largest remainders (line 2, then line 1).
    const totals = computeTotals({ lines: [line(999, 1), line(1999, 2), line(500, 3)], coupon: percent(10), shipping: null, pricesIncludeTax: false })
    expect(totals.discount).toBe(650)
    expect(totals.lines.map((l) => l.discount)).toEqual([100, 400, 150])
    expect(totals.total).toBe(6497 - 650)
    // A fixed 100 over three equal lines: 33 r 1 each, the tie goes to the first line.
    const even = computeTotals({ lines: [line(1000, 1), line(1000, 1), line(1000, 1)], coupon: fixed(100), shipping: null, pricesIncludeTax: false })
    expect(even.lines.map((l) => l.discount)).toEqual([34, 33, 33])
  })

  it('taxes each line at its own rate, after its share of the discount', () => {
    // Same lines and discount as above (100, 400, 150): nets 899, 3598, 1350.
    // Taxes: 899 × 20 % = 179.8 → 180; 3598 × 7 % = 251.86 → 252; 1350 × 0 % = 0. Tax 432.
    const totals = computeTotals({ lines: [line(999, 1, 2000), line(1999, 2, 700), line(500, 3, 0)], coupon: percent(10), shipping: null, pricesIncludeTax: false })
    expect(totals).toEqual({
      subtotal: 6497, discount: 650, shipping: 0, tax: 432, total: 6279,
      lines: [
        { subtotal: 999, discount: 100, tax: 180, total: 1079 },
        { subtotal: 3998, discount: 400, tax: 252, total: 3850 },
        { subtotal: 1500, discount: 150, tax: 0, total: 1350 },
      ],
    })
  })

  it('reports mixed contained taxes for tax-inclusive lines', () => {
    // 1200 at 20 %: 1200·2000/12000 = 200; 1070 at 7 %: 1070·700/10700 = 70; 999 at 20 %: 166.5 → 167.
    expect(computeTotals({ lines: [line(1200, 1, 2000), line(1070, 1, 700), line(999, 1, 2000)], coupon: null, shipping: null, pricesIncludeTax: true })).toEqual({
      subtotal: 3269, discount: 0, shipping: 0, tax: 437, total: 3269,
      lines: [
        { subtotal: 1200, discount: 0, tax: 200, total: 1200 },
        { subtotal: 1070, discount: 0, tax: 70, total: 1070 },
        { subtotal: 999, discount: 0, tax: 167, total: 999 },
      ],
    })
  })

  it('ships free exactly at the threshold and charges one cent below it, after the discount', () => {
    const at = (unit: number, coupon: CouponTerms | null = null) => computeTotals({ lines: [line(unit, 1)], coupon, shipping: standard, pricesIncludeTax: false })
    expect(at(5000)).toMatchObject({ shipping: 0, total: 5000 })
    expect(at(4999)).toMatchObject({ shipping: 499, total: 5498 })
    // The threshold applies to subtotal − discount: 5500 − 500 = 5000 is free, 5500 − 501 = 4999 is not.
    expect(at(5500, fixed(500))).toMatchObject({ discount: 500, shipping: 0, total: 5000 })
    expect(at(5500, fixed(501))).toMatchObject({ discount: 501, shipping: 499, total: 5498 })
  })

  it('does not tax shipping', () => {
    expect(computeTotals({ lines: [line(1000, 1, 2000)], coupon: null, shipping: flat, pricesIncludeTax: false })).toMatchObject({ shipping: 499, tax: 200, total: 1699 })
  })

  it('answers zeros for zero lines, even with a coupon and a shipping quote', () => {
    expect(computeTotals({ lines: [], coupon: percent(50), shipping: flat, pricesIncludeTax: false })).toEqual({ subtotal: 0, discount: 0, shipping: 0, tax: 0, total: 0, lines: [] })
    expect(computeTotals({ lines: [], coupon: fixed(100), shipping: standard, pricesIncludeTax: true })).toEqual({ subtotal: 0, discount: 0, shipping: 0, tax: 0, total: 0, lines: [] })
  })

  it('keeps its sums exact over many generated carts', () => {
    // A fixed linear congruential generator: the same carts on every run.
    let seed = 42
    const next = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed % n
    }
    for (let run = 0; run < 500; run += 1) {
      const lines = Array.from({ length: 1 + next(6) }, () => line(next(100_000), 1 + next(20), [0, 500, 725, 1900, 2000][next(5)]!))
      const coupon = next(2) === 0 ? percent(1 + next(100)) : fixed(1 + next(300_000))
      const pricesIncludeTax = next(2) === 0
      const totals = computeTotals({ lines, coupon, shipping: standard, pricesIncludeTax })
      const add = (values: number[]) => values.reduce((a, b) => a + b, 0)
      expect(add(totals.lines.map((l) => l.discount))).toBe(totals.discount)
      expect(add(totals.lines.map((l) => l.subtotal))).toBe(totals.subtotal)
      expect(add(totals.lines.map((l) => l.tax))).toBe(totals.tax)
      expect(add(totals.lines.map((l) => l.total)) + totals.shipping).toBe(totals.total)
      expect(totals.discount).toBeLessThanOrEqual(totals.subtotal)
      for (const l of totals.lines) expect(l.discount).toBeLessThanOrEqual(l.subtotal)
    }
  })

  it('computes exactly where floating point would not (amounts beyond 2^53 in intermediate products)', () => {
    // 90,000,000,000 × 1 at 33.33 %: the product 9·10^10 × 3333 exceeds 2^53; the result is exact.
    expect(computeTotals({ lines: [line(90_000_000_000, 1, 3333)], coupon: null, shipping: null, pricesIncludeTax: false }).tax).toBe(29_997_000_000)
  })

  it('refuses amounts that are not non-negative integers', () => {
    expect(() => computeTotals({ lines: [line(19.99, 1)], coupon: null, shipping: null, pricesIncludeTax: false })).toThrow(RangeError)
    expect(() => computeTotals({ lines: [line(100, -1)], coupon: null, shipping: null, pricesIncludeTax: false })).toThrow(RangeError)
    expect(() => computeTotals({ lines: [line(100, 1, 10_001)], coupon: null, shipping: null, pricesIncludeTax: false })).toThrow(RangeError)
    expect(() => computeTotals({ lines: [line(100, 1)], coupon: percent(101), shipping: null, pricesIncludeTax: false })).toThrow(RangeError)
  })
})
