/**
 * The search app's tasks: `search.index_products` brings the index entries of some products up to
 * date after a catalog change committed. Subscribed to `catalog.products_changed`, it receives the
 * event envelope; enqueued directly, the bare `{product_ids}`. Running it twice is harmless: it
 * writes the products' current state.
 */
import { Type, type Static } from 'typebox'
import type { Ctx } from '../../core/context.js'
import { envelopeOf } from '../../core/events/index.js'
import type { Logger } from '../../core/logging.js'
import { defineTask } from '../../core/queue/index.js'
import type { SearchBackend } from './backend.js'

export const INDEX_PRODUCTS_TASK = 'search.index_products'

const ProductIds = Type.Object({ product_ids: Type.Array(Type.String()) })
const IndexProductsPayload = Type.Union([ProductIds, envelopeOf(ProductIds)])
type IndexProductsPayload = Static<typeof IndexProductsPayload>

/**
 * `context` makes the Ctx a job runs with (pass `platform.context`). `onIndexed` runs after the
 * index took the change: searches cached between the commit and now must not outlive it.
 */
export function createSearchTasks(backend: SearchBackend, context: (options: { requestId: string; log: Logger }) => Ctx, onIndexed: (ctx: Ctx) => Promise<void> = async () => {}) {
  const indexProducts = defineTask({
    name: INDEX_PRODUCTS_TASK,
    schema: IndexProductsPayload,
    attempts: 5,
    async handler(payload: IndexProductsPayload, job) {
      const productIds = 'payload' in payload ? payload.payload.product_ids : payload.product_ids
      const ctx = context({ requestId: job.id, log: job.log })
      await backend.index(ctx, productIds)
      await onIndexed(ctx)
    },
  })
  return [indexProducts] as const
}
