/**
 * A webhook receiver for tests: a real node:http server on loopback (port 0) that records every
 * request and answers what the test says (200 by default, or after a gate opens). Signatures are
 * checked with the receiver's own HMAC computation, the way the README tells integrators to.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedWebhook {
  path: string
  headers: IncomingHttpHeaders
  body: string
  /** The parsed body: `{id, type, created_at, data}`. */
  json: { id: string; type: string; created_at: string; data: Record<string, unknown> }
  /** Webhook-Id. */
  id: string
}

export interface Answer {
  status: number
  body?: string
  headers?: Record<string, string>
}

export type Responder = (request: ReceivedWebhook, index: number) => number | Answer | Promise<number | Answer>

export interface Receiver {
  /** http://127.0.0.1:<port>/hook */
  url: string
  port: number
  received: ReceivedWebhook[]
  /** The most requests that were unanswered at once. */
  maxInFlight: number
  respond(responder: Responder): void
  /** Resolves when `count` requests have arrived (bounded). */
  waitFor(count: number, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

/** `t=<ts>,v1=<hex>` checked against HMAC-SHA256(secret, "<ts>.<body>"), and the timestamp against Webhook-Timestamp. */
export function signatureIsValid(secret: string, received: Pick<ReceivedWebhook, 'headers' | 'body'>): boolean {
  const header = String(received.headers['webhook-signature'] ?? '')
  const parts = Object.fromEntries(header.split(',').map((part) => part.split('=', 2) as [string, string]))
  if (!parts.t || !parts.v1 || parts.t !== received.headers['webhook-timestamp']) return false
  const expected = createHmac('sha256', secret).update(`${parts.t}.${received.body}`).digest()
  const given = Buffer.from(parts.v1, 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

export async function startReceiver(): Promise<Receiver> {
  let responder: Responder = () => 200
  let inFlight = 0
  const waiters: Array<{ count: number; resolve: () => void }> = []
  const receiver: Receiver = {
    url: '',
    port: 0,
    received: [],
    maxInFlight: 0,
    respond(next) {
      responder = next
    },
    async waitFor(count, timeoutMs = 10_000) {
      if (receiver.received.length >= count) return
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${receiver.received.length} of ${count} webhook requests arrived`)), timeoutMs)
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) })
      })
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      inFlight += 1
      receiver.maxInFlight = Math.max(receiver.maxInFlight, inFlight)
      const body = Buffer.concat(chunks).toString('utf8')
      const entry: ReceivedWebhook = { path: request.url ?? '', headers: request.headers, body, json: JSON.parse(body) as ReceivedWebhook['json'], id: String(request.headers['webhook-id']) }
      const index = receiver.received.push(entry) - 1
      for (const waiter of waiters.filter((w) => receiver.received.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
      void Promise.resolve(responder(entry, index)).then((answer) => {
        const { status, body: text = '', headers = {} } = typeof answer === 'number' ? { status: answer } : answer
        inFlight -= 1
        response.writeHead(status, headers).end(text)
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  receiver.port = (server.address() as AddressInfo).port
  receiver.url = `http://127.0.0.1:${receiver.port}/hook`
  return receiver
}
