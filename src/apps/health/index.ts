import type { FastifyInstance } from 'fastify'
import type { Platform } from '../../core/platform.js'
import { healthRoutes } from './routes.js'
import { createHealthService } from './service.js'

/** Health checks and metrics: /health/live/, /health/ready/, /health/, /metrics/. */
export async function healthApp(app: FastifyInstance, platform: Platform): Promise<void> {
  const health = createHealthService(platform)
  // Probes and scrapers call these often; they are not rate limited.
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, rateLimit: false } as typeof route.config
    })
    await scope.register(healthRoutes(health, platform.metrics, platform.settings.metrics.token))
  })
}
