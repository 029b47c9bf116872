/**
 * Carts: a guest's (found by its X-Cart-Token, of which only the sha256 is stored) or a signed-in
 * user's (one open cart each). Lines hold a variant and a quantity, never a price: every read
 * prices the cart from the catalog (one statement for the whole cart) and the totals rule of
 * pricing.ts, with no tax and no shipping (both depend on the address: checkout adds them).
 * Owns carts and cart_items. Checkout uses `resolveCart`, `checkoutLines` and `markCheckedOut`;
 * accounts' sign-in hook uses `mergeGuestCart`; the `cart.expire_carts` task uses `expireIdleCarts`.
 *
 * Every change locks the cart's row first (the same statement bumps its activity time), so two
 * changes to one cart run one after the other and the line limit and stock checks hold.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Settings } from '../../config/index.js'
import type { Ctx } from '../../core/context.js'
import { AppError, ConflictError, NotFoundError, ValidationError } from '../../core/errors.js'
import type { ProductsService, VariantForSale } from '../products/service.js'
import { customerKey } from './coupons.js'
import { computeTotals, type CouponTerms } from './pricing.js'
import * as q from './queries.js'
import type { CartOwner, CartRow } from './queries.js'

export type { CartRow } from './queries.js'

/** Per line; a larger quantity is a 422. */
export const MAX_LINE_QUANTITY = 1000
/** Per cart; one more line is a 422. */
export const MAX_LINES = 100

export interface CartLineDto {
  id: string
  sku: string
  product_name: string
  variant_name: string
  quantity: number
  /** The catalog's price now, minor units. */
  unit_price: number
  /** unit_price × quantity; 0 for a line no longer for sale (it counts in no total). */
  line_total: number
  currency: string
  /** Stock available now. */
  available: number
  /** The whole quantity is available now. */
  in_stock: boolean
  /** false: the variant was dropped or its product deactivated or deleted; checkout refuses the cart until the line is removed. */
  for_sale: boolean
}

export interface CartDto {
  id: string
  items: CartLineDto[]
  /** The code on the cart, or null. */
  coupon: string | null
  /** Why the coupon on the cart gives no discount now (e.g. the subtotal is below its minimum), or null. */
  coupon_error: { code: string; detail: string } | null
  subtotal: number
  discount: number
  /** subtotal − discount; tax and shipping are added at checkout. */
  total: number
  currency: string
  updated_at: string
}

/** A new guest cart carries its token, shown this once. */
export type CreatedCartDto = CartDto & { token: string | null }

/** A line as checkout needs it (for_sale and available read live, like the cart's). */
export interface CheckoutLine {
  variant_id: string
  product_id: string
  sku: string
  product_name: string
  variant_name: string
  quantity: number
  unit_price: number
  currency: string
  available: number
  for_sale: boolean
}

/** What the cart needs of coupons (coupons.ts): the terms of a usable code, a 422 problem otherwise. */
export interface CouponValidator {
  validate(ctx: Ctx, code: string, input: { subtotal: number; customer: string | null }): Promise<CouponTerms>
}

export class CartNotFoundError extends NotFoundError {
  constructor() {
    super('Cart')
  }
}

export class CartNotOpenError extends ConflictError {
  constructor(cartId: string) {
    super('cart_not_open', `Cart ${cartId} is no longer open.`)
  }
}

export class InsufficientStockError extends ConflictError {
  constructor(sku: string, available: number, inCart: number) {
    super('insufficient_stock', `Only ${available} of ${sku} ${available === 1 ? 'is' : 'are'} available${inCart > 0 ? ` (the cart already holds ${inCart})` : ''}.`)
    this.extensions = { sku, available, in_cart: inCart }
  }
}

