import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { uniqueName } from '../../test/database.js'
import { suiteRedisUrl } from '../../test/harness.js'
import { createMemoryCache, createRedisCache, type Cache } from './cache.js'
import { createLogger } from './logging.js'

const log = createLogger({ log: { level: 'silent', pretty: false } })

/** Fails when `promise` has not settled within `ms` (an upper bound for calls that must not hang). */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** What every backend must do; `make` returns a cache with the given key prefix. */
function behavesLikeACache(make: (prefix: string) => Promise<Cache>) {
  const caches: Cache[] = []
  let cache: Cache
  const open = async (prefix: string) => {
    const created = await make(prefix)
    caches.push(created)
    return created
  }
  beforeAll(async () => {
    cache = await open(`${uniqueName('cache')}:`)
  })
  afterAll(async () => {
    for (const created of caches) await created.close()
  })

  it('round-trips JSON values when set then read', async () => {
    const value = { name: 'Mug', price: 1999, tags: ['kitchen', 'gift'], stock: null, active: true }
    await cache.set('product:mug', value, 60)
    expect(await cache.get('product:mug')).toEqual(value)
    await cache.set('count', 0, 60)
    expect(await cache.get('count')).toBe(0)
    await cache.set('label', 'hello', 60)
    expect(await cache.get('label')).toBe('hello')
  })

  it('answers undefined when the key is missing', async () => {
    expect(await cache.get('never-set')).toBeUndefined()
  })

  it('removes every given key when deleted', async () => {
    await cache.set('a', 1, 60)
    await cache.set('b', 2, 60)
    await cache.set('c', 3, 60)
    await cache.delete('a', 'b')
    expect(await cache.get('a')).toBeUndefined()
    expect(await cache.get('b')).toBeUndefined()
    expect(await cache.get('c')).toBe(3)
    await expect(cache.delete()).resolves.toBeUndefined()
  })

  it('keeps two caches apart when their prefixes differ', async () => {
    const first = await open(`${uniqueName('cache')}:`)
    const second = await open(`${uniqueName('cache')}:`)
    await first.set('shared', 'first', 60)
    expect(await second.get('shared')).toBeUndefined()
    await second.set('shared', 'second', 60)
    expect(await first.get('shared')).toBe('first')
    await first.delete('shared')
    expect(await second.get('shared')).toBe('second')
  })

  it('answers ping when the store is up', async () => {
    await expect(cache.ping()).resolves.toBeUndefined()
  })

  return { cache: () => cache }
}

describe(createMemoryCache.name, () => {
  const { cache } = behavesLikeACache(async (prefix) => createMemoryCache(prefix))

  it('forgets a value once its ttl has passed', async () => {
    // Only Date is faked: the memory cache compares expiry with Date.now().
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      await cache().set('short', 'lived', 1)
      vi.setSystemTime(Date.now() + 999)
      expect(await cache().get('short')).toBe('lived')
      vi.setSystemTime(Date.now() + 1)
      expect(await cache().get('short')).toBeUndefined()
    } finally {
      vi.useRealTimers()
    }
  })
})

describe.runIf(suiteRedisUrl)(createRedisCache.name, () => {
  const { cache } = behavesLikeACache((prefix) => createRedisCache(suiteRedisUrl!, prefix, log))

  it('stores keys under its prefix when talking to Redis', async () => {
    const prefix = `${uniqueName('cache')}:`
    const prefixed = await createRedisCache(suiteRedisUrl!, prefix, log)
    try {
      await prefixed.set('k', { v: 1 }, 60)
      // A connection without keyPrefix sees the full key.
      const raw = new Redis(suiteRedisUrl!)
      try {
        expect(await raw.get(`${prefix}k`)).toBe('{"v":1}')
        expect(await raw.get('k')).toBeNull()
      } finally {
        await raw.quit()
      }
    } finally {
      await prefixed.close()
    }
  })

  it('forgets a value once its ttl has passed', async () => {
    await cache().set('short', 'lived', 1)
    const ttl = await cache().redis!.pttl('short')
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(1000)
    // Redis expires the key on its own clock: poll every 50 ms, up to 3 s.
    const deadline = performance.now() + 3_000
    let value = await cache().get('short')
    while (value !== undefined && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      value = await cache().get('short')
    }
    expect(value).toBeUndefined()
  })
})

describe(`${createRedisCache.name} when Redis is down`, () => {
  let cache: Cache
  beforeAll(async () => {
    cache = await createRedisCache('redis://127.0.0.1:1', `${uniqueName('cache')}:`, log)
  })
  afterAll(() => cache.close())

  it('misses on get and skips set without throwing when the server does not answer', async () => {
    await expect(within(3_000, cache.set('key', 'value', 60))).resolves.toBeUndefined()
    await expect(within(3_000, cache.get('key'))).resolves.toBeUndefined()
    await expect(within(3_000, cache.delete('key'))).resolves.toBeUndefined()
  })

  it('rejects ping when the server does not answer', async () => {
    const err: unknown = await within(3_000, cache.ping()).then(() => null, (error: unknown) => error)
    expect(err).toBeInstanceOf(Error)
    // Redis refused at once; the deadline of `within` did not fire.
    expect((err as Error).message).not.toMatch(/not settled/)
  })
})
