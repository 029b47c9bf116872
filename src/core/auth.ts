/**
 * Users' access tokens and the permission helpers every app uses. Access tokens are short-lived
 * HS256 JWTs (alg pinned; iss, aud, exp, iat checked). Each authenticated request re-reads the
 * user's role and active flag through a port the accounts app provides, so a deactivation or a
 * demotion takes effect at once rather than when the token expires.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, preValidationAsyncHookHandler } from 'fastify'
import { jwtVerify, SignJWT } from 'jose'
import type { Settings } from '../config/index.js'
import type { Actor, Role } from './context.js'
import { ForbiddenError, NotFoundError, UnauthorizedError } from './errors.js'
import type { Platform } from './platform.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user, or null. Services appear as `request.service`. */
    actor: Actor | null
  }
}

const ALGORITHM = 'HS256'

export interface AccessClaims {
  sub: string
  /** The user's token version when issued: tokens of an older version are refused. */
  ver: number
  role: Role
  mfa: boolean
  /** Purpose: 'access' for API calls, 'mfa' for the second sign-in step. */
  typ: 'access' | 'mfa'
}

/** Signs and verifies users' tokens. */
export function createUserTokens(settings: Settings['auth']) {
  // Imported once: jose verifies with WebCrypto, and a raw secret would be imported on every call
  // (about a third of the verification time).
  const key = crypto.subtle.importKey('raw', new TextEncoder().encode(settings.signingKey), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
  const audienceOf = (typ: AccessClaims['typ']) => (typ === 'access' ? settings.audience : `${settings.audience}:mfa`)

  const sign = async (claims: AccessClaims, ttlSeconds: number) =>
    new SignJWT({ role: claims.role, mfa: claims.mfa, typ: claims.typ, ver: claims.ver })
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer(settings.issuer)
      .setAudience(audienceOf(claims.typ))
      .setIssuedAt()
      .setJti(randomUUID())
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(await key)

  const verify = async (token: string, typ: AccessClaims['typ']): Promise<AccessClaims> => {
    try {
      const { payload } = await jwtVerify(token, await key, {
        algorithms: [ALGORITHM],
        issuer: settings.issuer,
        audience: audienceOf(typ),
        requiredClaims: ['sub', 'exp', 'iat'],
        clockTolerance: 5,
      })
      if (payload.typ !== typ) throw new Error('wrong token type')
      return { sub: payload.sub!, ver: typeof payload.ver === 'number' ? payload.ver : -1, role: payload.role as Role, mfa: payload.mfa === true, typ }
    } catch {
      throw new UnauthorizedError(typ === 'access' ? 'invalid_token' : 'invalid_mfa_token', 'The token is invalid or has expired.')
    }
  }

  return {
    accessTtlSeconds: settings.accessTtlSeconds,
    signAccess: (user: { id: string; role: Role; token_version: number }, mfa: boolean) =>
      sign({ sub: user.id, role: user.role, ver: user.token_version, mfa, typ: 'access' }, settings.accessTtlSeconds),
    /** Proves the password step of a sign-in that still needs its second factor (5 minutes). */
    signMfa: (user: { id: string; role: Role; token_version: number }) => sign({ sub: user.id, role: user.role, ver: user.token_version, mfa: false, typ: 'mfa' }, 300),
    verifyAccess: (token: string) => verify(token, 'access'),
    verifyMfa: (token: string) => verify(token, 'mfa'),
  }
}

export type UserTokens = ReturnType<typeof createUserTokens>

/** What the accounts app tells the guard about a user on each request. */
export type PrincipalLoader = (userId: string) => Promise<{ role: Role; is_active: boolean; token_version: number } | null>

/**
 * Reads `Authorization: Bearer <access token>` on every request that has it. A present but invalid
 * token is a 401 even on public routes, so a client never silently acts as a guest.
 */
export function registerUserAuth(app: FastifyInstance, platform: Platform, deps: { tokens: UserTokens; loadPrincipal: PrincipalLoader }): void {
  app.decorateRequest('actor', null)
  app.addHook('onRequest', async (request) => {
    const header = request.headers.authorization
    if (header === undefined || isServiceRoute(request)) return
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    if (!match) throw new UnauthorizedError('invalid_token', 'Use "Authorization: Bearer <access token>".')
    const claims = await deps.tokens.verifyAccess(match[1]!)
    const principal = await deps.loadPrincipal(claims.sub)
    if (!principal?.is_active || claims.ver !== principal.token_version) throw new UnauthorizedError('invalid_token', 'The token is invalid or has expired.')
    const actor: Actor = { kind: 'user', id: claims.sub, role: principal.role, mfa: claims.mfa }
    request.actor = actor
    request.caller = `user:${actor.id}`
    request.ctx = platform.context({ requestId: String(request.id), log: request.log, actor })
  })
}

function isServiceRoute(request: FastifyRequest): boolean {
  // /metrics/ takes its own bearer token; internal routes authenticate services.
  return /^\/(metrics|internal|api\/internal)(\/|\?|$)/.test(request.url.replace(/\/{2,}/g, '/'))
}

export interface AuthGuards {
  requireUser: preValidationAsyncHookHandler
  requireStaff: preValidationAsyncHookHandler
  requireAdmin: preValidationAsyncHookHandler
}

/**
 * Route hooks: 401 without a user, 403 without the role (or without MFA when staff must use it).
 * Attach them as `preValidation`, so an unauthenticated caller gets 401 before any 422 about the body.
 */
export function createAuthGuards(settings: Pick<Settings['auth'], 'requireStaffMfa'>): AuthGuards {
  const requireRole = (allowed: Role[]): preValidationAsyncHookHandler =>
    async function (request) {
      const actor = request.actor
      if (!actor) throw new UnauthorizedError()
      if (!actor.role || !allowed.includes(actor.role)) throw new ForbiddenError()
      if (settings.requireStaffMfa && actor.role !== 'customer' && !actor.mfa) {
        throw new ForbiddenError('mfa_required', 'Sign in with two-factor authentication to use staff features.')
      }
    }
  return {
    requireUser: async function (request) {
      if (!request.actor) throw new UnauthorizedError()
    },
    requireStaff: requireRole(['staff', 'admin']),
    requireAdmin: requireRole(['admin']),
  }
}

export function isStaff(actor: Actor | null): boolean {
  return actor?.kind === 'user' && (actor.role === 'staff' || actor.role === 'admin')
}

/** Object-level check: someone else's object is reported as not found. */
export function assertOwner(actor: Actor | null, ownerId: string, what: string, id: string): void {
  if (actor?.kind !== 'user' || actor.id !== ownerId) throw new NotFoundError(what, id)
}

/** The owner or staff (e.g. orders); anyone else gets not found. */
export function assertOwnerOrStaff(actor: Actor | null, ownerId: string, what: string, id: string): void {
  if (!isStaff(actor)) assertOwner(actor, ownerId, what, id)
}
