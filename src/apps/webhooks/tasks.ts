/**
 * The webhooks app's tasks: the fan-out from the outbox (one delivery row per subscribed
 * endpoint, safe to run twice), the per-endpoint sender, the periodic sweep that wakes senders
 * whose deliveries are due (the database row is the truth; a lost delayed job costs at most one
 * sweep interval), and the daily pruning of the delivery log.
 */
import { Type } from 'typebox'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import { defineCleanupTask } from '../../core/housekeeping.js'
import type { Platform } from '../../core/platform.js'
import { defineTask, type JobContext } from '../../core/queue/index.js'
import { SOURCE_EVENTS } from './event-types.js'
import { DELIVER_TASK, type WebhooksService } from './service.js'

export const FAN_OUT_TASK = 'webhooks.fan_out'
export const DELIVER_DUE_TASK = 'webhooks.deliver_due'
export const PRUNE_DELIVERIES_TASK = 'webhooks.prune_deliveries'

export function registerWebhooksTasks(platform: Platform, webhooks: WebhooksService): void {
  const contextOf = (job: JobContext) => platform.context({ requestId: job.id, log: job.log, actor: { kind: 'service', id: 'webhooks' } })

  platform.tasks.register(
    defineTask({
      name: FAN_OUT_TASK,
      schema: envelopeOf(Type.Record(Type.String(), Type.Unknown())),
      async handler(event: EventEnvelope<Record<string, unknown>>, job) {
        await webhooks.fanOut(contextOf(job), event)
      },
    }),
  )
  for (const event of SOURCE_EVENTS) platform.tasks.subscribe(event, FAN_OUT_TASK)

  platform.tasks.register(
    defineTask({
      name: DELIVER_TASK,
      schema: Type.Object({ endpoint_id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) }),
      // A failed HTTP attempt is not a failed job (the row keeps its backoff); only a database error retries the job.
      attempts: 3,
      timeoutMs: 60_000,
      async handler(payload, job) {
        await webhooks.deliverEndpoint(contextOf(job), payload.endpoint_id, { signal: job.signal })
      },
    }),
  )

  platform.tasks.register(
    defineTask({
      name: DELIVER_DUE_TASK,
      schema: Type.Object({}),
      async handler(_payload, job) {
        const woken = await webhooks.wakeDue(contextOf(job))
        if (woken > 0) job.log.info({ endpoints: woken }, 'webhook senders woken for due deliveries')
      },
    }),
  )

  platform.tasks.register(defineCleanupTask(PRUNE_DELIVERIES_TASK, async (job) => ({ webhook_deliveries: await webhooks.prune(contextOf(job)) })))
}
