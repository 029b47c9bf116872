/**
 * Composition root: creates each app's services in dependency order and registers the apps'
 * plugins. The app graph can be read here, top to bottom.
 */
import type { FastifyInstance } from 'fastify'
import { createAuthGuards, createUserTokens, registerUserAuth } from '../core/auth.js'
import type { Platform } from '../core/platform.js'
import { createServiceTokenManager } from '../core/service-auth/index.js'
import { accountsApp } from './accounts/index.js'
import { createAccountsService } from './accounts/service.js'
import { healthApp } from './health/index.js'
import { internalApp } from './internal/index.js'
import { createCategories } from './products/categories.js'
import { productsApp } from './products/index.js'
import { createProductsService } from './products/service.js'

export async function registerApps(app: FastifyInstance, platform: Platform): Promise<void> {
  const { settings } = platform
  const tokens = createUserTokens(settings.auth)
  const guards = createAuthGuards(settings.auth)
  const serviceTokens = createServiceTokenManager(settings.serviceAuth)
  const accounts = createAccountsService({ settings, tokens })
  const products = createProductsService()
  const categories = createCategories()

  // Every request with a bearer token is authenticated before any app sees it.
  registerUserAuth(app, platform, { tokens, loadPrincipal: (userId) => accounts.loadPrincipal(platform.context(), userId) })

  await healthApp(app, platform)
  await accountsApp(app, platform, { accounts, guards })
  await productsApp(app, { products, categories, guards })
  await internalApp(app, platform, { serviceTokens, users: accounts })
}
