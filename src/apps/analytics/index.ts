import type { FastifyInstance } from 'fastify'
import type { AuthGuards } from '../../core/auth.js'
import type { Platform } from '../../core/platform.js'
import type { OrdersService } from '../orders/service.js'
import type { PaymentsService } from '../payments/service.js'
import type { ProductsService } from '../products/service.js'
import { createRecorder, type Recorder } from './recorder.js'
import { analyticsRoutes, reportRoutes } from './routes.js'
import { createAnalyticsService, type AnalyticsService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The ingestion buffer (tests flush it). */
    analyticsRecorder: Recorder
  }
}

/** The analytics service with its ingestion buffer, written every ANALYTICS flush and at close. */
export function createAnalytics(platform: Platform, deps: { products: ProductsService; orders: OrdersService; payments: PaymentsService }): { analytics: AnalyticsService; recorder: Recorder } {
  const { products } = deps
  const { analytics: config, timeZone, currency } = platform.settings
  const recorder = createRecorder(
    { context: () => platform.context(), productIdsBySlug: (ctx, slugs) => products.productIdsBySlug(ctx, slugs), log: platform.log },
    { batchSize: config.batchSize, flushMs: config.flushMs, maxBuffered: config.maxBuffered },
  )
  const analytics = createAnalyticsService({ ...deps, recorder, retentionDays: config.retentionDays, timeZone, currency, lowStockThreshold: config.lowStockThreshold, liveCacheMs: config.liveCacheMs })
  return { analytics, recorder }
}

/** /api/analytics/: event ingestion, and the staff dashboard and sales report. */
export async function analyticsApp(app: FastifyInstance, platform: Platform, deps: { analytics: AnalyticsService; recorder: Recorder; guards: AuthGuards }): Promise<void> {
  app.decorate('analyticsRecorder', deps.recorder)
  deps.recorder.start()
  // Written before the database closes (onClose hooks of the app run before the platform's).
  app.addHook('onClose', () => deps.recorder.stop())
  await app.register(analyticsRoutes(deps.analytics, platform.settings))
  await app.register(reportRoutes(deps.analytics, deps.guards))
}
