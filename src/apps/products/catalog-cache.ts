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
/** What local copies may hold per process, in characters of their JSON (a product list page is ~35k). */
const LOCAL_BUDGET = 4_000_000
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
  /**
   * The current counters, creating missing ones at a random value: a counter lost with Redis's
   * data comes back at a value no earlier entry carries, so no old entry can pass for current.
   */
  const countersOf = async (generations: Generation[]): Promise<Array<number | undefined>> => {
    const counters = await cache.getMany<number>(generations.map(counterKey))
    return Promise.all(counters.map((counter, i) => counter ?? cache.incr(counterKey(generations[i]!), randomInt(1, 2 ** 47))))
  }
  // In memory mode the shared cache is this process's memory already.
  const local = cache.backend === 'redis' ? new LocalEntries(LOCAL_BUDGET) : null

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
          const entry = await cache.get<Entry<T>>(entryKey)
          if (entry === undefined || entry.gen !== gen) return store(entryKey, gen, await load())
          // Kept locally from its second read on: a page read once (a deep page, a rare filter)
          // does not push the popular ones out.
          local.set(entryKey, gen, entry.value)
          return entry.value
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

/** Roughly how many characters a value holds (its strings dominate: rendered JSON). */
function sizeOf(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length
  if (typeof value !== 'object' || value === null || depth > 4) return 8
  let size = 0
  for (const item of Array.isArray(value) ? value : Object.values(value)) size += sizeOf(item, depth + 1)
  return size
}

/** A map of entries with their generation and expiry, bounded in size; the least recently used go first. */
class LocalEntries {
  private readonly entries = new Map<string, { gen: string; value: unknown; expiresAt: number; size: number }>()
  private size = 0

  constructor(private readonly budget: number) {}

  get<T>(key: string, gen: string): T | undefined {
    const entry = this.entries.get(key)
    if (!entry || entry.gen !== gen || entry.expiresAt <= Date.now()) return undefined
    // Re-inserting keeps the Map's order as the recency order.
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.value as T
  }

  set(key: string, gen: string, value: unknown): void {
    this.remove(key)
    const size = sizeOf(value)
    if (size > this.budget / 4) return
    this.entries.set(key, { gen, value, expiresAt: Date.now() + TTL_SECONDS * 1000, size })
    this.size += size
    while (this.size > this.budget) this.remove(this.entries.keys().next().value!)
  }

  private remove(key: string): void {
    const entry = this.entries.get(key)
    if (!entry) return
    this.entries.delete(key)
    this.size -= entry.size
  }
}
