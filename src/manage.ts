/**
 * Management commands, as `npm run manage -- <command>` (the counterpart of `python manage.py`).
 *   migrate   apply pending database migrations
 *   check     validate the configuration and exit
 *   service_token --service NAME [--ttl SECONDS] [--audience AUD]   print a service token
 *   createsuperuser --email E --password P   (or DJANGO_SUPERUSER_EMAIL / DJANGO_SUPERUSER_PASSWORD)
 *   seed_demo [--products N] [--seed S] [--force]   add a demo catalog (refuses a non-empty one without --force)
 *   search_reindex   rebuild the search index without downtime
 *   tasks failed | tasks retry ID   failed background jobs on the broker
 *   periodic list | enable NAME | disable NAME   show or switch the periodic schedule of `npm run beat`
 */
import { parseArgs } from 'node:util'
import { ConfigError, type Settings } from './config/index.js'
import { serviceNames } from './config/settings.js'
import { createAccountsService } from './apps/accounts/service.js'
import { createCatalogCache } from './apps/products/catalog-cache.js'
import { CatalogNotEmptyError, refreshCatalogStatistics, seedDemo, writeDemoImages } from './apps/products/seed-demo.js'
import { DEFAULT_SCHEDULE } from './apps/schedule.js'
import { createUserTokens } from './core/auth.js'
import { createCache } from './core/cache.js'
import { createCtx } from './core/context.js'
import { createDatabase, sqlStateOf } from './core/db/index.js'
import { AppError } from './core/errors.js'
import { createLogger } from './core/logging.js'
import { ensureDefaultSchedule, formatPeriodicTasks, listPeriodicTasks, setPeriodicTaskEnabled } from './core/scheduler/index.js'
import { createCatalog } from './apps/products/catalog.js'
import { createSearchBackend } from './apps/search/index.js'
import { createServiceTokenManager, isServiceName } from './core/service-auth/index.js'
import { queuePrefixOf } from './core/platform.js'
import { TaskRegistry } from './core/queue/index.js'
import { createStorage } from './core/storage.js'
import { loadProcessSettingsWithVault } from './core/vault-settings.js'

/** run resolves to the exit code, or nothing for 0. */
type Command = { summary: string; run: (settings: Settings, args: string[]) => Promise<number | void> }

