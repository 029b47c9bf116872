import { randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import { Type } from 'typebox'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { createDatabase } from '../db/index.js'
import { idempotencyKeys } from '../idempotency/tables.js'
import type { Platform } from '../platform.js'
import { defineTask, type TaskQueue } from '../queue/index.js'
import { createOutboxRelay, insertEvent, type EventEnvelope } from './index.js'
import { outboxEvents } from './tables.js'

declare module './index.js' {
  interface DomainEvents {
    'test.happened': { id: string; n: number }
    'test.outbox_unheard': { id: string }
    'test.outbox_blocked': { id: string }
  }
}

const HappenedEnvelope = Type.Object({
  id: Type.String(),
  name: Type.String(),
  occurred_at: Type.String(),
  payload: Type.Object({ id: Type.String(), n: Type.Number() }),
})
const AnyEnvelope = Type.Object({ id: Type.String(), name: Type.String(), occurred_at: Type.String(), payload: Type.Unknown() })

type Received = EventEnvelope<{ id: string; n: number }> & { task: string }

/** An app whose `test.record` task keeps every envelope it receives. */
async function appRecordingEvents(received: Received[], configure?: (platform: Platform) => void): Promise<TestApp> {
  return createTestApp({
    setup(app) {
      app.platform.tasks.register(
        defineTask({
          name: 'test.record',
          schema: HappenedEnvelope,
          async handler(envelope) {
            received.push({ ...envelope, task: 'test.record' })
          },
        }),
      )
      app.platform.tasks.subscribe('test.happened', 'test.record')
      configure?.(app.platform)
    },
  })
}

async function deliver(t: TestApp): Promise<void> {
  await t.app.platform.relay.flush()
  await t.app.platform.queue.drain()
}

async function outboxRowsFor(t: TestApp, id: string) {
  return t.app.platform.database.db
    .select()
    .from(outboxEvents)
    .where(sql`${outboxEvents.payload}->>'id' = ${id}`)
    .orderBy(outboxEvents.seq)
}

async function keyExists(t: TestApp, key: string): Promise<boolean> {
  const rows = await t.app.platform.database.db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, key))
  return rows.length > 0
}

function keyRow(key: string) {
  return { scope: 'test', key, request_hash: 'hash', state: 'completed' as const }
}

