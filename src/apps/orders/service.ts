/**
 * Orders: reading them (customers their own, guests theirs by number and email, staff all), and
 * moving them through the state machine (state.ts). Every move is one transaction: the status,
 * an order event, the stock consequence (commit, release or restock through the products
 * service), the coupon given back for unpaid cancellations, and `order.status_changed` in the
 * outbox (payments refunds a cancelled paid order from it).
 *
 * Other apps use `get`, `transition`, `expireReservations`, at checkout `create`, the payments
 * app `lockForPayment`, `settlePayment`, `recordRefund` and `note` inside its transactions, and
 * analytics `salesByDay`, `firstSaleAt` and `lineTotals`.
 */
import { isStaff } from '../../core/auth.js'
import type { Actor, Ctx } from '../../core/context.js'
import type { DayRange } from '../../core/db/days.js'
import type { BusinessMetrics } from '../../core/metrics.js'
import { AppError, ForbiddenError, NotFoundError, ValidationError } from '../../core/errors.js'
import { decodeCursor, encodeCursor } from '../../core/http/pagination.js'
import type { ProductsService } from '../products/service.js'
import { IllegalTransitionError } from './errors.js'
import type { OrdersEvents } from './events.js'
import { newOrderNumber } from './numbers.js'
import * as q from './queries.js'
import * as sales from './sales-queries.js'
import type { OrderEventRow, OrderItemRow, OrderRow } from './queries.js'
import { canMove, CUSTOMER_CANCELLABLE, nextStatuses } from './state.js'
import type { Address, orderItems, OrderStatus } from './tables.js'

export type { OrderStatus } from './tables.js'

export interface OrderItemDto {
  sku: string
  product_name: string
  variant_name: string
  quantity: number
  unit_price: number
  discount: number
  tax_rate_bp: number
  tax: number
  total: number
}

export interface OrderDto {
  id: string
  number: string
  status: OrderStatus
  payment_status: 'unpaid' | 'paid' | 'refunded' | 'partially_refunded' | 'void'
  email: string
  currency: string
  items: OrderItemDto[]
  totals: { subtotal: number; discount: number; shipping: number; tax: number; total: number }
  prices_include_tax: boolean
  coupon_code: string | null
  shipping_method: string
  shipping_address: Address
  billing_address: Address
  tracking_number: string | null
  reservation_expires_at: string | null
  /** The order's current payment; null until one is created. `client_secret` only for the owner. */
  payment: OrderPaymentDto | null
  events: Array<{ type: string; from_status: string | null; to_status: string | null; note: string | null; created_at: string }>
  created_at: string
  updated_at: string
}

export interface NewOrder {
  userId: string | null
  email: string
  currency: string
  pricesIncludeTax: boolean
  couponCode: string | null
  shippingMethod: string
  shippingAddress: Address
  billingAddress: Address
  totals: { subtotal: number; discount: number; shipping: number; tax: number; total: number }
  items: Array<Omit<typeof orderItems.$inferInsert, 'id' | 'order_id'>>
  reservationMinutes: number
}

export interface OrderPaymentDto {
  id: string
  provider: string
  status: string
  client_secret: string | null
}

/** What orders show of their payment. The payments app answers it (it builds on orders, so this is a port). */
export interface OrderPaymentSummary extends OrderPaymentDto {
  amount: number
  amount_refunded: number
}
export type PaymentSummaries = (ctx: Ctx, orderIds: string[]) => Promise<Map<string, OrderPaymentSummary>>

/** Orders first paid per shop day, for analytics (sales-queries.ts). */
export interface SalesByDay {
  days: Array<{ day: string; orders: number; revenue: number }>
  products: Array<{ day: string; product_id: string; units: number; revenue: number }>
}

/** The order as the payments app sees it, locked in its transaction. */
export interface PayableOrder {
  id: string
  number: string
  status: OrderStatus
  user_id: string | null
  email: string
  currency: string
  total: number
}

/** What a succeeded payment did to its order; payments refunds it when the goods are gone. */
export type PaymentSettlement = 'paid' | 'reinstated' | 'already_paid' | 'unavailable'