const commands: Record<string, Command> = {
  createsuperuser: {
    summary: 'create an admin: --email E --password P (or DJANGO_SUPERUSER_EMAIL/_PASSWORD)',
    async run(settings, args) {
      let values: { email?: string; password?: string }
      try {
        values = parseArgs({ args, options: { email: { type: 'string' }, password: { type: 'string' } } }).values
      } catch (err) {
        return usageError(err instanceof Error ? err.message : String(err))
      }
      const email = values.email ?? settings.auth.superuser.email
      const password = values.password ?? settings.auth.superuser.password
      if (!email || !password) return usageError('Give --email and --password, or set DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD.')
      const log = createLogger(settings)
      const database = await createDatabase(settings, log)
      try {
        const accounts = createAccountsService({ settings, tokens: createUserTokens(settings.auth) })
        const ctx = createCtx({ db: database.db, log, requestId: 'manage' })
        const result = await accounts.createSuperuser(ctx, { email, password })
        out(result.created ? `Superuser ${result.user.email} created.` : `A user with the email ${result.user.email} already exists; nothing changed.`)
      } catch (err) {
        if (err instanceof AppError) return usageError(`${err.message}${err.errors ? ` ${Object.values(err.errors).flat().join(' ')}` : ''}`)
        throw err
      } finally {
        await database.close()
      }
    },
  },
  migrate: {
    summary: 'apply pending database migrations',
    async run(settings) {
      const log = createLogger(settings)
      const database = await createDatabase(settings, log)
      try {
        const applied = await database.migrate()
        out(applied === 0 ? 'No migrations to apply.' : `Applied ${applied} migration${applied === 1 ? '' : 's'}.`)
      } finally {
        await database.close()
      }
    },
  },
  check: {
    summary: 'validate the configuration and exit',
    async run(settings) {
      out(`Configuration for ${settings.environment} is valid (database: ${settings.db.kind}, cache: ${settings.cache.redisUrl ? 'redis' : 'memory'}).`)
    },
  },
  seed_demo: {
    summary: 'add a demo catalog: [--products N (default 200)] [--seed S] [--force: add to a catalog that has products]',
    async run(settings, args) {
      let values: { products?: string; seed?: string; force?: boolean }
      try {
        values = parseArgs({ args, options: { products: { type: 'string' }, seed: { type: 'string' }, force: { type: 'boolean' } } }).values
      } catch (err) {
        return usageError(err instanceof Error ? err.message : String(err))
      }
      const products = Number(values.products ?? 200)
      if (!Number.isInteger(products) || products < 1 || products > 10_000_000) return usageError(`--products must be a whole number from 1 to 10000000, got "${values.products}".`)
      const seed = values.seed === undefined ? undefined : Number(values.seed)
      if (seed !== undefined && !Number.isSafeInteger(seed)) return usageError(`--seed must be a whole number, got "${values.seed}".`)
      const log = createLogger(settings)
      const database = await createDatabase(settings, log)
      const storage = createStorage(settings, log)
      const started = performance.now()
      try {
        // Placeholders first, so no image row ever points at a missing file; writing them again changes nothing.
        await writeDemoImages(storage)
        const counts = await seedDemo(database.db, {
          products,
          currency: settings.currency,
          ...(seed === undefined ? {} : { seed }),
          force: values.force ?? false,
          onProgress: (done, total) => {
            if (total > done) out(`  ${done}/${total} products`)
          },
        })
        await refreshCatalogStatistics(database.db)
        // Running API processes share Redis: their cached lists and pages must not outlive the new products.
        if (settings.cache.redisUrl) {
          const cache = await createCache(settings, log)
          await createCatalogCache(cache).changed(createCtx({ db: database.db, log, requestId: 'manage' }), ['catalog', 'stock']).finally(() => cache.close())
        }
        const seconds = ((performance.now() - started) / 1000).toFixed(1)
        out(
          `Seeded ${counts.products} products (numbers ${counts.first_number}–${counts.first_number + counts.products - 1}), ${counts.variants} variants, ` +
            `${counts.stock_movements} stock movements, ${counts.images} images; ${counts.categories_created} new categories; ` +
            `${counts.out_of_stock_products} out of stock, ${counts.inactive_products} inactive; in ${seconds} s.`,
        )
      } catch (err) {
        if (err instanceof CatalogNotEmptyError) return usageError(`${err.message} Run again with --force to add ${products} more demo products.`)
        throw err
      } finally {
        storage.close?.()
        await database.close()
      }
    },
  },
  search_reindex: {
    summary: 'rebuild the search index from the catalog (OpenSearch: a new index, then an atomic alias swap)',
    async run(settings) {
      const log = createLogger(settings)
      const database = await createDatabase(settings, log)
      const cache = await createCache(settings, log)
      const catalogCache = createCatalogCache(cache)
      const catalog = createCatalog({ cache: catalogCache, currency: settings.currency, mediaUrl: (key) => key })
      const backend = await createSearchBackend(settings, catalog, log)
      const started = performance.now()
      try {
        const ctx = createCtx({ db: database.db, log, requestId: 'manage' })
        const indexed = await backend.reindexAll(ctx)
        // Running API processes share the cache: cached searches must not outlive the new index.
        await catalogCache.changed(ctx)
        out(`Indexed ${indexed} products (${backend.name}) in ${((performance.now() - started) / 1000).toFixed(1)} s.`)
      } catch (err) {
        if (err instanceof AppError) {
          // One line: what failed and what the cluster (or the network) said.
          const cause = err.cause instanceof Error ? ` (${err.cause.message})` : ''
          process.stderr.write(`Search reindex failed: ${err.message}${cause}\n`)
          return 1
        }
        throw err
      } finally {
        await backend.close()
        await cache.close()
        await database.close()
      }
    },
  },
  periodic: {
    summary: 'the periodic schedule of npm run beat: list | enable NAME | disable NAME',
    async run(settings, args) {
      const [action, name, ...extra] = args
      if (action !== 'list' && action !== 'enable' && action !== 'disable') {
        return usageError(`${action === undefined ? 'Give a subcommand' : `Unknown subcommand "${action}"`}: periodic list | enable NAME | disable NAME.`)
      }
      if (action === 'list' ? name !== undefined : name === undefined || extra.length > 0) {
        return usageError(action === 'list' ? 'periodic list takes no arguments.' : `periodic ${action} takes one periodic task name.`)
      }
      const log = createLogger(settings)
      const database = await createDatabase(settings, log)
      try {
        // The shipped rows exist before the scheduler first starts, so an operator can switch one off beforehand.
        await ensureDefaultSchedule(database.db, DEFAULT_SCHEDULE)
        if (action === 'list') {
          const rows = await listPeriodicTasks(database.db)
          out(rows.length > 0 ? formatPeriodicTasks(rows) : 'The periodic schedule is empty.')
          return
        }
        const enabled = action === 'enable'
        if (!(await setPeriodicTaskEnabled(database.db, name!, enabled))) {
          const known = (await listPeriodicTasks(database.db)).map((row) => row.name)
          return usageError(`No periodic task named "${name}"${known.length > 0 ? `; the schedule has: ${known.join(', ')}` : ''}.`)
        }
        out(`Periodic task ${name} ${enabled ? 'enabled' : 'disabled'}.`)
      } finally {
        await database.close()
      }
    },
  },
  tasks: {
    summary: 'failed background jobs on the broker: failed | retry ID',
    async run(settings, args) {
      const [action, id, ...extra] = args
      if (!(action === 'failed' && id === undefined) && !(action === 'retry' && id !== undefined && extra.length === 0)) {
        return usageError('Usage: tasks failed | tasks retry ID.')
      }
      if (!settings.queue.brokerUrl) {
        return usageError('Without CELERY_BROKER_URL tasks run inside the API process, and its failed jobs are in its log lines ("task failed permanently").')
      }
      const log = createLogger(settings)
      // Reading and retrying failed jobs needs no task definitions: an empty registry will do.
      const { createBullmqQueue } = await import('./core/queue/bullmq.js')
      const queue = createBullmqQueue({ settings: { ...settings.queue, brokerUrl: settings.queue.brokerUrl, prefix: queuePrefixOf(settings) }, registry: new TaskRegistry(), log })
      try {
        if (action === 'failed') {
          const failed = await queue.failed()
          out(failed.length === 0 ? 'No failed jobs.' : failed.map((job) => `${job.id}  ${job.task}  attempts ${job.attempts}  ${job.failed_at}\n    ${job.error}`).join('\n'))
          return
        }
        if (!(await queue.retry(id!))) return usageError(`No failed job with the id "${id}" (tasks failed lists them).`)
        out(`Job ${id} is queued again from its first attempt.`)
      } finally {
        await queue.close()
      }
    },
  },
  service_token: {
    summary: 'print a service token: --service NAME [--ttl SECONDS] [--audience AUD]',
    async run(settings, args) {
      let values: { service?: string; ttl?: string; audience?: string }
      try {
        values = parseArgs({ args, options: { service: { type: 'string' }, ttl: { type: 'string' }, audience: { type: 'string' } } }).values
      } catch (err) {
        return usageError(err instanceof Error ? err.message : String(err))
      }
      if (!isServiceName(values.service)) {
        return usageError(`${values.service === undefined ? '--service is required' : `Unknown service "${values.service}"`}: expected one of ${serviceNames.join(', ')}.`)
      }
      const ttl = values.ttl === undefined ? undefined : Number(values.ttl)
      if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1)) return usageError(`--ttl must be a positive whole number of seconds, got "${values.ttl}".`)
      const tokens = createServiceTokenManager(settings.serviceAuth)
      out(await tokens.issue(values.service, { ...(ttl ? { ttlSeconds: ttl } : {}), ...(values.audience ? { audience: values.audience } : {}) }))
    },
  },
}

function usageError(message: string): number {
  process.stderr.write(`${message}\n`)
  return 2
}

function out(line: string): void {
  process.stdout.write(`${line}\n`)
}

function usage(): string {
  return ['Usage: npm run manage -- <command>', '', ...Object.entries(commands).map(([name, command]) => `  ${name.padEnd(16)}${command.summary}`)].join('\n')
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv
  if (!name || name === 'help' || name === '--help') {
    out(usage())
    return name ? 0 : 2
  }
  const command = commands[name]
  if (!command) {
    process.stderr.write(`Unknown command "${name}".\n${usage()}\n`)
    return 2
  }
  // Commands run with the selected environment's settings, minus start-up side effects.
  // With USE_VAULT the secret is read once; a command is too short-lived to need its token renewed.
  const { settings } = await loadProcessSettingsWithVault({ db: { migrateOnStart: false, seedDemoOnStart: false } })
  return (await command.run(settings, args)) ?? 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(78)
    }
    // A table missing: the database was never migrated (a fresh clone before its first `npm start`).
    if (sqlStateOf(err) === '42P01') {
      process.stderr.write('The database has no tables yet (or misses newer ones): run `npm run manage -- migrate` first.\n')
      process.exit(1)
    }
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  },
)
