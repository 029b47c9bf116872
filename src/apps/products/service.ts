/**
 * Products: the catalog's tables (categories, products, variants) and inventory. So far this file
 * holds inventory: stock per variant (available = on hand − reserved), a movement for every
 * change written in the same transaction, and the reservation functions checkout calls
 * (reserve, release, commit), atomic under concurrency. Availability crossing zero publishes
 * `catalog.products_changed` and marks `in_stock` lists stale.
 *
 * Every function that touches several stock rows locks them in variant id order, so concurrent
 * reservations, releases and commits over the same variants cannot deadlock.
 */
import type { Ctx } from '../../core/context.js'
import type { CatalogCache } from './catalog-cache.js'
import { InvalidQuantityError, NotForSaleError, OutOfStockError, StockBelowReservedError, UnknownSkuError } from './errors.js'
import * as q from './queries.js'

export interface StockDto {
  sku: string
  on_hand: number
  reserved: number
  available: number
}

export interface ReservationLine {
  sku: string
  quantity: number
}

export type VariantForSale = q.VariantForSaleRow

export interface LowStockDto {
  product_id: string
  product_name: string
  slug: string
  variant_id: string
  sku: string
  variant_name: string
  on_hand: number
  available: number
}

export type StockChange = { quantity: number; reason?: string } | { delta: number; reason: string }

/** Who is acting, for the stock ledger. */
export function actorOf(ctx: Ctx): string {
  return ctx.actor ? `${ctx.actor.kind}:${ctx.actor.id}` : 'system'
}

