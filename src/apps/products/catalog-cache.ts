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
 */
import type { Cache } from '../../core/cache.js'
import type { Ctx } from '../../core/context.js'

export type Generation = 'catalog' | 'stock'

const TTL_SECONDS = 60
const counterKey = (generation: Generation) => `catalog:gen:${generation}`

interface Entry<T> {
  gen: string
  value: T
}

export function createCatalogCache(cache: Cache) {
  const bump = async (generations: Generation[]) => {
    await Promise.all(generations.map((generation) => cache.incr(counterKey(generation))))
  }

  return {
    /** The cached value for `key` under the current generations, or `load()`'s answer, stored. */
    async read<T>(key: string, generations: Generation[], load: () => Promise<T>): Promise<T> {
      const entryKey = `catalog:${key}`
      const [entry, ...counters] = await cache.getMany<Entry<T> | number>([entryKey, ...generations.map(counterKey)])
      const gen = counters.map((counter) => counter ?? 0).join('.')
      if (entry !== undefined && (entry as Entry<T>).gen === gen) return (entry as Entry<T>).value
      const value = await load()
      await cache.set(entryKey, { gen, value } satisfies Entry<T>, TTL_SECONDS)
      return value
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
