/**
 * Staff reports: the dashboard and the sales series, and the rollup that keeps them fast.
 *
 * Figures come from the daily rollup tables for the days it has covered and are computed live from
 * the sources for the days after (normally only today), a day at a time, so an answer is the same
 * before and after the rollup runs. Orders and refunds are read through the orders and payments
 * services (their tables are the truth: a late worker cannot make a day incomplete); views, cart
 * adds, sessions and searches from the raw events. Days are the shop's days in TIME_ZONE. Answers
 * are reused for ANALYTICS_LIVE_CACHE_SECONDS.
 */
import type { Ctx } from '../../core/context.js'
import type { DayRange } from '../../core/db/days.js'
import { groupBy } from '../../core/collections.js'
import { ValidationError } from '../../core/errors.js'
import type { OrdersService } from '../orders/service.js'
import type { PaymentsService } from '../payments/service.js'
import type { LowStockDto, ProductsService } from '../products/service.js'
import { addDays, dayCount, dayIn, eachDay, isDay, periodStart, type Interval } from './days.js'
import * as fq from './figure-queries.js'
import { addProduct, byBestSelling, byMostSearched, emptyDay, shareRefunds, sumProducts, summarize, type DayFigures, type ProductFigures, type RangeFigures, type SearchFigures, type Summary } from './figures.js'

export interface ReportDeps {
  orders: Pick<OrdersService, 'salesByDay' | 'firstSaleAt' | 'lineTotals'>
  payments: Pick<PaymentsService, 'refundsByDay'>
  products: Pick<ProductsService, 'lowStock' | 'productNames'>
  timeZone: string
  currency: string
  lowStockThreshold: number
  /** Raw events older than this are gone: a day before it cannot be rolled up again. */
  retentionDays: number
  /** How long live figures are reused (0: computed for every request). */
  liveCacheMs: number
}

export interface DayQuery {
  from?: string
  to?: string
}

const DEFAULT_DAYS = 30
const MAX_DAYS = 3_660
const TOP = 10
const LOW_STOCK_ROWS = 20
/** Answers a process keeps for reuse (small: totals and top tens). */
const ANSWERS_KEPT = 32

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

type RollupState = Awaited<ReturnType<typeof fq.rollupState>>

/** Figures added up over days: per day, and per product and query over all of them. */
interface Totals {
  days: Map<string, DayFigures>
  products: Map<string, ProductFigures>
  searches: Map<string, number>
}

