import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadSettings } from '../../config/index.js'
import { serviceNames, type ServiceName } from '../../config/settings.js'
import { UnauthorizedError } from '../errors.js'
import { createServiceTokenManager } from './index.js'

const SECRETS = {
  SERVICE_AUTH_SECRET_DJANGO_BACKEND: 'backend-secret-0123456789abcdefXYZ',
  SERVICE_AUTH_SECRET_API_GATEWAY: 'gateway-secret-0123456789abcdefXYZ',
  SERVICE_AUTH_SECRET_CELERY_WORKER: 'workers-secret-0123456789abcdefXYZ',
}
const encode = (text: string) => new TextEncoder().encode(text)
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)

function hs256(env: Record<string, string> = SECRETS) {
  return createServiceTokenManager(loadSettings({ ENVIRONMENT: 'test', ...env }).serviceAuth)
}

/** A token built outside the manager, for the cases it would never issue. */
function handMade(claims: JWTPayload, header: { alg: string; kid?: string }) {
  const at = now()
  return new SignJWT({ iat: at, exp: at + 60, aud: 'django-backend', ...claims }).setProtectedHeader(header)
}

async function expectRefused(promise: Promise<unknown>, reason: RegExp): Promise<void> {
  const err = await promise.then(
    () => null,
    (error: unknown) => error,
  )
  expect(err).toBeInstanceOf(UnauthorizedError)
  expect(err).toMatchObject({ status: 401, code: 'invalid_service_token' })
  expect((err as Error).message).toMatch(reason)
}

afterEach(() => {
  vi.useRealTimers()
})

