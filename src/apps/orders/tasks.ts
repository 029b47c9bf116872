/**
 * The orders app's periodic task: unpaid orders whose reservation ran out are cancelled and
 * their stock released. Safe to run twice or in several processes at once (rows are locked with
 * SKIP LOCKED, and a cancelled order cannot be cancelled again).
 */
import { Type } from 'typebox'
import type { Platform } from '../../core/platform.js'
import { defineTask } from '../../core/queue/index.js'
import type { OrdersService } from './service.js'

export const EXPIRE_RESERVATIONS_TASK = 'orders.expire_reservations'

export function registerOrdersTasks(platform: Platform, orders: OrdersService): void {
  platform.tasks.register(
    defineTask({
      name: EXPIRE_RESERVATIONS_TASK,
      schema: Type.Object({}),
      async handler(_payload, job) {
        const ctx = platform.context({ requestId: job.id, log: job.log })
        // Batches of 100 until none is left, so a backlog clears in one run.
        let cancelled = 0
        for (let batch = await orders.expireReservations(ctx); batch > 0; batch = await orders.expireReservations(ctx)) cancelled += batch
        if (cancelled > 0) job.log.info({ cancelled }, 'expired unpaid orders cancelled')
      },
    }),
  )
}
