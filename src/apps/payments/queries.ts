/** Drizzle queries of the payments app: one statement each. */
import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm'
import { deleteInBatches, rowsOf, type Db } from '../../core/db/index.js'
import { dayBounds, localDay, type DayRange } from '../../core/db/days.js'
import { payments, refunds, webhookEvents, type PaymentStatus, type RefundStatus } from './tables.js'

export type PaymentRow = typeof payments.$inferSelect
export type RefundRow = typeof refunds.$inferSelect

/** Inserts the payment; when another request stored the same provider intent first, answers that one. */
export async function insertPayment(db: Db, values: typeof payments.$inferInsert): Promise<PaymentRow> {
  const [inserted] = await db.insert(payments).values(values).onConflictDoNothing({ target: [payments.provider, payments.provider_ref] }).returning()
  if (inserted) return inserted
  const [existing] = await db.select().from(payments).where(and(eq(payments.provider, values.provider), eq(payments.provider_ref, values.provider_ref)))
  return existing!
}

export async function findPayment(db: Db, id: string): Promise<PaymentRow | undefined> {
  const [row] = await db.select().from(payments).where(eq(payments.id, id))
  return row
}

export async function lockPayment(db: Db, id: string): Promise<PaymentRow | undefined> {
  const [row] = await db.select().from(payments).where(eq(payments.id, id)).for('update')
  return row
}

export async function lockPaymentByRef(db: Db, provider: string, ref: string): Promise<PaymentRow | undefined> {
  const [row] = await db.select().from(payments).where(and(eq(payments.provider, provider), eq(payments.provider_ref, ref))).for('update')
  return row
}

/** An order's payments, newest first. */
export async function paymentsOfOrder(db: Db, orderId: string): Promise<PaymentRow[]> {
  return db.select().from(payments).where(eq(payments.order_id, orderId)).orderBy(desc(payments.created_at), desc(payments.id))
}

/** The newest payment of each order. */
export async function latestPayments(db: Db, orderIds: string[]): Promise<PaymentRow[]> {
  if (orderIds.length === 0) return []
  return db
    .selectDistinctOn([payments.order_id])
    .from(payments)
    .where(inArray(payments.order_id, orderIds))
    .orderBy(payments.order_id, desc(payments.created_at), desc(payments.id))
}

export async function setPayment(db: Db, id: string, values: Partial<typeof payments.$inferInsert>): Promise<PaymentRow> {
  const [row] = await db
    .update(payments)
    .set({ ...values, updated_at: sql`now()` })
    .where(eq(payments.id, id))
    .returning()
  return row!
}

/** Payments in `status` untouched since before `olderThan`, oldest first. */
export async function paymentsIn(db: Db, status: PaymentStatus, olderThan: Date, limit: number): Promise<PaymentRow[]> {
  return db
    .select()
    .from(payments)
    .where(and(eq(payments.status, status), lt(payments.updated_at, olderThan)))
    .orderBy(asc(payments.updated_at))
    .limit(limit)
}

export async function insertRefund(db: Db, values: typeof refunds.$inferInsert): Promise<RefundRow> {
  const [row] = await db.insert(refunds).values(values).returning()
  return row!
}

export async function findRefund(db: Db, id: string): Promise<RefundRow | undefined> {
  const [row] = await db.select().from(refunds).where(eq(refunds.id, id))
  return row
}

export async function refundsOf(db: Db, paymentId: string): Promise<RefundRow[]> {
  return db.select().from(refunds).where(eq(refunds.payment_id, paymentId)).orderBy(asc(refunds.created_at), asc(refunds.id))
}

/** Moves a refund out of `pending`; answers null when it already left it (another run settled it). */
export async function settleRefund(db: Db, id: string, status: Exclude<RefundStatus, 'pending'>, values: { provider_ref?: string; failure_message?: string | null }): Promise<RefundRow | null> {
  const [row] = await db
    .update(refunds)
    .set({ ...values, status, updated_at: sql`now()` })
    .where(and(eq(refunds.id, id), eq(refunds.status, 'pending')))
    .returning()
  return row ?? null
}

export async function setRefundRef(db: Db, id: string, providerRef: string): Promise<void> {
  await db.update(refunds).set({ provider_ref: providerRef, updated_at: sql`now()` }).where(eq(refunds.id, id))
}

/** Refunds still pending since before `olderThan` (their execution was interrupted or is awaited). */
export async function stalePendingRefunds(db: Db, olderThan: Date, limit: number): Promise<RefundRow[]> {
  return db.select().from(refunds).where(and(eq(refunds.status, 'pending'), lt(refunds.updated_at, olderThan))).orderBy(asc(refunds.created_at)).limit(limit)
}

/** Money refunded per shop day (the day each refund succeeded) and order. */
export async function refundsByDay(db: Db, range: DayRange): Promise<Array<{ day: string; order_id: string; amount: number }>> {
  const { start, end } = dayBounds(range)
  const result = await db.execute(sql`
    SELECT ${localDay(sql`r.updated_at`, range.timeZone)} AS day, p.order_id, sum(r.amount)::bigint AS amount
    FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
    WHERE r.status = 'succeeded' AND r.updated_at >= ${start} AND r.updated_at < ${end}
    GROUP BY 1, 2`)
  return rowsOf<{ day: string; order_id: string; amount: string }>(result).map((row) => ({ ...row, amount: Number(row.amount) }))
}

/** The sum of a payment's succeeded refunds. */
export async function succeededRefundTotal(db: Db, paymentId: string): Promise<number> {
  const [row] = await db
    .select({ total: sql<number>`coalesce(sum(${refunds.amount}), 0)::int` })
    .from(refunds)
    .where(and(eq(refunds.payment_id, paymentId), eq(refunds.status, 'succeeded')))
  return row?.total ?? 0
}

/** The sum of a payment's refunds still pending: money promised back but not yet confirmed. */
export async function pendingRefundTotal(db: Db, paymentId: string): Promise<number> {
  const [row] = await db
    .select({ total: sql<number>`coalesce(sum(${refunds.amount}), 0)::int` })
    .from(refunds)
    .where(and(eq(refunds.payment_id, paymentId), eq(refunds.status, 'pending')))
  return row?.total ?? 0
}

/** Records a provider event; answers false when its id was recorded before (a repeated delivery). */
export async function recordWebhookEvent(db: Db, values: typeof webhookEvents.$inferInsert): Promise<boolean> {
  const rows = await db.insert(webhookEvents).values(values).onConflictDoNothing({ target: webhookEvents.id }).returning({ id: webhookEvents.id })
  return rows.length === 1
}

export async function setWebhookOutcome(db: Db, id: string, outcome: string, paymentId: string | null): Promise<void> {
  await db.update(webhookEvents).set({ outcome, payment_id: paymentId }).where(eq(webhookEvents.id, id))
}

export async function findWebhookEvent(db: Db, id: string) {
  const [row] = await db.select().from(webhookEvents).where(eq(webhookEvents.id, id))
  return row
}

/** Inbox rows older than `days`: Stripe stops retrying an event after 3 days, so they dedupe nothing any more. */
export async function deleteOldWebhookEvents(db: Db, days: number): Promise<number> {
  return deleteInBatches(db, webhookEvents, lt(webhookEvents.received_at, sql`now() - make_interval(days => ${days})`))
}
