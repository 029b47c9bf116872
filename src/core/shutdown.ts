/**
 * Graceful exit of a process on SIGTERM/SIGINT: `stop` runs once (a second signal changes
 * nothing), then the process exits 0; exit 1 if `stop` fails or takes longer than `forceAfterMs`.
 */
import type { Logger } from './logging.js'

export function exitGracefullyOnSignals(log: Logger, options: { message: string; forceAfterMs: number; stop: () => Promise<unknown> }): void {
  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    log.info({ signal }, options.message)
    const force = setTimeout(() => {
      log.error({ timeout_ms: options.forceAfterMs }, 'shutdown timed out, exiting')
      process.exit(1)
    }, options.forceAfterMs)
    force.unref()
    options.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}
