/**
 * Entry point of `npm run beat`, the periodic task scheduler (Celery beat): load settings, build
 * the app without listening (for its database, queue and registered tasks), add the default
 * schedule rows that are missing, then lead or wait for the leader until SIGTERM/SIGINT.
 */
import { buildApp } from './app.js'
import { DEFAULT_SCHEDULE } from './apps/schedule.js'
import { EXIT_CONFIG } from './config/index.js'
import { schedulerFor } from './core/scheduler/index.js'
import { exitGracefullyOnSignals } from './core/shutdown.js'
import { keepVaultSessionAlive, loadProcessSettingsWithVaultOrExit } from './core/vault-settings.js'

async function main(): Promise<void> {
  // Seeding the demo catalog is the API process's start-up work, not the scheduler's.
  const { settings, vault } = await loadProcessSettingsWithVaultOrExit({ db: { seedDemoOnStart: false } })

  if (!settings.queue.brokerUrl) {
    process.stderr.write('npm run beat needs CELERY_BROKER_URL (a Redis URL). Without a broker the API process keeps the periodic schedule itself.\n')
    process.exit(EXIT_CONFIG)
  }
  const app = await buildApp(settings)
  await app.ready()
  const vaultSession = vault && keepVaultSessionAlive(vault, app.log)
  const scheduler = schedulerFor(app.platform, DEFAULT_SCHEDULE)
  await scheduler.ensureDefaults()
  // The scheduler's timer is unref'd so it never holds other processes open; this one exists for it.
  const keepAlive = setInterval(() => undefined, 1 << 30)

  exitGracefullyOnSignals(app.log, {
    message: 'scheduler shutting down',
    forceAfterMs: settings.http.shutdownTimeoutMs,
    stop: async () => {
      vaultSession?.stop()
      clearInterval(keepAlive)
      await scheduler.stop()
      await app.close()
    },
  })

  app.log.info({ environment: settings.environment, database: app.platform.database.kind, queue: app.platform.queue.backend, schedule: DEFAULT_SCHEDULE.length }, 'scheduler started')
  scheduler.start()
}

main().catch((err: unknown) => {
  process.stderr.write(`Failed to start the scheduler: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
