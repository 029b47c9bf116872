/**
 * Sales figures for analytics. An order counts on the shop day it was first paid (a reinstated
 * order's second payment does not count again); its revenue is its total, a product's the totals
 * of its lines. Served by `order_events_paid_idx`.
 */
import { sql } from 'drizzle-orm'
import { rowsOf, type Db } from '../../core/db/index.js'
import { dayBounds, localDay, type DayRange } from '../../core/db/days.js'

/** The orders first paid in the range, with the shop day of that payment. */
function firstPayments(range: DayRange) {
  const { start, end } = dayBounds(range)
  return sql`
    SELECT e.order_id, ${localDay(sql`e.created_at`, range.timeZone)} AS day
    FROM order_events e
    WHERE e.to_status = 'paid' AND e.created_at >= ${start} AND e.created_at < ${end}
      AND NOT EXISTS (
        SELECT 1 FROM order_events earlier
        WHERE earlier.order_id = e.order_id AND earlier.to_status = 'paid'
          AND (earlier.created_at, earlier.id) < (e.created_at, e.id))`
}

export async function paidOrdersByDay(db: Db, range: DayRange): Promise<Array<{ day: string; orders: number; revenue: number }>> {
  const result = await db.execute(sql`
    SELECT f.day, count(*)::int AS orders, sum(o.total)::bigint AS revenue
    FROM (${firstPayments(range)}) f JOIN orders o ON o.id = f.order_id
    GROUP BY f.day`)
  return rowsOf<{ day: string; orders: number; revenue: string }>(result).map((row) => ({ ...row, revenue: Number(row.revenue) }))
}

export async function paidUnitsByProductDay(db: Db, range: DayRange): Promise<Array<{ day: string; product_id: string; units: number; revenue: number }>> {
  const result = await db.execute(sql`
    SELECT f.day, i.product_id, sum(i.quantity)::int AS units, sum(i.total)::bigint AS revenue
    FROM (${firstPayments(range)}) f JOIN order_items i ON i.order_id = f.order_id
    GROUP BY f.day, i.product_id`)
  return rowsOf<{ day: string; product_id: string; units: number; revenue: string }>(result).map((row) => ({ ...row, revenue: Number(row.revenue) }))
}

/** When the first order was paid (null before any). */
export async function firstPaidAt(db: Db): Promise<Date | null> {
  const [row] = rowsOf<{ at: Date | string | null }>(await db.execute(sql`SELECT min(created_at) AS at FROM order_events WHERE to_status = 'paid'`))
  return row?.at ? new Date(row.at) : null
}

/** Each line of these orders with its total and its order's total (a refund is shared by these). */
export async function lineTotals(db: Db, orderIds: string[]): Promise<Array<{ order_id: string; product_id: string; line_total: number; order_total: number }>> {
  if (orderIds.length === 0) return []
  const result = await db.execute(sql`
    SELECT i.order_id, i.product_id, i.total AS line_total, o.total AS order_total
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE i.order_id IN (${sql.join(orderIds.map((id) => sql`${id}::uuid`), sql`, `)})`)
  return rowsOf(result)
}
