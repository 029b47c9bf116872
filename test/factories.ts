/**
 * Test data: unique values on every call, written straight to the tables (factories may write any
 * table). `auth(user)` is a real access token for that user, signed with the app's settings.
 */
import { randomUUID } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { users } from '../src/apps/accounts/tables.js'
import { products, stockLevels, variants } from '../src/apps/products/tables.js'
import { hashPassword } from '../src/apps/accounts/passwords.js'
import { createUserTokens } from '../src/core/auth.js'
import type { TestApp } from './harness.js'

export const DEFAULT_PASSWORD = 'a-long-enough-test-passphrase'

export interface MadeUser {
  id: string
  email: string
  password: string
  role: 'customer' | 'staff' | 'admin'
}

let hashed: Promise<string> | null = null

export function factories(t: TestApp) {
  const tokens = createUserTokens(t.settings.auth)
  return {
    /** A user (customer by default) with DEFAULT_PASSWORD, or `password` when given (hashed anew). */
    async user(overrides: Partial<typeof users.$inferInsert> & { password?: string } = {}): Promise<MadeUser> {
      const { password = DEFAULT_PASSWORD, ...values } = overrides
      // Hashing is deliberately slow: the default password is hashed once per test file.
      const password_hash = password === DEFAULT_PASSWORD ? await (hashed ??= hashPassword(DEFAULT_PASSWORD)) : await hashPassword(password)
      const [row] = await t.app.platform.database.db
        .insert(users)
        .values({ email: `user-${randomUUID()}@example.com`, first_name: 'Test', last_name: 'User', password_hash, ...values })
        .returning()
      return { id: row!.id, email: row!.email, password, role: row!.role }
    },
    /** A product with one variant per entry of `stock` (its on-hand quantity); answers the SKUs. */
    async product(options: { stock?: number[]; price?: number } = {}): Promise<{ id: string; slug: string; skus: string[] }> {
      const db = t.app.platform.database.db
      const suffix = randomUUID().slice(0, 8)
      const [product] = await db.insert(products).values({ slug: `product-${suffix}`, name: `Product ${suffix}` }).returning()
      const skus: string[] = []
      for (const [i, onHand] of (options.stock ?? [10]).entries()) {
        const sku = `SKU-${suffix}-${i}`.toUpperCase()
        const [variant] = await db
          .insert(variants)
          .values({ product_id: product!.id, sku, name: `Variant ${i}`, price: options.price ?? 1999, currency: t.settings.currency, position: i })
          .returning()
        await db.insert(stockLevels).values({ variant_id: variant!.id, on_hand: onHand })
        skus.push(sku)
      }
      return { id: product!.id, slug: product!.slug, skus }
    },
    /** Authorization header of a fresh access token (mfa: the session used a second factor). */
    async auth(user: Pick<MadeUser, 'id' | 'role'>, options: { mfa?: boolean } = {}): Promise<{ authorization: string }> {
      const [row] = await t.app.platform.database.db.select({ token_version: users.token_version }).from(users).where(eq(users.id, user.id))
      return { authorization: `Bearer ${await tokens.signAccess({ ...user, token_version: row?.token_version ?? 0 }, options.mfa ?? false)}` }
    },
  }
}
