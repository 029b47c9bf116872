/**
 * The staff dashboard and sales report against figures worked out by hand from a small shop:
 * real purchases (checkout, dummy payment, a partial refund) and events, moved onto chosen
 * instants around midnight in New York, so a day boundary of a non-UTC TIME_ZONE is crossed.
 * The answers are the same before the rollup runs (all live), after it (rollup plus today live),
 * and after it runs again; the CSV export carries the same rows.
 */
import { randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import { ADDRESS, cartWith } from '../../../test/shopping.js'
import { rowsOf } from '../../core/db/index.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'
import type { OrderDto } from '../orders/service.js'
import { addDays, dayIn } from './days.js'
import type { Dashboard, SalesReport } from './reports.js'
import { analyticsEvents, dailyTotals, productDaily, zeroResultSearchesDaily } from './tables.js'

const ZONE = 'America/New_York'

let t: TestApp
let f: ReturnType<typeof factories>
let staff: { authorization: string }
beforeAll(async () => {
  t = await createTestApp({ env: { TIME_ZONE: ZONE } })
  f = factories(t)
  await seedPricingDefaults(db())
  staff = await f.auth(await f.user({ role: 'staff' }))
})
afterAll(() => t?.close())

const db = () => t.app.platform.database.db
const get = (url: string, headers: Record<string, string> = staff) => t.request({ url, headers })

/** The instant of a wall-clock time on a day in New York (PostgreSQL's rules, as the reports use). */
async function at(day: string, time: string): Promise<Date> {
  const [row] = rowsOf<{ at: Date | string }>(await db().execute(sql`SELECT ((${day}::date + ${time}::time) AT TIME ZONE ${ZONE}) AS at`))
  return new Date(row!.at)
}

/** A customer buys `lines` and pays with the dummy provider; the payment is then moved to `paidAt`. */
async function purchase(lines: Array<[string, number]>, paidAt: Date): Promise<OrderDto> {
  const auth = await f.auth(await f.user())
  await cartWith(t, lines, { auth })
  const order = (await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...auth, 'idempotency-key': randomUUID() }, payload: { shipping_address: ADDRESS, shipping_method: 'standard' } })).json<OrderDto>()
  expect((await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/`, headers: auth })).statusCode).toBe(200)
  await t.settle()
  await db().execute(sql`UPDATE order_events SET created_at = ${paidAt.toISOString()}::timestamptz WHERE order_id = ${order.id}::uuid AND to_status = 'paid'`)
  return order
}

async function refund(order: OrderDto, amount: number, succeededAt: Date): Promise<void> {
  const res = await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/refund/`, headers: staff, payload: { amount } })
  expect(res.statusCode, res.body).toBe(201)
  await t.settle()
  await db().execute(sql`UPDATE payment_refunds SET updated_at = ${succeededAt.toISOString()}::timestamptz WHERE payment_id = ${order.payment!.id}::uuid`)
}

const lineTotal = (order: OrderDto, sku: string) => order.items.filter((item) => item.sku === sku).reduce((sum, item) => sum + item.total, 0)

// The shop: days D (three days ago), D+1 and today, in New York.
const today = dayIn(ZONE)
const D = addDays(today, -3)
const D1 = addDays(today, -2)
const D2 = addDays(today, -1)
let P: { id: string; slug: string; skus: string[] }
let Q: { id: string; slug: string; skus: string[] }
let low: { id: string; slug: string; skus: string[] }
let A: OrderDto
let B: OrderDto
let E: OrderDto

