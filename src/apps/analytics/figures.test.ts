/** The calendar arithmetic and the figure arithmetic of the reports, without a database. */
import { describe, expect, it } from 'vitest'
import { addDays, dayCount, dayIn, eachDay, isDay, periodStart } from './days.js'
import { byBestSelling, emptyDay, shareRefunds, sumProducts, summarize } from './figures.js'

describe('shop days', () => {
  it('accepts real calendar dates only', () => {
    expect(['2026-02-28', '2028-02-29', '2026-12-31'].map(isDay)).toEqual([true, true, true])
    expect(['2026-02-29', '2026-13-01', '2026-1-01', '26-01-01', '2026-01-01T00:00', ''].map(isDay)).toEqual([false, false, false, false, false, false])
  })

  it('counts across month, year and daylight-saving boundaries as calendar days', () => {
    expect(addDays('2026-03-31', 1)).toBe('2026-04-01')
    expect(addDays('2026-01-01', -1)).toBe('2025-12-31')
    expect(eachDay('2026-03-07', '2026-03-09')).toEqual(['2026-03-07', '2026-03-08', '2026-03-09'])
    expect(dayCount('2026-01-01', '2026-12-31')).toBe(365)
  })

  it('knows which day an instant is in a time zone', () => {
    const instant = new Date('2026-11-25T04:30:00Z')
    expect(dayIn('UTC', instant)).toBe('2026-11-25')
    expect(dayIn('America/New_York', instant)).toBe('2026-11-24')
    expect(dayIn('Asia/Tokyo', new Date('2026-11-24T15:30:00Z'))).toBe('2026-11-25')
  })

  it('starts weeks on Monday (ISO) and months on the 1st', () => {
    // 2026-11-29 is a Sunday; 2026-11-30 a Monday.
    expect(periodStart('2026-11-29', 'week')).toBe('2026-11-23')
    expect(periodStart('2026-11-30', 'week')).toBe('2026-11-30')
    expect(periodStart('2027-01-01', 'week')).toBe('2026-12-28')
    expect(periodStart('2026-11-29', 'month')).toBe('2026-11-01')
    expect(periodStart('2026-11-29', 'day')).toBe('2026-11-29')
  })
})

describe('figures', () => {
  it("shares a refund among its order's lines by their totals, rounding down (shipping belongs to no product)", () => {
    const lines = [
      { order_id: 'o1', product_id: 'p1', line_total: 2_000, order_total: 3_500 },
      { order_id: 'o1', product_id: 'p2', line_total: 1_000, order_total: 3_500 },
      { order_id: 'o2', product_id: 'p1', line_total: 0, order_total: 0 },
    ]
    const refunds = [
      { day: '2026-11-24', order_id: 'o1', amount: 1_000 },
      { day: '2026-11-24', order_id: 'o2', amount: 500 },
    ]
    // 1000 × 2000/3500 = 571.4…, 1000 × 1000/3500 = 285.7…; the rest (143) was shipping's share.
    expect(shareRefunds(refunds, lines)).toEqual([
      { day: '2026-11-24', product_id: 'p1', refunds: 571 },
      { day: '2026-11-24', product_id: 'p2', refunds: 285 },
    ])
  })

  it('adds up products and ranks them by revenue, units, views, then id', () => {
    const sums = sumProducts([
      { product_id: 'b', revenue: 100, units_sold: 1 },
      { product_id: 'a', revenue: 60, views: 3 },
      { product_id: 'a', revenue: 40, units_sold: 1 },
      { product_id: 'c', revenue: 100, units_sold: 2 },
    ])
    expect(sums.get('a')).toEqual({ product_id: 'a', views: 3, cart_adds: 0, units_sold: 1, revenue: 100, refunds: 0 })
    expect([...sums.values()].sort(byBestSelling).map((row) => row.product_id)).toEqual(['c', 'a', 'b'])
  })

  it('takes ratios of the sums, not averages of daily ratios, and has none without orders or sessions', () => {
    const days = [
      { ...emptyDay('2026-11-24'), orders: 1, revenue: 1_000, sessions: 1 },
      { ...emptyDay('2026-11-25'), orders: 2, revenue: 2_001, refunds: 500, sessions: 7 },
    ]
    expect(summarize(days)).toEqual({ orders: 3, revenue: 3_001, refunds: 500, net_revenue: 2_501, average_order_value: 1_000, units_sold: 0, sessions: 8, conversion_rate: 0.375 })
    expect(summarize([emptyDay('2026-11-24')])).toMatchObject({ average_order_value: null, conversion_rate: null })
  })
})
