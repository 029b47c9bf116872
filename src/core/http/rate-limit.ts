/**
 * Rate limits: a global per-IP limit on every route, plus named stricter rules (auth,
 * password_reset, analytics, ...) that routes attach with `config: rateLimited(settings, 'auth')`.
 * Counters live in Redis when REDIS_URL is set, so every API process shares them.
 */
import rateLimit, { type RateLimitOptions } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import type { Settings } from '../../config/index.js'
import type { Cache } from '../cache.js'
import { RateLimitedError } from '../errors.js'

export async function registerRateLimit(app: FastifyInstance, settings: Settings, cache: Cache): Promise<void> {
  if (!settings.rateLimit.enabled) return
  await app.register(rateLimit, {
    global: true,
    max: settings.rateLimit.global.max,
    timeWindow: settings.rateLimit.global.windowMs,
    ...(cache.redis ? { redis: cache.redis, nameSpace: 'ratelimit:' } : {}),
    // A broken Redis must not take the API down with it.
    skipOnError: true,
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) => new RateLimitedError(Math.max(1, Math.ceil(context.ttl / 1000))),
  })
}

/**
 * Route config for a named rule. `key` picks what is counted (default: the client IP), e.g. the
 * account being signed in to.
 */
export function rateLimited(settings: Settings, name: string, key?: (request: FastifyRequest) => string): { rateLimit?: RateLimitOptions } {
  const rule = settings.rateLimit.named[name]
  if (!rule) throw new Error(`Unknown rate limit "${name}"`)
  if (!settings.rateLimit.enabled) return {}
  return {
    rateLimit: {
      max: rule.max,
      timeWindow: rule.windowMs,
      keyGenerator: (request: FastifyRequest) => `${name}:${key ? key(request) : request.ip}`,
    },
  }
}

/**
 * A second, keyed limit for a route (e.g. per account on top of the per-IP rule), as a
 * preHandler: it runs after the body is parsed, so the key can come from it. A null key skips.
 */
export function keyedRateLimit(
  app: FastifyInstance,
  settings: Settings,
  name: string,
  key: (request: FastifyRequest) => string | null,
): preHandlerAsyncHookHandler {
  const rule = settings.rateLimit.named[name]
  if (!rule) throw new Error(`Unknown rate limit "${name}"`)
  if (!settings.rateLimit.enabled || !app.hasDecorator('createRateLimit')) return async () => undefined
  const check = app.createRateLimit({ max: rule.max, timeWindow: rule.windowMs, keyGenerator: (request) => `${name}:${key(request)}` })
  return async (request) => {
    if (key(request) === null) return
    const result = await check(request).catch((err: unknown) => {
      // Like the global limit: a broken store lets the request through.
      request.log.warn({ err }, 'rate limit store unavailable')
      return null
    })
    if (result && !result.isAllowed && result.isExceeded) throw new RateLimitedError(Math.max(1, result.ttlInSeconds))
  }
}
