import type { FastifyInstance } from 'fastify'
import type { Ctx } from '../../core/context.js'
import type { Platform } from '../../core/platform.js'
import { registerServiceAuthGuard } from '../../core/service-auth/guard.js'
import type { ServiceTokenManager } from '../../core/service-auth/index.js'
import { internalRoutes } from './routes.js'
import type { UserSummary } from './schemas.js'

export type { UserSummary } from './schemas.js'

/** The port the accounts app fills: a user's summary, or NotFoundError. */
export interface UserDirectory {
  getUserSummary(ctx: Ctx, id: string): Promise<UserSummary>
}

/**
 * Service-to-service routes: the X-Service-Token guard over /internal/ and /api/internal/,
 * /.well-known/jwks.json and the internal user lookup.
 */
export async function internalApp(app: FastifyInstance, platform: Platform, deps: { serviceTokens: ServiceTokenManager; users: UserDirectory }): Promise<void> {
  // On the root instance: the guard must also see routes of other apps and unknown URLs.
  registerServiceAuthGuard(app, platform, deps.serviceTokens)
  await app.register(internalRoutes(deps.serviceTokens, deps.users))
}
