/**
 * Staff reports: the dashboard and the sales series, and the rollup that keeps them fast.
 *
 * Figures come from the daily rollup tables for the days it has covered and are computed live from
 * the sources for the days after (normally only today), so an answer is the same before and after
 * the rollup runs. Orders and refunds are read through the orders and payments services (their
 * tables are the truth: a late worker cannot make a day incomplete); views, cart adds, sessions
 * and searches from the raw events. Days are the shop's days in TIME_ZONE.
 */
import type { Ctx } from '../../core/context.js'
import type { DayRange } from '../../core/db/days.js'
import { ValidationError } from '../../core/errors.js'
import type { OrdersService } from '../orders/service.js'
import type { PaymentsService } from '../payments/service.js'
import type { LowStockDto, ProductsService } from '../products/service.js'
import { addDays, chunks, dayCount, dayIn, eachDay, isDay, periodStart, type Interval } from './days.js'
import * as fq from './figure-queries.js'
import { byBestSelling, byMostSearched, emptyDay, groupBy, shareRefunds, sumProducts, summarize, type ProductFigures, type RangeFigures, type SearchFigures, type Summary } from './figures.js'

export interface ReportDeps {
  orders: Pick<OrdersService, 'salesByDay' | 'firstSaleAt' | 'lineTotals'>
  payments: Pick<PaymentsService, 'refundsByDay'>
  products: Pick<ProductsService, 'lowStock' | 'productNames'>
  timeZone: string
  currency: string
  lowStockThreshold: number
  /** Raw events older than this are gone: a day before it cannot be rolled up again. */
  retentionDays: number
}

export interface DayQuery {
  from?: string
  to?: string
}

const DEFAULT_DAYS = 30
const MAX_DAYS = 3_660
const TOP = 10
const LOW_STOCK_ROWS = 20
/** Days the rollup writes per transaction. */
const ROLLUP_CHUNK_DAYS = 31

export interface TopProduct extends ProductFigures {
  slug: string | null
  name: string | null
}

export interface Dashboard extends Summary {
  from: string
  to: string
  time_zone: string
  currency: string
  /** Days up to here come from the rollup; later ones were computed for this answer. */
  rolled_up_through: string | null
  top_products: TopProduct[]
  low_stock: LowStockDto[]
  zero_result_searches: SearchFigures[]
}

export interface SalesRow extends Summary {
  period: string
}

export interface SalesReport {
  from: string
  to: string
  interval: Interval
  time_zone: string
  currency: string
  rolled_up_through: string | null
  rows: SalesRow[]
  totals: Summary
}

