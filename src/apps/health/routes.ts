import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { DependencyUnavailableError, UnauthorizedError } from '../../core/errors.js'
import { Problem } from '../../core/http/schemas.js'
import type { Metrics } from '../../core/metrics.js'
import { HealthReportSchema, LiveSchema, NotReadySchema } from './schemas.js'
import type { HealthReport, HealthService } from './service.js'

// Probes and scrapers call these often; they are not rate limited. (Set per route: a plugin's
// onRoute hook runs after the rate-limit plugin's, too late to opt out.)
const unlimited = { rateLimit: false as const }

export function healthRoutes(health: HealthService, metrics: Metrics, metricsToken: string | null): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/health/live/', {
      config: unlimited,
      schema: { tags: ['platform'], summary: 'Liveness: the process runs', response: { 200: LiveSchema } },
    }, async () => ({ status: 'ok' as const }))

    app.get('/health/ready/', {
      config: unlimited,
      schema: {
        tags: ['platform'],
        summary: 'Readiness: database, cache and search answer',
        response: { 200: HealthReportSchema, 503: NotReadySchema },
      },
    }, async () => orUnavailable(await health.readiness()))

    app.get('/health/', {
      config: unlimited,
      schema: {
        tags: ['platform'],
        summary: 'Every dependency with its status and latency',
        response: { 200: HealthReportSchema, 503: NotReadySchema },
      },
    }, async () => orUnavailable(await health.details()))

    app.get('/metrics/', {
      config: unlimited,
      schema: {
        tags: ['platform'],
        summary: 'Prometheus metrics (text format)',
        description: 'When METRICS_TOKEN is set, send "Authorization: Bearer <token>".',
        response: { 200: Type.String({ description: 'Prometheus exposition format' }), 401: Problem },
      },
    }, async (request, reply) => {
      if (metricsToken && request.headers.authorization !== `Bearer ${metricsToken}`) throw new UnauthorizedError()
      const text = await metrics.registry.metrics()
      return reply.type(metrics.registry.contentType).send(text)
    })
  }
}

function orUnavailable(report: HealthReport): HealthReport {
  if (report.status === 'ok') return report
  throw new DependencyUnavailableError(`Not ready: ${report.failed.join(', ')} failed.`, { failed: report.failed, checks: report.checks })
}
