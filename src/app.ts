/**
 * buildApp: the Fastify instance from settings. It never listens; server.ts does, tests inject.
 * The returned instance is not yet ready, so tests may add routes before the first request.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { registerApps } from './apps/index.js'
import type { Settings } from './config/index.js'
import { registerDocs } from './core/http/docs.js'
import { registerMedia } from './core/http/media.js'
import { registerErrorHandling } from './core/http/problem.js'
import { registerRateLimit } from './core/http/rate-limit.js'
import { registerRequestHooks } from './core/http/request-hooks.js'
import { requestIdOf } from './core/http/request-id.js'
import { ProblemSchema } from './core/http/schemas.js'
import { buildValidator } from './core/http/validation.js'
import { registerSecurity } from './core/http/security.js'
import { registerIdempotency } from './core/idempotency/index.js'
import { createPlatform, type Platform, type PlatformOverrides } from './core/platform.js'

declare module 'fastify' {
  interface FastifyInstance {
    platform: Platform
  }
}

export type App = FastifyInstance

export async function buildApp(settings: Settings, overrides: PlatformOverrides = {}): Promise<App> {
  const platform = await createPlatform(settings, overrides)
  const app = Fastify({
    loggerInstance: platform.log as FastifyBaseLogger,
    // One line per request comes from our onResponse hook (route template, duration, status).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    genReqId: requestIdOf,
    bodyLimit: settings.http.bodyLimit,
    // A hop count is valid at run time; Fastify's types omit it.
    trustProxy: settings.http.trustProxy as boolean | string[],
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 200 },
    // Fastify types this factory after its Ajv pool; ours returns the same compiler signature.
    schemaController: { compilersFactory: { buildValidator: buildValidator as never } },
  })

  app.decorate('platform', platform)
  app.addHook('onClose', () => platform.close())
  // server.close() only ends connections idle at that moment: a response still in flight then
  // must close its keep-alive connection, or close() waits for the keep-alive timeout.
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })
  app.addSchema(ProblemSchema)

  registerErrorHandling(app, { debug: settings.debug, errors: platform.errors })
  registerRequestHooks(app, platform)
  await registerSecurity(app, settings)
  await registerRateLimit(app, settings, platform.cache)
  registerIdempotency(app, settings, platform.database.db)
  await registerDocs(app, settings)
  await registerMedia(app, settings)
  await registerApps(app, platform)
  return app
}
