/**
 * Checkout: the cart becomes an order in one transaction — prices re-read from the catalog,
 * shipping quoted and tax looked up for the address, totals by the pricing rule, the order and
 * its items written, the stock reserved (a short line is a 409 and nothing is kept), the coupon
 * redeemed atomically, the cart closed, `order.created` in the outbox. After the commit the
 * payments app starts the order's payment (never inside the transaction: a provider call must not
 * hold the locks). The order then waits in `pending_payment` until paid, or until its reservation expires.
 *
 * Locks are always taken in the same order (the cart row; stock rows in variant id order inside
 * `reserve`; then the coupon row), so concurrent checkouts over the same SKUs and coupon queue
 * instead of deadlocking. A deadlock or serialization failure that happens anyway
 * is retried, never shown to the client.
 */
import type { Ctx } from '../../core/context.js'
import { sqlStateOf } from '../../core/db/index.js'
import { ConflictError, ValidationError } from '../../core/errors.js'
import type { ProductsService } from '../products/service.js'
import type { NewOrder, OrderDto, OrdersService } from './service.js'
import type { Address } from './tables.js'

/** The ports checkout needs; the cart app fills them (cart lines, coupons, shipping, tax, totals). */
export interface CheckoutPorts {
  /** The owner's open cart (404 otherwise) with its lines priced from the catalog now. */
  cartForCheckout(
    ctx: Ctx,
    owner: { userId: string | null; token: string | null },
  ): Promise<{
    cartId: string
    lines: Array<{ variant_id: string; product_id: string; sku: string; product_name: string; variant_name: string; quantity: number; unit_price: number; currency: string; for_sale: boolean }>
    couponCode: string | null
  }>
  markCheckedOut(ctx: Ctx, cartId: string): Promise<void>
  validateCoupon(ctx: Ctx, code: string, context: { subtotal: number; customer: string }): Promise<CouponTerms>
  redeemCoupon(ctx: Ctx, code: string, context: { orderId: string; customer: string; subtotal: number }): Promise<CouponTerms>
  quoteShipping(ctx: Ctx, method: string, country: string): Promise<{ code: string; name: string; price: number; free_over: number | null }>
  taxRate(ctx: Ctx, country: string, region?: string): Promise<{ rate_bp: number }>
  computeTotals(input: {
    lines: Array<{ unit_price: number; quantity: number; tax_rate_bp: number }>
    coupon: CouponTerms | null
    shipping: { code: string; name: string; price: number; free_over: number | null } | null
    pricesIncludeTax: boolean
  }): { subtotal: number; discount: number; shipping: number; tax: number; total: number; lines: Array<{ subtotal: number; discount: number; tax: number; total: number }> }
  userEmail(ctx: Ctx, userId: string): Promise<string>
  /** After commit: the new order's first payment (the payments app). */
  startPayment(ctx: Ctx, orderId: string): Promise<void>
}

interface CouponTerms {
  code: string
  kind: 'percent' | 'fixed'
  value: number
  min_subtotal: number
}

export interface CheckoutInput {
  email?: string
  shipping_address: Address
  billing_address?: Address
  shipping_method: string
}

const RETRIES = 3
/** Deadlock detected, serialization failure: the transaction did nothing and may run again. */
const RETRYABLE = new Set(['40P01', '40001'])

export function createCheckout(deps: { ports: CheckoutPorts; orders: OrdersService; products: ProductsService; currency: string; pricesIncludeTax: boolean; reservationMinutes: number }) {
  const { ports, orders, products } = deps

  const once = async (ctx: Ctx, owner: { userId: string | null; token: string | null }, input: CheckoutInput): Promise<{ id: string; number: string }> =>
    ctx.tx(async (tx) => {
      const { cartId, lines, couponCode } = await ports.cartForCheckout(tx, owner)
      if (lines.length === 0) throw new ValidationError('The cart is empty.', { cart: ['Add something to the cart first.'] })
      const gone = lines.find((line) => !line.for_sale)
      if (gone) throw Object.assign(new ConflictError('not_for_sale', `${gone.sku} is no longer for sale: remove it from the cart.`), { extensions: { sku: gone.sku } })
      const email = owner.userId ? await ports.userEmail(tx, owner.userId) : input.email
      if (!email) throw new ValidationError('Guests give an email address for the order.', { email: ['This field is required.'] })
      const customer = owner.userId ? `user:${owner.userId}` : `email:${email.toLowerCase()}`

      const address = input.shipping_address
      const shipping = await ports.quoteShipping(tx, input.shipping_method, address.country)
      const { rate_bp } = await ports.taxRate(tx, address.country, address.region)
      const priced = lines.map((line) => ({ unit_price: line.unit_price, quantity: line.quantity, tax_rate_bp: rate_bp }))
      const subtotal = priced.reduce((sum, line) => sum + line.unit_price * line.quantity, 0)
      const coupon = couponCode ? await ports.validateCoupon(tx, couponCode, { subtotal, customer }) : null
      const totals = ports.computeTotals({ lines: priced, coupon, shipping, pricesIncludeTax: deps.pricesIncludeTax })

      const order = await orders.create(tx, {
        userId: owner.userId,
        email,
        currency: deps.currency,
        pricesIncludeTax: deps.pricesIncludeTax,
        couponCode: coupon?.code ?? null,
        shippingMethod: shipping.code,
        shippingAddress: address,
        billingAddress: input.billing_address ?? address,
        totals: { subtotal: totals.subtotal, discount: totals.discount, shipping: totals.shipping, tax: totals.tax, total: totals.total },
        items: lines.map((line, i) => ({
          variant_id: line.variant_id,
          product_id: line.product_id,
          sku: line.sku,
          product_name: line.product_name,
          variant_name: line.variant_name,
          quantity: line.quantity,
          unit_price: line.unit_price,
          discount: totals.lines[i]!.discount,
          tax_rate_bp: rate_bp,
          tax: totals.lines[i]!.tax,
          total: totals.lines[i]!.total,
        })) satisfies NewOrder['items'],
        reservationMinutes: deps.reservationMinutes,
      })
      await products.reserve(tx, order.number, lines.map((line) => ({ sku: line.sku, quantity: line.quantity })))
      if (coupon) await ports.redeemCoupon(tx, coupon.code, { orderId: order.id, customer, subtotal })
      await ports.markCheckedOut(tx, cartId)
      return order
    })

  /** The order is committed either way: a provider outage leaves `payment: null`, and POST /api/payments/ retries. */
  const startPayment = async (ctx: Ctx, orderId: string) => {
    try {
      await ports.startPayment(ctx, orderId)
    } catch (err) {
      ctx.log.warn({ err, order_id: orderId }, 'no payment created at checkout; the client can ask again with POST /api/payments/')
    }
  }

  return {
    /** Checks the cart out; answers the new order as its owner (or the guest) sees it. */
    async checkout(ctx: Ctx, owner: { userId: string | null; token: string | null }, input: CheckoutInput): Promise<OrderDto> {
      for (let attempt = 1; ; attempt++) {
        try {
          const order = await once(ctx, owner, input)
          await startPayment(ctx, order.id)
          return await orders.get(ctx, order.number, { email: input.email })
        } catch (err) {
          if (attempt >= RETRIES || !RETRYABLE.has(sqlStateOf(err) ?? '')) throw err
          ctx.log.warn({ attempt, code: sqlStateOf(err) }, 'checkout retried after a lock conflict')
        }
      }
    },
  }
}

export type Checkout = ReturnType<typeof createCheckout>
