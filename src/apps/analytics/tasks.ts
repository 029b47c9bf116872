/**
 * Server-side analytics from the domain events, written once per event (its id is kept): an order
 * placed (with its total), paid, and each refund; the daily rollup; and the nightly pruning of
 * old raw events.
 */
import { Type } from 'typebox'
import { envelopeOf, type EventEnvelope } from '../../core/events/index.js'
import { defineCleanupTask } from '../../core/housekeeping.js'
import type { Platform } from '../../core/platform.js'
import { defineTask, type JobContext } from '../../core/queue/index.js'
import { StatusChangedSchema, type OrdersEvents } from '../orders/events.js'
import type { OrdersService } from '../orders/service.js'
import type { PaymentsEvents } from '../payments/events.js'
import type { AnalyticsService } from './service.js'

export const PRUNE_EVENTS_TASK = 'analytics.prune_events'
export const ROLLUP_TASK = 'analytics.rollup'

export function registerAnalyticsTasks(platform: Platform, deps: { analytics: AnalyticsService; orders: OrdersService }): void {
  const { analytics, orders } = deps
  const contextOf = (job: JobContext) => platform.context({ requestId: job.id, log: job.log, actor: { kind: 'service', id: 'worker' } })

  /** Records `type` for the event's order, unless the order is gone. */
  const recordForOrder = async (job: JobContext, event: EventEnvelope<{ order_id: string }>, type: 'order_placed' | 'order_paid' | 'refund', amount?: number) => {
    const ctx = contextOf(job)
    const order = await orders.findForPayment(ctx, event.payload.order_id)
    if (!order) return
    await analytics.recordServerEvent(ctx, { type, source_event_id: event.id, occurred_at: new Date(event.occurred_at), order_id: order.id, user_id: order.user_id, amount: amount ?? order.total })
  }

  platform.tasks.register(
    defineTask({
      name: 'analytics.record_order_placed',
      schema: envelopeOf(Type.Object({ order_id: Type.String(), number: Type.String() })),
      handler: (event: EventEnvelope<OrdersEvents['order.created']>, job) => recordForOrder(job, event, 'order_placed'),
    }),
  )
  platform.tasks.subscribe('order.created', 'analytics.record_order_placed')

  platform.tasks.register(
    defineTask({
      name: 'analytics.record_order_paid',
      schema: envelopeOf(StatusChangedSchema),
      async handler(event: EventEnvelope<OrdersEvents['order.status_changed']>, job) {
        if (event.payload.to === 'paid') await recordForOrder(job, event, 'order_paid')
      },
    }),
  )
  platform.tasks.subscribe('order.status_changed', 'analytics.record_order_paid')

  platform.tasks.register(
    defineTask({
      name: 'analytics.record_refund',
      schema: envelopeOf(Type.Object({ payment_id: Type.String(), order_id: Type.String(), amount: Type.Integer(), refund_id: Type.Union([Type.String(), Type.Null()]) })),
      handler: (event: EventEnvelope<PaymentsEvents['payment.refunded']>, job) => recordForOrder(job, event, 'refund', event.payload.amount),
    }),
  )
  platform.tasks.subscribe('payment.refunded', 'analytics.record_refund')

  platform.tasks.register(
    defineTask({
      name: ROLLUP_TASK,
      schema: Type.Object({ from: Type.Optional(Type.String({ description: 'rewrite from this day on (YYYY-MM-DD)' })) }),
      async handler(payload: { from?: string }, job) {
        const rolled = await analytics.rollup(contextOf(job), payload.from ? { from: payload.from } : {})
        if (rolled) job.log.info(rolled, 'analytics rolled up')
      },
    }),
  )

  platform.tasks.register(defineCleanupTask(PRUNE_EVENTS_TASK, async (job) => ({ analytics_events: await analytics.prune(contextOf(job)) })))
}