describe('transactional outbox', () => {
  const received: Received[] = []
  let t: TestApp
  beforeAll(async () => {
    t = await appRecordingEvents(received)
  })
  afterAll(() => t.close())

  it('delivers the envelope to the subscribed task and stamps published_at when the transaction commits', async () => {
    const id = randomUUID()
    await t.app.platform.context().tx(async (tx) => {
      await tx.db.insert(idempotencyKeys).values(keyRow(id))
      await tx.events.publish('test.happened', { id, n: 1 })
    })
    await deliver(t)

    const mine = received.filter((envelope) => envelope.payload.id === id)
    expect(mine).toHaveLength(1)
    const [row] = await outboxRowsFor(t, id)
    expect(row).toBeDefined()
    expect(mine[0]).toEqual({
      task: 'test.record',
      id: row!.id,
      name: 'test.happened',
      occurred_at: row!.created_at.toISOString(),
      payload: { id, n: 1 },
    })
    expect(row!.published_at).toBeInstanceOf(Date)
    expect(row!.aggregate_id).toBe(id)
    expect(await keyExists(t, id)).toBe(true)
  })

  it('writes no outbox row and runs no task when the transaction throws after publishing', async () => {
    const id = randomUUID()
    await expect(
      t.app.platform.context().tx(async (tx) => {
        await tx.db.insert(idempotencyKeys).values(keyRow(id))
        await tx.events.publish('test.happened', { id, n: 1 })
        throw new Error('payment declined')
      }),
    ).rejects.toThrow('payment declined')
    await deliver(t)

    expect(await outboxRowsFor(t, id)).toEqual([])
    expect(await keyExists(t, id)).toBe(false)
    expect(received.filter((envelope) => envelope.payload.id === id)).toEqual([])
  })

  it('rolls back the inner writes when a nested tx shares the outer transaction and the outer throws', async () => {
    const outerKey = randomUUID()
    const innerKey = randomUUID()
    const ctx = t.app.platform.context()
    expect(ctx.inTransaction).toBe(false)
    await expect(
      ctx.tx(async (outer) => {
        await outer.db.insert(idempotencyKeys).values(keyRow(outerKey))
        await outer.tx(async (inner) => {
          // The same transaction, not a savepoint or a second connection.
          expect(inner).toBe(outer)
          expect(inner.inTransaction).toBe(true)
          await inner.db.insert(idempotencyKeys).values(keyRow(innerKey))
          await inner.events.publish('test.happened', { id: innerKey, n: 2 })
        })
        // The inner call returned without committing: its row is visible only in here.
        expect(await outer.db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, innerKey))).toHaveLength(1)
        throw new Error('outer failed')
      }),
    ).rejects.toThrow('outer failed')
    await deliver(t)

    expect(await keyExists(t, outerKey)).toBe(false)
    expect(await keyExists(t, innerKey)).toBe(false)
    expect(await outboxRowsFor(t, innerKey)).toEqual([])
    expect(received.filter((envelope) => envelope.payload.id === innerKey)).toEqual([])
  })

  it('delivers events in publish order when five are published in one transaction', async () => {
    const id = randomUUID()
    await t.app.platform.context().tx(async (tx) => {
      for (let n = 1; n <= 5; n += 1) await tx.events.publish('test.happened', { id, n })
    })
    await deliver(t)

    const rows = await outboxRowsFor(t, id)
    expect(rows.map((row) => row.payload)).toEqual([1, 2, 3, 4, 5].map((n) => ({ id, n })))
    const mine = received.filter((envelope) => envelope.payload.id === id)
    expect(mine.map((envelope) => envelope.payload.n)).toEqual([1, 2, 3, 4, 5])
    expect(mine.map((envelope) => envelope.id)).toEqual(rows.map((row) => row.id))
  })

  it('delivers a row left unpublished by a crash when the relay flushes next', async () => {
    const id = randomUUID()
    // Written without a ctx, so nothing triggers the relay: as if the process died after commit.
    const eventId = await insertEvent(t.app.platform.database.db, 'test.happened', { id, n: 9 })
    const before = await t.app.platform.relay.backlog()
    expect(before.count).toBe(1)
    expect(before.oldest_age_seconds).toBeGreaterThanOrEqual(0)

    expect(await t.app.platform.relay.flush()).toBe(1)
    await t.app.platform.queue.drain()

    expect(received.filter((envelope) => envelope.payload.id === id)).toMatchObject([{ id: eventId, payload: { id, n: 9 } }])
    expect(await t.app.platform.relay.backlog()).toEqual({ count: 0, oldest_age_seconds: 0 })
  })

  it('marks an event published when no task subscribes to it', async () => {
    const id = randomUUID()
    await t.app.platform.context().tx((tx) => tx.events.publish('test.outbox_unheard', { id }))
    await deliver(t)

    const [row] = await outboxRowsFor(t, id)
    expect(row).toMatchObject({ name: 'test.outbox_unheard', attempts: 0, last_error: null })
    expect(row!.published_at).toBeInstanceOf(Date)
    expect((await t.app.platform.relay.backlog()).count).toBe(0)
  })
})

