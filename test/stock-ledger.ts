/**
 * The inventory invariant the tests check after every scenario: for each variant, on-hand stock is
 * its initial stock plus the ledger's on-hand deltas, reserved is the sum of the reserved deltas
 * and also of its active reservations. Factories write initial stock without a ledger row, so the
 * products are made here, which remembers each SKU's starting stock.
 */
import { asc, eq, sql } from 'drizzle-orm'
import { expect } from 'vitest'
import { stockLevels, stockMovements, variants } from '../src/apps/products/tables.js'
import { rowsOf } from '../src/core/db/index.js'
import { factories } from './factories.js'
import type { TestApp } from './harness.js'

interface Balance {
  sku: string
  on_hand: number
  reserved: number
  moved_on_hand: number
  moved_reserved: number
  held: number
}

export function stockLedger(t: TestApp) {
  const f = factories(t)
  const initial = new Map<string, number>()
  return {
    /** A product through the factory, remembering the starting stock of each SKU. */
    async product(stock: number[]): Promise<{ id: string; skus: string[] }> {
      const product = await f.product({ stock })
      product.skus.forEach((sku, i) => initial.set(sku, stock[i]!))
      return product
    },
    /** Records a variant created without stock (no stock row yet). */
    track(sku: string, onHand = 0): void {
      initial.set(sku, onHand)
    },
    /** Asserts the invariant for every variant in the database; answers how many were checked. */
    async expectBalanced(): Promise<number> {
      const rows = rowsOf<Balance>(
        await t.app.platform.database.db.execute(sql`
          SELECT v.sku,
            coalesce(s.on_hand, 0)::int AS on_hand,
            coalesce(s.reserved, 0)::int AS reserved,
            coalesce((SELECT sum(m.delta_on_hand) FROM stock_movements m WHERE m.variant_id = v.id), 0)::int AS moved_on_hand,
            coalesce((SELECT sum(m.delta_reserved) FROM stock_movements m WHERE m.variant_id = v.id), 0)::int AS moved_reserved,
            coalesce((SELECT sum(r.quantity) FROM stock_reservations r WHERE r.variant_id = v.id AND r.status = 'active'), 0)::int AS held
          FROM product_variants v LEFT JOIN stock_levels s ON s.variant_id = v.id
          ORDER BY v.sku`),
      )
      const unknown = rows.filter((row) => !initial.has(row.sku)).map((row) => row.sku)
      expect(unknown, 'variants not made through stockLedger').toEqual([])
      const actual = rows.map(({ sku, on_hand, reserved, held }) => ({ sku, on_hand, reserved, held }))
      const expected = rows.map(({ sku, moved_on_hand, moved_reserved }) => ({
        sku,
        on_hand: initial.get(sku)! + moved_on_hand,
        reserved: moved_reserved,
        held: moved_reserved,
      }))
      expect(actual).toEqual(expected)
      return rows.length
    },
  }
}

/** Reads the tests make about one SKU; `app` is read lazily, since test files create it in beforeAll. */
export function stockQueries(app: () => TestApp) {
  const db = () => app().app.platform.database.db
  return {
    async variantId(sku: string): Promise<string> {
      const [row] = await db().select({ id: variants.id }).from(variants).where(eq(variants.sku, sku))
      return row!.id
    },
    /** On hand, reserved and available, or undefined when the variant has no stock row yet. */
    async stockOf(sku: string) {
      const [row] = await db()
        .select({ on_hand: stockLevels.on_hand, reserved: stockLevels.reserved })
        .from(stockLevels)
        .innerJoin(variants, eq(variants.id, stockLevels.variant_id))
        .where(eq(variants.sku, sku))
      return row ? { ...row, available: row.on_hand - row.reserved } : undefined
    },
    /** The SKU's ledger rows, oldest first. */
    async movementsOf(sku: string) {
      return db()
        .select({
          delta_on_hand: stockMovements.delta_on_hand,
          delta_reserved: stockMovements.delta_reserved,
          reason: stockMovements.reason,
          reference: stockMovements.reference,
          actor: stockMovements.actor,
        })
        .from(stockMovements)
        .innerJoin(variants, eq(variants.id, stockMovements.variant_id))
        .where(eq(variants.sku, sku))
        .orderBy(asc(stockMovements.created_at), asc(stockMovements.id))
    },
  }
}
