import type { FastifyInstance } from 'fastify'
import type { Platform } from '../../core/platform.js'
import { healthRoutes } from './routes.js'
import { createHealthService } from './service.js'

/** Health checks and metrics: /health/live/, /health/ready/, /health/, /metrics/. */
export async function healthApp(app: FastifyInstance, platform: Platform): Promise<void> {
  const health = createHealthService(platform)
  await app.register(healthRoutes(health, platform.metrics, platform.settings.metrics.token))
}
