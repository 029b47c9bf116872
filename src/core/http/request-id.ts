import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** What we accept as an incoming X-Request-ID: short, and safe to echo into headers and logs. */
const WELL_FORMED = /^[A-Za-z0-9._:@-]{8,128}$/

/** Fastify's genReqId: echo a well-formed X-Request-ID from the caller (a gateway's), else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id']
  return typeof incoming === 'string' && WELL_FORMED.test(incoming) ? incoming : randomUUID()
}
