import { createPublicKey, generateKeyPairSync, randomUUID, verify, type JsonWebKey } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { loadSettings } from '../../config/index.js'
import type { ServiceName } from '../../config/settings.js'
import { createServiceTokenManager, type ServiceTokenManager } from '../../core/service-auth/index.js'
import { expectProblem } from '../../../test/problems.js'

const SECRETS = {
  SERVICE_AUTH_SECRET_DJANGO_BACKEND: `backend-${randomUUID()}`,
  SERVICE_AUTH_SECRET_API_GATEWAY: `gateway-${randomUUID()}`,
  SERVICE_AUTH_SECRET_CELERY_WORKER: `workers-${randomUUID()}`,
}



describe('service auth with HS256', () => {
  let t: TestApp
  let tokens: ServiceTokenManager
  const header = async (service: ServiceName) => ({ 'x-service-token': await tokens.issue(service) })

  beforeAll(async () => {
    t = await createTestApp({
      env: SECRETS,
      setup(app) {
        const echo = async (request: FastifyRequest) => ({
          service: request.service,
          caller: request.caller,
          actor: request.ctx.actor,
        })
        app.get('/api/internal/test/', { config: { services: ['api-gateway'] } }, echo)
        app.get('/api/internal/test/open/', echo)
        app.get('/internal/test/open/', echo)
        app.get('/test/public/', async (request) => ({ service: request.service, caller: request.caller }))
      },
    })
    // What another service holds: the same secrets, its own manager.
    tokens = createServiceTokenManager(loadSettings({ ENVIRONMENT: 'test', ...SECRETS }).serviceAuth)
  })
  afterAll(() => t.close())

  describe('GET /.well-known/jwks.json', () => {
    it('answers an empty key set when the algorithm is HS256', async () => {
      const res = await t.request({ method: 'GET', url: '/.well-known/jwks.json' })
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toMatch(/^application\/json/)
      expect(res.json()).toEqual({ keys: [] })
      // Not rate limited: no counter headers, which an ordinary route does send.
      expect(res.headers['ratelimit-limit']).toBeUndefined()
      expect(res.headers['ratelimit-remaining']).toBeUndefined()
      expect((await t.request({ method: 'GET', url: '/test/public/' })).headers['ratelimit-limit']).toBeDefined()
    })
  })

  describe('the X-Service-Token guard', () => {
    it('answers 401 service_token_required when the header is missing', async () => {
      const res = await t.request({ method: 'GET', url: '/api/internal/test/open/' })
      const body = expectProblem(res, 401, 'service_token_required')
      expect(body.instance).toBe('/api/internal/test/open/')
      expectProblem(await t.request({ method: 'GET', url: '/api/internal/test/open/', headers: { 'x-service-token': '' } }), 401, 'service_token_required')
    })

    it('answers 401 invalid_service_token when the token is garbage', async () => {
      const res = await t.request({ method: 'GET', url: '/api/internal/test/open/', headers: { 'x-service-token': 'not.a.token' } })
      expect(expectProblem(res, 401, 'invalid_service_token').detail).toMatch(/malformed/)
    })

    it('answers 401 when the token has expired', async () => {
      const at = Math.floor(Date.now() / 1000) - 600
      const expired = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('api-gateway')
        .setAudience('django-backend')
        .setIssuedAt(at)
        .setExpirationTime(at + 300)
        .sign(new TextEncoder().encode(SECRETS.SERVICE_AUTH_SECRET_API_GATEWAY))
      const res = await t.request({ method: 'GET', url: '/api/internal/test/open/', headers: { 'x-service-token': expired } })
      expect(expectProblem(res, 401, 'invalid_service_token').detail).toMatch(/expired/)
    })

    it('answers 401 when the token is addressed to another service', async () => {
      const res = await t.request({ method: 'GET', url: '/api/internal/test/open/', headers: { 'x-service-token': await tokens.issue('api-gateway', { audience: 'celery-worker' }) } })
      expectProblem(res, 401, 'invalid_service_token')
    })

    it('lets a valid token through and names the service on the request', async () => {
      for (const service of ['api-gateway', 'celery-worker', 'django-backend'] as const) {
        const res = await t.request({ method: 'GET', url: '/api/internal/test/open/', headers: await header(service) })
        expect(res.statusCode).toBe(200)
        expect(res.json()).toEqual({ service, caller: `service:${service}`, actor: { kind: 'service', id: service } })
      }
    })

    it('answers 403 service_not_allowed when the route allows other services only', async () => {
      const res = await t.request({ method: 'GET', url: '/api/internal/test/', headers: await header('celery-worker') })
      expect(expectProblem(res, 403, 'service_not_allowed').detail).toMatch(/celery-worker/)
      const allowed = await t.request({ method: 'GET', url: '/api/internal/test/', headers: await header('api-gateway') })
      expect(allowed.statusCode).toBe(200)
      expect(allowed.json()).toMatchObject({ service: 'api-gateway' })
    })

    it('answers 401 for an unknown internal URL without a token and 404 with one', async () => {
      for (const url of ['/api/internal/nope/', '/internal/nope/', '/api/internal', '/internal/']) {
        expectProblem(await t.request({ method: 'GET', url }), 401, 'service_token_required')
        expectProblem(await t.request({ method: 'GET', url, headers: await header('api-gateway') }), 404, 'not_found')
      }
      expectProblem(await t.request({ method: 'POST', url: '/api/internal/nope/', payload: {} }), 401, 'service_token_required')
    })

    it('guards the /internal/ prefix like /api/internal/', async () => {
      expectProblem(await t.request({ method: 'GET', url: '/internal/test/open/' }), 401, 'service_token_required')
      const res = await t.request({ method: 'GET', url: '/internal/test/open/', headers: await header('celery-worker') })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ service: 'celery-worker' })
    })

    it('guards the routes when the path is spelled the way the router still matches', async () => {
      // No trailing slash, doubled slashes, a percent-escaped letter, a query string, HEAD.
      for (const url of ['/api/internal/test/open', '//api//internal/test/open/', '/api/%69nternal/test/open/', '/api/internal/test/open/?x=/health/']) {
        expectProblem(await t.request({ method: 'GET', url }), 401, 'service_token_required')
        const res = await t.request({ method: 'GET', url, headers: await header('api-gateway') })
        expect(res.statusCode, url).toBe(200)
      }
      expect((await t.request({ method: 'HEAD', url: '/api/internal/test/open/' })).statusCode).toBe(401)
    })

    it('leaves public routes alone', async () => {
      expect((await t.request({ method: 'GET', url: '/health/live/' })).statusCode).toBe(200)
      const res = await t.request({ method: 'GET', url: '/test/public/', headers: { 'x-service-token': 'garbage' } })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({ service: null, caller: null })
      // Only the prefixes themselves: a look-alike path is an ordinary 404.
      expectProblem(await t.request({ method: 'GET', url: '/api/internals/' }), 404, 'not_found')
      expectProblem(await t.request({ method: 'GET', url: '/api/v1/internal/' }), 404, 'not_found')
    })
  })

  describe('GET /api/internal/users/{id}/', () => {
    const prefixes = ['/api/internal', '/internal']

    it('answers 401 without a token, before the id is even validated', async () => {
      for (const prefix of prefixes) {
        expectProblem(await t.request({ method: 'GET', url: `${prefix}/users/${randomUUID()}/` }), 401, 'service_token_required')
        expectProblem(await t.request({ method: 'GET', url: `${prefix}/users/not-a-uuid/` }), 401, 'service_token_required')
      }
    })

    it('answers the summary of a registered user through both prefixes', async () => {
      const email = `internal-${randomUUID()}@example.com`
      const registered = await t.request({ method: 'POST', url: '/api/auth/register/', payload: { email, password: `Pw-${randomUUID()}`, first_name: 'Ada', last_name: 'Lovelace' } })
      expect(registered.statusCode).toBe(201)
      const { id } = registered.json<{ id: string }>()
      for (const prefix of prefixes) {
        const res = await t.request({ method: 'GET', url: `${prefix}/users/${id}/`, headers: await header('celery-worker') })
        expect(res.statusCode).toBe(200)
        const summary = res.json<Record<string, unknown>>()
        expect(Object.keys(summary).sort()).toEqual(['date_joined', 'email', 'email_verified', 'first_name', 'id', 'is_active', 'last_name', 'role'])
        expect(summary).toMatchObject({ id, email, first_name: 'Ada', last_name: 'Lovelace', role: 'customer', is_active: true, email_verified: false })
        expect(summary.date_joined).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/)
      }
    })

    it('answers 404 for a user that does not exist', async () => {
      for (const prefix of prefixes) {
        const id = randomUUID()
        const res = await t.request({ method: 'GET', url: `${prefix}/users/${id}/`, headers: await header('api-gateway') })
        expect(expectProblem(res, 404, 'not_found').detail).toContain(id)
      }
    })

    it('answers 422 for an id that is not a UUID', async () => {
      for (const id of ['not-a-uuid', '123', `urn:uuid:${randomUUID()}`, `${randomUUID()}x`]) {
        const res = await t.request({ method: 'GET', url: `/api/internal/users/${encodeURIComponent(id)}/`, headers: await header('celery-worker') })
        expect(expectProblem(res, 422, 'validation_error').errors, id).toHaveProperty('id')
      }
    })

    it('is documented with the service token scheme and every response', async () => {
      const document = (await t.request({ method: 'GET', url: '/api/schema/' })).json<{ paths: Record<string, Record<string, Record<string, unknown>>> }>()
      for (const path of ['/api/internal/users/{id}/', '/internal/users/{id}/']) {
        const operation = document.paths[path]?.get
        expect(operation, path).toMatchObject({ tags: ['internal'], security: [{ serviceToken: [] }] })
        expect(Object.keys(operation!.responses as object).sort()).toEqual(['200', '401', '403', '404', '422'])
      }
      expect(document.paths['/.well-known/jwks.json']?.get).toMatchObject({ tags: ['platform'] })
    })
  })
})

