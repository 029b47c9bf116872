/**
 * Analytics: events from shoppers' clients (buffered, see recorder.ts) and from the server's own
 * domain events (orders placed and paid, refunds: written at once, once per source event); and
 * the staff reports built from them and from sales (reports.ts). Reads products, orders and
 * payments through their services.
 */
import type { Ctx } from '../../core/context.js'
import { DependencyUnavailableError, ValidationError } from '../../core/errors.js'
import * as q from './queries.js'
import type { Recorder } from './recorder.js'
import { createReports, type ReportDeps } from './reports.js'
import type { AnalyticsEventType } from './tables.js'

export interface IngestInput {
  type: AnalyticsEventType
  product?: string
  query?: string
  session_id?: string
}

/** What each client event must name. */
const REQUIRED: Partial<Record<AnalyticsEventType, keyof IngestInput>> = { product_view: 'product', add_to_cart: 'product', search: 'query' }

export function createAnalyticsService(deps: { recorder: Recorder; retentionDays: number } & ReportDeps) {
  const { recorder } = deps
  return {
    /** The dashboard, the sales report and the daily rollup (reports.ts). */
    ...createReports(deps),

    /** Accepts a client's event for the next batch; 422 when it lacks what its type needs, 503 when the buffer is full. */
    ingest(ctx: Ctx, input: IngestInput): void {
      const field = REQUIRED[input.type]
      if (field && !input[field]) throw new ValidationError(`The ${input.type} event needs its ${field}.`, { [field]: ['Required for this type.'] })
      const userId = ctx.actor?.kind === 'user' ? ctx.actor.id : undefined
      const accepted = recorder.record({
        type: input.type,
        ...(input.product ? { product: input.product } : {}),
        ...(input.query ? { query: input.query } : {}),
        ...(input.session_id ? { session_id: input.session_id } : {}),
        ...(userId ? { user_id: userId } : {}),
        occurred_at: new Date(),
      })
      if (!accepted) throw new DependencyUnavailableError('Analytics events are not being written right now; try again later.')
    },

    /**
     * A search the API answered, with how many products it found (zero-result searches show what
     * customers look for and the shop lacks). Buffered like client events; never fails the search.
     */
    recordSearch(ctx: Ctx, query: string, resultCount: number | null): void {
      const userId = ctx.actor?.kind === 'user' ? ctx.actor.id : undefined
      recorder.record({ type: 'search', query, ...(resultCount !== null ? { result_count: resultCount } : {}), ...(userId ? { user_id: userId } : {}), occurred_at: new Date() })
    },

    /** A server-side event, written now; the same source event twice is recorded once. */
    async recordServerEvent(ctx: Ctx, event: { type: AnalyticsEventType; source_event_id: string; occurred_at: Date; order_id?: string; user_id?: string | null; amount?: number }): Promise<void> {
      await q.insertEvents(ctx.db, [{ ...event, user_id: event.user_id ?? null }])
    },

    /** Raw events older than ANALYTICS_RETENTION_DAYS go. */
    prune: (ctx: Ctx) => q.deleteEventsBefore(ctx.db, deps.retentionDays),
  }
}

export type AnalyticsService = ReturnType<typeof createAnalyticsService>