export function createReports(deps: ReportDeps) {
  const { timeZone } = deps
  const range = (from: string, to: string): DayRange => ({ from, to, timeZone })

  /** from/to checked; `to` defaults to today, `from` to 29 days before `to`. */
  const daysOf = (query: DayQuery): { from: string; to: string } => {
    const errors: Record<string, string[]> = {}
    for (const key of ['from', 'to'] as const) if (query[key] !== undefined && !isDay(query[key])) errors[key] = ['A date as YYYY-MM-DD.']
    if (Object.keys(errors).length > 0) throw new ValidationError('Dates are written YYYY-MM-DD.', errors)
    const to = query.to ?? dayIn(timeZone)
    const from = query.from ?? addDays(to, -(DEFAULT_DAYS - 1))
    if (from > to) throw new ValidationError('`from` is after `to`.', { from: ['Must not be after `to`.'] })
    if (dayCount(from, to) > MAX_DAYS) throw new ValidationError(`At most ${MAX_DAYS} days at once.`, { to: [`At most ${MAX_DAYS} days after \`from\`.`] })
    return { from, to }
  }

  /** Every figure of the days, computed from the sources. */
  const compute = async (ctx: Ctx, days: DayRange): Promise<RangeFigures> => {
    const [sales, refunds, productEvents, sessions, searches] = await Promise.all([
      deps.orders.salesByDay(ctx, days),
      deps.payments.refundsByDay(ctx, days),
      fq.productEventsByDay(ctx.db, days),
      fq.sessionsByDay(ctx.db, days),
      fq.zeroResultSearchesByDay(ctx.db, days),
    ])
    const refundShares = shareRefunds(refunds, await deps.orders.lineTotals(ctx, [...new Set(refunds.map((refund) => refund.order_id))]))

    const byDay = new Map(eachDay(days.from, days.to).map((day) => [day, emptyDay(day)]))
    const dayOf = (day: string) => byDay.get(day)!
    for (const row of sales.days) Object.assign(dayOf(row.day), { orders: row.orders, revenue: row.revenue })
    for (const row of sales.products) dayOf(row.day).units_sold += row.units
    for (const row of refunds) dayOf(row.day).refunds += row.amount
    for (const row of sessions) dayOf(row.day).sessions = row.sessions

    const productRows = [
      ...productEvents,
      ...sales.products.map((row) => ({ day: row.day, product_id: row.product_id, units_sold: row.units, revenue: row.revenue })),
      ...refundShares,
    ]
    const products = [...groupBy(productRows, (row) => row.day)].flatMap(([day, rows]) => [...sumProducts(rows).values()].map((sums) => ({ day, ...sums })))
    return { days: [...byDay.values()], products, searches }
  }

  /** The days of from..to the rollup has covered, and those to compute now. */
  const split = async (ctx: Ctx, from: string, to: string) => {
    const rolledThrough = await fq.lastRolledUpDay(ctx.db)
    const rolledTo = rolledThrough === null ? null : rolledThrough < to ? rolledThrough : to
    const rolled = rolledTo !== null && rolledTo >= from ? { from, to: rolledTo } : null
    const liveFrom = rolled ? addDays(rolled.to, 1) : from
    return { rolledThrough, rolled, live: liveFrom <= to ? range(liveFrom, to) : null }
  }

  /** Daily figures of from..to: rolled up where the rollup has been, computed after. */
  const dailyFigures = async (ctx: Ctx, from: string, to: string) => {
    const parts = await split(ctx, from, to)
    const [rolledDays, live] = await Promise.all([parts.rolled ? fq.rolledUpDays(ctx.db, parts.rolled.from, parts.rolled.to) : [], parts.live ? compute(ctx, parts.live) : null])
    const known = new Map([...rolledDays, ...(live?.days ?? [])].map((day) => [day.day, day]))
    return { parts, live, days: eachDay(from, to).map((day) => known.get(day) ?? emptyDay(day)) }
  }

  const topProducts = async (ctx: Ctx, rolled: { from: string; to: string } | null, live: RangeFigures | null): Promise<TopProduct[]> => {
    const liveSums = sumProducts(live?.products ?? [])
    // The true top ten is among the rollup's top ten and the products with live figures (figures.ts ranks the same way).
    const rolledSums = rolled ? await fq.rolledUpTopProducts(ctx.db, rolled.from, rolled.to, TOP, [...liveSums.keys()]) : []
    const rolledById = new Map(rolledSums.map((row) => [row.product_id, row]))
    const top = [...sumProducts([...rolledById.values(), ...liveSums.values()]).values()].sort(byBestSelling).slice(0, TOP)
    const names = await deps.products.productNames(ctx, top.map((row) => row.product_id))
    return top.map((row) => ({ ...row, slug: names.get(row.product_id)?.slug ?? null, name: names.get(row.product_id)?.name ?? null }))
  }

  const topSearches = async (ctx: Ctx, rolled: { from: string; to: string } | null, live: RangeFigures | null): Promise<SearchFigures[]> => {
    const counts = new Map<string, number>()
    for (const row of live?.searches ?? []) counts.set(row.query, (counts.get(row.query) ?? 0) + row.searches)
    const liveQueries = [...counts.keys()]
    const rolledRows = rolled ? await fq.rolledUpTopSearches(ctx.db, rolled.from, rolled.to, TOP, liveQueries) : []
    for (const row of new Map(rolledRows.map((r) => [r.query, r])).values()) counts.set(row.query, (counts.get(row.query) ?? 0) + row.searches)
    return [...counts].map(([query, searches]) => ({ query, searches })).sort(byMostSearched).slice(0, TOP)
  }

  return {
    async dashboard(ctx: Ctx, query: DayQuery): Promise<Dashboard> {
      const { from, to } = daysOf(query)
      const { parts, live, days } = await dailyFigures(ctx, from, to)
      const [top_products, low_stock, zero_result_searches] = await Promise.all([
        topProducts(ctx, parts.rolled, live),
        deps.products.lowStock(ctx, { threshold: deps.lowStockThreshold, limit: LOW_STOCK_ROWS }),
        topSearches(ctx, parts.rolled, live),
      ])
      return { from, to, time_zone: timeZone, currency: deps.currency, rolled_up_through: parts.rolledThrough, ...summarize(days), top_products, low_stock, zero_result_searches }
    },

    async salesReport(ctx: Ctx, query: DayQuery & { interval?: Interval }): Promise<SalesReport> {
      const { from, to } = daysOf(query)
      const interval = query.interval ?? 'day'
      const { parts, days } = await dailyFigures(ctx, from, to)
      const periods = groupBy(days, (day) => periodStart(day.day, interval))
      const rows = [...periods].map(([period, periodDays]) => ({ period, ...summarize(periodDays) }))
      return { from, to, interval, time_zone: timeZone, currency: deps.currency, rolled_up_through: parts.rolledThrough, rows, totals: summarize(days) }
    },

    /**
     * Rolls up the days from the last one rolled up (again: a payment committed just after
     * midnight lands there) through yesterday; the first run starts at the first sale or event.
     * `from` rewrites from that day on (after a change of TIME_ZONE). Running it twice changes nothing.
     */
    async rollup(ctx: Ctx, options: { from?: string } = {}): Promise<{ from: string; to: string; days: number } | null> {
      const today = dayIn(timeZone)
      const yesterday = addDays(today, -1)
      if (options.from !== undefined) {
        const oldest = addDays(today, -deps.retentionDays)
        if (!isDay(options.from)) throw new ValidationError('`from` is a date as YYYY-MM-DD.', { from: ['A date as YYYY-MM-DD.'] })
        if (options.from < oldest) throw new ValidationError(`Days before ${oldest} cannot be rolled up again: their raw events are gone (ANALYTICS_RETENTION_DAYS).`, { from: [`Not before ${oldest}.`] })
      }
      const from = options.from ?? (await fq.lastRolledUpDay(ctx.db)) ?? (await firstDay(ctx))
      if (from === null || from > yesterday) return null
      for (const part of chunks(from, yesterday, ROLLUP_CHUNK_DAYS)) await fq.replaceDays(ctx.db, part, await compute(ctx, range(part.from, part.to)))
      return { from, to: yesterday, days: dayCount(from, yesterday) }
    },
  }

  /** The shop day of the first sale or event; null when there is neither. */
  async function firstDay(ctx: Ctx): Promise<string | null> {
    const [sale, event] = await Promise.all([deps.orders.firstSaleAt(ctx), fq.firstEventAt(ctx.db)])
    const first = [sale, event].filter((at): at is Date => at !== null).sort((a, b) => a.getTime() - b.getTime())[0]
    return first ? dayIn(timeZone, first) : null
  }
}

export type Reports = ReturnType<typeof createReports>