type Asymmetric = 'RS256' | 'ES256' | 'EdDSA'
const PEM = { public: { type: 'spki', format: 'pem' }, private: { type: 'pkcs8', format: 'pem' } } as const

function generatePair(algorithm: Asymmetric): { publicKey: string; privateKey: string } {
  if (algorithm === 'RS256') return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: PEM.public, privateKeyEncoding: PEM.private })
  if (algorithm === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: PEM.public, privateKeyEncoding: PEM.private })
  return generateKeyPairSync('ed25519', { publicKeyEncoding: PEM.public, privateKeyEncoding: PEM.private })
}

/** Signature check with node:crypto only: the JWKS must be usable by a verifier that is not ours. */
function verifyIndependently(token: string, jwk: JsonWebKey, algorithm: Asymmetric): boolean {
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const key = createPublicKey({ key: jwk, format: 'jwk' })
  const data = Buffer.from(`${header}.${payload}`)
  const raw = Buffer.from(signature, 'base64url')
  if (algorithm === 'EdDSA') return verify(null, data, key, raw)
  // JWS carries ECDSA signatures as r || s, not DER.
  return verify('sha256', data, algorithm === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, raw)
}

describe.each(['ES256', 'RS256', 'EdDSA'] as const)('service auth with %s', (algorithm) => {
  let t: TestApp
  let ours: ServiceTokenManager
  let gateway: ServiceTokenManager
  const backend = generatePair(algorithm)
  const gatewayOld = generatePair(algorithm)
  const gatewayNew = generatePair(algorithm)
  // This service holds its own private key and only the public halves of the gateway's two keys.
  const keys = [
    { kid: 'db-1', service: 'django-backend', public_key: backend.publicKey, private_key: backend.privateKey },
    { kid: 'gw-2', service: 'api-gateway', public_key: gatewayNew.publicKey },
    { kid: 'gw-1', service: 'api-gateway', public_key: gatewayOld.publicKey },
  ]
  const env = { SERVICE_AUTH_ALGORITHM: algorithm, SERVICE_AUTH_KEYS: JSON.stringify(keys) }

  beforeAll(async () => {
    t = await createTestApp({ env })
    ours = createServiceTokenManager(t.settings.serviceAuth)
    gateway = createServiceTokenManager(
      loadSettings({
        ENVIRONMENT: 'test',
        SERVICE_AUTH_ALGORITHM: algorithm,
        SERVICE_AUTH_KEYS: JSON.stringify([
          { kid: 'gw-1', service: 'api-gateway', public_key: gatewayOld.publicKey, private_key: gatewayOld.privateKey },
          { kid: 'gw-2', service: 'api-gateway', public_key: gatewayNew.publicKey, private_key: gatewayNew.privateKey },
        ]),
      }).serviceAuth,
    )
  })
  afterAll(() => t.close())

  it('publishes the public half of every configured key, without private members', async () => {
    const res = await t.request({ method: 'GET', url: '/.well-known/jwks.json' })
    expect(res.statusCode).toBe(200)
    const { keys: published } = res.json<{ keys: Array<Record<string, string>> }>()
    expect(published.map((key) => key.kid)).toEqual(['db-1', 'gw-2', 'gw-1'])
    for (const [i, jwk] of published.entries()) {
      expect(jwk).toMatchObject({ alg: algorithm, use: 'sig' })
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(jwk).not.toHaveProperty(member)
      expect(createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' })).toBe(keys[i]!.public_key)
    }
  })

  it('issues tokens that a verifier using only node:crypto and the JWKS accepts', async () => {
    const { keys: published } = (await t.request({ method: 'GET', url: '/.well-known/jwks.json' })).json<{ keys: JsonWebKey[] }>()
    const token = await ours.issue('django-backend', { audience: 'api-gateway' })
    const [headerPart, payloadPart, signature] = token.split('.') as [string, string, string]
    const header = JSON.parse(Buffer.from(headerPart, 'base64url').toString()) as { alg: string; kid: string }
    const claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString()) as { iss: string; aud: string; exp: number; iat: number }
    expect(header.alg).toBe(algorithm)
    const jwk = published.find((key) => key.kid === header.kid)!
    expect(jwk).toBeDefined()
    expect(verifyIndependently(token, jwk, algorithm)).toBe(true)
    const nowSeconds = Date.now() / 1000
    expect(claims.iss).toBe('django-backend')
    expect(claims.aud).toBe('api-gateway')
    expect(claims.exp).toBeGreaterThan(nowSeconds)
    expect(claims.iat).toBeLessThanOrEqual(nowSeconds + 1)
    // The same check fails for a changed payload or another key: it is a real verification.
    const forged = Buffer.from(JSON.stringify({ ...claims, iss: 'api-gateway' })).toString('base64url')
    expect(verifyIndependently(`${headerPart}.${forged}.${signature}`, jwk, algorithm)).toBe(false)
    expect(verifyIndependently(token, published.find((key) => key.kid === 'gw-1')!, algorithm)).toBe(false)
  })

  it('lets the gateway in with either of its keys during a rotation', async () => {
    const oldToken = await gateway.issue('api-gateway')
    const res = await t.request({ method: 'GET', url: `/api/internal/users/${randomUUID()}/`, headers: { 'x-service-token': oldToken } })
    // Past the guard: no such user, so 404.
    expectProblem(res, 404, 'not_found')
    const rotated = createServiceTokenManager(
      loadSettings({
        ENVIRONMENT: 'test',
        SERVICE_AUTH_ALGORITHM: algorithm,
        SERVICE_AUTH_KEYS: JSON.stringify([{ kid: 'gw-2', service: 'api-gateway', public_key: gatewayNew.publicKey, private_key: gatewayNew.privateKey }]),
      }).serviceAuth,
    )
    const newToken = await rotated.issue('api-gateway')
    expectProblem(await t.request({ method: 'GET', url: `/api/internal/users/${randomUUID()}/`, headers: { 'x-service-token': newToken } }), 404, 'not_found')
  })

  it('answers 401 for a token signed with a key it does not know', async () => {
    const stranger = generatePair(algorithm)
    const impostor = createServiceTokenManager(
      loadSettings({
        ENVIRONMENT: 'test',
        SERVICE_AUTH_ALGORITHM: algorithm,
        SERVICE_AUTH_KEYS: JSON.stringify([{ kid: 'gw-1', service: 'api-gateway', public_key: stranger.publicKey, private_key: stranger.privateKey }]),
      }).serviceAuth,
    )
    const res = await t.request({ method: 'GET', url: '/api/internal/nope/', headers: { 'x-service-token': await impostor.issue('api-gateway') } })
    expect(expectProblem(res, 401, 'invalid_service_token').detail).toMatch(/bad signature/)
  })
})
