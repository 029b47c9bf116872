/**
 * The cart app's tasks: `cart.expire_carts` marks open carts idle for longer than
 * CART_EXPIRY_DAYS as expired, in one statement (the scheduler runs it periodically). Running it
 * twice is harmless: the second run finds nothing new to expire.
 */
import { Type } from 'typebox'
import type { Ctx } from '../../core/context.js'
import type { Logger } from '../../core/logging.js'
import { defineTask } from '../../core/queue/index.js'
import type { CartService } from './service.js'

export const EXPIRE_CARTS_TASK = 'cart.expire_carts'

/** `context` makes the Ctx a job runs with (pass `platform.context`). */
export function createCartTasks(cart: Pick<CartService, 'expireIdleCarts'>, context: (options: { requestId: string; log: Logger }) => Ctx) {
  const expireCarts = defineTask({
    name: EXPIRE_CARTS_TASK,
    schema: Type.Object({}),
    async handler(_payload, job) {
      const expired = await cart.expireIdleCarts(context({ requestId: job.id, log: job.log }))
      job.log.info({ expired }, 'idle carts expired')
    },
  })
  return [expireCarts] as const
}
