import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startVaultStandIn, type VaultStandIn } from '../../test/vault-stand-in.js'
import { ConfigError } from '../config/index.js'
import { createLogger } from './logging.js'
import { createVaultClient, RENEW_AT_FRACTION, startTokenRenewal, VaultError, type VaultClient } from './vault.js'
import { keepVaultSessionAlive, loadSettingsWithVault } from './vault-settings.js'
import { freePort } from '../../test/free-port.js'

const SECRET_KEY = 'vault-q7Rv2mXk9LpZ4tWb8NcY3sHd6FgJ1aEu5oIi0rTy-KjQwPz'
const STRIPE_SECRET_KEY = 'sk_test_from_vault_51Hx'

let vault: VaultStandIn
beforeAll(async () => {
  vault = await startVaultStandIn({
    secrets: { 'django-backend': { SECRET_KEY, STRIPE_SECRET_KEY, SHOP_NAME: 'Vault Shop', LEGACY_FLAG: 'x', VAULT_ADDR: 'http://elsewhere' } },
  })
})
afterAll(() => vault.close())
afterEach(() => {
  vault.requests.length = 0
  vault.failLogins(null)
})

/** The environment of a process with USE_VAULT on, against the stand-in. */
function vaultEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { ENVIRONMENT: 'test', USE_VAULT: 'true', VAULT_ADDR: vault.addr, VAULT_ROLE_ID: vault.roleId, VAULT_SECRET_ID: vault.secretId, ...extra }
}

/** A logger writing JSON lines into `lines`, so tests can read what was logged. */
function capturingLogger() {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      done()
    },
  })
  return { log: createLogger({ log: { level: 'debug', pretty: false } }, destination), lines }
}

async function configErrorOf(promise: Promise<unknown>): Promise<ConfigError> {
  const err: unknown = await promise.then(
    () => expect.fail('expected a ConfigError'),
    (error: unknown) => error,
  )
  expect(err).toBeInstanceOf(ConfigError)
  return err as ConfigError
}

