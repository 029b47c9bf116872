/**
 * A small cache: Redis when REDIS_URL is set, process memory otherwise. Values are JSON.
 * Cache failures never fail a request: reads miss and writes are skipped, with a log line.
 */
import { Redis } from 'ioredis'
import type { Settings } from '../config/index.js'
import type { Logger } from './logging.js'

export interface Cache {
  readonly backend: 'redis' | 'memory'
  get<T>(key: string): Promise<T | undefined>
  set(key: string, value: unknown, ttlSeconds: number): Promise<void>
  /** Several values in one round trip, in the order of `keys`. */
  getMany<T>(keys: string[]): Promise<Array<T | undefined>>
  delete(...keys: string[]): Promise<void>
  /** Adds `by` (default 1) to a counter created at 0, without expiry; undefined when the store is down. */
  incr(key: string, by?: number): Promise<number | undefined>
  /** Throws when the store does not answer. */
  ping(): Promise<void>
  /** The Redis connection, for stores that share it (rate limits); null in memory mode. */
  readonly redis: Redis | null
  close(): Promise<void>
}

export async function createCache(settings: Pick<Settings, 'cache'>, log: Logger): Promise<Cache> {
  return settings.cache.redisUrl ? createRedisCache(settings.cache.redisUrl, settings.cache.keyPrefix, log) : createMemoryCache(settings.cache.keyPrefix)
}

export function createMemoryCache(prefix = ''): Cache {
  const entries = new Map<string, { value: string; expiresAt: number }>()
  return {
    backend: 'memory',
    redis: null,
    async get<T>(key: string) {
      const entry = entries.get(prefix + key)
      if (!entry) return undefined
      if (entry.expiresAt <= Date.now()) {
        entries.delete(prefix + key)
        return undefined
      }
      return JSON.parse(entry.value) as T
    },
    async getMany<T>(keys: string[]) {
      return Promise.all(keys.map((key) => this.get<T>(key)))
    },
    async set(key, value, ttlSeconds) {
      entries.set(prefix + key, { value: JSON.stringify(value), expiresAt: Date.now() + ttlSeconds * 1000 })
    },
    async incr(key, by = 1) {
      const next = ((await this.get<number>(key)) ?? 0) + by
      entries.set(prefix + key, { value: String(next), expiresAt: Number.POSITIVE_INFINITY })
      return next
    },
    async delete(...keys) {
      for (const key of keys) entries.delete(prefix + key)
    },
    ping: async () => undefined,
    close: async () => entries.clear(),
  }
}

/** How long start-up waits for Redis before going on without it (readiness then says so). */
const CONNECT_WAIT_MS = 2_000

export async function createRedisCache(url: string, prefix: string, log: Logger): Promise<Cache> {
  const redis = new Redis(url, {
    keyPrefix: prefix,
    connectTimeout: CONNECT_WAIT_MS,
    // Fail commands at once while disconnected instead of queueing them behind a dead server.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, 5_000),
  })
  let lastError = ''
  redis.on('error', (err: Error) => {
    // Reconnection retries repeat the same error: log it once per change.
    if (err.message !== lastError) log.warn({ err: err.message }, 'redis connection error')
    lastError = err.message
  })
  redis.on('ready', () => {
    lastError = ''
  })
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, CONNECT_WAIT_MS)
    redis.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
  })

  const guard = async <T>(operation: string, fallback: T, run: () => Promise<T>): Promise<T> => {
    try {
      return await run()
    } catch (err) {
      log.warn({ err: (err as Error).message, operation }, 'cache unavailable')
      return fallback
    }
  }

  return {
    backend: 'redis',
    redis,
    get: <T>(key: string) =>
      guard('get', undefined, async () => {
        const text = await redis.get(key)
        return text === null ? undefined : (JSON.parse(text) as T)
      }),
    getMany: <T>(keys: string[]) =>
      guard('getMany', keys.map(() => undefined), async () =>
        (await redis.mget(...keys)).map((text) => (text === null ? undefined : (JSON.parse(text) as T))),
      ),
    incr: (key, by = 1) => guard('incr', undefined, () => redis.incrby(key, by)),
    set: (key, value, ttlSeconds) => guard('set', undefined, async () => void (await redis.set(key, JSON.stringify(value), 'EX', ttlSeconds))),
    delete: (...keys) => guard('delete', undefined, async () => void (keys.length > 0 && (await redis.del(...keys)))),
    async ping() {
      await redis.ping()
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect())
    },
  }
}
