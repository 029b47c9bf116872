/**
 * Service tokens: short-lived JWTs that api-gateway, celery-worker and this service send as
 * `X-Service-Token` on /internal/ routes. `iss` names the calling service, `aud` the receiver.
 * HS256 signs with the issuing service's own secret; RS256, ES256 and EdDSA sign with a private
 * key of SERVICE_AUTH_KEYS and name it by `kid`, and the public halves are published as a JWKS.
 * The algorithm is pinned to the configured one, so `none` and algorithm confusion are refused.
 */
import { createPublicKey, createPrivateKey, randomUUID, type KeyObject } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose'
import { serviceNames, type ServiceAuthAlgorithm, type ServiceName, type Settings } from '../../config/settings.js'
import { UnauthorizedError } from '../errors.js'

/** Tokens are addressed to this service unless the caller names another audience. */
export const DEFAULT_AUDIENCE: ServiceName = 'django-backend'
/** Seconds of clock skew allowed between services on exp, nbf and iat. */
const CLOCK_TOLERANCE_SECONDS = 5

/** What each asymmetric algorithm's keys must be (RS256 needs 2048+ bit RSA, as jose does). */
const KEY_TYPES: Record<Exclude<ServiceAuthAlgorithm, 'HS256'>, { type: string; curve?: string }> = {
  RS256: { type: 'rsa' },
  ES256: { type: 'ec', curve: 'prime256v1' },
  EdDSA: { type: 'ed25519' },
}

export class InvalidServiceTokenError extends UnauthorizedError {
  constructor(reason: string) {
    super('invalid_service_token', `Invalid service token: ${reason}.`)
  }
}

interface LoadedKey {
  kid: string
  service: ServiceName
  publicKey: KeyObject
  privateKey: KeyObject | null
  jwk: JWK
}

export function createServiceTokenManager(settings: Settings['serviceAuth']) {
  const algorithm = settings.algorithm
  const symmetric = algorithm === 'HS256'
  const encoder = new TextEncoder()
  const secrets = new Map<ServiceName, Uint8Array>()
  if (symmetric) {
    for (const service of serviceNames) {
      const secret = settings.secrets[service]
      if (secret) secrets.set(service, encoder.encode(secret))
    }
  }
  const keys = new Map<string, LoadedKey>()
  if (!symmetric) {
    for (const key of settings.keys) keys.set(key.kid, loadKey(key, algorithm))
  }
  // Published once: the public halves only (exported from public key objects, so no `d`).
  const published = { keys: [...keys.values()].map((key) => key.jwk) }

  return {
    /** A token that proves `service` is calling; throws when we do not hold its secret or private key. */
    async issue(service: ServiceName, options: { audience?: string; ttlSeconds?: number } = {}): Promise<string> {
      if (!isServiceName(service)) throw new Error(`Unknown service "${String(service)}": expected one of ${serviceNames.join(', ')}`)
      const ttl = options.ttlSeconds ?? settings.tokenTtlSeconds
      if (!Number.isInteger(ttl) || ttl < 1) throw new Error(`ttlSeconds must be a positive whole number, got ${ttl}`)
      const now = Math.floor(Date.now() / 1000)
      const token = new SignJWT({})
        .setIssuer(service)
        .setAudience(options.audience ?? DEFAULT_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + ttl)
        .setJti(randomUUID())
      if (symmetric) {
        const secret = secrets.get(service)
        if (!secret) throw new Error(`No HS256 secret for service "${service}": set ${secretVariable(service)}`)
        return token.setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret)
      }
      const signer = [...keys.values()].find((key) => key.service === service && key.privateKey)
      if (!signer) throw new Error(`No ${algorithm} private key for service "${service}" in SERVICE_AUTH_KEYS`)
      return token.setProtectedHeader({ alg: algorithm, kid: signer.kid, typ: 'JWT' }).sign(signer.privateKey!)
    },

    /** The calling service and the token's claims; every failure is an InvalidServiceTokenError (401). */
    async verify(token: string, options: { audience?: string } = {}): Promise<{ service: ServiceName; claims: JWTPayload }> {
      let header: ReturnType<typeof decodeProtectedHeader>
      let unverified: JWTPayload
      try {
        header = decodeProtectedHeader(token)
        unverified = decodeJwt(token)
      } catch {
        throw new InvalidServiceTokenError('malformed token')
      }
      // The unverified iss only picks the key; jwtVerify then checks the signature with that key.
      const service = unverified.iss
      if (!isServiceName(service)) throw new InvalidServiceTokenError('unknown issuer')
      let key: Uint8Array | KeyObject
      if (symmetric) {
        const secret = secrets.get(service)
        if (!secret) throw new InvalidServiceTokenError('no secret is configured for the issuer')
        key = secret
      } else {
        if (typeof header.kid !== 'string') throw new InvalidServiceTokenError('kid is missing')
        const entry = keys.get(header.kid)
        if (!entry) throw new InvalidServiceTokenError('unknown kid')
        // A key of one service must not vouch for another.
        if (entry.service !== service) throw new InvalidServiceTokenError('the key belongs to another service')
        key = entry.publicKey
      }
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [algorithm],
          issuer: service,
          audience: options.audience ?? DEFAULT_AUDIENCE,
          requiredClaims: ['exp', 'iat'],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        })
        if (payload.iat! > Math.floor(Date.now() / 1000) + CLOCK_TOLERANCE_SECONDS) throw new InvalidServiceTokenError('issued in the future')
        return { service, claims: payload }
      } catch (err) {
        if (err instanceof InvalidServiceTokenError) throw err
        throw new InvalidServiceTokenError(reasonOf(err))
      }
    },

    /** Public keys for other services to verify our tokens; empty with HS256. */
    jwks(): { keys: JWK[] } {
      return { keys: published.keys.map((jwk) => ({ ...jwk })) }
    },
  }
}

