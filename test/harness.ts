/**
 * createTestApp: a real app on a fresh, migrated database of its own (PostgreSQL or PGlite, see
 * test/database.ts), Redis when REDIS_URL is set (with a key prefix of its own), memory email and
 * in-process tasks. `setup` may add test-only routes before the app is ready.
 */
import { readFile } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { inject } from 'vitest'
import { buildApp, type App } from '../src/app.js'
import { deepMerge, loadSettings, type Settings } from '../src/config/index.js'
import type { DeepPartial } from '../src/config/settings.js'
import { createPglite, type Database } from '../src/core/db/index.js'
import { dropDatabase, testServerUrl, uniqueName, urlFor, withAdmin } from './database.js'

export interface TestAppOptions {
  /** Raw variables on top of ENVIRONMENT=test (and REDIS_URL when the suite has Redis). */
  env?: Record<string, string>
  settings?: DeepPartial<Settings>
  /** false: no Redis even when the suite has one. */
  redis?: boolean
  /** Capture log lines (JSON objects) instead of discarding them. */
  captureLogs?: boolean
  /** Runs before app.ready(): register test-only routes here. */
  setup?: (app: App) => void | Promise<void>
}

export interface TestApp {
  app: App
  settings: Settings
  logs: Array<Record<string, unknown>>
  request(options: InjectOptions): Promise<LightMyRequestResponse>
  /**
   * Waits until background work is done: outbox events delivered, jobs run, and the events those
   * jobs published delivered and run in turn. `queue.drain()` alone can return while the relay is
   * still handing over events a request just committed.
   */
  settle(): Promise<void>
  close(): Promise<void>
}

export const suiteRedisUrl = process.env.REDIS_URL || null
export const usesPostgres = testServerUrl() !== null

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const logs: Array<Record<string, unknown>> = []
  const env: Record<string, string> = { ENVIRONMENT: 'test', ...(options.captureLogs ? { LOG_LEVEL: 'info' } : {}) }
  if (suiteRedisUrl && options.redis !== false) {
    env.REDIS_URL = suiteRedisUrl
    env.CACHE_KEY_PREFIX = `${uniqueName('test')}:`
  }
  const fresh = await freshDatabase()
  const overrides = deepMerge<DeepPartial<Settings>>({ db: { migrateOnStart: false } }, options.settings ?? {})
  const settings = loadSettings({ ...env, ...fresh.env, ...options.env }, overrides)
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const app = await buildApp(settings, { logStream, ...(fresh.database ? { database: fresh.database } : {}) })
  await options.setup?.(app)
  await app.ready()
  return {
    app,
    settings,
    logs,
    request: (request) => app.inject(request),
    async settle() {
      const { relay, queue } = app.platform
      // A job's commit starts a relay run of its own; flush() joins a running one and counts what
      // it handed over, so stop only once a flush after a drain delivered nothing.
      do await queue.drain()
      while ((await relay.flush()) > 0)
    },
    async close() {
      await app.close()
      await fresh.drop()
    },
  }
}

interface FreshDatabase {
  env: Record<string, string>
  database?: Database
  drop(): Promise<void>
}

async function freshDatabase(): Promise<FreshDatabase> {
  const serverUrl = testServerUrl()
  const template = inject('pgTemplate')
  if (serverUrl && template) {
    const name = uniqueName('shop_test')
    await copyTemplate(serverUrl, name, template)
    return { env: { DATABASE_URL: urlFor(serverUrl, name) }, drop: () => dropDatabase(serverUrl, name) }
  }
  const dump = await readFile(inject('pgliteTemplate')!)
  const client = await PGlite.create({ loadDataDir: new Blob([dump]), extensions: { pg_trgm } })
  return { env: {}, database: await createPglite(null, client), drop: async () => undefined }
}

/** Two copies of one template at the same moment collide ("being accessed by other users"): retry. */
async function copyTemplate(serverUrl: string, name: string, template: string): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await withAdmin(serverUrl, (client) => client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`))
      return
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || attempt >= 50) throw err
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt))
    }
  }
}
