/**
 * Outgoing webhooks: staff register receiver endpoints (URL, public event types, a signing
 * secret shown once); every matching domain event becomes one delivery row per endpoint with the
 * body snapshotted, and is sent signed, retried with backoff and in order per endpoint (sender.ts).
 * Owns webhook_endpoints and webhook_deliveries. Consumes order.created, order.status_changed,
 * payment.failed|refunded|flagged and catalog.products_changed (from the outbox, in tasks.ts);
 * reads orders and payments through their services. Publishes nothing.
 */
import type { Ctx } from '../../core/context.js'
import { NotFoundError, ValidationError } from '../../core/errors.js'
import type { EventEnvelope } from '../../core/events/index.js'
import { decodeCursor, encodeCursor } from '../../core/http/pagination.js'
import type { TaskQueue } from '../../core/queue/index.js'
import { createSecretBox } from '../../core/secret-box.js'
import type { OrdersService } from '../orders/service.js'
import type { PaymentsService } from '../payments/service.js'
import { DeliveryPendingError, EndpointInactiveError } from './errors.js'
import { ALL_EVENTS, isPublicEventType, PUBLIC_EVENT_TYPES, publicTypeOf } from './event-types.js'
import { createPayloads } from './payloads.js'
import * as q from './queries.js'
import type { DeliveryRow, EndpointRow } from './queries.js'
import { checkReceiverUrl } from './receiver-url.js'
import { createSender, type SenderConfig } from './sender.js'
import { newSecret } from './signing.js'
import type { DeliveryStatus } from './tables.js'

export const DELIVER_TASK = 'webhooks.deliver'

export interface EndpointDto {
  id: string
  url: string
  events: string[]
  is_active: boolean
  description: string | null
  created_at: string
  updated_at: string
}

/** Only the answers to creation and rotation carry the secret. */
export interface EndpointWithSecretDto extends EndpointDto {
  secret: string
}

export interface DeliveryDto {
  id: string
  endpoint_id: string
  event_id: string
  event: string
  status: DeliveryStatus
  attempts: number
  response_code: number | null
  response_body: string | null
  last_error: string | null
  next_attempt_at: string | null
  delivered_at: string | null
  created_at: string
  updated_at: string
}

export interface EndpointInput {
  url: string
  events: string[]
  is_active?: boolean
  description?: string | null
}

export interface WebhooksConfig extends SenderConfig {
  secretKey: string
  logDays: number
}

const endpointDto = (row: EndpointRow): EndpointDto => ({
  id: row.id,
  url: row.url,
  events: row.events,
  is_active: row.is_active,
  description: row.description,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
})

const deliveryDto = (row: DeliveryRow): DeliveryDto => ({
  id: row.id,
  endpoint_id: row.endpoint_id,
  event_id: row.event_id,
  event: row.event,
  status: row.status,
  attempts: row.attempts,
  response_code: row.response_code,
  response_body: row.response_body,
  last_error: row.last_error,
  next_attempt_at: row.next_attempt_at?.toISOString() ?? null,
  delivered_at: row.delivered_at?.toISOString() ?? null,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
})

const isEndpointCursor = (value: unknown): value is { t: string; id: string } =>
  typeof value === 'object' && value !== null && typeof (value as { t: unknown }).t === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test((value as { t: string }).t) && /^[0-9a-f-]{36}$/.test(String((value as { id: unknown }).id))
const isDeliveryCursor = (value: unknown): value is { s: number } => typeof value === 'object' && value !== null && Number.isSafeInteger((value as { s: unknown }).s)

/** Known public types or `*`, each once; anything else is a 422 naming it. */
function checkEvents(events: string[]): string[] {
  const unknown = events.filter((name) => name !== ALL_EVENTS && !isPublicEventType(name))
  if (unknown.length > 0) {
    throw new ValidationError('Unknown event types.', { events: unknown.map((name) => `Unknown event type "${name}": see GET /api/webhooks/event-types/, or "*" for all.`) })
  }
  return [...new Set(events)]
}

