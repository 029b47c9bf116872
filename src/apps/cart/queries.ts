/** Drizzle queries of the cart app: one statement each. */
import { and, asc, count, eq, isNull, sql, type SQL } from 'drizzle-orm'
import { rowsOf, type Db } from '../../core/db/index.js'
import { cartItems, carts } from './tables.js'

export type CartRow = typeof carts.$inferSelect
export type CartItemRow = typeof cartItems.$inferSelect

/** Whose cart: a signed-in user's, or a guest's found by the sha256 of its token. */
export type CartOwner = { userId: string } | { tokenHash: string }

/** The open cart of an owner. A guest token never reaches a user's cart. */
function openCartOf(owner: CartOwner): SQL {
  const whose = 'userId' in owner ? eq(carts.user_id, owner.userId) : and(eq(carts.token_hash, owner.tokenHash), isNull(carts.user_id))
  return and(whose, eq(carts.status, 'open'))!
}

export async function findOpenCart(db: Db, owner: CartOwner): Promise<CartRow | undefined> {
  const [row] = await db.select().from(carts).where(openCartOf(owner))
  return row
}

/**
 * Bumps the open cart's activity and locks its row for the rest of the transaction, so changes to
 * one cart (line limits, stock checks against the cart's quantity) happen one after the other.
 */
export async function touchOpenCart(db: Db, owner: CartOwner): Promise<CartRow | undefined> {
  const [row] = await db.update(carts).set({ updated_at: sql`now()` }).where(openCartOf(owner)).returning()
  return row
}

export async function insertGuestCart(db: Db, tokenHash: string): Promise<CartRow> {
  const [row] = await db.insert(carts).values({ token_hash: tokenHash }).returning()
  return row!
}

/**
 * Creates the user's open cart; null when they already have one. `carts_open_user_idx` makes
 * concurrent calls safe: the losers wait for the winner's commit and insert nothing.
 */
export async function insertUserCart(db: Db, userId: string): Promise<CartRow | null> {
  const [row] = await db.insert(carts).values({ user_id: userId }).onConflictDoNothing().returning()
  return row ?? null
}

/** Moves a cart out of 'open' (checked out, merged); null when it was not open. */
export async function closeCart(db: Db, id: string, status: 'checked_out' | 'merged'): Promise<CartRow | null> {
  const [row] = await db
    .update(carts)
    .set({ status, updated_at: sql`now()` })
    .where(and(eq(carts.id, id), eq(carts.status, 'open')))
    .returning()
  return row ?? null
}

/** Claims the open guest cart of a token for a merge (null when there is none): a second merge finds nothing. */
export async function claimGuestCart(db: Db, tokenHash: string): Promise<CartRow | null> {
  const [row] = await db
    .update(carts)
    .set({ status: 'merged', updated_at: sql`now()` })
    .where(openCartOf({ tokenHash }))
    .returning()
  return row ?? null
}

export async function setCoupon(db: Db, cartId: string, code: string | null): Promise<void> {
  await db.update(carts).set({ coupon_code: code }).where(eq(carts.id, cartId))
}

/** Open carts idle since before `days` days ago become expired; answers how many. */
export async function expireIdleCarts(db: Db, days: number): Promise<number> {
  const result = await db.execute(sql`
    WITH expired AS (
      UPDATE ${carts} SET status = 'expired'
      WHERE ${carts.status} = 'open' AND ${carts.updated_at} < now() - make_interval(days => ${days})
      RETURNING 1
    )
    SELECT count(*)::int AS count FROM expired`)
  return rowsOf<{ count: number }>(result)[0]!.count
}

/** A cart's lines, oldest first (the order shoppers added them). */
export async function itemsOf(db: Db, cartId: string): Promise<CartItemRow[]> {
  return db.select().from(cartItems).where(eq(cartItems.cart_id, cartId)).orderBy(asc(cartItems.created_at), asc(cartItems.id))
}

export async function findItem(db: Db, cartId: string, itemId: string): Promise<CartItemRow | undefined> {
  const [row] = await db.select().from(cartItems).where(and(eq(cartItems.cart_id, cartId), eq(cartItems.id, itemId)))
  return row
}

export async function findItemOfVariant(db: Db, cartId: string, variantId: string): Promise<CartItemRow | undefined> {
  const [row] = await db.select().from(cartItems).where(and(eq(cartItems.cart_id, cartId), eq(cartItems.variant_id, variantId)))
  return row
}

export async function countItems(db: Db, cartId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(cartItems).where(eq(cartItems.cart_id, cartId))
  return row!.n
}

/** Sets the quantity of the cart's line for a variant, creating the line when there is none. */
export async function upsertItem(db: Db, cartId: string, variantId: string, quantity: number): Promise<void> {
  await db
    .insert(cartItems)
    .values({ cart_id: cartId, variant_id: variantId, quantity })
    .onConflictDoUpdate({ target: [cartItems.cart_id, cartItems.variant_id], set: { quantity, updated_at: sql`now()` } })
}

export async function setItemQuantity(db: Db, itemId: string, quantity: number): Promise<void> {
  await db.update(cartItems).set({ quantity, updated_at: sql`now()` }).where(eq(cartItems.id, itemId))
}

/** Deletes a line of the cart; false when the cart has no such line. */
export async function deleteItem(db: Db, cartId: string, itemId: string): Promise<boolean> {
  const deleted = await db.delete(cartItems).where(and(eq(cartItems.cart_id, cartId), eq(cartItems.id, itemId))).returning({ id: cartItems.id })
  return deleted.length > 0
}
