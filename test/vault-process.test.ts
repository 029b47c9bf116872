/**
 * USE_VAULT in a real `src/server.ts` process against the Vault stand-in: a refused AppRole login
 * ends it like a bad configuration (exit 78, a clear message, nothing listening); a good one
 * starts it with the secret's values and it still shuts down cleanly.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT_CONFIG, projectRoot } from '../src/config/index.js'
import { isolatedEnv, NODE, tsArgs } from './run-ts.js'
import { startVaultStandIn, type VaultStandIn } from './vault-stand-in.js'
import { freePort } from './free-port.js'

// A bound on waiting, not a speed target: a loaded CI machine boots PGlite and tsx slowly.
const READY_WITHIN_MS = 30_000
const SECRET_KEY = 'vault-process-q7Rv2mXk9LpZ4tWb8NcY3sHd6FgJ1aEu5oIi0rT'

let scratch: string
let vault: VaultStandIn
const children = new Set<number>()

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'shop-vault-process-'))
  vault = await startVaultStandIn({ secrets: { 'django-backend': { SECRET_KEY, SHOP_NAME: 'Vault Process Shop' } } })
})
afterAll(async () => {
  for (const pid of children) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await vault.close()
  await rm(scratch, { recursive: true, force: true })
})

function startServer(vars: Record<string, string>) {
  const dir = join(scratch, `run-${children.size}`)
  const env = isolatedEnv({ HOST: '127.0.0.1', PGLITE_DATA_DIR: join(dir, 'pglite'), MEDIA_ROOT: join(dir, 'media'), STATIC_ROOT: join(dir, 'static'), EMAIL_FILE_PATH: join(dir, 'emails'), ...vars })
  // detached: its own process group, so cleanup reaches every child.
  const child = spawn(NODE, tsArgs('src/server.ts'), { cwd: projectRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child.pid!)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  let exitCode: number | null | undefined
  void exited.then((code) => (exitCode = code))
  return { child, exited, exitCode: () => exitCode, stdout: () => stdout, stderr: () => stderr }
}


function vaultVars(port: number, secretId: string): Record<string, string> {
  return { PORT: String(port), USE_VAULT: 'true', VAULT_ADDR: vault.addr, VAULT_ROLE_ID: vault.roleId, VAULT_SECRET_ID: secretId }
}

describe('src/server.ts with USE_VAULT', () => {
  it('exits 78 with the Vault error and never listens when the AppRole login is refused', async () => {
    const port = await freePort()
    vault.requests.length = 0
    const proc = startServer(vaultVars(port, 'not-the-secret-id'))
    const code = await proc.exited
    expect(code).toBe(EXIT_CONFIG)
    expect(proc.stderr()).toContain(`Vault AppRole login at ${vault.addr}: 400 invalid role or secret ID`)
    expect(proc.stderr()).not.toMatch(/^\s{4}at /m)
    expect(proc.stderr()).not.toContain('not-the-secret-id')
    expect(proc.stdout()).not.toContain('shop backend ready')
    // It stopped at the login: no read, nothing bound to the port.
    expect(vault.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/auth/approle/login'])
    await expect(fetch(`http://127.0.0.1:${port}/health/ready/`)).rejects.toThrow()
  }, 30_000)

  it('starts with the values read from Vault, logs their names only, and exits 0 on SIGTERM', async () => {
    const port = await freePort()
    vault.requests.length = 0
    const proc = startServer({ ...vaultVars(port, vault.secretId), SHUTDOWN_TIMEOUT_SECONDS: '5' })
    const deadline = performance.now() + READY_WITHIN_MS
    let ready = false
    while (!ready && performance.now() < deadline && proc.exitCode() === undefined) {
      ready = await fetch(`http://127.0.0.1:${port}/health/ready/`, { signal: AbortSignal.timeout(2_000) }).then(
        (res) => res.ok,
        () => false,
      )
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(ready, `not ready\nstdout: ${proc.stdout()}\nstderr: ${proc.stderr()}`).toBe(true)
    expect(proc.stdout()).toContain('settings read from Vault')
    expect(proc.stdout()).toContain('SHOP_NAME')
    for (const secret of [SECRET_KEY, vault.secretId, ...vault.issuedTokens]) expect(proc.stdout() + proc.stderr()).not.toContain(secret)
    expect(vault.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/auth/approle/login', 'GET /v1/secret/data/django-backend'])

    proc.child.kill('SIGTERM')
    expect(await proc.exited).toBe(0)
  }, 60_000)
})
