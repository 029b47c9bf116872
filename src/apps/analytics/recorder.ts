/**
 * The ingestion buffer: events from shoppers' clients are kept in memory and written in batches
 * (one multi-row INSERT per flush, every `flushMs` or at `batchSize`), so a burst of page views
 * costs the database a few statements instead of one per request, and the request never waits for
 * the database. The price: events of the last second are lost if the process dies. When the
 * buffer is full (the database is down or too slow) new events are refused, so clients back off.
 */
import type { Ctx } from '../../core/context.js'
import type { Logger } from '../../core/logging.js'
import * as q from './queries.js'
import type { AnalyticsEventType } from './tables.js'

export interface ClientEvent {
  type: AnalyticsEventType
  /** The product's slug, resolved to its id when the batch is written (unknown slugs: no product). */
  product?: string
  query?: string
  /** Server-side searches: how many products the query found. */
  result_count?: number
  session_id?: string
  user_id?: string
  occurred_at: Date
}

export interface RecorderOptions {
  batchSize: number
  flushMs: number
  maxBuffered: number
}

export interface RecorderDeps {
  context: () => Ctx
  productIdsBySlug(ctx: Ctx, slugs: string[]): Promise<Map<string, string>>
  log: Logger
}

export function createRecorder(deps: RecorderDeps, options: RecorderOptions) {
  let buffer: ClientEvent[] = []
  let timer: NodeJS.Timeout | null = null
  let flushing: Promise<number> | null = null

  const write = async (batch: ClientEvent[]): Promise<number> => {
    const ctx = deps.context()
    const slugs = [...new Set(batch.flatMap((event) => (event.product ? [event.product] : [])))]
    const ids = await deps.productIdsBySlug(ctx, slugs)
    const written = await ctx.tx(async (tx) => {
      const count = await q.insertEvents(
        tx.db,
        batch.map((event) => ({
          type: event.type,
          product_id: event.product ? (ids.get(event.product) ?? null) : null,
          query: event.query ?? null,
          result_count: event.result_count ?? null,
          session_id: event.session_id ?? null,
          user_id: event.user_id ?? null,
          occurred_at: event.occurred_at,
        })),
      )
      // A signed-in event names the session's user: earlier anonymous events of it become theirs.
      const signedIn = new Map(batch.flatMap((event) => (event.session_id && event.user_id ? [[event.session_id, event.user_id] as const] : [])))
      for (const [sessionId, userId] of signedIn) await q.joinSessionToUser(tx.db, sessionId, userId)
      return count
    })
    return written
  }

  const flush = async (): Promise<number> => {
    if (flushing) await flushing.catch(() => undefined)
    if (buffer.length === 0) return 0
    const batch = buffer
    buffer = []
    flushing = write(batch).catch((err: unknown) => {
      // Kept for the next flush while there is room; the rest is lost, and said so.
      const room = options.maxBuffered - buffer.length
      buffer = [...batch.slice(0, Math.max(0, room)), ...buffer]
      deps.log.error({ err, events: batch.length, kept: Math.min(batch.length, Math.max(0, room)) }, 'analytics events could not be written')
      return 0
    })
    try {
      return await flushing
    } finally {
      flushing = null
    }
  }

  const flushInBackground = () => {
    flush().catch((err: unknown) => deps.log.error({ err }, 'analytics flush failed'))
  }

  return {
    /** Buffers one event; false when the buffer is full (the caller answers 503). */
    record(event: ClientEvent): boolean {
      if (buffer.length >= options.maxBuffered) return false
      buffer.push(event)
      if (buffer.length >= options.batchSize) flushInBackground()
      return true
    },
    flush,
    pending: () => buffer.length,
    start() {
      if (timer || options.flushMs <= 0) return
      timer = setInterval(flushInBackground, options.flushMs)
      timer.unref()
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer)
      timer = null
      await flush()
    },
  }
}

export type Recorder = ReturnType<typeof createRecorder>