export type ServiceTokenManager = ReturnType<typeof createServiceTokenManager>

export function isServiceName(value: unknown): value is ServiceName {
  return typeof value === 'string' && (serviceNames as readonly string[]).includes(value)
}

function secretVariable(service: ServiceName): string {
  return `SERVICE_AUTH_SECRET_${service.toUpperCase().replace(/-/g, '_')}`
}

/** Key objects from PEM, checked against the algorithm so a wrong key stops the start, not a request. */
function loadKey(key: Settings['serviceAuth']['keys'][number], algorithm: Exclude<ServiceAuthAlgorithm, 'HS256'>): LoadedKey {
  const where = `SERVICE_AUTH_KEYS: key "${key.kid}"`
  const publicKey = createPublicKey(key.publicKey)
  const expected = KEY_TYPES[algorithm]
  const curve = publicKey.asymmetricKeyDetails?.namedCurve
  if (publicKey.asymmetricKeyType !== expected.type || (expected.curve && curve !== expected.curve)) {
    throw new Error(`${where} is ${publicKey.asymmetricKeyType}${curve ? ` (${curve})` : ''}, not a key for ${algorithm}`)
  }
  if (algorithm === 'RS256' && (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new Error(`${where}: RS256 needs an RSA key of at least 2048 bits`)
  }
  let privateKey: KeyObject | null = null
  if (key.privateKey) {
    privateKey = createPrivateKey(key.privateKey)
    const derived = createPublicKey(privateKey).export({ format: 'der', type: 'spki' })
    if (!derived.equals(publicKey.export({ format: 'der', type: 'spki' }))) {
      throw new Error(`${where}: private_key does not match public_key`)
    }
  }
  const { kty, n, e, crv, x, y } = publicKey.export({ format: 'jwk' })
  const jwk: JWK = { kty, kid: key.kid, alg: algorithm, use: 'sig', ...(n ? { n, e } : {}), ...(crv ? { crv, x } : {}), ...(y ? { y } : {}) }
  return { kid: key.kid, service: key.service, publicKey, privateKey, jwk }
}

function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired'
  if (err instanceof errors.JWTClaimValidationFailed) return `claim "${err.claim}" is invalid`
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed'
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature'
  return 'malformed token'
}
