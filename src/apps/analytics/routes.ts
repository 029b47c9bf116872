import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Settings } from '../../config/index.js'
import { Problem } from '../../core/http/schemas.js'
import { keyedRateLimit, rateLimited } from '../../core/http/rate-limit.js'
import { IngestAnswer, IngestBody } from './schemas.js'
import type { AnalyticsService } from './service.js'

export function analyticsRoutes(analytics: AnalyticsService, settings: Settings): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/api/analytics/events/', {
      // Per IP, and per session on top: one client cannot flood from many addresses under one session either.
      config: rateLimited(settings, 'analytics'),
      preHandler: keyedRateLimit(app, settings, 'analytics', (request) => {
        const session = (request.body as { session_id?: unknown } | undefined)?.session_id
        return typeof session === 'string' ? `session:${session}` : null
      }),
      schema: {
        tags: ['analytics'],
        summary: "Record a shopper's event (anyone, rate limited)",
        description: 'Answered at once; events are written in batches within a second. Signed-in callers are recorded as themselves, and their `session_id` joins the earlier anonymous events of that session to them.',
        body: IngestBody,
        response: { 202: IngestAnswer, 422: Problem, 429: Problem, 503: Problem },
      },
    }, async (request, reply) => {
      analytics.ingest(request.ctx, request.body)
      return reply.code(202).send({ accepted: true as const })
    })
  }
}