describe(loadSettingsWithVault.name, () => {
  it('logs in with AppRole, reads the KV v2 secret and puts its values into the settings', async () => {
    const { settings, vault: session } = await loadSettingsWithVault({ environment: vaultEnv(), dotEnv: {} })
    expect(settings.secretKey).toBe(SECRET_KEY)
    expect(settings.stripe.secretKey).toBe(STRIPE_SECRET_KEY)
    expect(settings.auth.shopName).toBe('Vault Shop')
    expect(session?.applied.sort()).toEqual(['SECRET_KEY', 'SHOP_NAME', 'STRIPE_SECRET_KEY'])
    expect(session?.ignored).toEqual(['LEGACY_FLAG', 'VAULT_ADDR'])
    // The login's VAULT_ADDR stays: a secret cannot redirect where it came from.
    expect(settings.vault.addr).toBe(vault.addr)
  })

  it('sends exactly the AppRole login, then the KV v2 read with the token the login returned', async () => {
    await loadSettingsWithVault({ environment: vaultEnv(), dotEnv: {} })
    expect(vault.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/auth/approle/login', 'GET /v1/secret/data/django-backend'])
    const [login, read] = vault.requests
    expect(login!.body).toEqual({ role_id: vault.roleId, secret_id: vault.secretId })
    expect(login!.headers['content-type']).toBe('application/json')
    expect(login!.headers['x-vault-token']).toBeUndefined()
    expect(read!.headers['x-vault-token']).toBe(vault.issuedTokens.at(-1))
    expect(read!.body).toBeNull()
  })

  it('reads VAULT_KV_MOUNT and VAULT_SECRET_PATH, nested paths included', async () => {
    const nested = await startVaultStandIn({ kvMount: 'kv', secrets: { 'shop/backend': { SECRET_KEY } } })
    try {
      const env = { ...vaultEnv(), VAULT_ADDR: `${nested.addr}/`, VAULT_ROLE_ID: nested.roleId, VAULT_SECRET_ID: nested.secretId, VAULT_KV_MOUNT: 'kv', VAULT_SECRET_PATH: 'shop/backend' }
      const { settings } = await loadSettingsWithVault({ environment: env, dotEnv: {} })
      expect(settings.secretKey).toBe(SECRET_KEY)
      expect(nested.requests.map((r) => r.path)).toEqual(['/v1/auth/approle/login', '/v1/kv/data/shop/backend'])
    } finally {
      await nested.close()
    }
  })

  it('lets a variable set in the real environment win over Vault, and Vault win over .env', async () => {
    const { settings, vault: session } = await loadSettingsWithVault({
      environment: vaultEnv({ STRIPE_SECRET_KEY: 'sk_test_from_environment', SHOP_NAME: '  ' }),
      dotEnv: { SECRET_KEY: 'from-dot-env', SHOP_NAME: 'Dot Env Shop', DEFAULT_FROM_EMAIL: 'shop@dotenv.example' },
    })
    expect(settings.stripe.secretKey).toBe('sk_test_from_environment')
    expect(settings.secretKey).toBe(SECRET_KEY)
    // Blank in the environment is unset: Vault's value applies.
    expect(settings.auth.shopName).toBe('Vault Shop')
    expect(settings.email.from).toBe('shop@dotenv.example')
    expect(session?.overridden).toEqual(['STRIPE_SECRET_KEY'])
  })

  it('reads USE_VAULT and the AppRole credentials from .env too', async () => {
    const { settings } = await loadSettingsWithVault({ environment: { ENVIRONMENT: 'test' }, dotEnv: vaultEnv() })
    expect(settings.secretKey).toBe(SECRET_KEY)
  })

  it('does not call Vault when USE_VAULT is off', async () => {
    const { settings, vault: session } = await loadSettingsWithVault({ environment: { ...vaultEnv(), USE_VAULT: 'false', SECRET_KEY: 'plain' }, dotEnv: {} })
    expect(session).toBeNull()
    expect(settings.secretKey).toBe('plain')
    expect(vault.requests).toEqual([])
  })

  it('refuses with a ConfigError naming Vault, the status and its error when the login is refused', async () => {
    const err = await configErrorOf(loadSettingsWithVault({ environment: vaultEnv({ VAULT_SECRET_ID: 'wrong' }), dotEnv: {} }))
    expect(err.problems).toEqual([`Vault AppRole login at ${vault.addr}: 400 invalid role or secret ID`])
    expect(err.message).not.toContain('wrong')
    expect(vault.requests.map((r) => r.path)).toEqual(['/v1/auth/approle/login'])
  })

  it('refuses with a ConfigError when the secret path does not exist', async () => {
    const err = await configErrorOf(loadSettingsWithVault({ environment: vaultEnv({ VAULT_SECRET_PATH: 'nothing-here' }), dotEnv: {} }))
    expect(err.problems).toEqual([`Vault KV v2 read of secret/nothing-here at ${vault.addr}: 404 not found`])
  })

  it('names the missing AppRole variables and says VAULT_TOKEN is not enough', async () => {
    const err = await configErrorOf(loadSettingsWithVault({ environment: { ENVIRONMENT: 'test', USE_VAULT: 'true', VAULT_ADDR: vault.addr, VAULT_TOKEN: 'hvs.root' }, dotEnv: {} }))
    expect(err.problems).toEqual(['USE_VAULT is on but VAULT_ROLE_ID, VAULT_SECRET_ID are missing (VAULT_TOKEN is not enough: the service logs in with AppRole)'])
    expect(vault.requests).toEqual([])
  })

  it('refuses a VAULT_ADDR that is not an http(s) URL before calling anything', async () => {
    const err = await configErrorOf(loadSettingsWithVault({ environment: vaultEnv({ VAULT_ADDR: 'vault.internal:8200' }), dotEnv: {} }))
    expect(err.problems).toEqual(['VAULT_ADDR: expected an http(s) URL, got "vault.internal:8200"'])
  })

  it('refuses with a clear ConfigError when Vault is unreachable', async () => {
    const port = await freePort()
    const err = await configErrorOf(loadSettingsWithVault({ environment: vaultEnv({ VAULT_ADDR: `http://127.0.0.1:${port}` }), dotEnv: {} }))
    expect(err.problems).toEqual([`Vault AppRole login at http://127.0.0.1:${port}: connection refused (ECONNREFUSED)`])
  })
})

describe(createVaultClient.name, () => {
  let silent: Server
  let silentAddr: string
  beforeAll(async () => {
    // Accepts connections and never answers: a hung Vault.
    silent = createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    silentAddr = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    silent.closeAllConnections()
    await new Promise((resolve) => silent.close(resolve))
  })

  it('gives up on a Vault that does not answer within the timeout', async () => {
    const client = createVaultClient({ addr: silentAddr, roleId: 'r', secretId: 's', timeoutMs: 200 })
    await expect(client.login()).rejects.toThrow(new VaultError(`Vault AppRole login at ${silentAddr}: no answer within 200 ms`, null))
  })

  it('renews its own token with X-Vault-Token and an empty body, taking the new lease', async () => {
    const client = createVaultClient({ addr: vault.addr, roleId: vault.roleId, secretId: vault.secretId })
    await client.login()
    const lease = await client.renewSelf()
    expect(lease).toMatchObject({ leaseSeconds: 3600, renewable: true })
    const renewal = vault.requests.at(-1)!
    expect({ method: renewal.method, path: renewal.path, token: renewal.headers['x-vault-token'], body: renewal.body }).toEqual({
      method: 'POST',
      path: '/v1/auth/token/renew-self',
      token: vault.issuedTokens.at(-1),
      body: {},
    })
  })

  it('reports a failed renewal with its status and Vault error', async () => {
    const client = createVaultClient({ addr: vault.addr, roleId: vault.roleId, secretId: vault.secretId })
    await client.login()
    vault.failNextRenewal(403, 'permission denied')
    await expect(client.renewSelf()).rejects.toThrow(`Vault token renewal at ${vault.addr}: 403 permission denied`)
  })
})

/** Runs the renewal loop on a hand-driven clock: each scheduled step is run by the test. */
function drivenRenewal(client: VaultClient, now: { ms: number }, log: ReturnType<typeof capturingLogger>['log']) {
  const steps: Array<{ delayMs: number; run: () => Promise<void>; cancelled: boolean }> = []
  const renewal = startTokenRenewal(client, log, {
    now: () => now.ms,
    retryMs: 1_000,
    schedule: (run, delayMs) => {
      const step = { delayMs, run, cancelled: false }
      steps.push(step)
      return { cancel: () => (step.cancelled = true) }
    },
  })
  /** Moves the clock to the last scheduled step and runs it. */
  const fireNext = async () => {
    const step = steps.at(-1)!
    expect(step.cancelled).toBe(false)
    now.ms += step.delayMs
    await step.run()
  }
  return { renewal, steps, fireNext }
}

describe(startTokenRenewal.name, () => {
  async function loggedIn(options: Parameters<typeof startVaultStandIn>[0]) {
    const standIn = await startVaultStandIn(options)
    const clock = { ms: 1_000 }
    const client = createVaultClient({ addr: standIn.addr, roleId: standIn.roleId, secretId: standIn.secretId, now: () => clock.ms })
    await client.login()
    return { standIn, client, clock }
  }

  it('renews at two thirds of the lease, before the token expires, again and again', async () => {
    const { standIn, client, clock } = await loggedIn({ leaseSeconds: 30 })
    try {
      const { log } = capturingLogger()
      const { renewal, steps, fireNext } = drivenRenewal(client, clock, log)
      expect(steps.map((s) => s.delayMs)).toEqual([30_000 * RENEW_AT_FRACTION])
      expect(steps[0]!.delayMs).toBeLessThan(30_000)
      await fireNext()
      await fireNext()
      expect(standIn.requests.map((r) => r.path)).toEqual(['/v1/auth/approle/login', '/v1/auth/token/renew-self', '/v1/auth/token/renew-self'])
      expect(steps).toHaveLength(3)
      renewal.stop()
      expect(steps.at(-1)!.cancelled).toBe(true)
    } finally {
      await standIn.close()
    }
  })

  it('logs in again with AppRole when a renewal fails, and keeps renewing the new token', async () => {
    const { standIn, client, clock } = await loggedIn({ leaseSeconds: 60 })
    try {
      const { log, lines } = capturingLogger()
      const { renewal, fireNext } = drivenRenewal(client, clock, log)
      standIn.failNextRenewal(403, 'permission denied')
      await fireNext()
      await fireNext()
      expect(standIn.requests.map((r) => `${r.path} ${String(r.headers['x-vault-token'] ?? '-')}`)).toEqual([
        '/v1/auth/approle/login -',
        `/v1/auth/token/renew-self ${standIn.issuedTokens[0]}`,
        '/v1/auth/approle/login -',
        `/v1/auth/token/renew-self ${standIn.issuedTokens[1]}`,
      ])
      renewal.stop()
      const logged = lines.join('\n')
      expect(logged).toContain('token renewal failed, logging in again')
      expect(logged).toContain('403 permission denied')
      for (const token of standIn.issuedTokens) expect(logged).not.toContain(token)
      expect(logged).not.toContain(standIn.secretId)
    } finally {
      await standIn.close()
    }
  })

  it('logs in again instead of renewing a token that is not renewable', async () => {
    const { standIn, client, clock } = await loggedIn({ leaseSeconds: 9, renewable: false })
    try {
      const { renewal, steps, fireNext } = drivenRenewal(client, clock, capturingLogger().log)
      expect(steps[0]!.delayMs).toBe(6_000)
      await fireNext()
      expect(standIn.requests.map((r) => r.path)).toEqual(['/v1/auth/approle/login', '/v1/auth/approle/login'])
      renewal.stop()
    } finally {
      await standIn.close()
    }
  })

  it('logs in again once Vault grants a renewal shorter than the login (the max TTL is near)', async () => {
    const { standIn, client, clock } = await loggedIn({ leaseSeconds: 60, renewLeaseSeconds: 15 })
    try {
      const { renewal, steps, fireNext } = drivenRenewal(client, clock, capturingLogger().log)
      await fireNext()
      expect(steps.at(-1)!.delayMs).toBe(10_000)
      await fireNext()
      expect(standIn.requests.map((r) => r.path)).toEqual(['/v1/auth/approle/login', '/v1/auth/token/renew-self', '/v1/auth/approle/login'])
      renewal.stop()
    } finally {
      await standIn.close()
    }
  })

  it('retries a failed login later and logs the reason', async () => {
    const { standIn, client, clock } = await loggedIn({ leaseSeconds: 30, renewable: false })
    try {
      const { log, lines } = capturingLogger()
      const { renewal, steps, fireNext } = drivenRenewal(client, clock, log)
      standIn.failLogins({ status: 503, errors: ['Vault is sealed'] })
      await fireNext()
      expect(steps.at(-1)!.delayMs).toBe(1_000)
      expect(lines.join('\n')).toContain(`Vault AppRole login at ${standIn.addr}: 503 Vault is sealed`)
      standIn.failLogins(null)
      await fireNext()
      expect(standIn.requests.map((r) => r.path)).toEqual(['/v1/auth/approle/login', '/v1/auth/approle/login', '/v1/auth/approle/login'])
      expect(steps.at(-1)!.delayMs).toBe(20_000)
      renewal.stop()
    } finally {
      await standIn.close()
    }
  })
})

describe(keepVaultSessionAlive.name, () => {
  it('logs which variables came from Vault and names ignored keys, never a value or a token', async () => {
    const { vault: session } = await loadSettingsWithVault({ environment: vaultEnv(), dotEnv: {} })
    const { log, lines } = capturingLogger()
    const alive = keepVaultSessionAlive(session!, log)
    alive.stop()
    const logged = lines.join('\n')
    expect(logged).toContain('settings read from Vault')
    expect(logged).toContain('STRIPE_SECRET_KEY')
    expect(logged).toContain('LEGACY_FLAG')
    for (const secret of [SECRET_KEY, STRIPE_SECRET_KEY, vault.secretId, ...vault.issuedTokens]) expect(logged).not.toContain(secret)
  })
})