/** What the orders app needs of coupons: to give a redemption back when an unpaid order is cancelled. */
export interface CouponReleaser {
  release(ctx: Ctx, orderId: string): Promise<unknown>
}

const actorLabel = (actor: Actor | null) => (actor ? `${actor.kind}:${actor.id}` : 'system')
const isOrderCursor = (value: unknown): value is { t: string; id: string } =>
  typeof value === 'object' && value !== null && typeof (value as { t: unknown }).t === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test((value as { t: string }).t) && /^[0-9a-f-]{36}$/.test(String((value as { id: unknown }).id))

export function createOrdersService(deps: { products: ProductsService; coupons: CouponReleaser; payments: PaymentSummaries; metrics: Pick<BusinessMetrics, 'orderPlaced' | 'orderPaid' | 'reservationExpired'> }) {
  const { products } = deps

  const toDto = (order: OrderRow, items: OrderItemRow[], events: OrderEventRow[], payment: OrderPaymentSummary | undefined): OrderDto => ({
    id: order.id,
    number: order.number,
    status: order.status,
    payment_status: paymentStatusOf(order.status, payment),
    email: order.email,
    currency: order.currency,
    items: items.map((item) => ({
      sku: item.sku,
      product_name: item.product_name,
      variant_name: item.variant_name,
      quantity: item.quantity,
      unit_price: item.unit_price,
      discount: item.discount,
      tax_rate_bp: item.tax_rate_bp,
      tax: item.tax,
      total: item.total,
    })),
    totals: { subtotal: order.subtotal, discount: order.discount, shipping: order.shipping, tax: order.tax, total: order.total },
    prices_include_tax: order.prices_include_tax,
    coupon_code: order.coupon_code,
    shipping_method: order.shipping_method,
    shipping_address: order.shipping_address,
    billing_address: order.billing_address,
    tracking_number: order.tracking_number,
    reservation_expires_at: order.reservation_expires_at?.toISOString() ?? null,
    payment: payment ? { id: payment.id, provider: payment.provider, status: payment.status, client_secret: payment.client_secret } : null,
    events: events.map((event) => ({ type: event.type, from_status: event.from_status, to_status: event.to_status, note: event.note, created_at: event.created_at.toISOString() })),
    created_at: order.created_at.toISOString(),
    updated_at: order.updated_at.toISOString(),
  })

  const full = async (ctx: Ctx, order: OrderRow, access: { email?: string } = {}): Promise<OrderDto> => {
    const [items, events, payments] = await Promise.all([q.itemsOf(ctx.db, [order.id]), q.eventsOf(ctx.db, order.id), deps.payments(ctx, [order.id])])
    const payment = payments.get(order.id)
    // The client secret lets its holder pay: only the customer paying sees it.
    const owner = (ctx.actor?.kind === 'user' && ctx.actor.id === order.user_id) || (order.user_id === null && access.email !== undefined)
    return toDto(order, items, events, payment && (owner ? payment : { ...payment, client_secret: null }))
  }

  /** The order when `actor` may see it: its owner, staff, a service, or a guest giving its email. */
  const visible = async (ctx: Ctx, number: string, access: { email?: string }): Promise<OrderRow> => {
    const order = await q.findByNumber(ctx.db, number)
    const actor = ctx.actor
    const allowed =
      order &&
      (isStaff(actor) ||
        actor?.kind === 'service' ||
        (actor?.kind === 'user' && order.user_id === actor.id) ||
        (access.email !== undefined && access.email.trim().toLowerCase() === order.email.toLowerCase()))
    // Someone else's order is a 404, like one that does not exist.
    if (!allowed) throw new NotFoundError('Order', number)
    return order
  }

  /** Applies one legal move with its consequences, in the caller's transaction. */
  const move = async (tx: Ctx, order: OrderRow, to: OrderStatus, details: { trackingNumber?: string; note?: string; reason?: string } = {}): Promise<OrderRow> => {
    if (!canMove(order.status, to)) throw new IllegalTransitionError(order.status, to, nextStatuses(order.status))
    const lines = (await q.itemsOf(tx.db, [order.id])).map((item) => ({ sku: item.sku, quantity: item.quantity }))
    if (to === 'paid') await products.commit(tx, order.number)
    if (to === 'cancelled' && order.status === 'pending_payment') {
      await products.release(tx, order.number)
      await deps.coupons.release(tx, order.id)
    }
    // Paid goods were taken off the shelf at payment: cancelling before shipping puts them back.
    if (to === 'cancelled' && order.status !== 'pending_payment') await products.restock(tx, order.number, lines)
    const updated = await q.setStatus(tx.db, order.id, to, {
      ...(details.trackingNumber !== undefined ? { tracking_number: details.trackingNumber } : {}),
      ...(to !== 'pending_payment' ? { reservation_expires_at: null } : {}),
    })
    await q.insertEvent(tx.db, { order_id: order.id, type: details.reason ?? 'status_changed', from_status: order.status, to_status: to, note: details.note ?? null, actor: actorLabel(tx.actor) })
    await tx.events.publish('order.status_changed', {
      order_id: order.id,
      number: order.number,
      from: order.status,
      to,
      refund_due: to === 'cancelled' && order.status !== 'pending_payment',
    } satisfies OrdersEvents['order.status_changed'])
    if (to === 'paid') tx.afterCommit(() => deps.metrics.orderPaid(order.currency, order.total))
    return updated
  }

  return {
    /** Writes a checked-out order with its items and first event, in the checkout's transaction. */
    async create(tx: Ctx, input: NewOrder): Promise<OrderRow> {
      let order: OrderRow | null = null
      // A collision of 8 random base32 characters is rare; draw again rather than fail.
      for (let attempt = 0; !order && attempt < 5; attempt++) {
        order = await q.insertOrder(tx.db, {
          number: newOrderNumber(),
          user_id: input.userId,
          email: input.email,
          currency: input.currency,
          ...input.totals,
          prices_include_tax: input.pricesIncludeTax,
          coupon_code: input.couponCode,
          shipping_method: input.shippingMethod,
          shipping_address: input.shippingAddress,
          billing_address: input.billingAddress,
          reservation_expires_at: new Date(Date.now() + input.reservationMinutes * 60_000),
        })
      }
      if (!order) throw new Error('could not draw a free order number')
      await q.insertItems(tx.db, input.items.map((item) => ({ ...item, order_id: order.id })))
      await q.insertEvent(tx.db, { order_id: order.id, type: 'created', to_status: 'pending_payment', actor: actorLabel(tx.actor) })
      await tx.events.publish('order.created', { order_id: order.id, number: order.number } satisfies OrdersEvents['order.created'])
      tx.afterCommit(() => deps.metrics.orderPlaced(order.currency))
      return order
    },

    async get(ctx: Ctx, number: string, access: { email?: string } = {}): Promise<OrderDto> {
      return full(ctx, await visible(ctx, number, access), access)
    },

    /** A user's own orders, or (staff) everyone's filtered by status and email; newest first. */
    async list(ctx: Ctx, params: { status?: OrderStatus; email?: string; cursor?: string; limit?: number }) {
      const actor = ctx.actor
      if (!actor) throw new NotFoundError('Order', '')
      const staff = isStaff(actor)
      // Authenticated but not allowed: a 403 (API.md), not a 422 about the input.
      if (!staff && params.email !== undefined) throw new ForbiddenError('staff_only_filter', 'Only staff filter orders by email.')
      const limit = params.limit ?? 20
      const before = params.cursor === undefined ? undefined : decodeCursor(params.cursor, isOrderCursor)
      const rows = await q.listOrders(ctx.db, {
        userId: staff ? undefined : actor.id,
        status: params.status,
        email: staff ? params.email : undefined,
        before: before ? { created_at: before.t, id: before.id } : undefined,
        limit,
      })
      const page = rows.slice(0, limit)
      const ids = page.map((row) => row.order.id)
      const [items, payments] = await Promise.all([q.itemsOf(ctx.db, ids), deps.payments(ctx, ids)])
      const last = page.at(-1)
      const withoutSecret = (payment: OrderPaymentSummary | undefined) => payment && { ...payment, client_secret: null }
      return {
        results: page.map(({ order }) => toDto(order, items.filter((item) => item.order_id === order.id), [], withoutSecret(payments.get(order.id)))),
        next_cursor: rows.length > limit && last ? encodeCursor({ t: last.cursor_time, id: last.order.id }) : null,
      }
    },

    /** The customer (before shipping) or staff cancels: stock goes back, a paid order is refunded. */
    async cancel(ctx: Ctx, number: string, note?: string): Promise<OrderDto> {
      const order = await ctx.tx(async (tx) => {
        const locked = await q.lockByNumber(tx.db, number)
        const actor = tx.actor
        const owner = actor?.kind === 'user' && locked?.user_id === actor.id
        if (!locked || (!owner && !isStaff(actor) && actor?.kind !== 'service')) throw new NotFoundError('Order', number)
        if (owner && !isStaff(actor) && !CUSTOMER_CANCELLABLE.includes(locked.status)) {
          throw new IllegalTransitionError(locked.status, 'cancelled', [])
        }
        return move(tx, locked, 'cancelled', { note, reason: 'cancelled' })
      })
      return full(ctx, order)
    },

    /** Staff (or a service) moves an order along the state machine; 409 for any other move. */
    async transition(ctx: Ctx, number: string, input: { status: OrderStatus; tracking_number?: string; note?: string }): Promise<OrderDto> {
      if (input.tracking_number !== undefined && input.status !== 'shipped') {
        throw new ValidationError('A tracking number goes with the move to shipped.', { tracking_number: ['Only for status "shipped".'] })
      }
      const order = await ctx.tx(async (tx) => {
        const locked = await q.lockByNumber(tx.db, number)
        if (!locked) throw new NotFoundError('Order', number)
        return move(tx, locked, input.status, { trackingNumber: input.tracking_number, note: input.note })
      })
      return full(ctx, order)
    },

    /** Whether the user bought the product (a paid order, not cancelled or fully refunded): verified reviews. */
    async hasBought(ctx: Ctx, userId: string, productId: string): Promise<boolean> {
      return q.hasBought(ctx.db, userId, productId)
    },

    /**
     * The order a customer is about to pay: theirs (or a guest's, by its email); anyone else's is a
     * 404 like a missing one.
     */
    async payableBy(ctx: Ctx, number: string, access: { email?: string }): Promise<PayableOrder> {
      const order = await q.findByNumber(ctx.db, number)
      const actor = ctx.actor
      const owner =
        order &&
        ((actor?.kind === 'user' && order.user_id === actor.id) ||
          (order.user_id === null && access.email !== undefined && access.email.trim().toLowerCase() === order.email.toLowerCase()))
      if (!owner) throw new NotFoundError('Order', number)
      return order
    },

    /**
     * Sales per shop day of the range (for analytics): the orders first paid that day, their
     * totals, and per product the units and line totals.
     */
    async salesByDay(ctx: Ctx, range: DayRange): Promise<SalesByDay> {
      const [days, products] = await Promise.all([sales.paidOrdersByDay(ctx.db, range), sales.paidUnitsByProductDay(ctx.db, range)])
      return { days, products }
    },

    /** When the first order was paid; null before any. */
    firstSaleAt: (ctx: Ctx): Promise<Date | null> => sales.firstPaidAt(ctx.db),

    /** Each line of these orders with its total and the order's (to share a refund among products). */
    lineTotals: (ctx: Ctx, orderIds: string[]) => sales.lineTotals(ctx.db, orderIds),

    /** The order by id (for the payments app); undefined when there is none. */
    async findForPayment(ctx: Ctx, orderId: string): Promise<PayableOrder | undefined> {
      return q.findById(ctx.db, orderId)
    },

    /** The order by id, locked for the payment's transaction; undefined when there is none. */
    async lockForPayment(tx: Ctx, orderId: string): Promise<PayableOrder | undefined> {
      return q.lockById(tx.db, orderId)
    },

    /**
     * A payment of the order succeeded (in the payments app's transaction, order locked). An
     * unpaid order becomes paid. An order cancelled before it was paid (by the customer, or its
     * reservation ran out) gets its goods back if they are still there, and is paid; otherwise
     * the answer says so, and the payment is refunded.
     */
    async settlePayment(tx: Ctx, orderId: string): Promise<PaymentSettlement> {
      const row = (await q.lockById(tx.db, orderId))!
      if (row.status === 'pending_payment') {
        await move(tx, row, 'paid', { reason: 'payment_succeeded' })
        return 'paid'
      }
      if (row.status !== 'cancelled') return 'already_paid'
      if ((await q.cancelledFrom(tx.db, row.id)) !== 'pending_payment') return 'unavailable'
      const lines = (await q.itemsOf(tx.db, [row.id])).map((item) => ({ sku: item.sku, quantity: item.quantity }))
      try {
        // Under a savepoint: a line short of stock undoes the lines reserved before it.
        await tx.savepoint(async (sp) => {
          await products.reserve(sp, row.number, lines)
          await products.commit(sp, row.number)
        })
      } catch (err) {
        if (err instanceof AppError && err.status === 409) return 'unavailable'
        throw err
      }
      await q.setStatus(tx.db, row.id, 'paid', { reservation_expires_at: null })
      await q.insertEvent(tx.db, { order_id: row.id, type: 'reinstated', from_status: 'cancelled', to_status: 'paid', note: 'Paid after it was cancelled; the goods were still in stock.', actor: actorLabel(tx.actor) })
      await tx.events.publish('order.status_changed', { order_id: row.id, number: row.number, from: 'cancelled', to: 'paid', refund_due: false })
      tx.afterCommit(() => deps.metrics.orderPaid(row.currency, row.total))
      return 'reinstated'
    },

    /**
     * Money went back to the customer. A delivered order becomes refunded or partially refunded;
     * any other order keeps its status and records the refund as an event.
     */
    async recordRefund(tx: Ctx, orderId: string, refund: { amount: number; refunded: number; captured: number; currency: string }): Promise<void> {
      const row = (await q.lockById(tx.db, orderId))!
      const to: OrderStatus = refund.refunded >= refund.captured ? 'refunded' : 'partially_refunded'
      const note = `Refunded ${refund.amount} ${refund.currency} (${refund.refunded} of ${refund.captured} in all).`
      if (canMove(row.status, to)) await move(tx, row, to, { reason: 'refunded', note })
      else await q.insertEvent(tx.db, { order_id: row.id, type: 'refunded', note, actor: actorLabel(tx.actor) })
    },

    /** Writes a note on the order's history (a failed payment, a dispute, a flagged amount). */
    async note(tx: Ctx, orderId: string, type: string, note: string): Promise<void> {
      await q.insertEvent(tx.db, { order_id: orderId, type, note, actor: actorLabel(tx.actor) })
    },

    /** Cancels unpaid orders whose reservation ran out (a periodic task); answers how many. */
    async expireReservations(ctx: Ctx, batch = 100): Promise<number> {
      // One transaction per order: holding the stock rows of many orders at once, taken order by
      // order rather than in variant id order, deadlocks with checkouts that lock them in id order.
      let cancelled = 0
      while (cancelled < batch) {
        const done = await ctx.tx(async (tx) => {
          const [order] = await q.lockExpired(tx.db, 1)
          if (!order) return false
          await move(tx, order, 'cancelled', { reason: 'reservation_expired', note: 'The reservation expired before payment.' })
          tx.afterCommit(() => deps.metrics.reservationExpired())
          return true
        })
        if (!done) break
        cancelled += 1
      }
      return cancelled
    },
  }
}

export type OrdersService = ReturnType<typeof createOrdersService>

function paymentStatusOf(status: OrderStatus, payment: OrderPaymentSummary | undefined): OrderDto['payment_status'] {
  if (payment && payment.amount_refunded > 0) return payment.amount_refunded >= payment.amount ? 'refunded' : 'partially_refunded'
  if (status === 'pending_payment') return 'unpaid'
  if (status === 'refunded' || status === 'partially_refunded') return status
  if (status === 'cancelled') return 'void'
  return 'paid'
}
