import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadSettings } from './index.js'

const problemsOf = (raw: Record<string, string>): string[] => {
  try {
    loadSettings(raw)
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

const pem = () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { public_key: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(), private_key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
}

describe('service auth settings', () => {
  it('defaults to HS256 with no keys', () => {
    expect(loadSettings({}).serviceAuth).toMatchObject({ algorithm: 'HS256', keys: [], tokenTtlSeconds: 300 })
  })

  it('reads asymmetric keys with their service and kid', () => {
    const key = pem()
    const settings = loadSettings({ SERVICE_AUTH_ALGORITHM: 'ES256', SERVICE_AUTH_KEYS: JSON.stringify([{ kid: 'k1', service: 'api-gateway', ...key }, { kid: 'k2', service: 'celery-worker', public_key: key.public_key }]) })
    expect(settings.serviceAuth.keys.map((k) => [k.kid, k.service, k.privateKey !== null])).toEqual([
      ['k1', 'api-gateway', true],
      ['k2', 'celery-worker', false],
    ])
  })

  it('names every broken key entry', () => {
    const key = pem()
    const problems = problemsOf({
      SERVICE_AUTH_ALGORITHM: 'ES256',
      SERVICE_AUTH_KEYS: JSON.stringify([
        { service: 'api-gateway', ...key },
        { kid: 'a', service: 'billing', ...key },
        { kid: 'b', service: 'api-gateway', public_key: 'not a key' },
        { kid: 'c', service: 'api-gateway', public_key: key.public_key, private_key: 'nope' },
        { kid: 'd', service: 'api-gateway', ...key },
        { kid: 'd', service: 'api-gateway', ...key },
      ]),
    })
    expect(problems).toEqual([
      'SERVICE_AUTH_KEYS[0]: kid is missing',
      expect.stringMatching(/^SERVICE_AUTH_KEYS\[1\]: service must be one of/),
      'SERVICE_AUTH_KEYS[2]: public_key is not a PEM public key',
      'SERVICE_AUTH_KEYS[3]: private_key is not a PEM private key',
      'SERVICE_AUTH_KEYS[5]: kid "d" is used twice',
    ])
  })

  it('refuses an asymmetric algorithm without keys, malformed JSON and an unknown algorithm', () => {
    expect(problemsOf({ SERVICE_AUTH_ALGORITHM: 'RS256' })).toEqual([expect.stringMatching(/^SERVICE_AUTH_KEYS is missing/)])
    expect(problemsOf({ SERVICE_AUTH_ALGORITHM: 'RS256', SERVICE_AUTH_KEYS: '{oops' })).toEqual([expect.stringMatching(/^SERVICE_AUTH_KEYS: expected a JSON array/)])
    expect(problemsOf({ SERVICE_AUTH_ALGORITHM: 'none' })).toEqual([expect.stringMatching(/^SERVICE_AUTH_ALGORITHM: expected one of HS256, RS256, ES256, EdDSA/)])
  })
})

describe('user token settings', () => {
  it('derives the signing key from SECRET_KEY unless JWT_SIGNING_KEY is set', () => {
    const a = loadSettings({ SECRET_KEY: 'a'.repeat(60) }).auth.signingKey
    const b = loadSettings({ SECRET_KEY: 'b'.repeat(60) }).auth.signingKey
    expect(a).not.toBe(b)
    expect(a).not.toContain('aaaa')
    expect(loadSettings({ JWT_SIGNING_KEY: 'k'.repeat(40) }).auth.signingKey).toBe('k'.repeat(40))
  })

  it('refuses a short JWT_SIGNING_KEY', () => {
    expect(problemsOf({ JWT_SIGNING_KEY: 'short' })).toEqual(['JWT_SIGNING_KEY is weak: it needs at least 32 characters'])
  })

  it('reads lifetimes in their units', () => {
    const { auth } = loadSettings({ ACCESS_TOKEN_LIFETIME_MINUTES: '5', REFRESH_TOKEN_LIFETIME_DAYS: '2', PASSWORD_RESET_TOKEN_MINUTES: '30' })
    expect([auth.accessTtlSeconds, auth.refreshTtlSeconds, auth.passwordResetTtlMs]).toEqual([300, 172_800, 1_800_000])
  })
})

describe('store currency', () => {
  it('defaults to USD, upper-cases the code and refuses anything but three letters', () => {
    expect(loadSettings({}).currency).toBe('USD')
    expect(loadSettings({ STORE_CURRENCY: 'eur' }).currency).toBe('EUR')
    expect(problemsOf({ STORE_CURRENCY: 'EURO' })).toEqual([expect.stringMatching(/^STORE_CURRENCY: expected a three-letter ISO 4217 code/)])
  })
})
