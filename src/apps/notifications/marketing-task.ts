import { Type } from 'typebox'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import type { Platform } from '../../core/platform.js'
import { defineTask } from '../../core/queue/index.js'
import type { NotificationsEvents } from './events.js'
import type { Marketing } from './marketing.js'

export const SEND_BROADCAST_TASK = 'notifications.send_broadcast'

/** A broadcast is written to its audience after the request that recorded it committed. */
export function registerMarketingTask(platform: Platform, marketing: Marketing): void {
  platform.tasks.register(
    defineTask({
      name: SEND_BROADCAST_TASK,
      schema: envelopeOf(
        Type.Object({ broadcast_id: Type.String(), subject: Type.String(), body: Type.String(), link: Type.Union([Type.String(), Type.Null()]), link_label: Type.Union([Type.String(), Type.Null()]) }),
      ),
      async handler(event: EventEnvelope<NotificationsEvents['notifications.broadcast_requested']>, job) {
        const sent = await marketing.send(platform.context({ requestId: job.id, log: job.log, actor: { kind: 'service', id: 'worker' } }), event.payload)
        job.log.info({ broadcast_id: event.payload.broadcast_id, ...sent }, 'broadcast handed out')
      },
    }),
  )
  platform.tasks.subscribe('notifications.broadcast_requested', SEND_BROADCAST_TASK)
}