export function createProductsService(deps: { cache: CatalogCache }) {
  /**
   * Availability crossed zero for these variants: lists filtered by `in_stock` and the search
   * index must follow. Other stock changes need nothing: pages read stock live.
   */
  const availabilityFlipped = async (tx: Ctx, variantIds: string[]) => {
    if (variantIds.length === 0) return
    await tx.events.publish('catalog.products_changed', { product_ids: await q.productIdsOfVariants(tx.db, variantIds) })
    await deps.cache.changed(tx, ['stock'])
  }

  /** Variant ids for SKUs, in lock order; unknown SKUs are a 404 naming the first. */
  const resolve = async (ctx: Ctx, skus: string[]): Promise<Array<{ id: string; sku: string; for_sale: boolean }>> => {
    const found = await q.findVariantsBySku(ctx.db, skus)
    const missing = skus.find((sku) => !found.some((variant) => variant.sku === sku))
    if (missing !== undefined) throw new UnknownSkuError(missing)
    return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  return {
    /**
     * Staff stock change: an absolute `quantity` (a count) or a `delta` with a reason (a delivery,
     * a correction). On-hand stock never goes below what is reserved.
     */
    async adjustStock(ctx: Ctx, sku: string, change: StockChange): Promise<StockDto> {
      return ctx.tx(async (tx) => {
        const [variant] = await resolve(tx, [sku])
        await q.ensureStock(tx.db, variant!.id)
        const stock = (await q.lockStock(tx.db, variant!.id))!
        const onHand = 'delta' in change ? stock.on_hand + change.delta : change.quantity
        if (onHand < 0) throw new InvalidQuantityError('delta' in change ? 'delta' : 'quantity', 'Stock cannot go below zero.')
        if (onHand < stock.reserved) throw new StockBelowReservedError(sku, stock.reserved)
        const updated = await q.setOnHand(tx.db, variant!.id, onHand)
        if (isFlip(stock.on_hand - stock.reserved, updated.on_hand - updated.reserved)) await availabilityFlipped(tx, [variant!.id])
        const reason = change.reason ?? ('delta' in change ? 'adjustment' : 'count')
        await q.insertMovement(tx.db, { variant_id: variant!.id, delta_on_hand: onHand - stock.on_hand, reason, actor: actorOf(tx) })
        return toStockDto(sku, updated)
      })
    },

    /**
     * Holds stock for `reference` (an order): all lines or none. A line asking for more than is
     * available is a 409 naming the SKU and what is left; a SKU no longer sold is a 409
     * `not_for_sale`. Joins the caller's transaction, so an order and its reservation commit together.
     */
    async reserve(ctx: Ctx, reference: string, lines: ReservationLine[]): Promise<void> {
      const wanted = new Map<string, number>()
      for (const line of lines) {
        if (!Number.isInteger(line.quantity) || line.quantity < 1) throw new InvalidQuantityError('quantity', 'Quantities are whole numbers of at least 1.')
        wanted.set(line.sku, (wanted.get(line.sku) ?? 0) + line.quantity)
      }
      await ctx.tx(async (tx) => {
        const soldOut: string[] = []
        const lines = await resolve(tx, [...wanted.keys()])
        const unsold = lines.find((variant) => !variant.for_sale)
        if (unsold) throw new NotForSaleError(unsold.sku)
        for (const variant of lines) {
          const quantity = wanted.get(variant.sku)!
          const reserved = await q.reserveStock(tx.db, variant.id, quantity)
          if (!reserved) throw new OutOfStockError(variant.sku, await q.availableOf(tx.db, variant.id))
          if (reserved.on_hand === reserved.reserved) soldOut.push(variant.id)
          await q.insertReservation(tx.db, { reference, variant_id: variant.id, quantity })
          await q.insertMovement(tx.db, { variant_id: variant.id, delta_reserved: quantity, reason: 'reserve', reference, actor: actorOf(tx) })
        }
        await availabilityFlipped(tx, soldOut)
      })
    },

    /**
     * Puts sold goods back on hand (a paid order cancelled before it shipped): one ledger row per
     * line with reason `return`. The caller makes it happen once (the order's status move).
     */
    async restock(ctx: Ctx, reference: string, lines: ReservationLine[]): Promise<void> {
      await ctx.tx(async (tx) => {
        const quantities = new Map<string, number>()
        for (const line of lines) quantities.set(line.sku, (quantities.get(line.sku) ?? 0) + line.quantity)
        const backInStock: string[] = []
        for (const variant of await resolve(tx, [...quantities.keys()])) {
          const quantity = quantities.get(variant.sku)!
          await q.ensureStock(tx.db, variant.id)
          const moved = await q.moveStock(tx.db, variant.id, quantity, 0)
          if (moved.on_hand - moved.reserved === quantity) backInStock.push(variant.id)
          await q.insertMovement(tx.db, { variant_id: variant.id, delta_on_hand: quantity, reason: 'return', reference, actor: actorOf(tx) })
        }
        await availabilityFlipped(tx, backInStock)
      })
    },

    /** Gives back what `reference` holds (cancellation, expiry). A second call changes nothing. */
    async release(ctx: Ctx, reference: string): Promise<number> {
      return settle(ctx, reference, 'released')
    },

    /** Turns what `reference` holds into goods sold: on hand and reserved both go down. A second call changes nothing. */
    async commit(ctx: Ctx, reference: string): Promise<number> {
      return settle(ctx, reference, 'committed')
    },

    /**
     * Variants as carts and checkout see them: product and variant names, the current price, live
     * availability and whether they are still sold. Unknown ids or SKUs are absent from the answer.
     */
    async variantsForSale(ctx: Ctx, by: { ids: string[] } | { skus: string[] }): Promise<VariantForSale[]> {
      return q.variantsForSale(ctx.db, by)
    },

    /** Variants for sale with `threshold` or fewer units available, fewest first (the analytics dashboard). */
    async lowStock(ctx: Ctx, options: { threshold: number; limit: number }): Promise<LowStockDto[]> {
      return q.lowStock(ctx.db, options.threshold, options.limit)
    },

    /** Names and slugs by product id, deleted products included; unknown ids are absent. */
    async productNames(ctx: Ctx, ids: string[]): Promise<Map<string, { slug: string; name: string }>> {
      return new Map((await q.findProductNames(ctx.db, ids)).map((row) => [row.id, { slug: row.slug, name: row.name }]))
    },

    /** Product ids by slug (analytics names products by slug); unknown slugs are absent. */
    async productIdsBySlug(ctx: Ctx, slugs: string[]): Promise<Map<string, string>> {
      return new Map((await q.findProductIdsBySlug(ctx.db, slugs)).map((row) => [row.slug, row.id]))
    },

    async getStock(ctx: Ctx, sku: string): Promise<StockDto> {
      const [variant] = await resolve(ctx, [sku])
      const stock = await q.findStock(ctx.db, variant!.id)
      return toStockDto(sku, stock ?? { on_hand: 0, reserved: 0 })
    },
  }

  async function settle(ctx: Ctx, reference: string, to: 'released' | 'committed'): Promise<number> {
    return ctx.tx(async (tx) => {
      const held = await q.lockActiveReservations(tx.db, reference)
      const backInStock: string[] = []
      for (const reservation of held) {
        const deltaOnHand = to === 'committed' ? -reservation.quantity : 0
        const moved = await q.moveStock(tx.db, reservation.variant_id, deltaOnHand, -reservation.quantity)
        // A commit leaves availability as it was; a release of a sold-out variant brings it back.
        if (to === 'released' && moved.on_hand - moved.reserved === reservation.quantity) backInStock.push(reservation.variant_id)
        await q.setReservationStatus(tx.db, reservation.id, to)
        await q.insertMovement(tx.db, {
          variant_id: reservation.variant_id,
          delta_on_hand: deltaOnHand,
          delta_reserved: -reservation.quantity,
          reason: to === 'committed' ? 'commit' : 'release',
          reference,
          actor: actorOf(tx),
        })
      }
      await availabilityFlipped(tx, backInStock)
      return held.length
    })
  }
}

export type ProductsService = ReturnType<typeof createProductsService>

/** Availability went from some to none or from none to some. */
function isFlip(before: number, after: number): boolean {
  return (before > 0) !== (after > 0)
}

function toStockDto(sku: string, stock: { on_hand: number; reserved: number }): StockDto {
  return { sku, on_hand: stock.on_hand, reserved: stock.reserved, available: stock.on_hand - stock.reserved }
}

/** The product shapes and rendering other apps' routes reuse (search answers product cards). */
export { listFilters, ProductSchema, SearchOrdering } from './schemas.js'
export { pageJson, renderProducts, sendRendered } from './rendered.js'
export type { SearchDocumentDto } from './search-documents.js'