// A blocked outbox holds back every later event, so this runs on an app of its own.
describe('transactional outbox when an event cannot be enqueued', () => {
  const received: Received[] = []
  let t: TestApp
  beforeAll(async () => {
    t = await appRecordingEvents(received, (platform) => {
      platform.tasks.subscribe('test.outbox_blocked', 'test.not_registered_yet')
    })
  })
  afterAll(() => t.close())

  it('keeps the row unpublished with its error and holds back later events until enqueue works', async () => {
    const id = randomUUID()
    const ctx = t.app.platform.context()
    await ctx.tx((tx) => tx.events.publish('test.outbox_blocked', { id }))
    await ctx.tx((tx) => tx.events.publish('test.happened', { id, n: 1 }))
    await deliver(t)

    const [blocked, later] = await outboxRowsFor(t, id)
    expect(blocked).toMatchObject({ name: 'test.outbox_blocked', published_at: null, last_error: 'Unknown task "test.not_registered_yet"' })
    expect(blocked!.attempts).toBeGreaterThanOrEqual(1)
    expect(later).toMatchObject({ name: 'test.happened', published_at: null, attempts: 0 })
    expect(received).toEqual([])
    expect((await t.app.platform.relay.backlog()).count).toBe(2)

    // Nothing else is flushing now: one more run counts exactly one more attempt.
    expect(await t.app.platform.relay.flush()).toBe(0)
    const [again] = await outboxRowsFor(t, id)
    expect(again!.attempts).toBe(blocked!.attempts + 1)

    // Once the task exists, both go out, the older one first.
    t.app.platform.tasks.register(
      defineTask({
        name: 'test.not_registered_yet',
        schema: AnyEnvelope,
        async handler(envelope) {
          received.push({ ...(envelope as Received), task: 'test.not_registered_yet' })
        },
      }),
    )
    expect(await t.app.platform.relay.flush()).toBe(2)
    await t.app.platform.queue.drain()
    expect(received.map((envelope) => [envelope.task, envelope.name])).toEqual([
      ['test.not_registered_yet', 'test.outbox_blocked'],
      ['test.record', 'test.happened'],
    ])
    expect((await outboxRowsFor(t, id)).every((row) => row.published_at instanceof Date)).toBe(true)
    expect((await t.app.platform.relay.backlog()).count).toBe(0)
  })
})

describe.runIf(usesPostgres)('two relays (two processes) on one database', () => {
  const received: Received[] = []
  let t: TestApp
  beforeAll(async () => {
    t = await appRecordingEvents(received)
  })
  afterAll(() => t.close())

  it('hand the events to the queue once each and in commit order, while both flush at the same time', async () => {
    // Two processes' relays: each its own pool on the same database, each recording what it enqueues.
    const enqueued: Array<{ relay: string; n: number }> = []
    const queueOf = (relay: string): TaskQueue => ({
      ...t.app.platform.queue,
      async enqueue(_task, payload) {
        // Yield between enqueues, as a network round trip to Redis would, so two relays could interleave.
        await new Promise((resolve) => setImmediate(resolve))
        enqueued.push({ relay, n: (payload as EventEnvelope<{ n: number }>).payload.n })
        return { id: randomUUID() }
      },
    })
    const databases = await Promise.all([createDatabase(t.settings, t.app.platform.log), createDatabase(t.settings, t.app.platform.log)])
    const relays = databases.map((database, i) => createOutboxRelay({ db: database.db, queue: queueOf(`relay-${i}`), registry: t.app.platform.tasks, log: t.app.platform.log, pollMs: 0 }))
    try {
      // Written straight to the table: the app's own relay does not hear of them.
      const id = randomUUID()
      await t.app.platform.database.db.transaction(async (tx) => {
        for (let n = 0; n < 250; n++) await insertEvent(tx as never, 'test.happened', { id, n })
      })
      const counts = await Promise.all(relays.map((relay) => relay.flush()))
      expect(counts[0]! + counts[1]!).toBe(250)
      expect(enqueued.map((entry) => entry.n)).toEqual(Array.from({ length: 250 }, (_, n) => n))
      expect((await outboxRowsFor(t, id)).every((row) => row.published_at instanceof Date)).toBe(true)
    } finally {
      await Promise.all(databases.map((database) => database.close()))
    }
  })
})