function addDay(totals: Totals, figures: RangeFigures): void {
  for (const day of figures.days) totals.days.set(day.day, day)
  for (const row of figures.products) addProduct(totals.products, row)
  for (const row of figures.searches) totals.searches.set(row.query, (totals.searches.get(row.query) ?? 0) + row.searches)
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

  /**
   * Every figure of one shop day, computed from the sources; without `rankings` only the day's
   * totals. One day at a time: memory stays bounded by the catalog, whatever the range.
   */
  const computeDay = async (ctx: Ctx, day: string, options: { rankings: boolean }): Promise<RangeFigures> => {
    const days = range(day, day)
    const [sales, refunds, sessions, productEvents, searches] = await Promise.all([
      deps.orders.salesByDay(ctx, days),
      deps.payments.refundsByDay(ctx, days),
      fq.sessionsByDay(ctx.db, days),
      options.rankings ? fq.productEventsByDay(ctx.db, days) : [],
      options.rankings ? fq.zeroResultSearchesByDay(ctx.db, days) : [],
    ])
    const refundShares = options.rankings ? shareRefunds(refunds, await deps.orders.lineTotals(ctx, [...new Set(refunds.map((refund) => refund.order_id))])) : []
    const products = sumProducts([
      ...productEvents,
      ...sales.products.map((row) => ({ product_id: row.product_id, units_sold: row.units, revenue: row.revenue })),
      ...refundShares,
    ])
    const totals: DayFigures = {
      day,
      sessions: sessions[0]?.sessions ?? 0,
      orders: sales.days[0]?.orders ?? 0,
      revenue: sales.days[0]?.revenue ?? 0,
      units_sold: sales.products.reduce((sum, row) => sum + row.units, 0),
      refunds: refunds.reduce((sum, row) => sum + row.amount, 0),
    }
    return { days: [totals], products: [...products.values()].map((sums) => ({ day, ...sums })), searches: searches.map((row) => ({ ...row, day })) }
  }

  /** The figures of from..to: rolled up where the rollup has been, computed a day at a time after. */
  const figuresOf = async (ctx: Ctx, state: RollupState, from: string, to: string, options: { rankings: boolean }): Promise<Totals> => {
    const rolledTo = state.through === null ? null : state.through < to ? state.through : to
    const rolled = rolledTo !== null && rolledTo >= from ? { from, to: rolledTo } : null
    const [rolledDays, products, searches] = rolled
      ? await Promise.all([
          fq.rolledUpDays(ctx.db, rolled.from, rolled.to),
          options.rankings ? fq.rolledUpProductSums(ctx.db, rolled.from, rolled.to) : [],
          options.rankings ? fq.rolledUpSearchSums(ctx.db, rolled.from, rolled.to) : [],
        ])
      : [[], [], []]
    const totals: Totals = { days: new Map(rolledDays.map((day) => [day.day, day])), products: sumProducts(products), searches: new Map(searches.map((row) => [row.query, row.searches])) }
    for (const day of eachDay(rolled ? addDays(rolled.to, 1) : from, to)) addDay(totals, await computeDay(ctx, day, options))
    return totals
  }

  /**
   * Answers this process reuses for LIVE_CACHE_SECONDS, keyed by the request and the rollup's
   * version (a new rollup shows at once): under load a dashboard costs a few index reads instead
   * of aggregating today's events per request. Concurrent requests share one computation.
   */
  const answers = new Map<string, { at: number; value: Promise<unknown> }>()
  const reuse = <T>(key: string, make: () => Promise<T>): Promise<T> => {
    if (deps.liveCacheMs <= 0) return make()
    const kept = answers.get(key)
    if (kept && Date.now() - kept.at < deps.liveCacheMs) return kept.value as Promise<T>
    const value = make()
    answers.delete(key)
    answers.set(key, { at: Date.now(), value })
    value.catch(() => answers.delete(key))
    if (answers.size > ANSWERS_KEPT) answers.delete(answers.keys().next().value!)
    return value
  }

  /** Everything the dashboard shows. */
  const dashboardFigures = async (ctx: Ctx, state: RollupState, from: string, to: string) => {
    const [totals, low_stock] = await Promise.all([figuresOf(ctx, state, from, to, { rankings: true }), deps.products.lowStock(ctx, { threshold: deps.lowStockThreshold, limit: LOW_STOCK_ROWS })])
    const top = [...totals.products.values()].sort(byBestSelling).slice(0, TOP)
    const names = await deps.products.productNames(ctx, top.map((row) => row.product_id))
    return {
      low_stock,
      ...summarize([...totals.days.values()]),
      top_products: top.map((row) => ({ ...row, slug: names.get(row.product_id)?.slug ?? null, name: names.get(row.product_id)?.name ?? null })),
      zero_result_searches: [...totals.searches].map(([query, searches]) => ({ query, searches })).sort(byMostSearched).slice(0, TOP),
    }
  }

  return {
    async dashboard(ctx: Ctx, query: DayQuery): Promise<Dashboard> {
      const { from, to } = daysOf(query)
      const state = await fq.rollupState(ctx.db)
      const figures = await reuse(`dashboard|${from}|${to}|${state.version}`, () => dashboardFigures(ctx, state, from, to))
      return { from, to, time_zone: timeZone, currency: deps.currency, rolled_up_through: state.through, ...figures }
    },

    async salesReport(ctx: Ctx, query: DayQuery & { interval?: Interval }): Promise<SalesReport> {
      const { from, to } = daysOf(query)
      const interval = query.interval ?? 'day'
      const state = await fq.rollupState(ctx.db)
      const figures = await reuse(`sales|${from}|${to}|${state.version}`, () => figuresOf(ctx, state, from, to, { rankings: false }))
      const days = eachDay(from, to).map((day) => figures.days.get(day) ?? emptyDay(day))
      const rows = [...groupBy(days, (day) => periodStart(day.day, interval))].map(([period, periodDays]) => ({ period, ...summarize(periodDays) }))
      return { from, to, interval, time_zone: timeZone, currency: deps.currency, rolled_up_through: state.through, rows, totals: summarize(days) }
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
      // A day per transaction: memory stays bounded by the catalog, and a long backfill commits as it goes.
      for (const day of eachDay(from, yesterday)) await fq.replaceDays(ctx.db, { from: day, to: day }, await computeDay(ctx, day, { rankings: true }))
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
