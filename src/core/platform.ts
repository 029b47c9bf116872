/**
 * The shared infrastructure one process needs (database, cache, queue, email, outbox relay,
 * metrics, error reporting), created from settings and closed together. Apps receive it at composition time.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DestinationStream, Logger as PinoLogger } from 'pino'
import { projectRoot, type Settings } from '../config/index.js'
import { createCache, type Cache } from './cache.js'
import { createCtx, type Actor, type Ctx } from './context.js'
import { createDatabase, type Database } from './db/index.js'
import { createMailer, createSendEmailTask, type Mailer } from './email.js'
import { createErrorReporter, type ErrorReporter } from './error-reporting.js'
import { createEmailTemplates, type EmailTemplates } from './email-templates.js'
import { createOutboxRelay, type OutboxRelay } from './events/index.js'
import { createCleanExpiredTask } from './housekeeping.js'
import { createLogger, type Logger } from './logging.js'
import { createMetrics, type Metrics } from './metrics.js'
import { createInProcessQueue, TaskRegistry, type TaskFailureHandler, type TaskQueue } from './queue/index.js'
import { createStorage, type Storage } from './storage.js'

export interface Platform {
  settings: Settings
  log: PinoLogger
  database: Database
  cache: Cache
  /** Media files (local disk or S3). */
  storage: Storage
  tasks: TaskRegistry
  queue: TaskQueue
  mailer: Mailer
  /** The emails' templates (templates/email/), for the tasks that write to customers. */
  emails: EmailTemplates
  relay: OutboxRelay
  metrics: Metrics
  /** Sentry, when SENTRY_DSN is set (a no-op otherwise). */
  errors: ErrorReporter
  /** A context for work outside a request (tasks, commands). */
  context(options?: { requestId?: string; actor?: Actor | null; log?: Logger }): Ctx
  close(): Promise<void>
}

export interface PlatformOverrides {
  /** Where log lines go (tests capture them). */
  logStream?: DestinationStream
  /** An already created database (tests pass a per-file copy of the migrated template). */
  database?: Database
}

export async function createPlatform(settings: Settings, overrides: PlatformOverrides = {}): Promise<Platform> {
  const log = createLogger(settings, overrides.logStream)
  const database = overrides.database ?? (await createDatabase(settings, log))
  if (settings.db.migrateOnStart) {
    const applied = await database.migrate()
    if (applied > 0) log.info({ applied }, 'database migrations applied')
  }
  const cache = await createCache(settings, log)
  const storage = createStorage(settings, log)
  const tasks = new TaskRegistry()
  const errors = await createErrorReporter({ dsn: settings.observability.sentryDsn, environment: settings.environment, release: `shop-backend@${packageVersion()}` })
  const mailer = createMailer(settings, log)
  const emails = createEmailTemplates({ shopName: settings.auth.shopName, shopUrl: settings.auth.frontendUrl, cache: settings.environment === 'production', directory: settings.email.templatesDir })
  tasks.register(createSendEmailTask(mailer))
  tasks.register(createCleanExpiredTask(database.db, settings))
  // The gauges read the queue and relay only when scraped, after both exist.
  const metrics: Metrics = createMetrics({ pool: () => database.poolStats(), queue: () => queue.stats(), outboxBacklog: () => relay.backlog() })
  // With a broker this process only adds jobs; `npm run worker` runs them. Without one they run here
  // (and BullMQ, a fifth of a second to load, is not loaded).
  const queue = settings.queue.brokerUrl
    ? (await import('./queue/bullmq.js')).createBullmqQueue({ settings: { ...settings.queue, brokerUrl: settings.queue.brokerUrl, prefix: queuePrefixOf(settings) }, registry: tasks, log })
    : createInProcessQueue({ registry: tasks, settings: settings.queue, log, onFinished: recordTaskRun(() => metrics), onFailed: reportTaskFailure(errors) })
  const relay = createOutboxRelay({ db: database.db, queue, registry: tasks, log, pollMs: settings.queue.outboxPollMs })
  relay.start()

  const flushOutbox = () => {
    relay.flush().catch((err: unknown) => log.error({ err }, 'outbox relay failed'))
  }

  return {
    settings,
    log,
    database,
    cache,
    storage,
    tasks,
    queue,
    mailer,
    emails,
    relay,
    metrics,
    errors,
    context: (options = {}) =>
      createCtx({
        db: database.db,
        log: options.log ?? log,
        requestId: options.requestId ?? 'background',
        actor: options.actor ?? null,
        onEventsCommitted: flushOutbox,
      }),
    async close() {
      await relay.stop()
      // Leave part of the shutdown budget for closing the pools after the jobs.
      await queue.close(Math.floor(settings.http.shutdownTimeoutMs * 0.8))
      mailer.close()
      await errors.close()
      await cache.close()
      storage.close?.()
      await database.close()
    },
  }
}

/** Tasks that failed for good go to the error reporter, whichever runner ran them. */
export function reportTaskFailure(errors: ErrorReporter): TaskFailureHandler {
  return (task, err, job) => errors.taskFailed(err, { task, jobId: job.id, attempts: job.attempts })
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version
}

/** BullMQ's keys live under the cache prefix, so shops (and test runs) sharing a Redis stay apart. */
export function queuePrefixOf(settings: Settings): string {
  return `${settings.cache.keyPrefix}bull`
}

/** The task counters and durations of /metrics/, fed by whichever runner ran the job. */
export function recordTaskRun(metrics: () => Metrics) {
  return (task: string, outcome: string, seconds: number) => {
    metrics().taskRuns.inc({ task, outcome })
    metrics().taskDuration.observe({ task }, seconds)
  }
}