beforeAll(async () => {
  P = await f.product({ stock: [50], price: 2_500 })
  Q = await f.product({ stock: [50], price: 1_200 })
  low = await f.product({ stock: [2], price: 900 })
  // A: paid at 23:30 on D in New York, which is already D+1 in UTC.
  A = await purchase([[P.skus[0]!, 2]], await at(D, '23:30'))
  // B: paid half an hour into D+1.
  B = await purchase([[P.skus[0]!, 1], [Q.skus[0]!, 1]], await at(D1, '00:30'))
  // E: paid today (counted live, whatever the rollup did).
  E = await purchase([[Q.skus[0]!, 1]], await at(today, '00:00:30'))
  // Placed, never paid: not a sale.
  const auth = await f.auth(await f.user())
  await cartWith(t, [[P.skus[0]!, 1]], { auth })
  expect((await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...auth, 'idempotency-key': randomUUID() }, payload: { shipping_address: ADDRESS, shipping_method: 'standard' } })).statusCode).toBe(201)
  // 700 of A refunded, succeeding on D+1.
  await refund(A, 700, await at(D1, '10:00'))

  // Sessions: s1 on D and again after midnight (counted on both days), s2 on D+1, s3 today.
  const s = { s1: `s1-${randomUUID()}`, s2: `s2-${randomUUID()}`, s3: `s3-${randomUUID()}` }
  await db().insert(analyticsEvents).values([
    { type: 'product_view', product_id: P.id, session_id: s.s1, occurred_at: await at(D, '22:00') },
    { type: 'add_to_cart', product_id: P.id, session_id: s.s1, occurred_at: await at(D, '23:10') },
    { type: 'checkout_started', session_id: s.s1, occurred_at: await at(D1, '00:10') },
    { type: 'product_view', product_id: Q.id, session_id: s.s2, occurred_at: await at(D1, '01:00') },
    { type: 'product_view', product_id: Q.id, session_id: s.s2, occurred_at: await at(D1, '01:05') },
    { type: 'product_view', product_id: P.id, session_id: s.s3, occurred_at: await at(today, '00:00:40') },
    // Searches the API answered: the same query twice without results (case and spaces aside), one with.
    { type: 'search', query: 'Wool Hat', result_count: 0, occurred_at: await at(D, '21:00') },
    { type: 'search', query: ' wool  hat', result_count: 0, occurred_at: await at(D1, '02:00') },
    { type: 'search', query: 'scarf', result_count: 3, occurred_at: await at(D1, '02:30') },
    // A search a client reported has no result count: not a zero-result search.
    { type: 'search', query: 'umbrella', occurred_at: await at(D1, '03:00') },
  ])
})

/** The figures worked out by hand from the purchases above. */
function expected() {
  const revenue = A.totals.total + B.totals.total + E.totals.total
  const pRevenue = lineTotal(A, P.skus[0]!) + lineTotal(B, P.skus[0]!)
  return {
    summary: {
      orders: 3,
      revenue,
      refunds: 700,
      net_revenue: revenue - 700,
      average_order_value: Math.round(revenue / 3),
      units_sold: 5,
      sessions: 1 + 2 + 1,
      conversion_rate: 0.75,
    },
    P: { product_id: P.id, slug: P.slug, views: 2, cart_adds: 1, units_sold: 3, revenue: pRevenue, refunds: Math.floor((700 * lineTotal(A, P.skus[0]!)) / A.totals.total) },
    Q: { product_id: Q.id, slug: Q.slug, views: 2, cart_adds: 0, units_sold: 2, revenue: lineTotal(B, Q.skus[0]!) + lineTotal(E, Q.skus[0]!), refunds: 0 },
    days: [
      { period: D, orders: 1, revenue: A.totals.total, refunds: 0, units_sold: 2, sessions: 1 },
      { period: D1, orders: 1, revenue: B.totals.total, refunds: 700, units_sold: 2, sessions: 2 },
      { period: D2, orders: 0, revenue: 0, refunds: 0, units_sold: 0, sessions: 0 },
      { period: today, orders: 1, revenue: E.totals.total, refunds: 0, units_sold: 1, sessions: 1 },
    ],
  }
}

async function dashboard(): Promise<Dashboard> {
  const res = await get(`/api/analytics/dashboard/?from=${D}&to=${today}`)
  expect(res.statusCode, res.body).toBe(200)
  return res.json<Dashboard>()
}

async function salesByDay(): Promise<SalesReport> {
  const res = await get(`/api/analytics/reports/sales/?from=${D}&to=${today}&interval=day`)
  expect(res.statusCode, res.body).toBe(200)
  return res.json<SalesReport>()
}

function expectFigures(board: Dashboard, report: SalesReport) {
  const want = expected()
  expect(board).toMatchObject({ from: D, to: today, time_zone: ZONE, currency: 'USD', ...want.summary })
  expect(board.top_products.slice(0, 2)).toEqual([expect.objectContaining(want.P), expect.objectContaining(want.Q)])
  expect(board.top_products).toHaveLength(2)
  expect(board.zero_result_searches).toEqual([{ query: 'wool hat', searches: 2 }])
  expect(report.rows.map((row) => ({ period: row.period, orders: row.orders, revenue: row.revenue, refunds: row.refunds, units_sold: row.units_sold, sessions: row.sessions }))).toEqual(want.days)
  expect(report.totals).toEqual(want.summary)
}

