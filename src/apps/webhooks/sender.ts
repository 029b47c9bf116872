/**
 * Sends an endpoint's queue of deliveries, oldest event first, one at a time. A sender first
 * takes the endpoint's lease (a conditional UPDATE, no lock held across the HTTP call), so
 * several jobs or workers woken for the same endpoint never send at once or out of order; the
 * ones that find the lease taken leave, because the holder looks for new work once more after
 * letting go. A failed attempt waits retryBaseMs × 4ⁿ (the database row says when; a delayed job
 * and the periodic sweep come back then); after maxAttempts the delivery is `failed` and the
 * queue moves on.
 */
import { randomUUID } from 'node:crypto'
import type { Ctx } from '../../core/context.js'
import type { SecretBox } from '../../core/secret-box.js'
import { postWebhook } from './post.js'
import * as q from './queries.js'
import type { AttemptResult, DeliveryRow, EndpointRow } from './queries.js'
import { signatureHeader } from './signing.js'

export interface SenderConfig {
  shopName: string
  allowPrivate: boolean
  retryBaseMs: number
  maxAttempts: number
  timeoutMs: number
}

/** Asks for a sender run for the endpoint (a job), now or after `delayMs`; the same `jobId` is run once. */
export type WakeSender = (endpointId: string, options?: { delayMs?: number; jobId?: string }) => Promise<void>

/** How long one run sends before it hands over to a new job (it stays well inside the job's timeout). */
const RUN_BUDGET_MS = 25_000
const WAKE_SLACK_MS = 20
/** Kept in the database's log: enough to see why, never a whole error page. */
const ERROR_LIMIT = 500

export function createSender(deps: { box: SecretBox; config: SenderConfig; wake: WakeSender }) {
  const { box, config, wake } = deps
  // Outlives one attempt comfortably; renewed before each.
  const leaseMs = Math.max(30_000, config.timeoutMs * 3)

  const failure = (delivery: DeliveryRow, error: string, responseCode: number | null, responseBody: string | null): AttemptResult => {
    const attempts = delivery.attempts + 1
    if (attempts >= config.maxAttempts) return { outcome: 'failed', responseCode, responseBody, error }
    return { outcome: 'retry', retryInMs: config.retryBaseMs * 4 ** (attempts - 1), responseCode, responseBody, error }
  }

  /** One POST of the delivery's snapshot, freshly timestamped and signed. */
  const attempt = async (endpoint: EndpointRow, delivery: DeliveryRow, signal?: AbortSignal): Promise<AttemptResult> => {
    const timestamp = Math.floor(Date.now() / 1000)
    try {
      const answer = await postWebhook({
        url: endpoint.url,
        body: delivery.body,
        headers: {
          'content-type': 'application/json',
          'user-agent': `${config.shopName} webhooks`,
          'webhook-id': delivery.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(box.open(endpoint.secret_sealed), timestamp, delivery.body),
        },
        timeoutMs: config.timeoutMs,
        allowPrivate: config.allowPrivate,
        ...(signal ? { signal } : {}),
      })
      if (answer.status >= 200 && answer.status < 300) return { outcome: 'succeeded', responseCode: answer.status, responseBody: answer.body }
      return failure(delivery, `HTTP ${answer.status}${answer.status >= 300 && answer.status < 400 ? ' (redirects are not followed)' : ''}`, answer.status, answer.body)
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      return failure(delivery, message.slice(0, ERROR_LIMIT), null, null)
    }
  }

  /**
   * A delayed job for when the head is due, keyed by the due time so that asking twice schedules
   * one. A little late rather than early: a timer may fire a millisecond before the database's
   * clock says due, and the job of the same key would not be scheduled again (the sweep would).
   */
  const wakeWhenDue = (endpointId: string, head: { delivery: DeliveryRow; wait_ms: number }) =>
    wake(endpointId, { delayMs: head.wait_ms + WAKE_SLACK_MS, jobId: `webhooks.deliver:${endpointId}:${head.delivery.id}:${head.delivery.next_attempt_at?.toISOString()}` })

  /** Sends what is due while holding the lease. 'again' when the caller should look once more after letting go. */
  const drain = async (ctx: Ctx, endpointId: string, token: string, deadline: number, signal: AbortSignal | undefined, sent: { count: number }): Promise<'again' | 'stop'> => {
    for (;;) {
      const head = await q.headDelivery(ctx.db, endpointId)
      if (!head) return 'again'
      if (head.wait_ms > 0) {
        await wakeWhenDue(endpointId, head)
        return 'stop'
      }
      if (signal?.aborted || Date.now() > deadline) {
        await wake(endpointId)
        return 'stop'
      }
      // Lost (it ran out) or the endpoint was deactivated: whoever holds it now carries on.
      const endpoint = await q.renewLease(ctx.db, endpointId, token, leaseMs)
      if (!endpoint) return 'stop'
      const result = await attempt(endpoint, head.delivery, signal)
      const recorded = await q.recordAttempt(ctx.db, head.delivery.id, head.delivery.attempts, result)
      if (recorded) sent.count += 1
      if (result.outcome !== 'succeeded') ctx.log.info({ delivery_id: head.delivery.id, endpoint_id: endpointId, attempt: head.delivery.attempts + 1, outcome: result.outcome, error: result.error }, 'webhook delivery attempt failed')
    }
  }

  return {
    /** Runs the endpoint's sender unless another holds it; answers how many attempts it recorded. */
    async deliverEndpoint(ctx: Ctx, endpointId: string, options: { signal?: AbortSignal } = {}): Promise<number> {
      const deadline = Date.now() + RUN_BUDGET_MS
      const sent = { count: 0 }
      for (;;) {
        const token = randomUUID()
        if (!(await q.claimEndpoint(ctx.db, endpointId, token, leaseMs))) return sent.count
        let next: 'again' | 'stop'
        try {
          next = await drain(ctx, endpointId, token, deadline, options.signal, sent)
        } finally {
          await q.releaseLease(ctx.db, endpointId, token)
        }
        if (next === 'stop') return sent.count
        // A delivery written while we held the lease found it taken, and its job left: look once more.
        const head = await q.headDelivery(ctx.db, endpointId)
        if (!head) return sent.count
        if (head.wait_ms > 0) {
          await wakeWhenDue(endpointId, head)
          return sent.count
        }
      }
    },
  }
}

export type Sender = ReturnType<typeof createSender>
