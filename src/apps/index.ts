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
import { createCatalogCache } from './products/catalog-cache.js'
import { createCatalog } from './products/catalog.js'
import { createCategories } from './products/categories.js'
import { createProductImages } from './products/images.js'
import { productsApp } from './products/index.js'
import { createReviews } from './products/reviews.js'
import { seedDemoOnStart } from './products/seed-demo.js'
import { createProductsService } from './products/service.js'
import { createSearchBackend, searchApp } from './search/index.js'
import { createSearchService } from './search/service.js'
import { createSynonyms } from './search/synonyms.js'
import { createSearchTasks, INDEX_PRODUCTS_TASK } from './search/tasks.js'

export async function registerApps(app: FastifyInstance, platform: Platform): Promise<void> {
  const { settings } = platform
  const tokens = createUserTokens(settings.auth)
  const guards = createAuthGuards(settings.auth)
  const serviceTokens = createServiceTokenManager(settings.serviceAuth)
  const accounts = createAccountsService({ settings, tokens })
  const catalogCache = createCatalogCache(platform.cache)
  const images = createProductImages({ storage: platform.storage, maxBytes: settings.storage.maxUploadBytes, onChange: (ctx) => catalogCache.changed(ctx) })
  const categories = createCategories({ cache: catalogCache })
  const products = createProductsService({ cache: catalogCache })
  const catalog = createCatalog({ cache: catalogCache, currency: settings.currency, mediaUrl: (key) => platform.storage.url(key) })
  const synonyms = createSynonyms({ onChange: (ctx) => catalogCache.changed(ctx) })
  const searchBackend = await createSearchBackend(settings, catalog, platform.log)
  const search = createSearchService({ catalog, categories, synonyms, backend: searchBackend, cache: catalogCache })
  app.addHook('onClose', () => searchBackend.close())
  for (const task of createSearchTasks(searchBackend, platform.context, (ctx) => catalogCache.changed(ctx))) platform.tasks.register(task)
  // PostgreSQL's search documents change with the products; an external index follows the outbox.
  if (searchBackend.name === 'opensearch') platform.tasks.subscribe('catalog.products_changed', INDEX_PRODUCTS_TASK)
  // Orders will answer purchases (verified_purchase); until they exist no review is verified.
  const reviews = createReviews({ purchases: async () => false, onChange: (ctx) => catalogCache.changed(ctx), authors: (ctx, ids) => accounts.getUserNames(ctx, ids) })

  // Every request with a bearer token is authenticated before any app sees it.
  registerUserAuth(app, platform, { tokens, loadPrincipal: (userId) => accounts.loadPrincipal(platform.context(), userId) })

  await healthApp(app, platform)
  await accountsApp(app, platform, { accounts, guards })
  await productsApp(app, { products, catalog, search, categories, reviews, images, guards })
  await searchApp(app, { search, synonyms, guards })
  await internalApp(app, platform, { serviceTokens, users: accounts })

  // Development: an empty catalog gets the demo catalog once (SEED_DEMO_ON_START).
  await seedDemoOnStart(platform)
}
