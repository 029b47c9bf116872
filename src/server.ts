/** Entry point of the API process: load settings, build the app, listen, shut down gracefully. */
import { buildApp } from './app.js'
import { loadProcessSettingsOrExit } from './config/index.js'

async function main(): Promise<void> {
  const settings = loadProcessSettingsOrExit()

  const app = await buildApp(settings)
  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    const force = setTimeout(() => {
      app.log.error({ timeout_ms: settings.http.shutdownTimeoutMs }, 'shutdown timed out, exiting')
      process.exit(1)
    }, settings.http.shutdownTimeoutMs)
    force.unref()
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

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
