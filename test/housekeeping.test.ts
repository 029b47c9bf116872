/**
 * The nightly cleanups delete exactly what can no longer matter and keep the rest: idempotency
 * keys past their TTL, outbox events delivered a week ago (never undelivered ones), spent tokens,
 * and Stripe webhook inbox rows older than 90 days.
 */
import { randomUUID } from 'node:crypto'
import { inArray, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { oneTimeTokens, refreshTokens } from '../src/apps/accounts/tables.js'
import { webhookEvents } from '../src/apps/payments/tables.js'
import { deleteInBatches } from '../src/core/db/index.js'
import { outboxEvents } from '../src/core/events/tables.js'
import { idempotencyKeys } from '../src/core/idempotency/tables.js'
import { factories } from './factories.js'
import { createTestApp, type TestApp } from './harness.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})
afterAll(() => t?.close())

const db = () => t.app.platform.database.db
const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000)
const daysAhead = (days: number) => daysAgo(-days)

async function run(task: string): Promise<void> {
  await t.app.platform.queue.enqueue(task, {})
  await t.settle()
  expect((await t.app.platform.queue.failed()).filter((job) => job.task === task)).toEqual([])
}

describe('core.clean_expired', () => {
  it('deletes idempotency keys older than their TTL and outbox events delivered over a week ago; keeps the rest, undelivered events above all', async () => {
    const ttlDays = t.settings.idempotency.ttlMs / 86_400_000
    const key = (name: string, created_at: Date) => ({ scope: 'test', key: name, request_hash: 'h', state: 'completed' as const, created_at })
    await db().insert(idempotencyKeys).values([key('old', daysAgo(ttlDays + 0.1)), key('fresh', daysAgo(ttlDays - 0.1))])
    const event = (name: string, created_at: Date, published_at: Date | null) => ({ id: randomUUID(), name, payload: {}, created_at, published_at })
    const events = [event('test.delivered_long_ago', daysAgo(9), daysAgo(8)), event('test.delivered_lately', daysAgo(9), daysAgo(6)), event('test.never_delivered', daysAgo(30), null)]
    // Undelivered rows would be picked up by the relay: this test's names have no subscribers, so they just stay.
    await db().insert(outboxEvents).values(events)

    await run('core.clean_expired')

    expect((await db().select({ key: idempotencyKeys.key }).from(idempotencyKeys).where(sql`${idempotencyKeys.scope} = 'test'`)).map((row) => row.key)).toEqual(['fresh'])
    const left = await db().select({ name: outboxEvents.name }).from(outboxEvents).where(inArray(outboxEvents.id, events.map((row) => row.id)))
    expect(left.map((row) => row.name).sort()).toEqual(['test.delivered_lately', 'test.never_delivered'])
  })
})

describe('accounts.clean_spent_tokens', () => {
  it('deletes refresh tokens a day past expiry and one-time tokens a day after expiry or use; keeps the ones that still mean something', async () => {
    const user = await factories(t).user()
    const refresh = (name: string, expires_at: Date, used_at: Date | null = null) => ({ user_id: user.id, family_id: randomUUID(), token_hash: name, expires_at, used_at })
    await db().insert(refreshTokens).values([
      refresh('expired-2-days', daysAgo(2)),
      refresh('expired-an-hour', daysAgo(1 / 24)),
      // Used but not expired: presenting it again must still be caught as reuse.
      refresh('used-valid', daysAhead(5), daysAgo(3)),
      refresh('valid', daysAhead(5)),
    ])
    const once = (name: string, expires_at: Date, used_at: Date | null = null) => ({ user_id: user.id, purpose: 'password_reset' as const, token_hash: name, expires_at, used_at })
    await db().insert(oneTimeTokens).values([once('expired-2-days', daysAgo(2)), once('used-2-days', daysAhead(1), daysAgo(2)), once('used-lately', daysAhead(1), daysAgo(0.5)), once('valid', daysAhead(1))])

    await run('accounts.clean_spent_tokens')

    const hashes = async (table: typeof refreshTokens | typeof oneTimeTokens) => (await db().select({ hash: table.token_hash }).from(table).where(sql`${table.user_id} = ${user.id}`)).map((row) => row.hash).sort()
    expect(await hashes(refreshTokens)).toEqual(['expired-an-hour', 'used-valid', 'valid'])
    expect(await hashes(oneTimeTokens)).toEqual(['used-lately', 'valid'])
  })
})

describe('payments.prune_webhook_events', () => {
  it('forgets Stripe event ids received over 90 days ago', async () => {
    const inbox = (id: string, received_at: Date) => ({ id, type: 'payment_intent.succeeded', outcome: 'applied', created: Math.floor(received_at.getTime() / 1000), received_at })
    await db().insert(webhookEvents).values([inbox('evt_old', daysAgo(91)), inbox('evt_recent', daysAgo(89))])
    await run('payments.prune_webhook_events')
    expect((await db().select({ id: webhookEvents.id }).from(webhookEvents).where(inArray(webhookEvents.id, ['evt_old', 'evt_recent']))).map((row) => row.id)).toEqual(['evt_recent'])
  })
})

describe(deleteInBatches.name, () => {
  it('deletes every matching row across several batches and answers how many', async () => {
    const keys = Array.from({ length: 5 }, (_, i) => ({ scope: 'batches', key: `k${i}`, request_hash: 'h', state: 'completed' as const }))
    await db().insert(idempotencyKeys).values([...keys, { scope: 'other', key: 'k', request_hash: 'h', state: 'completed' }])
    expect(await deleteInBatches(db(), idempotencyKeys, sql`${idempotencyKeys.scope} = 'batches'`, 2)).toBe(5)
    expect(await db().$count(idempotencyKeys, sql`${idempotencyKeys.scope} IN ('batches', 'other')`)).toBe(1)
  })
})