async function rollupTables() {
  return {
    days: await db().select().from(dailyTotals).orderBy(dailyTotals.day),
    products: await db().select().from(productDaily).orderBy(productDaily.day, productDaily.product_id),
    searches: await db().select().from(zeroResultSearchesDaily).orderBy(zeroResultSearchesDaily.day, zeroResultSearchesDaily.query),
  }
}

const rollup = async (payload: { from?: string } = {}) => {
  await t.app.platform.queue.enqueue('analytics.rollup', payload)
  await t.settle()
  expect((await t.app.platform.queue.failed()).filter((job) => job.task === 'analytics.rollup')).toEqual([])
}

describe('dashboard and sales report', () => {
  it('equal the hand-worked figures before the rollup (all computed live) and after it (rollup plus today), in New York days', async () => {
    const before = { board: await dashboard(), report: await salesByDay() }
    expect(before.board.rolled_up_through).toBeNull()
    expectFigures(before.board, before.report)

    await rollup()
    const tables = await rollupTables()
    // The first run starts at the first sale or event (D) and ends yesterday; quiet days get a row.
    expect(tables.days.map((row) => row.day)).toEqual([D, D1, D2])
    // A's payment at 23:30 belongs to D in New York (it is D+1 in UTC).
    expect(tables.days[0]).toMatchObject({ orders: 1, revenue: A.totals.total, sessions: 1 })

    const after = { board: await dashboard(), report: await salesByDay() }
    expect(after.board.rolled_up_through).toBe(D2)
    expectFigures(after.board, after.report)
    expect({ ...after.board, rolled_up_through: null }).toEqual(before.board)
  })

  it('rolls up idempotently: running again, or again from D, changes no row', async () => {
    await rollup()
    const first = await rollupTables()
    await rollup()
    await rollup({ from: D })
    const again = await rollupTables()
    const strip = (tables: typeof first) => ({ ...tables, days: tables.days.map(({ rolled_up_at: _, ...row }) => row) })
    expect(strip(again)).toEqual(strip(first))
  })

  it('picks up what committed late for the last day rolled up, on its next run', async () => {
    await rollup()
    const session = `late-${randomUUID()}`
    await db().insert(analyticsEvents).values({ type: 'product_view', product_id: Q.id, session_id: session, occurred_at: await at(D2, '23:59:59') })
    const [stale] = await db().select().from(dailyTotals).where(eq(dailyTotals.day, D2))
    expect(stale!.sessions).toBe(0)
    const viewsOfQ = async () => (await dashboard()).top_products.find((row) => row.product_id === Q.id)!.views
    expect(await viewsOfQ()).toBe(2)
    await rollup()
    const [fresh] = await db().select().from(dailyTotals).where(eq(dailyTotals.day, D2))
    expect(fresh!.sessions).toBe(1)
    // The rankings a process keeps are keyed by the rollup's version: the new run shows at once.
    expect(await viewsOfQ()).toBe(3)
    await db().delete(analyticsEvents).where(eq(analyticsEvents.session_id, session))
    await rollup()
  })

  it('sums weeks from Monday and months from the 1st, the totals unchanged', async () => {
    for (const interval of ['week', 'month'] as const) {
      const res = await get(`/api/analytics/reports/sales/?from=${D}&to=${today}&interval=${interval}`)
      expect(res.statusCode, res.body).toBe(200)
      const report = res.json<SalesReport>()
      expect(report.totals).toEqual(expected().summary)
      expect(report.rows.reduce((sum, row) => sum + row.revenue, 0)).toBe(expected().summary.revenue)
      for (const row of report.rows) {
        if (interval === 'week') expect(new Date(`${row.period}T00:00:00Z`).getUTCDay()).toBe(1)
        else expect(row.period.endsWith('-01')).toBe(true)
      }
    }
  })

  it('exports the rows as a streamed CSV download', async () => {
    const json = await salesByDay()
    const res = await get(`/api/analytics/reports/sales/?from=${D}&to=${today}&format=csv`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8')
    expect(res.headers['content-disposition']).toBe(`attachment; filename="sales-${D}-${today}-day.csv"`)
    const [header, ...lines] = res.body.trim().split('\n')
    expect(header).toBe('period,orders,revenue,refunds,net_revenue,average_order_value,units_sold,sessions,conversion_rate,currency')
    expect(lines).toEqual(json.rows.map((row) => [row.period, row.orders, row.revenue, row.refunds, row.net_revenue, row.average_order_value ?? '', row.units_sold, row.sessions, row.conversion_rate ?? '', 'USD'].join(',')))
  })

  it('lists the variants for sale at or below LOW_STOCK_THRESHOLD, fewest first', async () => {
    const board = await dashboard()
    expect(board.low_stock).toEqual([expect.objectContaining({ product_id: low.id, sku: low.skus[0], on_hand: 2, available: 2 })])
  })
})

describe('report requests', () => {
  it('default to the 30 days up to today', async () => {
    const board = (await get('/api/analytics/dashboard/')).json<Dashboard>()
    expect([board.from, board.to]).toEqual([addDays(today, -29), today])
    expect(board.orders).toBe(3)
  })

  it('refuse bad dates, reversed or too long ranges, unknown parameters and intervals (422)', async () => {
    for (const [url, field] of [
      [`/api/analytics/dashboard/?from=${today.slice(0, 4)}-02-30`, 'from'],
      ['/api/analytics/dashboard/?to=yesterday', 'to'],
      [`/api/analytics/dashboard/?from=${today}&to=${D}`, 'from'],
      [`/api/analytics/dashboard/?from=2000-01-01&to=${today}`, 'to'],
      ['/api/analytics/dashboard/?form=2026-01-01', 'form'],
      ['/api/analytics/reports/sales/?interval=year', 'interval'],
      ['/api/analytics/reports/sales/?format=xlsx', 'format'],
    ] as const) {
      const res = await get(url)
      expectProblem(res, 422)
      expect(Object.keys(res.json<{ errors: Record<string, unknown> }>().errors), url).toContain(field)
    }
  })

  it('are for staff: 401 without a token, 403 for a customer', async () => {
    const customer = await f.auth(await f.user())
    for (const url of ['/api/analytics/dashboard/', '/api/analytics/reports/sales/']) {
      expectProblem(await get(url, {}), 401)
      expectProblem(await get(url, customer), 403)
    }
  })

  it('refuse to roll up again days whose raw events are gone', async () => {
    const from = addDays(today, -(t.settings.analytics.retentionDays + 1))
    const before = await rollupTables()
    await t.app.platform.queue.enqueue('analytics.rollup', { from })
    await t.settle()
    const failed = (await t.app.platform.queue.failed()).filter((job) => job.task === 'analytics.rollup')
    expect(failed.map((job) => job.error)).toEqual([expect.stringMatching(/cannot be rolled up again: their raw events are gone/)])
    expect(await rollupTables()).toEqual(before)
  })
})

describe('with ANALYTICS_LIVE_CACHE_SECONDS', () => {
  let cached: TestApp
  beforeAll(async () => {
    cached = await createTestApp({ settings: { analytics: { liveCacheMs: 60_000 } } })
  })
  afterAll(async () => {
    vi.useRealTimers()
    await cached?.close()
  })

  it('reuses live figures for that long, and shows a new rollup at once', async () => {
    // Noon (UTC) of today: a minute later is still today.
    vi.useFakeTimers({ toFake: ['Date'], now: new Date(`${dayIn('UTC')}T12:00:00Z`) })
    const boss = await factories(cached).auth(await factories(cached).user({ role: 'staff' }))
    const sessions = async () => (await cached.request({ url: '/api/analytics/dashboard/', headers: boss })).json<Dashboard>().sessions
    const visit = async (occurred_at: Date) => cached.app.platform.database.db.insert(analyticsEvents).values({ type: 'checkout_started', session_id: `c-${randomUUID()}`, occurred_at })

    await visit(new Date())
    expect(await sessions()).toBe(1)
    await visit(new Date())
    expect(await sessions()).toBe(1)
    vi.setSystemTime(Date.now() + 59_000)
    expect(await sessions()).toBe(1)
    vi.setSystemTime(Date.now() + 2_000)
    expect(await sessions()).toBe(2)

    // A visit yesterday is invisible while the answer is reused, until the rollup writes it.
    await visit(new Date(Date.now() - 86_400_000))
    expect(await sessions()).toBe(2)
    await cached.app.platform.queue.enqueue('analytics.rollup', {})
    await cached.settle()
    expect(await sessions()).toBe(3)
  })
})
