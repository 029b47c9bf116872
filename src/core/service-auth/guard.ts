/**
 * The guard of /internal/ and /api/internal/: every request there needs a valid X-Service-Token.
 * It is one onRequest hook on the root instance, so it also runs before the not-found handler:
 * an unknown internal URL answers 401 to a caller without a token instead of revealing a 404.
 * Routes narrow who may call them with `config: { services: [...] }` (default: every service).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { serviceNames, type ServiceName } from '../../config/settings.js'
import { ForbiddenError, UnauthorizedError } from '../errors.js'
import type { Platform } from '../platform.js'
import type { ServiceTokenManager } from './index.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The calling service on internal routes, or null. */
    service: ServiceName | null
  }
  interface FastifyContextConfig {
    /** Internal routes: the services allowed to call (default: every known service). */
    services?: readonly ServiceName[]
  }
}

const INTERNAL_PATH = /^\/(api\/)?internal(\/|$)/

export function registerServiceAuthGuard(app: FastifyInstance, platform: Platform, tokens: ServiceTokenManager): void {
  app.decorateRequest('service', null)
  app.addHook('onRequest', async (request) => {
    if (!isInternal(request)) return
    const token = request.headers['x-service-token']
    if (typeof token !== 'string' || token === '') {
      throw new UnauthorizedError('service_token_required', 'This route needs an X-Service-Token header.')
    }
    const { service } = await tokens.verify(token)
    const allowed = request.routeOptions.config.services ?? serviceNames
    if (!allowed.includes(service)) throw new ForbiddenError('service_not_allowed', `The service "${service}" may not call this route.`)
    request.service = service
    request.caller = `service:${service}`
    request.ctx = platform.context({ requestId: String(request.id), log: request.log, actor: { kind: 'service', id: service } })
  })
}

/**
 * By the matched route's template, and by the path as the router reads it (duplicate slashes
 * collapsed, percent-escapes decoded), so neither `//api/internal/…` nor `/api/%69nternal/…`
 * nor a wildcard route (CORS preflight) slips past.
 */
function isInternal(request: FastifyRequest): boolean {
  const template = request.routeOptions.url
  if (template !== undefined && INTERNAL_PATH.test(template)) return true
  const path = (request.url.split('?')[0] ?? '/').replace(/\/{2,}/g, '/')
  let decoded = path
  try {
    decoded = decodeURIComponent(path)
  } catch {
    // A malformed escape cannot match a route either; the raw path is checked.
  }
  return INTERNAL_PATH.test(path) || INTERNAL_PATH.test(decoded.replace(/\/{2,}/g, '/'))
}
