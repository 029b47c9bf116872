/** Queries behind the reports: raw events counted per shop day, and the daily rollup tables. */
import { between, max, min, sql } from 'drizzle-orm'
import { rowsOf, type Db } from '../../core/db/index.js'
import { dayBounds, localDay, type DayRange } from '../../core/db/days.js'
import type { DayFigures, ProductFigures, RangeFigures, SearchFigures } from './figures.js'
import { analyticsEvents, dailyTotals, productDaily, zeroResultSearchesDaily } from './tables.js'

const inRange = (range: DayRange) => {
  const { start, end } = dayBounds(range)
  return sql`occurred_at >= ${start} AND occurred_at < ${end}`
}

/** Product views and cart adds per day and product. */
export async function productEventsByDay(db: Db, range: DayRange): Promise<Array<{ day: string; product_id: string; views: number; cart_adds: number }>> {
  return rowsOf(
    await db.execute(sql`
      SELECT ${localDay(sql`occurred_at`, range.timeZone)} AS day, product_id,
        (count(*) FILTER (WHERE type = 'product_view'))::int AS views,
        (count(*) FILTER (WHERE type = 'add_to_cart'))::int AS cart_adds
      FROM analytics_events
      WHERE ${inRange(range)} AND type IN ('product_view', 'add_to_cart') AND product_id IS NOT NULL
      GROUP BY 1, 2`),
  )
}

/** Distinct sessions per day. */
export async function sessionsByDay(db: Db, range: DayRange): Promise<Array<{ day: string; sessions: number }>> {
  return rowsOf(
    await db.execute(sql`
      SELECT ${localDay(sql`occurred_at`, range.timeZone)} AS day, count(DISTINCT session_id)::int AS sessions
      FROM analytics_events
      WHERE ${inRange(range)} AND session_id IS NOT NULL
      GROUP BY 1`),
  )
}

/**
 * Searches the API answered with no product, per day and query (lower case, spaces collapsed).
 * Only the server's own records carry a result count: searches clients report are not counted.
 */
export async function zeroResultSearchesByDay(db: Db, range: DayRange): Promise<Array<{ day: string; query: string; searches: number }>> {
  return rowsOf(
    await db.execute(sql`
      SELECT ${localDay(sql`occurred_at`, range.timeZone)} AS day, lower(regexp_replace(btrim(query), '\\s+', ' ', 'g')) AS query, count(*)::int AS searches
      FROM analytics_events
      WHERE ${inRange(range)} AND type = 'search' AND result_count = 0
      GROUP BY 1, 2`),
  )
}

export async function firstEventAt(db: Db): Promise<Date | null> {
  const [row] = await db.select({ at: min(analyticsEvents.occurred_at) }).from(analyticsEvents)
  return row?.at ?? null
}

/**
 * How far the rollup has come (the newest day rolled up; null before the first run) and a version
 * that changes whenever it writes (its newest write).
 */
export async function rollupState(db: Db): Promise<{ through: string | null; version: string | null }> {
  const [row] = await db.select({ through: max(dailyTotals.day), version: sql<string | null>`max(${dailyTotals.rolled_up_at})::text` }).from(dailyTotals)
  return { through: row?.through ?? null, version: row?.version ?? null }
}

const ROWS_PER_INSERT = 5_000

/**
 * Replaces the rollup rows of `from`..`to` with these figures, in one transaction under a lock of
 * its own (two rollups at once write one after the other, the same rows).
 */
export async function replaceDays(db: Db, days: { from: string; to: string }, figures: RangeFigures): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('analytics_rollup'))`)
    await tx.delete(dailyTotals).where(between(dailyTotals.day, days.from, days.to))
    await tx.delete(productDaily).where(between(productDaily.day, days.from, days.to))
    await tx.delete(zeroResultSearchesDaily).where(between(zeroResultSearchesDaily.day, days.from, days.to))
    for (let i = 0; i < figures.days.length; i += ROWS_PER_INSERT) await tx.insert(dailyTotals).values(figures.days.slice(i, i + ROWS_PER_INSERT))
    for (let i = 0; i < figures.products.length; i += ROWS_PER_INSERT) await tx.insert(productDaily).values(figures.products.slice(i, i + ROWS_PER_INSERT))
    for (let i = 0; i < figures.searches.length; i += ROWS_PER_INSERT) await tx.insert(zeroResultSearchesDaily).values(figures.searches.slice(i, i + ROWS_PER_INSERT))
  })
}

export async function rolledUpDays(db: Db, from: string, to: string): Promise<DayFigures[]> {
  return db
    .select({ day: dailyTotals.day, sessions: dailyTotals.sessions, orders: dailyTotals.orders, revenue: dailyTotals.revenue, units_sold: dailyTotals.units_sold, refunds: dailyTotals.refunds })
    .from(dailyTotals)
    .where(between(dailyTotals.day, from, to))
}

/** Each product's sums over the days. */
export async function rolledUpProductSums(db: Db, from: string, to: string): Promise<ProductFigures[]> {
  return db
    .select({
      product_id: productDaily.product_id,
      views: sql<number>`sum(${productDaily.views})::int`,
      cart_adds: sql<number>`sum(${productDaily.cart_adds})::int`,
      units_sold: sql<number>`sum(${productDaily.units_sold})::int`,
      revenue: sql<number>`sum(${productDaily.revenue})::float8`,
      refunds: sql<number>`sum(${productDaily.refunds})::float8`,
    })
    .from(productDaily)
    .where(between(productDaily.day, from, to))
    .groupBy(productDaily.product_id)
}

/** Each zero-result query's count over the days. */
export async function rolledUpSearchSums(db: Db, from: string, to: string): Promise<SearchFigures[]> {
  return db
    .select({ query: zeroResultSearchesDaily.query, searches: sql<number>`sum(${zeroResultSearchesDaily.searches})::int` })
    .from(zeroResultSearchesDaily)
    .where(between(zeroResultSearchesDaily.day, from, to))
    .groupBy(zeroResultSearchesDaily.query)
}
