/**
 * `manage service_token` as an operator runs it: `tsx src/manage.ts` in a process of its own, with
 * only the variables given here (none of the suite's or a developer's `.env`).
 */
import { generateKeyPairSync } from 'node:crypto'
import { describe, it } from 'vitest'
import { decodeProtectedHeader } from 'jose'
import { loadSettings } from '../src/config/index.js'
import { createServiceTokenManager } from '../src/core/service-auth/index.js'
import { runManage } from './run-ts.js'

const GATEWAY_SECRET = 'gateway-secret-for-the-manage-command-0123'

const manage = (args: string[], vars: Record<string, string> = {}) => runManage(['service_token', ...args], vars)

describe.concurrent('manage service_token', () => {
  it('prints one token that verifies as api-gateway when its secret is set', async ({ expect }) => {
    const run = await manage(['--service', 'api-gateway'], { SERVICE_AUTH_SECRET_API_GATEWAY: GATEWAY_SECRET })
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/)
    const verifier = createServiceTokenManager(loadSettings({ ENVIRONMENT: 'test', SERVICE_AUTH_SECRET_API_GATEWAY: GATEWAY_SECRET }).serviceAuth)
    const { service, claims } = await verifier.verify(run.stdout.trim())
    expect(service).toBe('api-gateway')
    expect(claims.exp! - claims.iat!).toBe(300)
  }, 30_000)

  it('signs with the service key, names its kid and uses --ttl and --audience when the algorithm is EdDSA', async ({ expect }) => {
    const pair = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    const keys = JSON.stringify([{ kid: 'cw-7', service: 'celery-worker', public_key: pair.publicKey, private_key: pair.privateKey }])
    const run = await manage(['--service', 'celery-worker', '--ttl', '45', '--audience', 'api-gateway'], { SERVICE_AUTH_ALGORITHM: 'EdDSA', SERVICE_AUTH_KEYS: keys })
    expect(run.code).toBe(0)
    const token = run.stdout.trim()
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', kid: 'cw-7' })
    const verifier = createServiceTokenManager(
      loadSettings({ ENVIRONMENT: 'test', SERVICE_AUTH_ALGORITHM: 'EdDSA', SERVICE_AUTH_KEYS: JSON.stringify([{ kid: 'cw-7', service: 'celery-worker', public_key: pair.publicKey }]) }).serviceAuth,
    )
    const { service, claims } = await verifier.verify(token, { audience: 'api-gateway' })
    expect(service).toBe('celery-worker')
    expect(claims.exp! - claims.iat!).toBe(45)
  }, 30_000)

  it('exits 2 listing the valid names when the service is unknown', async ({ expect }) => {
    const run = await manage(['--service', 'nope'], { SERVICE_AUTH_SECRET_API_GATEWAY: GATEWAY_SECRET })
    expect(run.code).toBe(2)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain('Unknown service "nope"')
    for (const name of ['django-backend', 'api-gateway', 'celery-worker']) expect(run.stderr).toContain(name)
  }, 30_000)

  it('exits 2 when --service is missing, --ttl is not a number or an option is unknown', async ({ expect }) => {
    const [missing, badTtl, unknown] = await Promise.all([
      manage([]),
      manage(['--service', 'api-gateway', '--ttl', 'soon']),
      manage(['--service', 'api-gateway', '--forever']),
    ])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--service is required')
    expect(badTtl.code).toBe(2)
    expect(badTtl.stderr).toContain('--ttl must be a positive whole number')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('--forever')
    for (const run of [missing, badTtl, unknown]) expect(run.stdout).toBe('')
  }, 30_000)

  it('exits 1 naming the variable when this service does not hold the secret', async ({ expect }) => {
    const run = await manage(['--service', 'celery-worker'], { SERVICE_AUTH_SECRET_API_GATEWAY: GATEWAY_SECRET })
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain('SERVICE_AUTH_SECRET_CELERY_WORKER')
    expect(run.stderr).not.toMatch(/^\s{4}at /m)
  }, 30_000)
})
