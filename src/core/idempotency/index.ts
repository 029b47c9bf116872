/**
 * Idempotency-Key for every POST (API.md): within the TTL the same key from the same caller with
 * the same request replays the first response; a different request under that key is 422; the
 * same key while the first request runs is 409. Routes that must have a key say
 * `config: { idempotency: 'required' }`.
 *
 * The hooks are appended to each POST route's own hooks, so they run after the route's auth has
 * set `request.caller`. Responses of 5xx are not kept: the client may retry them.
 */
import { createHash } from 'node:crypto'
import { and, eq, lt, sql } from 'drizzle-orm'
import type { FastifyInstance, FastifyReply, FastifyRequest, onSendHookHandler, preHandlerHookHandler } from 'fastify'
import type { Settings } from '../../config/index.js'
import type { Db } from '../db/index.js'
import { BadRequestError, ConflictError, ValidationError } from '../errors.js'
import { idempotencyKeys } from './tables.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** 'required': POST without Idempotency-Key is 400. false: the route opts out (webhooks). */
    idempotency?: 'required' | 'optional' | false
  }
  interface FastifyRequest {
    idempotency: { scope: string; key: string; replayed: boolean } | null
  }
}

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/
/** Response headers worth replaying besides the body. */
const KEPT_HEADERS = ['content-type', 'location']

export function registerIdempotency(app: FastifyInstance, settings: Settings, db: Db): void {
  app.decorateRequest('idempotency', null)
  const store = createStore(db, settings.idempotency)

  const before: preHandlerHookHandler = async function (request, reply) {
    const mode = request.routeOptions.config.idempotency ?? 'optional'
    const header = request.headers['idempotency-key']
    if (mode === false) return
    if (header === undefined) {
      if (mode === 'required') throw new BadRequestError('idempotency_key_required', 'This request needs an Idempotency-Key header.')
      return
    }
    if (typeof header !== 'string' || !KEY_PATTERN.test(header)) {
      throw new BadRequestError('invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 visible ASCII characters.')
    }
    const scope = callerOf(request)
    const hash = requestHash(request)
    const outcome = await store.claim(scope, header, hash)
    switch (outcome.kind) {
      case 'claimed':
        request.idempotency = { scope, key: header, replayed: false }
        return
      case 'mismatch':
        throw new ValidationError('This Idempotency-Key was used with a different request.', undefined, 'idempotency_key_reused')
      case 'in_progress':
        throw new ConflictError('idempotency_request_in_progress', 'A request with this Idempotency-Key is still being processed.')
      case 'replay':
        request.idempotency = { scope, key: header, replayed: true }
        return replay(reply, outcome.response)
    }
  }

  const after: onSendHookHandler = async function (request, reply, payload) {
    const claim = request.idempotency
    if (!claim || claim.replayed) return payload
    if (reply.statusCode >= 500 || typeof payload !== 'string') {
      await store.release(claim.scope, claim.key)
      return payload
    }
    const headers: Record<string, string> = {}
    for (const name of KEPT_HEADERS) {
      const value = reply.getHeader(name)
      if (value !== undefined) headers[name] = String(value)
    }
    await store.complete(claim.scope, claim.key, { status: reply.statusCode, headers, body: payload })
    return payload
  }

  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    if (!methods.includes('POST') || route.config?.idempotency === false) return
    route.preHandler = [...asArray(route.preHandler), before]
    route.onSend = [...asArray(route.onSend), after]
  })
}

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}

/** The caller set by auth; guests are told apart by cart token, then by address. */
function callerOf(request: FastifyRequest): string {
  if (request.caller) return request.caller
  const cart = request.headers['x-cart-token']
  if (typeof cart === 'string' && cart) return `cart:${sha256(cart)}`
  return `ip:${request.ip}`
}

/** Method, path (with or without its trailing slash: the same route) and query, and the parsed body. */
function requestHash(request: FastifyRequest): string {
  const [path = '', query = ''] = request.url.split('?')
  return sha256(`${request.method} ${path.replace(/\/+$/, '')}?${query}\n${JSON.stringify(request.body ?? null)}`)
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

interface StoredResponse {
  status: number
  headers: Record<string, string>
  body: string
}

type ClaimOutcome = { kind: 'claimed' } | { kind: 'mismatch' } | { kind: 'in_progress' } | { kind: 'replay'; response: StoredResponse }

function replay(reply: FastifyReply, response: StoredResponse): FastifyReply {
  return reply.code(response.status).headers(response.headers).header('idempotent-replayed', 'true').send(response.body)
}

function createStore(db: Db, config: Settings['idempotency']) {
  const expired = sql`now() - make_interval(secs => ${config.ttlMs / 1000})`
  const stale = sql`now() - make_interval(secs => ${config.lockTimeoutMs / 1000})`
  const where = (scope: string, key: string) => and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key))

  return {
    async claim(scope: string, key: string, hash: string): Promise<ClaimOutcome> {
      // An expired key is forgotten, so the same key starts afresh.
      await db.delete(idempotencyKeys).where(and(where(scope, key), lt(idempotencyKeys.created_at, expired)))
      const inserted = await db
        .insert(idempotencyKeys)
        .values({ scope, key, request_hash: hash, state: 'in_progress' })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key })
      if (inserted.length > 0) return { kind: 'claimed' }

      const [row] = await db.select().from(idempotencyKeys).where(where(scope, key))
      if (!row) return this.claim(scope, key, hash)
      if (row.request_hash !== hash) return { kind: 'mismatch' }
      if (row.state === 'completed') {
        return { kind: 'replay', response: { status: row.response_status!, headers: row.response_headers ?? {}, body: row.response_body ?? '' } }
      }
      // A request that died without answering leaves its claim behind; take it over once it is stale.
      const taken = await db
        .update(idempotencyKeys)
        .set({ locked_at: sql`now()` })
        .where(and(where(scope, key), eq(idempotencyKeys.state, 'in_progress'), lt(idempotencyKeys.locked_at, stale)))
        .returning({ key: idempotencyKeys.key })
      return taken.length > 0 ? { kind: 'claimed' } : { kind: 'in_progress' }
    },
    async complete(scope: string, key: string, response: StoredResponse) {
      await db
        .update(idempotencyKeys)
        .set({ state: 'completed', response_status: response.status, response_headers: response.headers, response_body: response.body })
        .where(where(scope, key))
    },
    async release(scope: string, key: string) {
      await db.delete(idempotencyKeys).where(where(scope, key))
    },
  }
}
