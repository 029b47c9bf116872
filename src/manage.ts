/**
 * Management commands, as `npm run manage -- <command>` (the counterpart of `python manage.py`).
 *   migrate   apply pending database migrations
 *   check     validate the configuration and exit
 */
import { ConfigError, loadProcessSettings, type Settings } from './config/index.js'
import { createDatabase } from './core/db/index.js'
import { createLogger } from './core/logging.js'

type Command = { summary: string; run: (settings: Settings, args: string[]) => Promise<void> }

const commands: Record<string, Command> = {
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
}

function out(line: string): void {
  process.stdout.write(`${line}\n`)
}

function usage(): string {
  return ['Usage: npm run manage -- <command>', '', ...Object.entries(commands).map(([name, command]) => `  ${name.padEnd(12)}${command.summary}`)].join('\n')
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
  await command.run(settings, args)
  return 0
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
