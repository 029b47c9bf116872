/** The figures analytics reports, and the pure arithmetic on them (shares, sums, ranks, ratios). */
import { groupBy } from '../../core/collections.js'

export interface DayFigures {
  day: string
  sessions: number
  orders: number
  revenue: number
  units_sold: number
  refunds: number
}

export interface ProductFigures {
  product_id: string
  views: number
  cart_adds: number
  units_sold: number
  revenue: number
  refunds: number
}

export interface SearchFigures {
  query: string
  searches: number
}

/** What happened on each day of a range: the shape of the rollup tables. */
export interface RangeFigures {
  days: DayFigures[]
  products: Array<ProductFigures & { day: string }>
  searches: Array<SearchFigures & { day: string }>
}

const PRODUCT_COUNTS = ['views', 'cart_adds', 'units_sold', 'revenue', 'refunds'] as const
export const emptyProduct = (product_id: string): ProductFigures => ({ product_id, views: 0, cart_adds: 0, units_sold: 0, revenue: 0, refunds: 0 })
export const emptyDay = (day: string): DayFigures => ({ day, sessions: 0, orders: 0, revenue: 0, units_sold: 0, refunds: 0 })

/**
 * Each refund shared among its order's lines in proportion to their totals, rounded down: the
 * shipping's share (and at most a cent per line) belongs to no product.
 */
export function shareRefunds(
  refunds: Array<{ day: string; order_id: string; amount: number }>,
  lines: Array<{ order_id: string; product_id: string; line_total: number; order_total: number }>,
): Array<{ day: string; product_id: string; refunds: number }> {
  const linesOf = groupBy(lines, (line) => line.order_id)
  return refunds.flatMap((refund) =>
    (linesOf.get(refund.order_id) ?? [])
      .filter((line) => line.order_total > 0)
      .map((line) => ({ day: refund.day, product_id: line.product_id, refunds: Math.floor((refund.amount * line.line_total) / line.order_total) })),
  )
}

/** Adds a row's counts to its product's sums. */
export function addProduct(sums: Map<string, ProductFigures>, row: Partial<ProductFigures> & { product_id: string }): void {
  const sum = sums.get(row.product_id) ?? emptyProduct(row.product_id)
  for (const count of PRODUCT_COUNTS) sum[count] += row[count] ?? 0
  sums.set(row.product_id, sum)
}

/** Rows for the same product added up. */
export function sumProducts(rows: Array<Partial<ProductFigures> & { product_id: string }>): Map<string, ProductFigures> {
  const sums = new Map<string, ProductFigures>()
  for (const row of rows) addProduct(sums, row)
  return sums
}

/** Best sellers first: revenue, then units, then views; the id breaks ties (the same order as the SQL). */
export function byBestSelling(a: ProductFigures, b: ProductFigures): number {
  return b.revenue - a.revenue || b.units_sold - a.units_sold || b.views - a.views || (a.product_id < b.product_id ? -1 : a.product_id > b.product_id ? 1 : 0)
}

/** Most searched first; the query breaks ties. */
export function byMostSearched(a: SearchFigures, b: SearchFigures): number {
  return b.searches - a.searches || (a.query < b.query ? -1 : a.query > b.query ? 1 : 0)
}

export interface Summary {
  orders: number
  revenue: number
  refunds: number
  net_revenue: number
  average_order_value: number | null
  units_sold: number
  sessions: number
  conversion_rate: number | null
}

/**
 * Days added up, with the ratios of the sums (not averages of daily ratios). A session spanning
 * midnight counts on both days; conversion is paid orders per session.
 */
export function summarize(days: DayFigures[]): Summary {
  const sum = (key: 'orders' | 'revenue' | 'refunds' | 'units_sold' | 'sessions') => days.reduce((total, day) => total + day[key], 0)
  const [orders, revenue, refunds, sessions] = [sum('orders'), sum('revenue'), sum('refunds'), sum('sessions')]
  return {
    orders,
    revenue,
    refunds,
    net_revenue: revenue - refunds,
    average_order_value: orders > 0 ? Math.round(revenue / orders) : null,
    units_sold: sum('units_sold'),
    sessions,
    conversion_rate: sessions > 0 ? Math.round((orders / sessions) * 10_000) / 10_000 : null,
  }
}
