/**
 * A local stand-in for Stripe's API, for tests that drive the real `stripe` SDK against it:
 * node:http, form-encoded bodies in, JSON shaped like Stripe's out. It keeps payment intents and
 * refunds in memory, accepts one secret key, replays idempotent POSTs as Stripe does, and lets a
 * test move an intent as the customer's bank would (setIntentStatus) or fail a call (failNext).
 *
 * Point the SDK at it (stripe 23.1.0):
 *   new Stripe(standIn.secretKey, { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0, telemetry: false })
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Stripe from 'stripe'

export interface RecordedStripeRequest {
  method: string
  path: string
  /** Form (POST) or query (GET) params flattened as the SDK sends them: `metadata[order_id]`. */
  params: Record<string, string>
  idempotencyKey: string | null
  authorization: string | null
}

export interface PaymentError {
  type: string
  code: string
  decline_code?: string
  message: string
}

export interface StandInIntent {
  id: string
  object: 'payment_intent'
  amount: number
  currency: string
  status: string
  client_secret: string
  metadata: Record<string, string>
  amount_received: number
  latest_charge: string | null
  created: number
  livemode: false
  last_payment_error: PaymentError | null
  description: string | null
  receipt_email: string | null
  automatic_payment_methods: { enabled: boolean } | null
  canceled_at: number | null
  cancellation_reason: string | null
  /** Refunded so far. Stripe keeps this on the charge, not the intent, so answers leave it out. */
  amount_refunded: number
}

export interface StandInRefund {
  id: string
  object: 'refund'
  amount: number
  currency: string
  payment_intent: string
  charge: string | null
  status: 'succeeded'
  reason: string | null
  metadata: Record<string, string>
  created: number
}

export interface StripeStandIn {
  url: string
  secretKey: string
  requests: RecordedStripeRequest[]
  intents: Map<string, StandInIntent>
  refunds: Map<string, StandInRefund>
  /** Moves an intent as a customer's bank would: 'processing' | 'succeeded' | 'requires_payment_method' (failed) | 'canceled'. */
  setIntentStatus(id: string, status: string): StandInIntent
  /** The next request to `path` answers `status` with a Stripe error body. Not saved for idempotency: a retry runs for real. */
  failNext(path: string, status: number, code?: string): void
  close(): Promise<void>
}

interface Answer {
  status: number
  body: unknown
}

/** Thrown by a handler to answer a Stripe error. */
class StripeErrorAnswer extends Error {
  constructor(
    readonly status: number,
    readonly error: { type: string; message: string; code?: string; param?: string },
  ) {
    super(error.message)
  }
}

const CANCELABLE = ['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action', 'processing']
const REFUND_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer']

