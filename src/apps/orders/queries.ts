/** Drizzle queries of the orders app: one statement each. */
import { and, asc, desc, eq, inArray, lt, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { isUniqueViolation } from '../../core/db/index.js'
import { orderEvents, orderItems, orders, type OrderStatus } from './tables.js'

export type OrderRow = typeof orders.$inferSelect
export type OrderItemRow = typeof orderItems.$inferSelect
export type OrderEventRow = typeof orderEvents.$inferSelect

/** Inserts the order; answers null when its number is taken (the caller draws another). */
export async function insertOrder(db: Db, values: typeof orders.$inferInsert): Promise<OrderRow | null> {
  try {
    const [row] = await db.insert(orders).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) return null
    throw err
  }
}

export async function insertItems(db: Db, values: Array<typeof orderItems.$inferInsert>): Promise<void> {
  if (values.length > 0) await db.insert(orderItems).values(values)
}

export async function insertEvent(db: Db, values: typeof orderEvents.$inferInsert): Promise<void> {
  await db.insert(orderEvents).values(values)
}

export async function findByNumber(db: Db, number: string): Promise<OrderRow | undefined> {
  const [row] = await db.select().from(orders).where(eq(orders.number, number))
  return row
}

export async function lockByNumber(db: Db, number: string): Promise<OrderRow | undefined> {
  const [row] = await db.select().from(orders).where(eq(orders.number, number)).for('update')
  return row
}

export async function findById(db: Db, id: string): Promise<OrderRow | undefined> {
  const [row] = await db.select().from(orders).where(eq(orders.id, id))
  return row
}

export async function lockById(db: Db, id: string): Promise<OrderRow | undefined> {
  const [row] = await db.select().from(orders).where(eq(orders.id, id)).for('update')
  return row
}

/** The status an order was cancelled from (its latest cancellation), or null. */
export async function cancelledFrom(db: Db, orderId: string): Promise<string | null> {
  const [row] = await db
    .select({ from: orderEvents.from_status })
    .from(orderEvents)
    .where(and(eq(orderEvents.order_id, orderId), eq(orderEvents.to_status, 'cancelled')))
    .orderBy(desc(orderEvents.created_at))
    .limit(1)
  return row?.from ?? null
}

export async function itemsOf(db: Db, orderIds: string[]): Promise<OrderItemRow[]> {
  if (orderIds.length === 0) return []
  return db.select().from(orderItems).where(inArray(orderItems.order_id, orderIds)).orderBy(asc(orderItems.order_id), asc(orderItems.sku))
}

export async function eventsOf(db: Db, orderId: string): Promise<OrderEventRow[]> {
  return db.select().from(orderEvents).where(eq(orderEvents.order_id, orderId)).orderBy(asc(orderEvents.created_at), asc(orderEvents.id))
}

export async function setStatus(db: Db, id: string, status: OrderStatus, extra: Partial<typeof orders.$inferInsert> = {}): Promise<OrderRow> {
  const [row] = await db
    .update(orders)
    .set({ ...extra, status, updated_at: sql`now()` })
    .where(eq(orders.id, id))
    .returning()
  return row!
}

export interface OrderFilter {
  userId?: string
  status?: OrderStatus
  email?: string
  /** Keyset: orders strictly older than this (created_at text, id). */
  before?: { created_at: string; id: string }
  limit: number
}

/** Newest first, keyset on (created_at, id); `limit + 1` rows so the caller knows if more follow. */
export async function listOrders(db: Db, filter: OrderFilter) {
  const conditions: SQL[] = []
  if (filter.userId) conditions.push(eq(orders.user_id, filter.userId))
  if (filter.status) conditions.push(eq(orders.status, filter.status))
  if (filter.email) conditions.push(sql`lower(${orders.email}) = lower(${filter.email})`)
  if (filter.before) conditions.push(sql`(${orders.created_at}, ${orders.id}) < (${filter.before.created_at}::timestamptz, ${filter.before.id}::uuid)`)
  return db
    .select({ order: orders, cursor_time: sql<string>`to_char(${orders.created_at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` })
    .from(orders)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(orders.created_at), desc(orders.id))
    .limit(filter.limit + 1)
}

/** Unpaid orders whose reservation ran out, locked, skipping any another worker holds. */
export async function lockExpired(db: Db, limit: number): Promise<OrderRow[]> {
  return db
    .select()
    .from(orders)
    .where(and(eq(orders.status, 'pending_payment'), lt(orders.reservation_expires_at, sql`now()`)))
    .orderBy(asc(orders.reservation_expires_at))
    .limit(limit)
    .for('update', { skipLocked: true })
}

/** Whether the user has a paid (or later, not cancelled or refunded) order with this product. */
export async function hasBought(db: Db, userId: string, productId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: orders.id })
    .from(orders)
    .innerJoin(orderItems, eq(orderItems.order_id, orders.id))
    .where(and(eq(orders.user_id, userId), eq(orderItems.product_id, productId), inArray(orders.status, ['paid', 'processing', 'shipped', 'delivered', 'partially_refunded'])))
    .limit(1)
  return row !== undefined
}
