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
/** Ranges whose rolled-up rankings a process keeps. */
const RANKINGS_KEPT = 8
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
    const state = await fq.rollupState(ctx.db)
    const rolledTo = state.through === null ? null : state.through < to ? state.through : to
    const rolled = rolledTo !== null && rolledTo >= from ? { from, to: rolledTo } : null
    const liveFrom = rolled ? addDays(rolled.to, 1) : from
    return { state, rolled, live: liveFrom <= to ? range(liveFrom, to) : null }
  }

  /** Daily figures of from..to: rolled up where the rollup has been, computed after. */
  const dailyFigures = async (ctx: Ctx, from: string, to: string) => {
    const parts = await split(ctx, from, to)
    const [rolledDays, live] = await Promise.all([parts.rolled ? fq.rolledUpDays(ctx.db, parts.rolled.from, parts.rolled.to) : [], parts.live ? compute(ctx, parts.live) : null])
    const known = new Map([...rolledDays, ...(live?.days ?? [])].map((day) => [day.day, day]))
    return { parts, live, days: eachDay(from, to).map((day) => known.get(day) ?? emptyDay(day)) }
  }

  /**
   * Product and search sums over rolled-up days. They change only when the rollup writes, so each
   * process keeps the last few (keyed by the rollup's version); concurrent requests share one query.
   */
  const rankings = new Map<string, Promise<{ products: ProductFigures[]; searches: SearchFigures[] }>>()
  const rolledRankings = (ctx: Ctx, days: { from: string; to: string }, version: string | null) => {
    const key = `${days.from}|${days.to}|${version}`
    let sums = rankings.get(key)
    if (!sums) {
      sums = Promise.all([fq.rolledUpProductSums(ctx.db, days.from, days.to), fq.rolledUpSearchSums(ctx.db, days.from, days.to)]).then(([products, searches]) => ({ products, searches }))
      rankings.set(key, sums)
      sums.catch(() => rankings.delete(key))
      if (rankings.size > RANKINGS_KEPT) rankings.delete(rankings.keys().next().value!)
    }
    return sums
  }

  /** The ten best sellers and the ten most frequent zero-result searches over rolled-up and live days. */
  const rankingsOf = async (ctx: Ctx, parts: Awaited<ReturnType<typeof split>>, live: RangeFigures | null) => {
    const rolled = parts.rolled ? await rolledRankings(ctx, parts.rolled, parts.state.version) : { products: [], searches: [] }
    const top = [...sumProducts([...rolled.products, ...(live?.products ?? [])]).values()].sort(byBestSelling).slice(0, TOP)
    const searches = new Map<string, number>()
    for (const row of [...rolled.searches, ...(live?.searches ?? [])]) searches.set(row.query, (searches.get(row.query) ?? 0) + row.searches)
    const names = await deps.products.productNames(ctx, top.map((row) => row.product_id))
    return {
      top_products: top.map((row) => ({ ...row, slug: names.get(row.product_id)?.slug ?? null, name: names.get(row.product_id)?.name ?? null })),
      zero_result_searches: [...searches].map(([query, count]) => ({ query, searches: count })).sort(byMostSearched).slice(0, TOP),
    }
  }

  return {
    async dashboard(ctx: Ctx, query: DayQuery): Promise<Dashboard> {
      const { from, to } = daysOf(query)
      const { parts, live, days } = await dailyFigures(ctx, from, to)
      const [rankings, low_stock] = await Promise.all([rankingsOf(ctx, parts, live), deps.products.lowStock(ctx, { threshold: deps.lowStockThreshold, limit: LOW_STOCK_ROWS })])
      return { from, to, time_zone: timeZone, currency: deps.currency, rolled_up_through: parts.state.through, ...summarize(days), top_products: rankings.top_products, low_stock, zero_result_searches: rankings.zero_result_searches }
    },

    async salesReport(ctx: Ctx, query: DayQuery & { interval?: Interval }): Promise<SalesReport> {
      const { from, to } = daysOf(query)
      const interval = query.interval ?? 'day'
      const { parts, days } = await dailyFigures(ctx, from, to)
      const periods = groupBy(days, (day) => periodStart(day.day, interval))
      const rows = [...periods].map(([period, periodDays]) => ({ period, ...summarize(periodDays) }))
      return { from, to, interval, time_zone: timeZone, currency: deps.currency, rolled_up_through: parts.state.through, rows, totals: summarize(days) }
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
      const from = options.from ?? (await fq.rollupState(ctx.db)).through ?? (await firstDay(ctx))
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
