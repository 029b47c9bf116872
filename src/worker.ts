/**
 * `npm run worker [-- --concurrency N --queues high,default]`: runs the jobs of the BullMQ queues
 * at CELERY_BROKER_URL (the counterpart of `celery worker`). It composes the same app as the API
 * process, so every app's tasks are registered, but never listens. SIGTERM/SIGINT: stop taking
 * jobs, let running ones finish within the shutdown budget (after it their locks expire and
 * another worker takes them), close the pools.
 */
import { createServer, type Server } from 'node:http'
import { parseArgs } from 'node:util'
import type { Registry } from 'prom-client'
import { buildApp } from './app.js'
import { EXIT_CONFIG, type Settings } from './config/index.js'
import { queuePrefixOf, recordTaskRun, reportTaskFailure } from './core/platform.js'
import { startWorkers } from './core/queue/bullmq.js'
import { parseQueueNames, type QueueName } from './core/queue/routing.js'
import { exitGracefullyOnSignals } from './core/shutdown.js'
import { keepVaultSessionAlive, loadProcessSettingsWithVaultOrExit } from './core/vault-settings.js'

const EX_USAGE = 64

function fail(code: number, message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(code)
}

function options(settings: Settings): { queues: QueueName[]; concurrency: number } {
  try {
    const { values } = parseArgs({ args: process.argv.slice(2), options: { concurrency: { type: 'string' }, queues: { type: 'string' } } })
    const concurrency = values.concurrency === undefined ? settings.queue.worker.concurrency : Number(values.concurrency)
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency: expected a whole number of at least 1, got "${values.concurrency}"`)
    return { queues: parseQueueNames(values.queues ?? settings.queue.worker.queues.join(',')), concurrency }
  } catch (err) {
    return fail(EX_USAGE, err instanceof Error ? err.message : String(err))
  }
}

async function main(): Promise<void> {
  const { settings, vault } = await loadProcessSettingsWithVaultOrExit()
  const brokerUrl = settings.queue.brokerUrl
  if (!brokerUrl) fail(EXIT_CONFIG, 'npm run worker needs CELERY_BROKER_URL (a Redis URL). Without a broker, tasks run inside the API process.')
  const { queues, concurrency } = options(settings)

  const app = await buildApp(settings)
  await app.ready()
  const { platform } = app
  const vaultSession = vault && keepVaultSessionAlive(vault, platform.log)
  const workers = startWorkers({
    settings: { brokerUrl, prefix: queuePrefixOf(settings), queues, concurrency, lockDurationMs: settings.queue.worker.lockDurationMs },
    defaults: settings.queue,
    registry: platform.tasks,
    log: platform.log,
    onFinished: recordTaskRun(() => platform.metrics),
    onFailed: reportTaskFailure(platform.errors),
  })

  const metricsServer = serveMetrics(settings, platform.metrics.registry)

  const budget = settings.http.shutdownTimeoutMs
  exitGracefullyOnSignals(platform.log, {
    message: 'worker shutting down: finishing running jobs',
    // Running jobs get most of the budget; what is left closes the pools.
    forceAfterMs: budget + 2_000,
    stop: async () => {
      vaultSession?.stop()
      metricsServer?.close()
      await workers.close(Math.floor(budget * 0.8))
      await app.close()
    },
  })
}

/**
 * WORKER_METRICS_PORT: the task counters and durations of this process for Prometheus (queue
 * depth is on the API's /metrics/ too: it comes from Redis). METRICS_TOKEN applies as on the API.
 */
function serveMetrics(settings: Settings, registry: Registry): Server | null {
  const port = settings.queue.worker.metricsPort
  if (port === 0) return null
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]
    if (path !== '/metrics/' && path !== '/metrics') return void response.writeHead(404).end()
    if (settings.metrics.token && request.headers.authorization !== `Bearer ${settings.metrics.token}`) return void response.writeHead(401).end()
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => response.writeHead(500).end(),
    )
  })
  server.listen(port, settings.http.host)
  return server
}

main().catch((err: unknown) => {
  process.stderr.write(`Worker failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
