import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ServiceTokenManager } from '../../core/service-auth/index.js'
import { Problem } from '../../core/http/schemas.js'
import type { UserDirectory } from './index.js'
import { JwksSchema, UserParams, UserSummarySchema, type Jwks } from './schemas.js'

// The same internal routes answer under both prefixes (the original served /internal/ too).
const PREFIXES = ['/api/internal', '/internal'] as const

export function internalRoutes(serviceTokens: ServiceTokenManager, users: UserDirectory): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Verifiers fetch it often and cache it; not rate limited (set per route, see health/routes.ts).
    app.get('/.well-known/jwks.json', {
      config: { rateLimit: false },
      schema: {
        tags: ['platform'],
        summary: 'Public keys that verify service tokens (JWKS)',
        description: 'Empty unless SERVICE_AUTH_ALGORITHM is RS256, ES256 or EdDSA. During a key rotation every current key is listed.',
        response: { 200: JwksSchema },
      },
    }, async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300')
      // The manager always sets kid, alg and use, which jose's JWK type leaves optional.
      return serviceTokens.jwks() as Jwks
    })

    for (const prefix of PREFIXES) {
      app.get(`${prefix}/users/:id/`, {
        schema: {
          tags: ['internal'],
          summary: 'A user summary for another service',
          security: [{ serviceToken: [] }],
          params: UserParams,
          response: { 200: UserSummarySchema, 401: Problem, 403: Problem, 404: Problem, 422: Problem },
        },
      }, (request) => users.getUserSummary(request.ctx, request.params.id))
    }
  }
}