export async function startStripeStandIn(options: { secretKey?: string } = {}): Promise<StripeStandIn> {
  const secretKey = options.secretKey ?? 'sk_test_standin'
  const intents = new Map<string, StandInIntent>()
  const refunds = new Map<string, StandInRefund>()
  const saved = new Map<string, { fingerprint: string; endpoint: string; answer: Answer }>()
  const failures = new Map<string, Array<{ status: number; code: string | undefined }>>()
  const requests: RecordedStripeRequest[] = []

  function intentOr(id: string, status: number, param: string): StandInIntent {
    const intent = intents.get(id)
    if (!intent) throw new StripeErrorAnswer(status, { type: 'invalid_request_error', code: 'resource_missing', message: `No such payment_intent: '${id}'`, param })
    return intent
  }

  function createIntent(params: Record<string, string>): Answer {
    const amount = integerParam(params, 'amount', true)
    const currency = required(params, 'currency').toLowerCase()
    const id = `pi_${token()}`
    const intent: StandInIntent = {
      id, object: 'payment_intent', amount, currency, status: 'requires_payment_method',
      client_secret: `${id}_secret_${token()}`, metadata: metadataOf(params), amount_received: 0,
      latest_charge: null, created: now(), livemode: false, last_payment_error: null,
      description: params.description ?? null, receipt_email: params.receipt_email ?? null,
      automatic_payment_methods: params['automatic_payment_methods[enabled]'] ? { enabled: params['automatic_payment_methods[enabled]'] === 'true' } : null,
      canceled_at: null, cancellation_reason: null, amount_refunded: 0,
    }
    intents.set(id, intent)
    return { status: 200, body: intentJson(intent) }
  }

  function cancelIntent(id: string, params: Record<string, string>): Answer {
    const intent = intentOr(id, 404, 'intent')
    if (!CANCELABLE.includes(intent.status)) {
      const message = `You cannot cancel this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${CANCELABLE.join(', ')}.`
      throw new StripeErrorAnswer(400, { type: 'invalid_request_error', code: 'payment_intent_unexpected_state', message })
    }
    Object.assign(intent, { status: 'canceled', canceled_at: now(), cancellation_reason: params.cancellation_reason ?? null })
    return { status: 200, body: intentJson(intent) }
  }

  function createRefund(params: Record<string, string>): Answer {
    const intent = intentOr(required(params, 'payment_intent'), 400, 'payment_intent')
    if (intent.status !== 'succeeded') {
      throw new StripeErrorAnswer(400, { type: 'invalid_request_error', code: 'payment_intent_unexpected_state', message: 'This PaymentIntent does not have a successful charge to refund.' })
    }
    const remaining = intent.amount_received - intent.amount_refunded
    if (remaining === 0) {
      throw new StripeErrorAnswer(400, { type: 'invalid_request_error', code: 'charge_already_refunded', message: `Charge ${intent.latest_charge} has already been refunded.` })
    }
    const amount = params.amount === undefined ? remaining : integerParam(params, 'amount', false)
    if (amount > remaining) {
      const message = `Refund amount (${money(amount)}) is greater than unrefunded amount on charge (${money(remaining)})`
      throw new StripeErrorAnswer(400, { type: 'invalid_request_error', code: 'amount_too_large', message, param: 'amount' })
    }
    const reason = params.reason ?? null
    if (reason !== null && !REFUND_REASONS.includes(reason)) {
      throw new StripeErrorAnswer(400, { type: 'invalid_request_error', message: `Invalid reason: must be one of ${REFUND_REASONS.join(', ')}`, param: 'reason' })
    }
    const refund: StandInRefund = {
      id: `re_${token()}`, object: 'refund', amount, currency: intent.currency, payment_intent: intent.id,
      charge: intent.latest_charge, status: 'succeeded', reason, metadata: metadataOf(params), created: now(),
    }
    intent.amount_refunded += amount
    refunds.set(refund.id, refund)
    return { status: 200, body: refund }
  }

  function route(method: string, path: string, params: Record<string, string>): Answer {
    const [, resource, id, action] = /^\/v1\/([a-z_]+)(?:\/([^/]+))?(?:\/([a-z_]+))?$/.exec(path) ?? []
    const call = `${method} ${resource}${id === undefined ? '' : '/:id'}${action === undefined ? '' : `/${action}`}`
    switch (call) {
      case 'POST payment_intents': return createIntent(params)
      case 'GET payment_intents/:id': return { status: 200, body: intentJson(intentOr(id!, 404, 'intent')) }
      case 'POST payment_intents/:id/cancel': return cancelIntent(id!, params)
      case 'POST refunds': return createRefund(params)
      case 'GET refunds/:id': {
        const refund = refunds.get(id!)
        if (refund) return { status: 200, body: refund }
        throw new StripeErrorAnswer(404, { type: 'invalid_request_error', code: 'resource_missing', message: `No such refund: '${id}'`, param: 'id' })
      }
      default:
        throw new StripeErrorAnswer(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` })
    }
  }

  /** Stripe's order: the key first, then the idempotency layer, then the endpoint (an injected failure stands in for the last two). */
  function answer(request: RecordedStripeRequest): Answer & { replayed?: boolean } {
    try {
      checkKey(request.authorization, secretKey)
      const failure = failures.get(request.path)?.shift()
      if (failure) return injectedFailure(failure.status, failure.code)
      const key = request.method === 'POST' ? request.idempotencyKey : null // Stripe ignores keys on GET
      const endpoint = `${request.method} ${request.path}`
      const fingerprint = JSON.stringify(Object.entries(request.params).sort())
      const earlier = key === null ? undefined : saved.get(key)
      if (earlier) {
        const misuse =
          earlier.endpoint !== endpoint ? 'for the same endpoint they were first used for'
          : earlier.fingerprint !== fingerprint ? 'with the same parameters they were first used with'
          : null
        if (misuse === null) return { ...earlier.answer, replayed: true }
        const message = `Keys for idempotent requests can only be used ${misuse}. Try using a key other than '${key}' if you meant to execute a different request.`
        throw new StripeErrorAnswer(400, { type: 'idempotency_error', message })
      }
      const result = run(() => route(request.method, request.path, request.params))
      // Like Stripe, save whatever the endpoint answered, but not a request that failed parameter validation.
      if (key !== null && !isParameterError(result)) saved.set(key, { fingerprint, endpoint, answer: result })
      return result
    } catch (error) {
      return errorAnswer(error)
    }
  }

  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const url = new URL(req.url ?? '/', 'http://stand-in')
      const method = req.method ?? 'GET'
      const request: RecordedStripeRequest = {
        method,
        path: url.pathname,
        params: Object.fromEntries(method === 'GET' ? url.searchParams : new URLSearchParams(body)),
        idempotencyKey: header(req, 'idempotency-key'),
        authorization: header(req, 'authorization'),
      }
      requests.push(request)
      send(res, answer(request), request.idempotencyKey)
    }, () => res.destroy())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    secretKey, requests, intents, refunds,
    setIntentStatus(id, status) {
      const intent = intents.get(id)
      if (!intent) throw new Error(`setIntentStatus: no intent ${id}`)
      switch (status) {
        case 'processing': return Object.assign(intent, { status })
        case 'succeeded': return Object.assign(intent, { status, amount_received: intent.amount, latest_charge: intent.latest_charge ?? `ch_${token()}`, last_payment_error: null })
        case 'requires_payment_method':
          return Object.assign(intent, { status, last_payment_error: { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' } })
        case 'canceled': return Object.assign(intent, { status, canceled_at: now() })
        default: throw new Error(`setIntentStatus: a bank cannot move an intent to '${status}'`)
      }
    },
    failNext(path, status, code) {
      failures.set(path, [...(failures.get(path) ?? []), { status, code }])
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function checkKey(authorization: string | null, secretKey: string): void {
  const given = authorization?.match(/^Bearer (.+)$/)?.[1]
  if (given === secretKey) return
  const message = given === undefined
    ? "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
    : `Invalid API Key provided: ${given.slice(0, 8)}${'*'.repeat(Math.max(0, given.length - 12))}${given.slice(-4)}`
  throw new StripeErrorAnswer(401, { type: 'invalid_request_error', message })
}

function injectedFailure(status: number, code: string | undefined): Answer {
  const type = status >= 500 ? 'api_error' : status === 402 ? 'card_error' : 'invalid_request_error'
  return { status, body: { error: { type, message: `Injected by the stand-in's failNext (HTTP ${status}).`, ...(code === undefined ? {} : { code }) } } }
}

function run(handler: () => Answer): Answer {
  try {
    return handler()
  } catch (error) {
    return errorAnswer(error)
  }
}

function errorAnswer(error: unknown): Answer {
  if (error instanceof StripeErrorAnswer) return { status: error.status, body: { error: error.error } }
  return { status: 500, body: { error: { type: 'api_error', message: `Stand-in bug: ${String(error)}` } } }
}

function isParameterError(answer: Answer): boolean {
  const code = (answer.body as { error?: { code?: string } }).error?.code
  return code?.startsWith('parameter_') ?? false
}

function required(params: Record<string, string>, name: string): string {
  const value = params[name]
  if (value === undefined || value === '') {
    throw new StripeErrorAnswer(400, { type: 'invalid_request_error', code: 'parameter_missing', message: `Missing required param: ${name}.`, param: name })
  }
  return value
}

/** A positive integer param, as Stripe checks amounts. */
function integerParam(params: Record<string, string>, name: string, mustBeGiven: boolean): number {
  const raw = mustBeGiven ? required(params, name) : (params[name] ?? '')
  if (!/^\d+$/.test(raw)) throw new StripeErrorAnswer(400, { type: 'invalid_request_error', code: 'parameter_invalid_integer', message: `Invalid integer: ${raw}`, param: name })
  const value = Number(raw)
  if (value < 1) throw new StripeErrorAnswer(400, { type: 'invalid_request_error', code: 'parameter_invalid_integer', message: 'This value must be greater than or equal to 1.', param: name })
  return value
}

function metadataOf(params: Record<string, string>): Record<string, string> {
  const entries = Object.entries(params).flatMap(([key, value]) => {
    const name = /^metadata\[(.+)\]$/.exec(key)?.[1]
    return name === undefined ? [] : [[name, value] as const]
  })
  return Object.fromEntries(entries)
}

/** The intent as Stripe answers it: without the stand-in's own bookkeeping. */
function intentJson(intent: StandInIntent): Omit<StandInIntent, 'amount_refunded'> {
  const { amount_refunded: _bookkeeping, ...json } = intent
  return json
}

function send(res: ServerResponse, answer: Answer & { replayed?: boolean }, idempotencyKey: string | null): void {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'request-id': `req_${token()}` }
  if (idempotencyKey !== null) headers['idempotency-key'] = idempotencyKey
  if (answer.replayed) headers['idempotent-replayed'] = 'true'
  res.writeHead(answer.status, headers)
  res.end(JSON.stringify(answer.body))
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name]
  return typeof value === 'string' ? value : null
}

function money(minor: number): string {
  return `$${(minor / 100).toFixed(2)}`
}

function token(): string {
  return randomBytes(12).toString('hex')
}

function now(): number {
  return Math.floor(Date.now() / 1000)
}

/** A Stripe Event object (JSON) as Stripe would deliver it to a webhook endpoint. */
export function stripeEvent(type: string, object: object, options: { id?: string; created?: number } = {}) {
  return {
    id: options.id ?? `evt_${token()}`,
    object: 'event' as const,
    type,
    created: options.created ?? now(),
    api_version: Stripe.API_VERSION as string,
    livemode: false as const,
    data: { object },
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
  }
}

/**
 * Body + header for a webhook delivery, signed with Stripe's own test helper. `timestamp` (seconds)
 * backdates the signature; `tamper` changes the body after signing, keeping it valid JSON.
 */
export function signedDelivery(event: object, secret: string, options: { timestamp?: number; tamper?: boolean } = {}) {
  const signed = JSON.stringify(event, null, 2) // Stripe delivers pretty-printed JSON
  const signature = Stripe.webhooks.generateTestHeaderString({ payload: signed, secret, timestamp: options.timestamp ?? now() })
  const payload = options.tamper ? JSON.stringify({ ...event, tampered: true }, null, 2) : signed
  return { payload, headers: { 'stripe-signature': signature, 'content-type': 'application/json' as const } }
}
