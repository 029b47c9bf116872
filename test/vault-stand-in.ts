/**
 * A local stand-in for the parts of Vault's HTTP API the service uses (Vault itself cannot run
 * here): AppRole login, a KV v2 read and token renew-self, answering as Vault 1.x does, and
 * recording every request so a test can assert the exact exchange.
 *
 *   POST /v1/auth/approle/login     {"role_id","secret_id"} → {"auth":{"client_token","lease_duration","renewable"}}
 *   GET  /v1/<mount>/data/<path>    X-Vault-Token            → {"data":{"data":{…},"metadata":{…}}}
 *   POST /v1/auth/token/renew-self  X-Vault-Token            → {"auth":{…}} with the lease granted
 *
 * Vault's own errors: 400 {"errors":["invalid role or secret ID"]} for bad AppRole credentials,
 * 403 {"errors":["permission denied"]} for an unknown token, 404 {"errors":[]} for a missing path.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RecordedVaultRequest {
  method: string
  path: string
  /** Lower-case names, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>
  /** The parsed JSON body, or null without one. */
  body: unknown
}

export interface VaultStandInOptions {
  roleId?: string
  secretId?: string
  kvMount?: string
  /** KV v2 secrets by path under the mount. */
  secrets?: Record<string, Record<string, unknown>>
  /** lease_duration of a login, in seconds. */
  leaseSeconds?: number
  /** lease_duration a renewal grants; the login's by default (less: the token nears its max TTL). */
  renewLeaseSeconds?: number
  renewable?: boolean
}

export interface VaultStandIn {
  addr: string
  roleId: string
  secretId: string
  requests: RecordedVaultRequest[]
  /** Tokens handed out by logins, in order. */
  issuedTokens: string[]
  /** The next renew-self answers this status with Vault's error (e.g. 403 permission denied). */
  failNextRenewal(status?: number, error?: string): void
  /** From now on logins answer this (e.g. 500) until set to null. */
  failLogins(answer: { status: number; errors: string[] } | null): void
  close(): Promise<void>
}

export async function startVaultStandIn(options: VaultStandInOptions = {}): Promise<VaultStandIn> {
  const roleId = options.roleId ?? 'role-shop-backend'
  const secretId = options.secretId ?? `secret-${randomBytes(6).toString('hex')}`
  const mount = options.kvMount ?? 'secret'
  const secrets = options.secrets ?? {}
  const leaseSeconds = options.leaseSeconds ?? 3600
  const renewable = options.renewable ?? true
  const requests: RecordedVaultRequest[] = []
  const issuedTokens: string[] = []
  const liveTokens = new Set<string>()
  let renewalFailure: { status: number; error: string } | null = null
  let loginFailure: { status: number; errors: string[] } | null = null

  const answer = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  }
  const auth = (token: string, lease: number) => ({
    request_id: randomBytes(8).toString('hex'),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: null,
    warnings: null,
    auth: { client_token: token, accessor: randomBytes(8).toString('hex'), policies: ['default', 'shop-backend'], token_policies: ['default', 'shop-backend'], metadata: { role_name: 'shop-backend' }, lease_duration: lease, renewable, entity_id: '', token_type: 'service', orphan: true },
  })

  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    let body: unknown = null
    try {
      body = text ? JSON.parse(text) : null
    } catch {
      body = text
    }
    const path = (req.url ?? '').split('?')[0]!
    requests.push({ method: req.method ?? '', path, headers: { ...req.headers }, body })
    const token = req.headers['x-vault-token']
    const tokenOk = typeof token === 'string' && liveTokens.has(token)

    if (req.method === 'POST' && path === '/v1/auth/approle/login') {
      if (loginFailure) return answer(res, loginFailure.status, { errors: loginFailure.errors })
      const creds = (body ?? {}) as { role_id?: unknown; secret_id?: unknown }
      if (creds.role_id !== roleId || creds.secret_id !== secretId) return answer(res, 400, { errors: ['invalid role or secret ID'] })
      const issued = `hvs.${randomBytes(12).toString('hex')}`
      issuedTokens.push(issued)
      liveTokens.add(issued)
      return answer(res, 200, auth(issued, leaseSeconds))
    }
    if (req.method === 'POST' && path === '/v1/auth/token/renew-self') {
      if (renewalFailure) {
        const { status, error } = renewalFailure
        renewalFailure = null
        return answer(res, status, { errors: [error] })
      }
      if (!tokenOk) return answer(res, 403, { errors: ['permission denied'] })
      return answer(res, 200, auth(token, options.renewLeaseSeconds ?? leaseSeconds))
    }
    const kv = new RegExp(`^/v1/${mount}/data/(.+)$`).exec(path)
    if (req.method === 'GET' && kv) {
      if (!tokenOk) return answer(res, 403, { errors: ['permission denied'] })
      const data = secrets[decodeURIComponent(kv[1]!)]
      if (!data) return answer(res, 404, { errors: [] })
      return answer(res, 200, { request_id: randomBytes(8).toString('hex'), lease_id: '', renewable: false, lease_duration: 0, data: { data, metadata: { version: 1, destroyed: false, deletion_time: '' } }, warnings: null })
    }
    return answer(res, 404, { errors: [] })
  }

  const server = createServer((req, res) => {
    let text = ''
    req.on('data', (chunk: Buffer) => (text += chunk.toString()))
    req.on('end', () => handle(req, res, text))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    addr: `http://127.0.0.1:${port}`,
    roleId,
    secretId,
    requests,
    issuedTokens,
    failNextRenewal(status = 403, error = 'permission denied') {
      renewalFailure = { status, error }
    },
    failLogins(next) {
      loginFailure = next
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