describe('createServiceTokenManager with HS256', () => {
  const tokens = hs256()

  it.each(serviceNames)('issues a token that verifies as %s when that service calls', async (service) => {
    const token = await tokens.issue(service)
    const { service: caller, claims } = await tokens.verify(token)
    expect(caller).toBe(service)
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' })
    expect(claims).toMatchObject({ iss: service, aud: 'django-backend' })
    expect(claims.exp! - claims.iat!).toBe(300)
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/)
    expect(Math.abs(claims.iat! - now())).toBeLessThanOrEqual(1)
  })

  it('gives every token its own jti when issued twice in the same second', async () => {
    const [a, b] = await Promise.all([tokens.issue('api-gateway'), tokens.issue('api-gateway')])
    expect(decodeJwt(a!).jti).not.toBe(decodeJwt(b!).jti)
  })

  it('honours ttlSeconds and audience when given', async () => {
    const token = await tokens.issue('celery-worker', { ttlSeconds: 1, audience: 'api-gateway' })
    const claims = decodeJwt(token)
    expect(claims.exp! - claims.iat!).toBe(1)
    expect((await tokens.verify(token, { audience: 'api-gateway' })).service).toBe('celery-worker')
    await expectRefused(tokens.verify(token), /claim "aud"/)
  })

  it('refuses a token once its exp is past the 5-second tolerance', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const start = Date.now()
    const token = await tokens.issue('api-gateway', { ttlSeconds: 1 })
    vi.setSystemTime(start + 3_000)
    expect((await tokens.verify(token)).service).toBe('api-gateway')
    vi.setSystemTime(start + 7_000)
    await expectRefused(tokens.verify(token), /expired/)
  })

  it('refuses a correctly signed token whose exp is in the past', async () => {
    const token = await handMade({ iss: 'api-gateway', iat: now() - 600, exp: now() - 300 }, { alg: 'HS256' }).sign(encode(SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY))
    await expectRefused(tokens.verify(token), /expired/)
  })

  it('refuses a token whose payload was changed after signing', async () => {
    const token = await tokens.issue('celery-worker')
    const [header, , signature] = token.split('.')
    const forged = b64({ ...decodeJwt(token), exp: now() + 86_400 })
    await expectRefused(tokens.verify(`${header}.${forged}.${signature}`), /bad signature/)
  })

  it('refuses alg none when the token is otherwise well formed', async () => {
    const claims = { iss: 'api-gateway', aud: 'django-backend', iat: now(), exp: now() + 60 }
    await expectRefused(tokens.verify(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`), /algorithm not allowed/)
    await expectRefused(tokens.verify(`${b64({ alg: 'none' })}.${b64(claims)}`), /malformed/)
  })

  it('refuses another HMAC algorithm even with the right secret', async () => {
    const token = await handMade({ iss: 'api-gateway' }, { alg: 'HS512' }).sign(encode(SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY.repeat(2)))
    await expectRefused(tokens.verify(token), /algorithm not allowed/)
  })

  it('refuses a token addressed to another audience', async () => {
    await expectRefused(tokens.verify(await tokens.issue('api-gateway', { audience: 'celery-worker' })), /claim "aud"/)
    const noAudience = await handMade({ iss: 'api-gateway', aud: undefined }, { alg: 'HS256' }).sign(encode(SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY))
    await expectRefused(tokens.verify(noAudience), /claim "aud"/)
  })

  it('refuses an issuer that is not a known service', async () => {
    const secret = encode(SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY)
    await expectRefused(tokens.verify(await handMade({ iss: 'payments' }, { alg: 'HS256' }).sign(secret)), /unknown issuer/)
    await expectRefused(tokens.verify(await handMade({}, { alg: 'HS256' }).sign(secret)), /unknown issuer/)
  })

  it('refuses a token signed with the gateway secret that claims to be celery-worker', async () => {
    const token = await handMade({ iss: 'celery-worker' }, { alg: 'HS256' }).sign(encode(SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY))
    await expectRefused(tokens.verify(token), /bad signature/)
  })

  it('refuses a token without exp or iat', async () => {
    const secret = encode(SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY)
    await expectRefused(tokens.verify(await handMade({ iss: 'api-gateway', exp: undefined }, { alg: 'HS256' }).sign(secret)), /claim "exp"/)
    await expectRefused(tokens.verify(await handMade({ iss: 'api-gateway', iat: undefined }, { alg: 'HS256' }).sign(secret)), /claim "iat"/)
  })

  it('refuses a token issued in the future beyond the tolerance', async () => {
    const token = await handMade({ iss: 'api-gateway', iat: now() + 60, exp: now() + 300 }, { alg: 'HS256' }).sign(encode(SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY))
    await expectRefused(tokens.verify(token), /future/)
  })

  it.each([
    ['empty', ''],
    ['not a JWT', 'garbage'],
    ['three non-JSON parts', 'a.b.c'],
    ['a JSON header over a non-JSON payload', `${b64({ alg: 'HS256' })}.e30x.sig`],
  ])('refuses a malformed token when it is %s', async (_label, token) => {
    await expectRefused(tokens.verify(token), /malformed/)
  })

  it('refuses a service whose secret is not configured, and will not issue for it', async () => {
    const gatewayOnly = hs256({ SERVICE_AUTH_SECRET_API_GATEWAY: SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY })
    const token = await tokens.issue('celery-worker')
    await expectRefused(gatewayOnly.verify(token), /no secret/)
    await expect(gatewayOnly.issue('celery-worker')).rejects.toThrow(/SERVICE_AUTH_SECRET_CELERY_WORKER/)
    await expect(gatewayOnly.issue('celery-worker')).rejects.not.toBeInstanceOf(UnauthorizedError)
    expect((await gatewayOnly.verify(await gatewayOnly.issue('api-gateway'))).service).toBe('api-gateway')
  })

  it('refuses to issue for an unknown service or a ttl that is not a positive whole number', async () => {
    await expect(tokens.issue('payments' as ServiceName)).rejects.toThrow(/Unknown service "payments".*api-gateway/)
    await expect(tokens.issue('api-gateway', { ttlSeconds: 0 })).rejects.toThrow(/ttlSeconds/)
    await expect(tokens.issue('api-gateway', { ttlSeconds: 1.5 })).rejects.toThrow(/ttlSeconds/)
  })

  it('publishes no keys', () => {
    expect(tokens.jwks()).toEqual({ keys: [] })
  })
})

type Asymmetric = 'RS256' | 'ES256' | 'EdDSA'
const PEM = { public: { type: 'spki', format: 'pem' }, private: { type: 'pkcs8', format: 'pem' } } as const
interface Pair {
  publicKey: string
  privateKey: string
}

function generatePair(algorithm: Asymmetric): Pair {
  switch (algorithm) {
    case 'RS256':
      return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: PEM.public, privateKeyEncoding: PEM.private })
    case 'ES256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: PEM.public, privateKeyEncoding: PEM.private })
    case 'EdDSA':
      return generateKeyPairSync('ed25519', { publicKeyEncoding: PEM.public, privateKeyEncoding: PEM.private })
  }
}

interface KeyEntry {
  kid: string
  service: ServiceName
  pair: Pair
  /** false: only the public half, as a verifier holds it. */
  signs?: boolean
}

function asymmetric(algorithm: Asymmetric, entries: KeyEntry[]) {
  const keys = entries.map(({ kid, service, pair, signs = true }) => ({ kid, service, public_key: pair.publicKey, ...(signs ? { private_key: pair.privateKey } : {}) }))
  return createServiceTokenManager(loadSettings({ ENVIRONMENT: 'test', SERVICE_AUTH_ALGORITHM: algorithm, SERVICE_AUTH_KEYS: JSON.stringify(keys) }).serviceAuth)
}

describe.each(['RS256', 'ES256', 'EdDSA'] as const)('createServiceTokenManager with %s', (algorithm) => {
  let gatewayOld: Pair
  let gatewayNew: Pair
  let worker: Pair
  let tokens: ReturnType<typeof asymmetric>

  beforeAll(() => {
    gatewayOld = generatePair(algorithm)
    gatewayNew = generatePair(algorithm)
    worker = generatePair(algorithm)
    tokens = asymmetric(algorithm, [
      { kid: 'gw-1', service: 'api-gateway', pair: gatewayOld },
      { kid: 'cw-1', service: 'celery-worker', pair: worker },
    ])
  })

  const sign = (builder: SignJWT, pair: Pair) => builder.sign(createPrivateKey(pair.privateKey))

  it('issues a token with the kid of the signing key that verifies as that service', async () => {
    const token = await tokens.issue('api-gateway')
    expect(decodeProtectedHeader(token)).toEqual({ alg: algorithm, kid: 'gw-1', typ: 'JWT' })
    const { service, claims } = await tokens.verify(token)
    expect(service).toBe('api-gateway')
    expect(claims).toMatchObject({ iss: 'api-gateway', aud: 'django-backend' })
    expect(decodeProtectedHeader(await tokens.issue('celery-worker')).kid).toBe('cw-1')
    expect((await tokens.verify(await tokens.issue('celery-worker'))).service).toBe('celery-worker')
  })

  it('verifies with public keys only and will not issue without a private key', async () => {
    const verifier = asymmetric(algorithm, [
      { kid: 'gw-1', service: 'api-gateway', pair: gatewayOld, signs: false },
      { kid: 'cw-1', service: 'celery-worker', pair: worker, signs: false },
    ])
    expect((await verifier.verify(await tokens.issue('api-gateway'))).service).toBe('api-gateway')
    await expect(verifier.issue('api-gateway')).rejects.toThrow(new RegExp(`No ${algorithm} private key for service "api-gateway"`))
    await expect(verifier.issue('django-backend')).rejects.toThrow(/private key/)
  })

  it('refuses a kid it does not know and a token without kid', async () => {
    const builder = () => handMade({ iss: 'api-gateway' }, { alg: algorithm, kid: 'gw-unknown' })
    await expectRefused(tokens.verify(await sign(builder(), gatewayOld)), /unknown kid/)
    await expectRefused(tokens.verify(await sign(handMade({ iss: 'api-gateway' }, { alg: algorithm }), gatewayOld)), /kid is missing/)
  })

  it('refuses a key of api-gateway used for a token that claims celery-worker', async () => {
    const token = await sign(handMade({ iss: 'celery-worker' }, { alg: algorithm, kid: 'gw-1' }), gatewayOld)
    await expectRefused(tokens.verify(token), /another service/)
    // And naming the worker's kid does not help: the signature is the gateway's.
    const borrowed = await sign(handMade({ iss: 'celery-worker' }, { alg: algorithm, kid: 'cw-1' }), gatewayOld)
    await expectRefused(tokens.verify(borrowed), /bad signature/)
  })

  it('verifies tokens of either key while a service rotates, and publishes both', async () => {
    const before = await tokens.issue('api-gateway')
    // The new key is listed first, so it signs; the old one still verifies until it is removed.
    const rotated = asymmetric(algorithm, [
      { kid: 'gw-2', service: 'api-gateway', pair: gatewayNew },
      { kid: 'gw-1', service: 'api-gateway', pair: gatewayOld },
      { kid: 'cw-1', service: 'celery-worker', pair: worker, signs: false },
    ])
    const after = await rotated.issue('api-gateway')
    expect(decodeProtectedHeader(after).kid).toBe('gw-2')
    expect((await rotated.verify(before)).service).toBe('api-gateway')
    expect((await rotated.verify(after)).service).toBe('api-gateway')
    expect(rotated.jwks().keys.map((key) => key.kid)).toEqual(['gw-2', 'gw-1', 'cw-1'])

    const retired = asymmetric(algorithm, [{ kid: 'gw-2', service: 'api-gateway', pair: gatewayNew }])
    expect((await retired.verify(after)).service).toBe('api-gateway')
    await expectRefused(retired.verify(before), /unknown kid/)
  })

  it('refuses an HS256 token whose secret is the public key PEM (algorithm confusion)', async () => {
    const token = await handMade({ iss: 'api-gateway' }, { alg: 'HS256', kid: 'gw-1' }).sign(encode(gatewayOld.publicKey))
    await expectRefused(tokens.verify(token), /algorithm not allowed/)
  })

  it('refuses alg none with a known kid', async () => {
    const claims = { iss: 'api-gateway', aud: 'django-backend', iat: now(), exp: now() + 60 }
    await expectRefused(tokens.verify(`${b64({ alg: 'none', kid: 'gw-1' })}.${b64(claims)}.`), /algorithm not allowed/)
  })

  it('refuses an expired token and one for another audience', async () => {
    await expectRefused(tokens.verify(await sign(handMade({ iss: 'api-gateway', iat: now() - 600, exp: now() - 60 }, { alg: algorithm, kid: 'gw-1' }), gatewayOld)), /expired/)
    await expectRefused(tokens.verify(await tokens.issue('api-gateway', { audience: 'celery-worker' })), /claim "aud"/)
  })

  it('publishes public JWKs with kid, alg and use, and never a private member', () => {
    const { keys } = tokens.jwks()
    expect(keys.map((key) => key.kid)).toEqual(['gw-1', 'cw-1'])
    for (const [i, pair] of [gatewayOld, worker].entries()) {
      const jwk = keys[i]!
      expect(jwk).toMatchObject({ alg: algorithm, use: 'sig' })
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(jwk).not.toHaveProperty(member)
      // The JWK is exactly the configured public key.
      const fromJwk = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
      expect(fromJwk.export({ type: 'spki', format: 'pem' })).toBe(pair.publicKey)
    }
  })

  it('refuses to start with a key of another type or a private key that does not match', () => {
    const other = generatePair(algorithm === 'ES256' ? 'EdDSA' : 'ES256')
    expect(() => asymmetric(algorithm, [{ kid: 'x', service: 'api-gateway', pair: other }])).toThrow(new RegExp(`key "x" is .*not a key for ${algorithm}`))
    expect(() => asymmetric(algorithm, [{ kid: 'y', service: 'api-gateway', pair: { publicKey: gatewayOld.publicKey, privateKey: worker.privateKey } }])).toThrow(
      /key "y": private_key does not match public_key/,
    )
  })
})

describe('createServiceTokenManager key checks', () => {
  it('refuses an RSA key shorter than 2048 bits for RS256', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    expect(() => asymmetric('RS256', [{ kid: 'small', service: 'api-gateway', pair: small }])).toThrow(/at least 2048 bits/)
  })

  it('refuses a P-384 key for ES256', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    expect(() => asymmetric('ES256', [{ kid: 'p384', service: 'api-gateway', pair: p384 }])).toThrow(/secp384r1.*not a key for ES256/)
  })
})
