/**
 * HashiCorp Vault over its HTTP API: AppRole login, KV v2 reads and token renewal. The client
 * keeps its token to itself, so neither callers nor log lines ever see it.
 */
import type { Logger } from './logging.js'

export interface VaultClientOptions {
  /** VAULT_ADDR, e.g. https://vault.internal:8200 */
  addr: string
  roleId: string
  secretId: string
  /** A Vault that does not answer within this is an error, not a hang at start-up. */
  timeoutMs?: number
  /** Tests only; the global fetch otherwise. */
  fetch?: typeof fetch
  /** The clock leases are stamped with (milliseconds); performance.now() otherwise. */
  now?: () => number
}

/** What Vault granted at the last login or renewal; never the token itself. */
export interface VaultLease {
  /** Seconds the token lives from `obtainedAt`; 0 means it never expires. */
  leaseSeconds: number
  renewable: boolean
  /** The client's clock when Vault answered. */
  obtainedAt: number
}

/** A Vault call that failed, in one sentence naming VAULT_ADDR, the status and Vault's own errors. */
export class VaultError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'VaultError'
  }
}

const DEFAULT_TIMEOUT_MS = 5_000

export function createVaultClient(options: VaultClientOptions) {
  const addr = options.addr.replace(/\/+$/, '')
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const fetchImpl = options.fetch ?? fetch
  const now = options.now ?? (() => performance.now())
  let token: string | null = null
  let lease: VaultLease | null = null

  async function call(what: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = {}
    if (token) headers['X-Vault-Token'] = token
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    let res: Response
    try {
      res = await fetchImpl(`${addr}/v1/${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      throw new VaultError(`${what} at ${addr}: ${unreachable(err, timeoutMs)}`, null, { cause: err })
    }
    const text = await res.text().catch(() => '')
    const json = parseJson(text)
    if (!res.ok) {
      const errors = Array.isArray(json?.errors) ? json.errors.filter((e): e is string => typeof e === 'string' && e !== '') : []
      const reason = errors.length > 0 ? errors.join('; ') : res.statusText.toLowerCase() || 'no reason given'
      throw new VaultError(`${what} at ${addr}: ${res.status} ${reason}`, res.status)
    }
    if (!json) throw new VaultError(`${what} at ${addr}: ${res.status} answer is not JSON`, res.status)
    return json
  }

  function acceptAuth(what: string, answer: Record<string, unknown>): VaultLease {
    const auth = answer.auth as { client_token?: unknown; lease_duration?: unknown; renewable?: unknown } | null | undefined
    if (!auth || typeof auth.client_token !== 'string' || auth.client_token === '') {
      throw new VaultError(`${what} at ${addr}: the answer carries no auth.client_token`, 200)
    }
    token = auth.client_token
    lease = {
      leaseSeconds: typeof auth.lease_duration === 'number' ? auth.lease_duration : 0,
      renewable: auth.renewable === true,
      obtainedAt: now(),
    }
    return lease
  }

  return {
    addr,
    /** POST auth/approle/login with role_id and secret_id; the new token replaces the old one. */
    async login(): Promise<VaultLease> {
      const what = 'Vault AppRole login'
      // The old token must not ride along: a login needs none, and it may have expired.
      token = null
      return acceptAuth(what, await call(what, 'POST', 'auth/approle/login', { role_id: options.roleId, secret_id: options.secretId }))
    },

    /** GET <mount>/data/<path> of a KV v2 engine: the secret's current version, key → value. */
    async readSecret(mount: string, path: string): Promise<Record<string, unknown>> {
      const what = `Vault KV v2 read of ${mount}/${path}`
      if (!token) throw new VaultError(`${what} at ${addr}: not logged in`, null)
      const answer = await call(what, 'GET', `${segments(mount)}/data/${segments(path)}`)
      const data = (answer.data as { data?: unknown } | undefined)?.data
      if (typeof data !== 'object' || data === null || Array.isArray(data)) {
        throw new VaultError(`${what} at ${addr}: the answer has no data.data (is ${mount} a KV v2 mount?)`, 200)
      }
      return data as Record<string, unknown>
    },

    /** POST auth/token/renew-self: extends the current token; Vault may grant less than before. */
    async renewSelf(): Promise<VaultLease> {
      const what = 'Vault token renewal'
      if (!token) throw new VaultError(`${what} at ${addr}: not logged in`, null)
      return acceptAuth(what, await call(what, 'POST', 'auth/token/renew-self', {}))
    },

    /** The lease of the current token, or null before the first login. */
    lease(): VaultLease | null {
      return lease
    },
  }
}

export type VaultClient = ReturnType<typeof createVaultClient>

/** Each path segment encoded on its own: `team/shop` stays a nested path. */
function segments(path: string): string {
  return path.split('/').filter(Boolean).map(encodeURIComponent).join('/')
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** Why no answer came: a timeout, a refused connection, an unknown host or another network error. */
function unreachable(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${timeoutMs} ms`
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined
  if (cause?.code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED)'
  if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return `host not found (${cause.code})`
  if (cause?.code) return `unreachable (${cause.code})`
  return `unreachable (${cause?.message ?? (err instanceof Error ? err.message : String(err))})`
}

/** When to act on a lease: at about two thirds of it, counted from when Vault granted it. */
export const RENEW_AT_FRACTION = 2 / 3
const RETRY_AFTER_MS = 10_000

export interface TokenRenewalOptions {
  /** Tests drive the loop by capturing what it schedules; a real, unref'd setTimeout otherwise. */
  schedule?: (run: () => Promise<void>, delayMs: number) => { cancel(): void }
  /** The same clock as the client's. */
  now?: () => number
  /** After a failed login, try again this much later. */
  retryMs?: number
}

/**
 * Keeps the client's token alive for a long-running process: renews it at about two thirds of
 * its lease and logs in again with AppRole when it cannot be renewed (not renewable, renewal
 * refused, or Vault capping the renewal below the login's lease because the token nears its max
 * TTL). A failed login is retried. Nothing here logs a token or a secret value.
 */
export function startTokenRenewal(client: VaultClient, log: Logger, options: TokenRenewalOptions = {}): { stop(): void } {
  const schedule = options.schedule ?? unrefTimeout
  const now = options.now ?? (() => performance.now())
  const retryMs = options.retryMs ?? RETRY_AFTER_MS
  let loginLeaseSeconds = client.lease()?.leaseSeconds ?? 0
  let pending: { cancel(): void } | null = null
  let stopped = false

  const next = (lease: VaultLease, canRenew: boolean) => {
    if (stopped) return
    // A lease of 0 is a token without expiry (a root or periodic-less token): nothing to do.
    if (lease.leaseSeconds === 0) return
    const delay = Math.max(0, lease.obtainedAt + lease.leaseSeconds * 1000 * RENEW_AT_FRACTION - now())
    pending = schedule(canRenew ? renew : relogin, delay)
  }

  const relogin = async () => {
    if (stopped) return
    try {
      const lease = await client.login()
      loginLeaseSeconds = lease.leaseSeconds
      if (stopped) return
      log.info({ lease_seconds: lease.leaseSeconds, renewable: lease.renewable }, 'vault: logged in again with AppRole')
      next(lease, lease.renewable)
    } catch (err) {
      if (stopped) return
      log.error({ error: (err as Error).message, retry_in_ms: retryMs }, 'vault: AppRole login failed')
      pending = schedule(relogin, retryMs)
    }
  }

  const renew = async () => {
    if (stopped) return
    try {
      const lease = await client.renewSelf()
      if (stopped) return
      // Vault grants less than asked once the token nears its max TTL: log in again next time.
      const capped = lease.leaseSeconds < loginLeaseSeconds
      log.debug({ lease_seconds: lease.leaseSeconds, capped }, 'vault: token renewed')
      next(lease, lease.renewable && !capped)
    } catch (err) {
      if (stopped) return
      log.warn({ error: (err as Error).message }, 'vault: token renewal failed, logging in again')
      await relogin()
    }
  }

  const first = client.lease()
  if (first) next(first, first.renewable)
  return {
    stop() {
      stopped = true
      pending?.cancel()
      pending = null
    },
  }
}

function unrefTimeout(run: () => Promise<void>, delayMs: number): { cancel(): void } {
  const timer = setTimeout(() => void run(), delayMs)
  timer.unref()
  return { cancel: () => clearTimeout(timer) }
}