export class CartNotForSaleError extends ConflictError {
  constructor(sku: string) {
    super('not_for_sale', `${sku} is no longer for sale.`)
    this.extensions = { sku }
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
/** 32 random bytes: unguessable, and only its hash is stored. */
const newCartToken = () => randomBytes(32).toString('base64url')

interface LoadedLine {
  item: q.CartItemRow
  /** Undefined only if the variant vanished between the two reads. */
  variant: VariantForSale | undefined
}

export function createCartService(deps: { products: Pick<ProductsService, 'variantsForSale'>; coupons: CouponValidator; settings: Pick<Settings, 'currency' | 'commerce'> }) {
  const { products, coupons, settings } = deps

  /** A signed-in user's cart is theirs whatever token they send (a guest token is merged at sign-in). */
  const ownerOf = (ctx: Ctx, token: string | null): CartOwner => {
    if (ctx.actor?.kind === 'user') return { userId: ctx.actor.id }
    if (token) return { tokenHash: sha256(token) }
    throw new CartNotFoundError()
  }

  /** For per-customer coupon limits; a guest is known by email only at checkout. */
  const customerOf = (cart: CartRow) => customerKey({ userId: cart.user_id })

  const loadLines = async (ctx: Ctx, cartId: string): Promise<LoadedLine[]> => {
    const items = await q.itemsOf(ctx.db, cartId)
    if (items.length === 0) return []
    const variants = new Map((await products.variantsForSale(ctx, { ids: items.map((item) => item.variant_id) })).map((v) => [v.variant_id, v]))
    return items.map((item) => ({ item, variant: variants.get(item.variant_id) }))
  }

  const countsInTotals = (line: LoadedLine): line is { item: q.CartItemRow; variant: VariantForSale } => line.variant?.for_sale === true

  const subtotalOf = (lines: LoadedLine[]) => lines.filter(countsInTotals).reduce((acc, line) => acc + line.variant.price * line.item.quantity, 0)

  /** The coupon's terms on this subtotal, or why it gives nothing now (its 422, which the cart shows rather than fails on). */
  const couponOf = async (ctx: Ctx, cart: CartRow, subtotal: number): Promise<{ terms: CouponTerms | null; error: CartDto['coupon_error'] }> => {
    if (!cart.coupon_code) return { terms: null, error: null }
    try {
      return { terms: await coupons.validate(ctx, cart.coupon_code, { subtotal, customer: customerOf(cart) }), error: null }
    } catch (err) {
      if (err instanceof AppError && err.status === 422) return { terms: null, error: { code: err.code, detail: err.message } }
      throw err
    }
  }

  const render = (cart: CartRow, lines: LoadedLine[], coupon: { terms: CouponTerms | null; error: CartDto['coupon_error'] }): CartDto => {
    const priced = lines.filter(countsInTotals)
    const totals = computeTotals({
      lines: priced.map((line) => ({ unit_price: line.variant.price, quantity: line.item.quantity, tax_rate_bp: 0 })),
      coupon: coupon.terms,
      shipping: null,
      pricesIncludeTax: settings.commerce.pricesIncludeTax,
    })
    const lineTotals = new Map(priced.map((line, i) => [line.item.id, totals.lines[i]!.subtotal]))
    const items = lines.flatMap(({ item, variant }): CartLineDto[] =>
      variant
        ? [
            {
              id: item.id,
              sku: variant.sku,
              product_name: variant.product_name,
              variant_name: variant.variant_name,
              quantity: item.quantity,
              unit_price: variant.price,
              line_total: lineTotals.get(item.id) ?? 0,
              currency: variant.currency,
              available: Math.max(variant.available, 0),
              in_stock: variant.available >= item.quantity,
              for_sale: variant.for_sale,
            },
          ]
        : [],
    )
    return {
      id: cart.id,
      items,
      coupon: cart.coupon_code,
      coupon_error: coupon.error,
      subtotal: totals.subtotal,
      discount: totals.discount,
      total: totals.total,
      currency: settings.currency,
      updated_at: cart.updated_at.toISOString(),
    }
  }

  const view = async (ctx: Ctx, cart: CartRow): Promise<CartDto> => {
    const lines = await loadLines(ctx, cart.id)
    return render(cart, lines, await couponOf(ctx, cart, subtotalOf(lines)))
  }

  /**
   * Runs a change on the caller's open cart in one transaction: the cart's row is locked and its
   * activity bumped first; the answer is the cart after the change.
   */
  const change = async (ctx: Ctx, token: string | null, apply: (tx: Ctx, cart: CartRow) => Promise<CartRow | void>): Promise<CartDto> =>
    ctx.tx(async (tx) => {
      const cart = await q.touchOpenCart(tx.db, ownerOf(tx, token))
      if (!cart) throw new CartNotFoundError()
      return view(tx, (await apply(tx, cart)) ?? cart)
    })

  /** The user's open cart, created when they have none (safe when called concurrently). */
  const userCart = async (ctx: Ctx, userId: string): Promise<{ cart: CartRow; created: boolean }> => {
    // The row found after a conflict can be closed by a checkout in between: then create again.
    for (let attempt = 1; ; attempt += 1) {
      const created = await q.insertUserCart(ctx.db, userId)
      if (created) return { cart: created, created: true }
      const existing = await q.touchOpenCart(ctx.db, { userId })
      if (existing) return { cart: existing, created: false }
      if (attempt >= 3) throw new ConflictError('cart_busy', 'The cart changed while it was being opened: try again.')
    }
  }

  /** Stock check for a line that would hold `quantity` (the cart's quantity, not the added amount). */
  const checkQuantity = (variant: VariantForSale, quantity: number, inCart: number) => {
    if (quantity > MAX_LINE_QUANTITY) {
      throw new ValidationError(`A line holds at most ${MAX_LINE_QUANTITY}.`, { quantity: [`The cart would hold ${quantity} of ${variant.sku}; at most ${MAX_LINE_QUANTITY} per line.`] })
    }
    if (quantity > variant.available) throw new InsufficientStockError(variant.sku, Math.max(variant.available, 0), inCart)
  }

  return {
    /**
     * A guest gets a new cart and its token (shown once). A signed-in user gets their one open
     * cart, created when they have none (`created` tells which, for 201 or 200).
     */
    async openCart(ctx: Ctx): Promise<{ cart: CreatedCartDto; created: boolean }> {
      return ctx.tx(async (tx) => {
        if (tx.actor?.kind === 'user') {
          const { cart, created } = await userCart(tx, tx.actor.id)
          return { cart: { ...(await view(tx, cart)), token: null }, created }
        }
        const token = newCartToken()
        const cart = await q.insertGuestCart(tx.db, sha256(token))
        return { cart: { ...(await view(tx, cart)), token }, created: true }
      })
    },

    async getCart(ctx: Ctx, token: string | null): Promise<CartDto> {
      const cart = await q.findOpenCart(ctx.db, ownerOf(ctx, token))
      if (!cart) throw new CartNotFoundError()
      return view(ctx, cart)
    },

    /** Adds to the line of that variant (or a new line). The cart's quantity may not exceed the available stock. */
    async addItem(ctx: Ctx, token: string | null, input: { sku: string; quantity: number }): Promise<CartDto> {
      return change(ctx, token, async (tx, cart) => {
        const [variant] = await products.variantsForSale(tx, { skus: [input.sku] })
        if (!variant) throw new NotFoundError('Variant', input.sku)
        if (!variant.for_sale) throw new CartNotForSaleError(variant.sku)
        const line = await q.findItemOfVariant(tx.db, cart.id, variant.variant_id)
        if (!line && (await q.countItems(tx.db, cart.id)) >= MAX_LINES) {
          throw new ValidationError(`A cart holds at most ${MAX_LINES} lines.`, { sku: [`The cart already has ${MAX_LINES} lines.`] }, 'too_many_lines')
        }
        const inCart = line?.quantity ?? 0
        checkQuantity(variant, inCart + input.quantity, inCart)
        await q.upsertItem(tx.db, cart.id, variant.variant_id, inCart + input.quantity)
      })
    },

    /** Sets a line's quantity. Lowering it is always allowed; raising it is checked against the stock. */
    async updateItem(ctx: Ctx, token: string | null, itemId: string, input: { quantity: number }): Promise<CartDto> {
      return change(ctx, token, async (tx, cart) => {
        const line = await q.findItem(tx.db, cart.id, itemId)
        if (!line) throw new NotFoundError('Cart item', itemId)
        const [variant] = await products.variantsForSale(tx, { ids: [line.variant_id] })
        if (!variant) throw new NotFoundError('Cart item', itemId)
        if (!variant.for_sale) throw new CartNotForSaleError(variant.sku)
        if (input.quantity > line.quantity) checkQuantity(variant, input.quantity, line.quantity)
        await q.setItemQuantity(tx.db, line.id, input.quantity)
      })
    },

    async removeItem(ctx: Ctx, token: string | null, itemId: string): Promise<void> {
      await ctx.tx(async (tx) => {
        const cart = await q.touchOpenCart(tx.db, ownerOf(tx, token))
        if (!cart || !(await q.deleteItem(tx.db, cart.id, itemId))) throw new NotFoundError('Cart item', itemId)
      })
    },

    /** Validates the code on the cart as it is now (422 when not usable) and keeps it on the cart. */
    async applyCoupon(ctx: Ctx, token: string | null, code: string): Promise<CartDto> {
      return ctx.tx(async (tx) => {
        const cart = await q.touchOpenCart(tx.db, ownerOf(tx, token))
        if (!cart) throw new CartNotFoundError()
        const lines = await loadLines(tx, cart.id)
        const terms = await coupons.validate(tx, code.trim(), { subtotal: subtotalOf(lines), customer: customerOf(cart) })
        await q.setCoupon(tx.db, cart.id, terms.code)
        return render({ ...cart, coupon_code: terms.code }, lines, { terms, error: null })
      })
    },

    async removeCoupon(ctx: Ctx, token: string | null): Promise<void> {
      await ctx.tx(async (tx) => {
        const cart = await q.touchOpenCart(tx.db, ownerOf(tx, token))
        if (!cart) throw new CartNotFoundError()
        await q.setCoupon(tx.db, cart.id, null)
      })
    },

    /**
     * Checkout: the open cart of this user (or of this guest token), locked for the checkout's
     * transaction so a line added meanwhile waits and then finds the cart closed; 404 when there is none.
     */
    async resolveCart(ctx: Ctx, who: { userId: string | null; token: string | null }): Promise<CartRow> {
      const owner: CartOwner | null = who.userId ? { userId: who.userId } : who.token ? { tokenHash: sha256(who.token) } : null
      const cart = owner ? await q.touchOpenCart(ctx.db, owner) : undefined
      if (!cart) throw new CartNotFoundError()
      return cart
    },

    /** Checkout: the cart's lines with live prices, stock and for-sale flags, and its coupon code. */
    async checkoutLines(ctx: Ctx, cart: CartRow): Promise<{ lines: CheckoutLine[]; couponCode: string | null }> {
      const lines = (await loadLines(ctx, cart.id)).flatMap(({ item, variant }): CheckoutLine[] =>
        variant
          ? [
              {
                variant_id: variant.variant_id,
                product_id: variant.product_id,
                sku: variant.sku,
                product_name: variant.product_name,
                variant_name: variant.variant_name,
                quantity: item.quantity,
                unit_price: variant.price,
                currency: variant.currency,
                available: variant.available,
                for_sale: variant.for_sale,
              },
            ]
          : [],
      )
      return { lines, couponCode: cart.coupon_code }
    },

    /** Checkout, inside its transaction: the cart is done. Only an open cart can be checked out (409 `cart_not_open`). */
    async markCheckedOut(ctx: Ctx, cartId: string): Promise<void> {
      if (!(await q.closeCart(ctx.db, cartId, 'checked_out'))) throw new CartNotOpenError(cartId)
    },

    /**
     * Sign-in with a guest token: the guest cart's lines join the user's open cart (created when
     * none). Quantities add, capped by the available stock (a user's own quantity is never
     * lowered) and by the per-line and per-cart limits; lines no longer for sale are dropped. The
     * guest's coupon carries over when the user's cart has none. The guest cart becomes 'merged',
     * so a second call finds nothing and changes nothing. Answers the user's cart id, or null.
     */
    async mergeGuestCart(ctx: Ctx, token: string, userId: string): Promise<string | null> {
      return ctx.tx(async (tx) => {
        const guest = await q.claimGuestCart(tx.db, sha256(token))
        if (!guest) return null
        const { cart } = await userCart(tx, userId)
        const guestLines = await loadLines(tx, guest.id)
        const own = new Map((await q.itemsOf(tx.db, cart.id)).map((item) => [item.variant_id, item.quantity]))
        for (const { item, variant } of guestLines) {
          if (!variant?.for_sale) continue
          const mine = own.get(variant.variant_id)
          if (mine === undefined && own.size >= MAX_LINES) continue
          const wanted = Math.min((mine ?? 0) + item.quantity, variant.available, MAX_LINE_QUANTITY)
          if (wanted <= (mine ?? 0)) continue
          await q.upsertItem(tx.db, cart.id, variant.variant_id, wanted)
          own.set(variant.variant_id, wanted)
        }
        if (guest.coupon_code && !cart.coupon_code) await q.setCoupon(tx.db, cart.id, guest.coupon_code)
        return cart.id
      })
    },

    /** Open carts idle for longer than CART_EXPIRY_DAYS become expired; answers how many. */
    async expireIdleCarts(ctx: Ctx): Promise<number> {
      return q.expireIdleCarts(ctx.db, settings.commerce.cartExpiryDays)
    },
  }
}

export type CartService = ReturnType<typeof createCartService>
