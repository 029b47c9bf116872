/**
 * Composition root: creates each app's services in dependency order and registers the apps'
 * plugins. The app graph can be read here, top to bottom.
 */
import type { FastifyInstance } from 'fastify'
import { createAuthGuards, createUserTokens, registerUserAuth } from '../core/auth.js'
import type { Platform } from '../core/platform.js'
import { schedulerFor } from '../core/scheduler/index.js'
import { createServiceTokenManager } from '../core/service-auth/index.js'
import { accountsApp } from './accounts/index.js'
import { analyticsApp, createAnalytics } from './analytics/index.js'
import { registerAnalyticsTasks } from './analytics/tasks.js'
import { createAccountsService } from './accounts/service.js'
import { createCoupons } from './cart/coupons.js'
import { cartApp, mergeCartOnSignIn } from './cart/index.js'
import { createCartService } from './cart/service.js'
import { computeTotals } from './cart/pricing.js'
import { seedPricingDefaults } from './cart/pricing-queries.js'
import { createShipping } from './cart/shipping.js'
import { createTaxes } from './cart/tax.js'
import { healthApp } from './health/index.js'
import { internalApp } from './internal/index.js'
import { notificationsApp } from './notifications/index.js'
import { createMarketing } from './notifications/marketing.js'
import { registerMarketingTask } from './notifications/marketing-task.js'
import { createNotificationsService } from './notifications/service.js'
import { registerNotificationsTasks } from './notifications/tasks.js'
import { createUnsubscribeTokens } from './notifications/unsubscribe-tokens.js'
import { createCheckout } from './orders/checkout.js'
import { ordersApp } from './orders/index.js'
import { createOrdersService } from './orders/service.js'
import { registerOrdersTasks } from './orders/tasks.js'
import { createPaymentProvider, paymentsApp } from './payments/index.js'
import { createPaymentsService } from './payments/service.js'
import { registerPaymentsTasks } from './payments/tasks.js'
import { createCatalogCache } from './products/catalog-cache.js'
import { createCatalog } from './products/catalog.js'
import { createCategories } from './products/categories.js'
import { createProductImages } from './products/images.js'
import { productsApp } from './products/index.js'
import { createReviews } from './products/reviews.js'
import { DEFAULT_SCHEDULE } from './schedule.js'
import { seedDemoOnStart } from './products/seed-demo.js'
import { createProductsService } from './products/service.js'
import { createSearchBackend, searchApp } from './search/index.js'
import { createSearchService } from './search/service.js'
import { createSynonyms } from './search/synonyms.js'
import { createSearchTasks, INDEX_PRODUCTS_TASK } from './search/tasks.js'
import { registerWebhooksTasks, webhooksApp, webhooksConfigOf } from './webhooks/index.js'
import { createWebhooksService } from './webhooks/service.js'

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
  const coupons = createCoupons()
  const shipping = createShipping()
  const taxes = createTaxes()
  const cart = createCartService({ products, coupons, settings })
  // Orders show their payment, and payments build on orders: the port calls payments, created next.
  const orders = createOrdersService({ products, coupons, payments: (ctx, ids) => payments.summaries(ctx, ids), metrics: platform.metrics.business })
  registerOrdersTasks(platform, orders)
  const payments = createPaymentsService({ provider: await createPaymentProvider(settings, platform.log), orders, metrics: platform.metrics.business, allowDummyConfirm: settings.environment !== 'production' })
  registerPaymentsTasks(platform, payments, orders)
  const webhooks = createWebhooksService({ orders, payments, config: webhooksConfigOf(settings), queue: platform.queue })
  registerWebhooksTasks(platform, webhooks)
  const notifications = createNotificationsService()
  registerNotificationsTasks(platform, { notifications, orders, payments })
  const marketing = createMarketing({
    notifications,
    tokens: createUnsubscribeTokens(settings.secretKey),
    emails: platform.emails,
    queue: platform.queue,
    recipients: (ctx, ids) => accounts.getRecipients(ctx, ids),
    publicUrl: settings.http.publicUrl,
  })
  registerMarketingTask(platform, marketing)
  const { analytics, recorder: analyticsRecorder } = createAnalytics(platform, { products, orders, payments })
  registerAnalyticsTasks(platform, { analytics, orders })
  const checkout = createCheckout({
    orders,
    products,
    currency: settings.currency,
    pricesIncludeTax: settings.commerce.pricesIncludeTax,
    reservationMinutes: settings.commerce.orderReservationMinutes,
    // What checkout needs of the cart app, through its services.
    ports: {
      cartForCheckout: async (ctx, owner) => {
        const open = await cart.resolveCart(ctx, owner)
        return { cartId: open.id, ...(await cart.checkoutLines(ctx, open)) }
      },
      markCheckedOut: (ctx, cartId) => cart.markCheckedOut(ctx, cartId),
      validateCoupon: (ctx, code, context) => coupons.validate(ctx, code, context),
      redeemCoupon: (ctx, code, context) => coupons.redeem(ctx, code, context),
      quoteShipping: (ctx, method, country) => shipping.quote(ctx, method, country),
      taxRate: (ctx, country, region) => taxes.rateFor(ctx, country, region),
      computeTotals,
      userEmail: async (ctx, userId) => (await accounts.getUserSummary(ctx, userId)).email,
      startPayment: (ctx, orderId) => payments.startPayment(ctx, orderId),
    },
  })
  const catalog = createCatalog({ cache: catalogCache, currency: settings.currency, mediaUrl: (key) => platform.storage.url(key) })
  const synonyms = createSynonyms({ onChange: (ctx) => catalogCache.changed(ctx) })
  const searchBackend = await createSearchBackend(settings, catalog, platform.log)
  const search = createSearchService({ catalog, categories, synonyms, backend: searchBackend, cache: catalogCache })
  app.addHook('onClose', () => searchBackend.close())
  for (const task of createSearchTasks(searchBackend, platform.context, (ctx) => catalogCache.changed(ctx))) platform.tasks.register(task)
  // PostgreSQL's search documents change with the products; an external index follows the outbox.
  if (searchBackend.name === 'opensearch') platform.tasks.subscribe('catalog.products_changed', INDEX_PRODUCTS_TASK)
  const reviews = createReviews({ purchases: (ctx, userId, productId) => orders.hasBought(ctx, userId, productId), onChange: (ctx) => catalogCache.changed(ctx), authors: (ctx, ids) => accounts.getUserNames(ctx, ids) })

  // Every request with a bearer token is authenticated before any app sees it.
  registerUserAuth(app, platform, { tokens, loadPrincipal: (userId) => accounts.loadPrincipal(platform.context(), userId) })

  await healthApp(app, platform)
  // Signing in with an X-Cart-Token merges that guest cart into the user's cart.
  await accountsApp(app, platform, { accounts, guards, onSignIn: mergeCartOnSignIn(cart) })
  await productsApp(app, { products, catalog, search, categories, reviews, images, guards })
  await searchApp(app, { search, synonyms, guards, onSearch: (ctx, query, count) => analytics.recordSearch(ctx, query, count) })
  await cartApp(app, platform, { cart, pricing: { coupons, shipping, taxes, guards, currency: settings.currency } })
  await ordersApp(app, { orders, checkout, guards })
  await paymentsApp(app, { payments, guards, webhookSecret: settings.stripe.webhookSecret, metrics: platform.metrics.business })
  await webhooksApp(app, { webhooks, guards })
  await notificationsApp(app, { notifications, marketing, guards })
  await analyticsApp(app, platform, { analytics, recorder: analyticsRecorder, guards })
  await internalApp(app, platform, { serviceTokens, users: accounts })
  // Without a broker this process keeps the periodic schedule itself (on PostgreSQL one API process
  // leads); with CELERY_BROKER_URL `npm run beat` does.
  if (!settings.queue.brokerUrl && settings.queue.periodicEveryMs > 0) {
    const scheduler = schedulerFor(platform, DEFAULT_SCHEDULE, { tickMs: settings.queue.periodicEveryMs })
    await scheduler.ensureDefaults()
    scheduler.start()
    app.addHook('onClose', () => scheduler.stop())
  }

  // Development: an empty catalog gets the demo catalog once (SEED_DEMO_ON_START).
  await seedDemoOnStart(platform)
  if (settings.db.seedDemoOnStart) await seedPricingDefaults(platform.database.db)
}
