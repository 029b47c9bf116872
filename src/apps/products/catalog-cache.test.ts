/**
 * The catalog cache's contract, store by store: a change marked in one process is seen by the
 * next read in every process (two caches over one Redis stand for two API processes, each with
 * its local copies), and a counter lost with Redis's data never lets an old entry pass.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { uniqueName } from '../../../test/database.js'
import { suiteRedisUrl } from '../../../test/harness.js'
import { createMemoryCache, createRedisCache, type Cache } from '../../core/cache.js'
import { createCtx } from '../../core/context.js'
import type { Db } from '../../core/db/index.js'
import { createLogger } from '../../core/logging.js'
import { createCatalogCache } from './catalog-cache.js'

const log = createLogger({ log: { level: 'silent', pretty: false } })
/** Outside a transaction: `changed` bumps at once. The cache never touches the database. */
const ctx = createCtx({ db: {} as Db, log, requestId: 'test' })

/** A loader that answers `value` and counts its calls. */
function loader<T>(value: () => T) {
  const calls = { count: 0 }
  return { calls, load: async () => (calls.count++, value()) }
}

describe('catalog cache in memory', () => {
  it('serves the stored value until a change, then loads again', async () => {
    const cache = createCatalogCache(createMemoryCache('mem:'))
    let version = 1
    const { calls, load } = loader(() => ({ version }))
    expect(await cache.read('page', ['catalog'], load)).toEqual({ version: 1 })
    expect(await cache.read('page', ['catalog'], load)).toEqual({ version: 1 })
    expect(calls.count).toBe(1)
    version = 2
    await cache.changed(ctx)
    expect(await cache.read('page', ['catalog'], load)).toEqual({ version: 2 })
    expect(calls.count).toBe(2)
  })

  it('keeps entries that follow only the catalog when stock flips, and renews those that follow stock', async () => {
    const cache = createCatalogCache(createMemoryCache('mem2:'))
    const plain = loader(() => 'plain')
    const inStock = loader(() => 'in stock')
    await cache.read('a', ['catalog'], plain.load)
    await cache.read('b', ['catalog', 'stock'], inStock.load)
    await cache.changed(ctx, ['stock'])
    await cache.read('a', ['catalog'], plain.load)
    await cache.read('b', ['catalog', 'stock'], inStock.load)
    expect([plain.calls.count, inStock.calls.count]).toEqual([1, 2])
  })
})

describe.runIf(suiteRedisUrl)('catalog cache over Redis, two processes', () => {
  const opened: Cache[] = []
  const prefix = `${uniqueName('catalog')}:`
  const open = async () => {
    const redis = await createRedisCache(suiteRedisUrl!, prefix, log)
    opened.push(redis)
    return redis
  }
  afterAll(async () => {
    for (const cache of opened) await cache.close()
  })

  it('shows a change made through one process on the very next read of the other, local copies and all', async () => {
    const first = createCatalogCache(await open())
    const second = createCatalogCache(await open())
    let name = 'Mug'
    const firstLoads = loader(() => ({ name }))
    const secondLoads = loader(() => ({ name }))
    // Both processes read twice: the second read of each is served from its own copy.
    for (let i = 0; i < 2; i++) {
      expect(await first.read('product:mug', ['catalog'], firstLoads.load)).toEqual({ name: 'Mug' })
      expect(await second.read('product:mug', ['catalog'], secondLoads.load)).toEqual({ name: 'Mug' })
    }
    expect(firstLoads.calls.count + secondLoads.calls.count).toBe(1)

    name = 'Big Mug'
    await first.changed(ctx)
    expect(await second.read('product:mug', ['catalog'], secondLoads.load)).toEqual({ name: 'Big Mug' })
    expect(await first.read('product:mug', ['catalog'], firstLoads.load)).toEqual({ name: 'Big Mug' })
  })

  it('never serves an old entry when Redis lost its counters (a restart without persistence)', async () => {
    const redis = await open()
    const cache = createCatalogCache(redis)
    let price = 1999
    const { calls, load } = loader(() => ({ price }))
    await cache.read('product:lamp', ['catalog'], load)
    await cache.read('product:lamp', ['catalog'], load)
    expect(calls.count).toBe(1)

    price = 2499
    // What a flushed Redis looks like to the process: the counter is gone (entries too, or not).
    await redis.delete('catalog:gen:catalog')
    expect(await cache.read('product:lamp', ['catalog'], load)).toEqual({ price: 2499 })
    expect(calls.count).toBe(2)
  })
})
