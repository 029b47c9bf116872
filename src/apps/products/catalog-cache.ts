/**
 * Cache of public catalog reads (product pages, lists, searches), Redis when configured.
 *
 * Invalidation by generation: every entry records the generation it was computed under, and a
 * read takes the entry and the current generation in one round trip (MGET), using the entry only
 * when they match. A catalog change bumps the generation once its transaction has committed and
 * before its response leaves, so the next read, on any process, computes afresh. A read that
 * raced the change stored its result under the old generation, which no one reads any more.
 *
 * Two counters: `catalog` (any product, variant, image, review or category change) and `stock`
 * (an availability that crosses zero), which only lists filtered by `in_stock` depend on.
 * Entries also expire after a minute, which bounds staleness if Redis lost a bump while down.
 *
 * With Redis, each process also keeps recent entries itself (a small LRU): a read then asks
 * Redis only for the counters, a few bytes, instead of the whole page, which is most of the work
 * a cached read costs. The counters still come from Redis on every read, so another process's
 * change is seen at once; while Redis does not answer, the local copies are not used.
 */
import { randomInt } from 'node:crypto'
import type { Cache } from '../../core/cache.js'
import type { Ctx } from '../../core/context.js'

export type Generation = 'catalog' | 'stock'

const TTL_SECONDS = 60
/** Part of every entry key: change it when what is cached changes shape, so a new release never reads an old entry. */
const FORMAT = 'v1'
/** Local copies kept per process, newest used last out. */
const LOCAL_ENTRIES = 256
const counterKey = (generation: Generation) => `catalog:gen:${generation}`

interface Entry<T> {
  gen: string
  value: T
}

export function createCatalogCache(cache: Cache) {
  const bump = async (generations: Generation[]) => {
    await Promise.all(generations.map((generation) => cache.incr(counterKey(generation))))
  }
  const store = async <T>(entryKey: string, gen: string, value: T): Promise<T> => {
    await cache.set(entryKey, { gen, value } satisfies Entry<T>, TTL_SECONDS)
    return value
  }
  /** The shared (Redis) entry when it is of this generation, else `load()`'s answer, stored there. */
  const shared = async <T>(entryKey: string, gen: string, load: () => Promise<T>): Promise<T> => {
    const entry = await cache.get<Entry<T>>(entryKey)
    return entry !== undefined && entry.gen === gen ? entry.value : store(entryKey, gen, await load())
  }
  /**
   * The current counters, creating missing ones at a random value: a counter lost with Redis's
   * data comes back at a value no earlier entry carries, so no old entry can pass for current.
   */
  const countersOf = async (generations: Generation[]): Promise<Array<number | undefined>> => {
    const counters = await cache.getMany<number>(generations.map(counterKey))
    return Promise.all(counters.map((counter, i) => counter ?? cache.incr(counterKey(generations[i]!), randomInt(1, 2 ** 47))))
  }
  // In memory mode the shared cache is this process's memory already.
  const local = cache.backend === 'redis' ? new LocalEntries(LOCAL_ENTRIES) : null

  return {
    /** The cached value for `key` under the current generations, or `load()`'s answer, stored. */
    async read<T>(key: string, generations: Generation[], load: () => Promise<T>): Promise<T> {
      const entryKey = `catalog:${FORMAT}:${key}`
      if (local) {
        const counters = await countersOf(generations)
        // Counters Redis cannot give (it is down) cannot vouch for a local copy.
        if (counters.every((counter) => counter !== undefined)) {
          const gen = counters.join('.')
          const hit = local.get<T>(entryKey, gen)
          if (hit !== undefined) return hit
          const value = await shared<T>(entryKey, gen, load)
          local.set(entryKey, gen, value)
          return value
        }
      }
      const [entry, ...counters] = await cache.getMany<Entry<T> | number>([entryKey, ...generations.map(counterKey)])
      const gen = counters.map((counter) => counter ?? 0).join('.')
      if (entry !== undefined && (entry as Entry<T>).gen === gen) return (entry as Entry<T>).value
      return store(entryKey, gen, await load())
    },

    /**
     * Marks cached reads stale once the change is committed: awaited at once outside a
     * transaction (the caller's response waits for it), after commit inside one.
     */
    async changed(ctx: Ctx, generations: Generation[] = ['catalog']): Promise<void> {
      if (ctx.inTransaction) ctx.afterCommit(() => void bump(generations))
      else await bump(generations)
    },
  }
}

export type CatalogCache = ReturnType<typeof createCatalogCache>

/** A bounded map of entries with their generation and expiry; the least recently used go first. */
class LocalEntries {
  private readonly entries = new Map<string, { gen: string; value: unknown; expiresAt: number }>()

  constructor(private readonly capacity: number) {}

  get<T>(key: string, gen: string): T | undefined {
    const entry = this.entries.get(key)
    if (!entry || entry.gen !== gen || entry.expiresAt <= Date.now()) return undefined
    // Re-inserting keeps the Map's order as the recency order.
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.value as T
  }

  set(key: string, gen: string, value: unknown): void {
    this.entries.delete(key)
    this.entries.set(key, { gen, value, expiresAt: Date.now() + TTL_SECONDS * 1000 })
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!)
  }
}
