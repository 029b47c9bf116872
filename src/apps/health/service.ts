/**
 * Health: liveness, readiness and a detailed dependency report. Owns no tables, publishes and
 * consumes no events. Every check runs with a timeout, so a hung dependency fails fast.
 */
import type { Platform } from '../../core/platform.js'

export type CheckName = 'database' | 'cache' | 'search' | 'storage' | 'queue' | 'vault'

export interface CheckResult {
  status: 'ok' | 'error'
  /** Which implementation answered (postgres, pglite, redis, memory, opensearch, s3, in-process, vault). */
  backend: string
  latency_ms: number
  error?: string
  /** Queue depth: jobs waiting (or delayed for a retry), running, and kept as failed. */
  jobs?: { waiting: number; active: number; failed: number }
}

export interface HealthReport {
  status: 'ok' | 'error'
  checks: Partial<Record<CheckName, CheckResult>>
  failed: CheckName[]
}

type Probe = { backend: string; run: (signal: AbortSignal) => Promise<void | Pick<CheckResult, 'jobs'>> }

/** What readiness needs (storage only with S3: local media is a directory); the detailed report adds the rest. */
const READINESS: CheckName[] = ['database', 'cache', 'search', 'storage']

export function createHealthService(platform: Pick<Platform, 'database' | 'cache' | 'queue' | 'storage' | 'settings'>, fetchImpl: typeof fetch = fetch) {
  const { settings } = platform
  const probes: Partial<Record<CheckName, Probe>> = {
    database: { backend: platform.database.kind, run: () => platform.database.ping() },
    cache: { backend: platform.cache.backend, run: () => platform.cache.ping() },
    search: settings.search.url
      ? { backend: 'opensearch', run: (signal) => searchHealth(fetchImpl, settings.search.url!, signal) }
      : // PostgreSQL full-text search lives in the database.
        { backend: 'postgres', run: () => platform.database.ping() },
    ...(platform.storage.backend === 's3' ? { storage: { backend: 's3', run: (signal: AbortSignal) => platform.storage.ping(signal) } } : {}),
    queue: {
      backend: platform.queue.backend,
      run: async () => {
        const { waiting, active, failed } = await platform.queue.stats()
        return { jobs: { waiting, active, failed } }
      },
    },
    ...(settings.vault.enabled && settings.vault.addr ? { vault: { backend: 'vault', run: (signal: AbortSignal) => vaultHealth(fetchImpl, settings.vault.addr!, signal) } } : {}),
  }

  const check = async (name: CheckName, probe: Probe): Promise<CheckResult> => {
    const started = performance.now()
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort()
        reject(new Error(`no answer within ${settings.health.timeoutMs} ms`))
      }, settings.health.timeoutMs)
    })
    try {
      const extra = await Promise.race([probe.run(controller.signal), timeout])
      return { status: 'ok', backend: probe.backend, latency_ms: elapsed(started), ...extra }
    } catch (err) {
      return { status: 'error', backend: probe.backend, latency_ms: elapsed(started), error: describe(err, name) }
    } finally {
      clearTimeout(timer)
    }
  }

  const report = async (names: CheckName[]): Promise<HealthReport> => {
    const entries = await Promise.all(
      names.filter((name) => probes[name]).map(async (name) => [name, await check(name, probes[name]!)] as const),
    )
    const checks = Object.fromEntries(entries) as HealthReport['checks']
    const failed = entries.filter(([, result]) => result.status === 'error').map(([name]) => name)
    return { status: failed.length === 0 ? 'ok' : 'error', checks, failed }
  }

  return {
    /** Database, cache, search and (S3) storage. */
    readiness: () => report(READINESS),
    /** Every dependency, Vault included when enabled. */
    details: () => report(Object.keys(probes) as CheckName[]),
  }
}

export type HealthService = ReturnType<typeof createHealthService>

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10
}

/** A short reason without credentials (connection strings never reach the answer). */
function describe(err: unknown, name: CheckName): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.replace(/\/\/[^@/\s]*@/g, '//***@').slice(0, 200) || `${name} failed`
}

/**
 * OpenSearch's cluster health. Credentials in ELASTICSEARCH_URL go as Basic auth, as the OpenSearch
 * client sends them: fetch refuses a URL with credentials, which made readiness fail for good.
 */
async function searchHealth(fetchImpl: typeof fetch, url: string, signal: AbortSignal): Promise<void> {
  const target = new URL(`${url}/_cluster/health`)
  const headers: Record<string, string> = {}
  if (target.username !== '' && target.password !== '') {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`
  }
  target.username = ''
  target.password = ''
  const response = await fetchImpl(target, { signal, headers })
  if (!response.ok) throw new Error(`search answered ${response.status}`)
  const body = (await response.json()) as { status?: string }
  if (body.status === 'red') throw new Error('search cluster status is red')
}

async function vaultHealth(fetchImpl: typeof fetch, addr: string, signal: AbortSignal): Promise<void> {
  // 200 active, 429 unsealed standby, 473 performance standby: all can serve reads.
  const response = await fetchImpl(`${addr}/v1/sys/health?standbyok=true&perfstandbyok=true`, { signal })
  if (response.status !== 200 && response.status !== 429 && response.status !== 473) {
    throw new Error(response.status === 503 ? 'vault is sealed' : `vault answered ${response.status}`)
  }
}
