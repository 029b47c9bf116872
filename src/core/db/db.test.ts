import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { eq, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dropDatabase, testServerUrl, uniqueName, urlFor, withAdmin } from '../../../test/database.js'
import { createTestApp, usesPostgres, type TestApp } from '../../../test/harness.js'
import { loadSettings } from '../../config/index.js'
import { idempotencyKeys } from '../idempotency/tables.js'
import { createLogger } from '../logging.js'
import { createDatabase, migrationsFolder, rowsOf, type PoolStats } from './index.js'

const keyRow = (key: string) => ({ scope: 'test', key, request_hash: 'hash', state: 'completed' as const })

async function journalTags(): Promise<string[]> {
  const journal = JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: Array<{ tag: string }> }
  return journal.entries.map((entry) => entry.tag)
}

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ env: { DB_POOL_MAX: '3' } })
})
afterAll(() => t.close())

const keyExists = async (key: string) =>
  (await t.app.platform.database.db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, key))).length > 0

describe('Database', () => {
  it('answers ping when the database is up', async () => {
    await expect(t.app.platform.database.ping()).resolves.toBeUndefined()
    expect(t.app.platform.database.kind).toBe(usesPostgres ? 'postgres' : 'pglite')
  })

  it('has the platform tables and applies nothing when migrate runs again', async () => {
    const { db } = t.app.platform.database
    const rows = rowsOf<{ outbox: string | null; idempotency: string | null }>(
      await db.execute(sql`SELECT to_regclass('public.outbox_events')::text AS outbox, to_regclass('public.idempotency_keys')::text AS idempotency`),
    )
    expect(rows).toEqual([{ outbox: 'outbox_events', idempotency: 'idempotency_keys' }])
    expect(await t.app.platform.database.migrate()).toBe(0)
    const applied = rowsOf<{ count: number }>(await db.execute(sql`SELECT count(*)::int AS count FROM drizzle.__drizzle_migrations`))
    expect(applied[0]!.count).toBe((await journalTags()).length)
  })
})

describe.runIf(usesPostgres)('Database on PostgreSQL', () => {
  it('caps the pool at DB_POOL_MAX when more queries run at once', async () => {
    const database = t.app.platform.database
    expect(database.poolStats().max).toBe(3)
    const samples: PoolStats[] = []
    const started = performance.now()
    const queries = Array.from({ length: 6 }, () =>
      database.db.execute(sql`SELECT pg_sleep(0.2)`).then(() => {
        samples.push(database.poolStats())
      }),
    )
    // Sampled while all six are in flight, then as each one finishes.
    samples.push(database.poolStats())
    await Promise.all(queries)
    const elapsed = performance.now() - started

    expect(samples).toHaveLength(7)
    expect(samples.every((sample) => sample.total <= 3)).toBe(true)
    expect(Math.max(...samples.map((sample) => sample.total))).toBe(3)
    // At least the three beyond the cap queued for a connection.
    expect(Math.max(...samples.map((sample) => sample.waiting))).toBeGreaterThanOrEqual(3)
    // Six 200 ms sleeps on three connections take two rounds.
    expect(elapsed).toBeGreaterThanOrEqual(400)
  })

  it('applies each migration once when two processes migrate a fresh database at the same time', async () => {
    const serverUrl = testServerUrl()!
    const name = uniqueName('shop_test_fresh')
    await withAdmin(serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`))
    const log = createLogger({ log: { level: 'silent', pretty: false } })
    const settings = loadSettings({ ENVIRONMENT: 'test', DATABASE_URL: urlFor(serverUrl, name) })
    const first = await createDatabase(settings, log)
    const second = await createDatabase(settings, log)
    try {
      const tags = await journalTags()
      const applied = await Promise.all([first.migrate(), second.migrate()])
      // One of them ran everything; the other waited on the lock and found nothing left.
      expect([...applied].sort()).toEqual([0, tags.length])
      const rows = rowsOf<{ hash: string; count: number }>(
        await first.db.execute(sql`SELECT hash, count(*)::int AS count FROM drizzle.__drizzle_migrations GROUP BY hash`),
      )
      expect(rows).toHaveLength(tags.length)
      expect(rows.every((row) => row.count === 1)).toBe(true)
      const tables = rowsOf<{ outbox: string | null }>(await second.db.execute(sql`SELECT to_regclass('public.outbox_events')::text AS outbox`))
      expect(tables).toEqual([{ outbox: 'outbox_events' }])
    } finally {
      await first.close()
      await second.close()
      await dropDatabase(serverUrl, name)
    }
  })
})

describe('ctx.tx', () => {
  it('keeps the writes when the function resolves', async () => {
    const key = randomUUID()
    const result = await t.app.platform.context().tx(async (tx) => {
      expect(tx.inTransaction).toBe(true)
      await tx.db.insert(idempotencyKeys).values(keyRow(key))
      return 'done'
    })
    expect(result).toBe('done')
    expect(await keyExists(key)).toBe(true)
  })

  it('discards the writes and rethrows when the function throws', async () => {
    const key = randomUUID()
    await expect(
      t.app.platform.context().tx(async (tx) => {
        await tx.db.insert(idempotencyKeys).values(keyRow(key))
        throw new Error('out of stock')
      }),
    ).rejects.toThrow('out of stock')
    expect(await keyExists(key)).toBe(false)
  })

  it('runs afterCommit hooks only once the transaction has committed', async () => {
    const key = randomUUID()
    const calls: string[] = []
    let visibleFromPool: Promise<boolean> | undefined
    await t.app.platform.context().tx(async (tx) => {
      await tx.db.insert(idempotencyKeys).values(keyRow(key))
      tx.afterCommit(() => {
        calls.push('first')
        // Read through the pool, outside the transaction: only committed rows are visible.
        visibleFromPool = keyExists(key)
      })
      await tx.tx(async (inner) => inner.afterCommit(() => calls.push('nested')))
      expect(calls).toEqual([])
    })
    expect(calls).toEqual(['first', 'nested'])
    expect(await visibleFromPool).toBe(true)
  })

  it('never runs afterCommit hooks when the transaction rolls back', async () => {
    const calls: string[] = []
    await expect(
      t.app.platform.context().tx(async (tx) => {
        tx.afterCommit(() => calls.push('hook'))
        throw new Error('rolled back')
      }),
    ).rejects.toThrow('rolled back')
    expect(calls).toEqual([])
  })

  it('runs an afterCommit hook at once when there is no transaction', () => {
    const calls: string[] = []
    t.app.platform.context().afterCommit(() => calls.push('now'))
    expect(calls).toEqual(['now'])
  })

  it('keeps the commit and runs later hooks when an afterCommit hook throws', async () => {
    const key = randomUUID()
    const calls: string[] = []
    const result = await t.app.platform.context().tx(async (tx) => {
      await tx.db.insert(idempotencyKeys).values(keyRow(key))
      tx.afterCommit(() => {
        throw new Error('hook failed')
      })
      tx.afterCommit(() => calls.push('second'))
      return 'done'
    })
    expect(result).toBe('done')
    expect(calls).toEqual(['second'])
    expect(await keyExists(key)).toBe(true)
  })
})