export function createWebhooksService(deps: { orders: OrdersService; payments: PaymentsService; config: WebhooksConfig; queue: Pick<TaskQueue, 'enqueue'> }) {
  const { config } = deps
  const box = createSecretBox(config.secretKey, 'webhook-secrets')
  const payloads = createPayloads(deps)
  const wake = async (endpointId: string, options: { delayMs?: number; jobId?: string } = {}) => {
    await deps.queue.enqueue(DELIVER_TASK, { endpoint_id: endpointId }, options)
  }
  const sender = createSender({ box, config, wake })

  const endpointOf = async (ctx: Ctx, id: string): Promise<EndpointRow> => {
    const row = await q.findEndpoint(ctx.db, id)
    if (!row) throw new NotFoundError('Webhook endpoint', id)
    return row
  }

  return {
    /** The public event types receivers may subscribe to, with what each means. */
    eventTypes(): Array<{ type: string; description: string }> {
      return Object.entries(PUBLIC_EVENT_TYPES).map(([type, description]) => ({ type, description }))
    },

    /** Every endpoint, newest first. */
    async list(ctx: Ctx, params: { cursor?: string; limit?: number }): Promise<{ results: EndpointDto[]; next_cursor: string | null }> {
      const limit = params.limit ?? 20
      const before = params.cursor === undefined ? undefined : decodeCursor(params.cursor, isEndpointCursor)
      const rows = await q.listEndpoints(ctx.db, { before: before ? { created_at: before.t, id: before.id } : undefined, limit })
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return { results: page.map((row) => endpointDto(row.endpoint)), next_cursor: rows.length > limit && last ? encodeCursor({ t: last.cursor_time, id: last.endpoint.id }) : null }
    },

    /** Registers a receiver; the answer is the only time its secret is shown. */
    async create(ctx: Ctx, input: EndpointInput): Promise<EndpointWithSecretDto> {
      const url = checkReceiverUrl(input.url, config.allowPrivate)
      const events = checkEvents(input.events)
      const secret = newSecret()
      const row = await q.insertEndpoint(ctx.db, { url, events, secret_sealed: box.seal(secret), is_active: input.is_active ?? true, description: input.description ?? null })
      return { ...endpointDto(row), secret }
    },

    async get(ctx: Ctx, id: string): Promise<EndpointDto> {
      return endpointDto(await endpointOf(ctx, id))
    },

    /** Changes URL, events, active flag or description. Deactivating pauses the endpoint's queue; activating resumes it. */
    async update(ctx: Ctx, id: string, patch: Partial<EndpointInput>): Promise<EndpointDto> {
      const values = {
        ...(patch.url !== undefined ? { url: checkReceiverUrl(patch.url, config.allowPrivate) } : {}),
        ...(patch.events !== undefined ? { events: checkEvents(patch.events) } : {}),
        ...(patch.is_active !== undefined ? { is_active: patch.is_active } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
      }
      const row = await q.updateEndpoint(ctx.db, id, values)
      if (!row) throw new NotFoundError('Webhook endpoint', id)
      if (patch.is_active === true) await wake(row.id)
      return endpointDto(row)
    },

    /** Deletes the endpoint and its delivery log; what was still pending is not sent. */
    async remove(ctx: Ctx, id: string): Promise<void> {
      if (!(await q.deleteEndpoint(ctx.db, id))) throw new NotFoundError('Webhook endpoint', id)
    },

    /** A new secret, shown once; deliveries from now on are signed with it. */
    async rotateSecret(ctx: Ctx, id: string): Promise<EndpointWithSecretDto> {
      const secret = newSecret()
      const row = await q.updateEndpoint(ctx.db, id, { secret_sealed: box.seal(secret) })
      if (!row) throw new NotFoundError('Webhook endpoint', id)
      return { ...endpointDto(row), secret }
    },

    /** The endpoint's delivery log, newest first, optionally of one status. */
    async deliveries(ctx: Ctx, endpointId: string, params: { status?: DeliveryStatus; cursor?: string; limit?: number }): Promise<{ results: DeliveryDto[]; next_cursor: string | null }> {
      await endpointOf(ctx, endpointId)
      const limit = params.limit ?? 20
      const before = params.cursor === undefined ? undefined : decodeCursor(params.cursor, isDeliveryCursor)
      const rows = await q.listDeliveries(ctx.db, { endpointId, status: params.status, beforeSeq: before?.s, limit })
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return { results: page.map(deliveryDto), next_cursor: rows.length > limit && last ? encodeCursor({ s: last.seq }) : null }
    },

    /**
     * Sends a finished delivery again: the same body and Webhook-Id, a fresh set of attempts, in
     * its place in the endpoint's order (by event time).
     */
    async replay(ctx: Ctx, deliveryId: string): Promise<DeliveryDto> {
      const existing = await q.findDelivery(ctx.db, deliveryId)
      if (!existing) throw new NotFoundError('Webhook delivery', deliveryId)
      const endpoint = await endpointOf(ctx, existing.endpoint_id)
      if (!endpoint.is_active) throw new EndpointInactiveError()
      const row = await q.requeueDelivery(ctx.db, deliveryId)
      if (!row) throw new DeliveryPendingError()
      await wake(row.endpoint_id)
      return deliveryDto(row)
    },

    /**
     * A domain event from the outbox: one delivery per active endpoint subscribed to its public
     * type, then their senders are woken. Safe to run twice for the same event.
     */
    async fanOut(ctx: Ctx, event: EventEnvelope<Record<string, unknown>>): Promise<number> {
      const type = publicTypeOf(event.name, event.payload)
      if (!type) return 0
      const endpoints = await q.subscribersOf(ctx.db, type)
      if (endpoints.length === 0) return 0
      const body = await payloads.bodyOf(ctx, type, event)
      const eventAt = new Date(event.occurred_at)
      const inserted = await q.insertDeliveries(ctx.db, endpoints.map((endpoint) => ({ endpoint_id: endpoint.id, event_id: event.id, event: type, event_at: eventAt, body })))
      // Every subscriber is woken, not only new rows: a run that wrote them and died before this heals here.
      for (const endpoint of endpoints) await wake(endpoint.id, { jobId: `webhooks.deliver:${endpoint.id}:${event.id}` })
      return inserted
    },

    /** Sends the endpoint's due deliveries unless another sender holds it. */
    deliverEndpoint: sender.deliverEndpoint,

    /** The safety net: wakes the sender of every endpoint whose next delivery is due and that nobody is sending. */
    async wakeDue(ctx: Ctx): Promise<number> {
      const ids = await q.endpointsWithDueHead(ctx.db, 1000)
      for (const id of ids) await wake(id)
      return ids.length
    },

    /** Deletes finished deliveries older than WEBHOOK_LOG_DAYS, in batches; answers how many. */
    async prune(ctx: Ctx): Promise<number> {
      let total = 0
      for (let batch = await q.pruneFinished(ctx.db, config.logDays, 5000); batch > 0; batch = await q.pruneFinished(ctx.db, config.logDays, 5000)) total += batch
      return total
    },
  }
}

export type WebhooksService = ReturnType<typeof createWebhooksService>
