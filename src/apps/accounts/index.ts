import type { FastifyInstance } from 'fastify'
import type { AuthGuards } from '../../core/auth.js'
import type { Platform } from '../../core/platform.js'
import { accountRoutes, authRoutes, type SignInHook } from './routes.js'
import type { AccountsService } from './service.js'
import { registerAccountsTasks } from './tasks.js'

/** Accounts: /api/auth/ (sign-in, tokens, verification, reset, two-factor) and /api/accounts/ (profile, addresses, users). */
export async function accountsApp(app: FastifyInstance, platform: Platform, deps: { accounts: AccountsService; guards: AuthGuards; onSignIn?: SignInHook }): Promise<void> {
  registerAccountsTasks(platform, deps.accounts)
  await app.register(authRoutes(deps.accounts, deps.guards, platform.settings, deps.onSignIn), { prefix: '/api/auth' })
  await app.register(accountRoutes(deps.accounts, deps.guards), { prefix: '/api/accounts' })
}
