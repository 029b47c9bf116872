/** Entry point of the API process: load settings, build the app, listen, shut down gracefully. */
import { buildApp } from './app.js'
import { exitGracefullyOnSignals } from './core/shutdown.js'
import { keepVaultSessionAlive, loadProcessSettingsWithVaultOrExit } from './core/vault-settings.js'

async function main(): Promise<void> {
  const { settings, vault } = await loadProcessSettingsWithVaultOrExit()

  const app = await buildApp(settings)
  const vaultSession = vault && keepVaultSessionAlive(vault, app.log)
  exitGracefullyOnSignals(app.log, {
    message: 'shutting down: finishing in-flight requests',
    forceAfterMs: settings.http.shutdownTimeoutMs,
    stop: () => {
      vaultSession?.stop()
      return app.close()
    },
  })

  await app.listen({ host: settings.http.host, port: settings.http.port })
  app.log.info(
    { environment: settings.environment, database: app.platform.database.kind, cache: app.platform.cache.backend, docs: `/api/docs/` },
    'shop backend ready',
  )
}

main().catch((err: unknown) => {
  process.stderr.write(`Failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
