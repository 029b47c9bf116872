/**
 * Per-request plumbing: the X-Request-ID response header, `request.ctx`, one log line per request
 * and the HTTP metrics.
 */
import type { FastifyInstance } from 'fastify'
import type { Ctx } from '../context.js'
import type { Platform } from '../platform.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The service context of this request; auth replaces it with one that carries the actor. */
    ctx: Ctx
    /** Who is calling, for idempotency scopes ("user:<id>", "service:<name>"); set by auth. */
    caller: string | null
  }
}

export function registerRequestHooks(app: FastifyInstance, platform: Platform): void {
  app.decorateRequest('ctx', null as unknown as Ctx)
  app.decorateRequest('caller', null)

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    request.ctx = platform.context({ requestId: String(request.id), log: request.log })
  })

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? '(unmatched)'
    const labels = { method: request.method, route, status: String(reply.statusCode) }
    const seconds = reply.elapsedTime / 1000
    platform.metrics.httpRequests.inc(labels)
    platform.metrics.httpDuration.observe(labels, seconds)
    // The query string is left out: it may carry tokens.
    request.log.info(
      { method: request.method, route, path: request.url.split('?')[0], status: reply.statusCode, duration_ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request completed',
    )
  })
}
