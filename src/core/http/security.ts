/** Security headers, CORS and the ALLOWED_HOSTS check. */
import cors from '@fastify/cors'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import helmet, { type HelmetOptions } from 'helmet'
import type { Settings } from '../../config/index.js'
import { problemOf, sendProblem } from './problem.js'

const PROBE_PATH = /^\/(health|metrics)(\/|\?|$)/

export async function registerSecurity(app: FastifyInstance, settings: Settings): Promise<void> {
  const headers = securityHeaders({
    // JSON answers need no scripts or styles; the docs pages set their own policy.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], baseUri: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-site' },
    // HSTS only where the service is deployed behind TLS; a local http:// must keep working.
    strictTransportSecurity: settings.http.enforceAllowedHosts ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  })
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers(headers)
  })

  const allowed = new Set(settings.cors.allowedOrigins)
  await app.register(cors, {
    origin: settings.cors.allowAll ? true : (origin, done) => done(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Cart-Token', 'X-Request-ID'],
    exposedHeaders: ['X-Request-ID', 'Idempotent-Replayed', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
    maxAge: 600,
  })

  if (settings.http.enforceAllowedHosts && !settings.http.allowedHosts.includes('*')) {
    const isAllowed = hostMatcher(settings.http.allowedHosts)
    app.addHook('onRequest', async (request, reply) => {
      // Probes and scrapers reach a container by its IP address, so health and metrics are exempt.
      if (PROBE_PATH.test(request.url)) return
      if (!isAllowed(request.hostname)) {
        return sendProblem(reply, problemOf(request, 400, 'disallowed_host', `Invalid Host header "${request.hostname}": add it to ALLOWED_HOSTS.`))
      }
    })
  }
}

/** Django's rules: "shop.example.com" matches itself, ".example.com" matches it and every subdomain. */
export function hostMatcher(patterns: string[]): (host: string) => boolean {
  const lowered = patterns.map((pattern) => pattern.toLowerCase())
  return (host) => {
    const name = host.toLowerCase().replace(/\.$/, '')
    return lowered.some((pattern) => (pattern.startsWith('.') ? name === pattern.slice(1) || name.endsWith(pattern) : name === pattern))
  }
}

/**
 * helmet's headers, computed once: they are the same for every answer, and running the
 * middleware per request (as @fastify/helmet does) re-derives them each time.
 */
export function securityHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader: (name: string, value: unknown) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
  }
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, () => undefined)
  return headers
}
