/** Drizzle queries of the webhooks app: one statement each. Times come from the database's clock. */
import { and, asc, desc, eq, inArray, isNull, lt, lte, ne, or, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { webhookDeliveries, webhookEndpoints, type DeliveryStatus } from './tables.js'

export type EndpointRow = typeof webhookEndpoints.$inferSelect
export type DeliveryRow = typeof webhookDeliveries.$inferSelect

/** created_at as text with microseconds: a keyset cursor must not lose the precision the rows have. */
const cursorTime = sql<string>`to_char(${webhookEndpoints.created_at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
const inMs = (ms: number) => sql`now() + ${ms} * interval '1 millisecond'`

export async function insertEndpoint(db: Db, values: typeof webhookEndpoints.$inferInsert): Promise<EndpointRow> {
  const [row] = await db.insert(webhookEndpoints).values(values).returning()
  return row!
}

export async function findEndpoint(db: Db, id: string): Promise<EndpointRow | undefined> {
  const [row] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id))
  return row
}

/** Newest first, keyset on (created_at, id); `limit + 1` rows so the caller knows if more follow. */
export async function listEndpoints(db: Db, filter: { before?: { created_at: string; id: string }; limit: number }) {
  return db
    .select({ endpoint: webhookEndpoints, cursor_time: cursorTime })
    .from(webhookEndpoints)
    .where(filter.before ? sql`(${webhookEndpoints.created_at}, ${webhookEndpoints.id}) < (${filter.before.created_at}::timestamptz, ${filter.before.id}::uuid)` : undefined)
    .orderBy(desc(webhookEndpoints.created_at), desc(webhookEndpoints.id))
    .limit(filter.limit + 1)
}

export async function updateEndpoint(db: Db, id: string, values: Partial<Pick<EndpointRow, 'url' | 'events' | 'is_active' | 'description' | 'secret_sealed'>>): Promise<EndpointRow | undefined> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ ...values, updated_at: sql`now()` })
    .where(eq(webhookEndpoints.id, id))
    .returning()
  return row
}

export async function deleteEndpoint(db: Db, id: string): Promise<boolean> {
  const rows = await db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id)).returning({ id: webhookEndpoints.id })
  return rows.length === 1
}

/** Active endpoints subscribed to `type` (by name or with `*`). */
export async function subscribersOf(db: Db, type: string): Promise<Array<{ id: string }>> {
  return db
    .select({ id: webhookEndpoints.id })
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.is_active, true), sql`(${type} = ANY(${webhookEndpoints.events}) OR '*' = ANY(${webhookEndpoints.events}))`))
}

/** One delivery per endpoint and event: a repeat of the event (at-least-once outbox) inserts nothing. */
export async function insertDeliveries(db: Db, rows: Array<typeof webhookDeliveries.$inferInsert>): Promise<number> {
  if (rows.length === 0) return 0
  const inserted = await db
    .insert(webhookDeliveries)
    .values(rows)
    .onConflictDoNothing({ target: [webhookDeliveries.endpoint_id, webhookDeliveries.event_id] })
    .returning({ id: webhookDeliveries.id })
  return inserted.length
}

/**
 * Takes the endpoint's lease when nobody holds it (or the holder's ran out) and the endpoint is
 * active. One conditional UPDATE: of two senders racing, the second finds the lease taken.
 */
export async function claimEndpoint(db: Db, id: string, token: string, leaseMs: number): Promise<EndpointRow | undefined> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ lease_token: token, lease_until: inMs(leaseMs) })
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.is_active, true), or(isNull(webhookEndpoints.lease_until), lt(webhookEndpoints.lease_until, sql`now()`))))
    .returning()
  return row
}

/** Extends a lease this sender still holds; answers the endpoint as it is now (its URL or secret may have changed). */
export async function renewLease(db: Db, id: string, token: string, leaseMs: number): Promise<EndpointRow | undefined> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ lease_until: inMs(leaseMs) })
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.lease_token, token), eq(webhookEndpoints.is_active, true)))
    .returning()
  return row
}

export async function releaseLease(db: Db, id: string, token: string): Promise<void> {
  await db
    .update(webhookEndpoints)
    .set({ lease_token: null, lease_until: null })
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.lease_token, token)))
}

/** The endpoint's queue head: its oldest pending delivery, with how long until it is due (0 when due). */
export async function headDelivery(db: Db, endpointId: string): Promise<{ delivery: DeliveryRow; wait_ms: number } | undefined> {
  const [row] = await db
    .select({
      delivery: webhookDeliveries,
      wait_ms: sql<number>`greatest(0, ceil(extract(epoch from (${webhookDeliveries.next_attempt_at} - now())) * 1000))::float8`,
    })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.endpoint_id, endpointId), eq(webhookDeliveries.status, 'pending')))
    .orderBy(asc(webhookDeliveries.event_at), asc(webhookDeliveries.seq))
    .limit(1)
  return row
}

export type AttemptResult =
  | { outcome: 'succeeded'; responseCode: number; responseBody: string }
  | { outcome: 'retry'; retryInMs: number; responseCode: number | null; responseBody: string | null; error: string }
  | { outcome: 'failed'; responseCode: number | null; responseBody: string | null; error: string }

/**
 * Writes one attempt's result. Only when the delivery is still pending at `attempts`: a sender
 * whose lease ran out while it waited on the receiver cannot count over a newer one's attempt.
 */
export async function recordAttempt(db: Db, id: string, attemptsBefore: number, result: AttemptResult): Promise<DeliveryRow | undefined> {
  const finished = result.outcome !== 'retry'
  const [row] = await db
    .update(webhookDeliveries)
    .set({
      status: result.outcome === 'retry' ? 'pending' : result.outcome,
      attempts: attemptsBefore + 1,
      response_code: result.responseCode,
      response_body: result.responseBody,
      last_error: result.outcome === 'succeeded' ? null : result.error,
      next_attempt_at: finished ? null : inMs(result.retryInMs),
      delivered_at: result.outcome === 'succeeded' ? sql`now()` : null,
      updated_at: sql`now()`,
    })
    .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.status, 'pending'), eq(webhookDeliveries.attempts, attemptsBefore)))
    .returning()
  return row
}

export async function findDelivery(db: Db, id: string): Promise<DeliveryRow | undefined> {
  const [row] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id))
  return row
}

/** An endpoint's log, newest first, keyset on seq; `limit + 1` rows. */
export async function listDeliveries(db: Db, filter: { endpointId: string; status?: DeliveryStatus; beforeSeq?: number; limit: number }): Promise<DeliveryRow[]> {
  const conditions: SQL[] = [eq(webhookDeliveries.endpoint_id, filter.endpointId)]
  if (filter.status) conditions.push(eq(webhookDeliveries.status, filter.status))
  if (filter.beforeSeq !== undefined) conditions.push(lt(webhookDeliveries.seq, filter.beforeSeq))
  return db
    .select()
    .from(webhookDeliveries)
    .where(and(...conditions))
    .orderBy(desc(webhookDeliveries.seq))
    .limit(filter.limit + 1)
}

/** A finished delivery goes back to the queue with a fresh set of attempts; null when it is still pending. */
export async function requeueDelivery(db: Db, id: string): Promise<DeliveryRow | undefined> {
  const [row] = await db
    .update(webhookDeliveries)
    .set({ status: 'pending', attempts: 0, next_attempt_at: sql`now()`, delivered_at: null, updated_at: sql`now()` })
    .where(and(eq(webhookDeliveries.id, id), ne(webhookDeliveries.status, 'pending')))
    .returning()
  return row
}

/** Active endpoints whose queue head is due and whose lease is free: the sweep wakes their senders. */
export async function endpointsWithDueHead(db: Db, limit: number): Promise<string[]> {
  const heads = db
    .selectDistinctOn([webhookDeliveries.endpoint_id], { endpoint_id: webhookDeliveries.endpoint_id, next_attempt_at: webhookDeliveries.next_attempt_at })
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.status, 'pending'))
    .orderBy(webhookDeliveries.endpoint_id, asc(webhookDeliveries.event_at), asc(webhookDeliveries.seq))
    .as('heads')
  const rows = await db
    .select({ id: heads.endpoint_id })
    .from(heads)
    .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, heads.endpoint_id))
    .where(and(lte(heads.next_attempt_at, sql`now()`), eq(webhookEndpoints.is_active, true), or(isNull(webhookEndpoints.lease_until), lt(webhookEndpoints.lease_until, sql`now()`))))
    .limit(limit)
  return rows.map((row) => row.id)
}

/** Deletes up to `limit` finished deliveries last touched more than `days` ago; answers how many. */
export async function pruneFinished(db: Db, days: number, limit: number): Promise<number> {
  const old = db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(and(inArray(webhookDeliveries.status, ['succeeded', 'failed']), lt(webhookDeliveries.updated_at, sql`now() - ${days} * interval '1 day'`)))
    .limit(limit)
  const rows = await db.delete(webhookDeliveries).where(inArray(webhookDeliveries.id, old)).returning({ id: webhookDeliveries.id })
  return rows.length
}
