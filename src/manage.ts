/**
 * Management commands, as `npm run manage -- <command>` (the counterpart of `python manage.py`).
 *   migrate   apply pending database migrations
 *   check     validate the configuration and exit
 *   service_token --service NAME [--ttl SECONDS] [--audience AUD]   print a service token
 *   createsuperuser --email E --password P   (or DJANGO_SUPERUSER_EMAIL / DJANGO_SUPERUSER_PASSWORD)
 */
import { parseArgs } from 'node:util'
import { ConfigError, loadProcessSettings, type Settings } from './config/index.js'
import { serviceNames } from './config/settings.js'
import { createAccountsService } from './apps/accounts/service.js'
import { createUserTokens } from './core/auth.js'
import { createCtx } from './core/context.js'
import { createDatabase } from './core/db/index.js'
import { AppError } from './core/errors.js'
import { createLogger } from './core/logging.js'
import { createServiceTokenManager, isServiceName } from './core/service-auth/index.js'

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
  const settings = loadProcessSettings({ db: { migrateOnStart: false, seedDemoOnStart: false } })
  return (await command.run(settings, args)) ?? 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(78)
    }
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  },
)
