/** Drizzle queries of the accounts app: one statement each; the caller passes the pool or a transaction. */
import { and, desc, eq, ilike, inArray, isNull, lt, or, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { deleteInBatches, isUniqueViolation, preparedFor } from '../../core/db/index.js'
import { EmailTakenError } from './errors.js'
import { addresses, oneTimeTokens, recoveryCodes, refreshTokens, users, type roles, type tokenPurposes } from './tables.js'

export type UserRow = typeof users.$inferSelect
export type AddressRow = typeof addresses.$inferSelect
export type Role = (typeof roles)[number]
export type TokenPurpose = (typeof tokenPurposes)[number]

const byEmail = (email: string) => sql`lower(${users.email}) = lower(${email})`

export async function insertUser(db: Db, values: typeof users.$inferInsert): Promise<UserRow> {
  try {
    const [row] = await db.insert(users).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err)) throw new EmailTakenError()
    throw err
  }
}

export async function findUserById(db: Db, id: string): Promise<UserRow | undefined> {
  const [row] = await preparedFor(preparedUserById, db, prepareUserById).execute({ id })
  return row
}

export async function lockUserById(db: Db, id: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(eq(users.id, id)).for('update')
  return row
}

export async function findUserByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  const [row] = await db.select().from(users).where(byEmail(email))
  return row
}

/**
 * Statements run on every authenticated request are built once per database handle (the pool)
 * and prepared by name on each connection: about a third less time per call than a fresh query.
 */
const preparedPrincipal = new WeakMap<Db, ReturnType<typeof preparePrincipal>>()
const preparedUserById = new WeakMap<Db, ReturnType<typeof prepareUserById>>()
const preparePrincipal = (db: Db) =>
  db.select({ role: users.role, is_active: users.is_active, token_version: users.token_version }).from(users).where(eq(users.id, sql.placeholder('id'))).prepare('accounts_find_principal')
const prepareUserById = (db: Db) => db.select().from(users).where(eq(users.id, sql.placeholder('id'))).prepare('accounts_find_user_by_id')

export async function findPrincipal(db: Db, id: string): Promise<{ role: Role; is_active: boolean; token_version: number } | undefined> {
  const [row] = await preparedFor(preparedPrincipal, db, preparePrincipal).execute({ id })
  return row
}

export async function updateUser(db: Db, id: string, patch: Partial<typeof users.$inferInsert>): Promise<UserRow> {
  const [row] = await db.update(users).set({ ...patch, updated_at: sql`now()` }).where(eq(users.id, id)).returning()
  return row!
}

/** Locks every active admin row, so two concurrent demotions cannot both see "another admin left". */
export async function lockActiveAdmins(db: Db): Promise<string[]> {
  // In id order: two concurrent callers lock the same rows in the same order (no deadlock).
  const rows = await db.select({ id: users.id }).from(users).where(and(eq(users.role, 'admin'), eq(users.is_active, true))).orderBy(users.id).for('update')
  return rows.map((row) => row.id)
}

export interface UserListFilter {
  search?: string
  role?: Role
  limit: number
  /** Keyset: users joined before this point, newest first. */
  after?: { date_joined: Date; id: string }
}

export async function listUsers(db: Db, filter: UserListFilter): Promise<UserRow[]> {
  const conditions: SQL[] = []
  if (filter.role) conditions.push(eq(users.role, filter.role))
  if (filter.search) {
    const pattern = `%${filter.search.replace(/[\\%_]/g, (char) => `\\${char}`)}%`
    conditions.push(or(ilike(users.email, pattern), ilike(users.first_name, pattern), ilike(users.last_name, pattern))!)
  }
  if (filter.after) {
    // The cursor's time has JavaScript's milliseconds, the column microseconds: compare with the
    // cursor row's exact value (the cursor's own when that row is gone), or rows in a tie are skipped.
    const joined = sql`coalesce((select ${users.date_joined} from ${users} where ${users.id} = ${filter.after.id}), ${filter.after.date_joined.toISOString()}::timestamptz)`
    conditions.push(sql`(${users.date_joined}, ${users.id}) < (${joined}, ${filter.after.id}::uuid)`)
  }
  return db.select().from(users).where(and(...conditions)).orderBy(desc(users.date_joined), desc(users.id)).limit(filter.limit)
}

export async function insertRefreshToken(db: Db, values: typeof refreshTokens.$inferInsert): Promise<void> {
  await db.insert(refreshTokens).values(values)
}

export async function lockRefreshToken(db: Db, tokenHash: string) {
  const [row] = await db.select().from(refreshTokens).where(eq(refreshTokens.token_hash, tokenHash)).for('update')
  return row
}

export async function markRefreshTokenUsed(db: Db, id: string): Promise<void> {
  await db.update(refreshTokens).set({ used_at: sql`now()` }).where(eq(refreshTokens.id, id))
}

export async function revokeFamily(db: Db, familyId: string): Promise<void> {
  await db.update(refreshTokens).set({ revoked_at: sql`now()` }).where(and(eq(refreshTokens.family_id, familyId), isNull(refreshTokens.revoked_at)))
}

export async function revokeAllRefreshTokens(db: Db, userId: string): Promise<void> {
  await db.update(refreshTokens).set({ revoked_at: sql`now()` }).where(and(eq(refreshTokens.user_id, userId), isNull(refreshTokens.revoked_at)))
}

/** Ends every session: refresh tokens revoked, access tokens issued until now refused. */
export async function revokeAllSessions(db: Db, userId: string): Promise<void> {
  await revokeAllRefreshTokens(db, userId)
  await db.update(users).set({ token_version: sql`${users.token_version} + 1` }).where(eq(users.id, userId))
}

export async function insertOneTimeToken(db: Db, values: typeof oneTimeTokens.$inferInsert): Promise<void> {
  await db.insert(oneTimeTokens).values(values)
}

/** The unused, unexpired token with this hash and purpose, locked. */
export async function lockUsableToken(db: Db, tokenHash: string, purpose: TokenPurpose) {
  const [row] = await db
    .select()
    .from(oneTimeTokens)
    .where(and(eq(oneTimeTokens.token_hash, tokenHash), eq(oneTimeTokens.purpose, purpose), isNull(oneTimeTokens.used_at), sql`${oneTimeTokens.expires_at} > now()`))
    .for('update')
  return row
}

/** Spends every open token of the user for this purpose (the one just used, and older links). */
export async function spendTokens(db: Db, userId: string, purpose: TokenPurpose): Promise<void> {
  await db
    .update(oneTimeTokens)
    .set({ used_at: sql`now()` })
    .where(and(eq(oneTimeTokens.user_id, userId), eq(oneTimeTokens.purpose, purpose), isNull(oneTimeTokens.used_at)))
}

export async function replaceRecoveryCodes(db: Db, userId: string, hashes: string[]): Promise<void> {
  await db.delete(recoveryCodes).where(eq(recoveryCodes.user_id, userId))
  if (hashes.length > 0) await db.insert(recoveryCodes).values(hashes.map((code_hash) => ({ user_id: userId, code_hash })))
}

/** Spends a recovery code; false when it is unknown or already used. */
export async function spendRecoveryCode(db: Db, userId: string, codeHash: string): Promise<boolean> {
  const rows = await db
    .update(recoveryCodes)
    .set({ used_at: sql`now()` })
    .where(and(eq(recoveryCodes.user_id, userId), eq(recoveryCodes.code_hash, codeHash), isNull(recoveryCodes.used_at)))
    .returning({ id: recoveryCodes.id })
  return rows.length > 0
}

export async function listAddresses(db: Db, userId: string): Promise<AddressRow[]> {
  return db.select().from(addresses).where(eq(addresses.user_id, userId)).orderBy(addresses.created_at, addresses.id)
}

export async function findAddress(db: Db, id: string): Promise<AddressRow | undefined> {
  const [row] = await db.select().from(addresses).where(eq(addresses.id, id))
  return row
}

export async function insertAddress(db: Db, values: typeof addresses.$inferInsert): Promise<AddressRow> {
  const [row] = await db.insert(addresses).values(values).returning()
  return row!
}

export async function updateAddress(db: Db, id: string, patch: Partial<typeof addresses.$inferInsert>): Promise<AddressRow | undefined> {
  const [row] = await db.update(addresses).set({ ...patch, updated_at: sql`now()` }).where(eq(addresses.id, id)).returning()
  return row
}

export async function deleteAddress(db: Db, id: string): Promise<void> {
  await db.delete(addresses).where(eq(addresses.id, id))
}

/** One default per kind: clears the flag on the user's other addresses. */
export async function clearDefault(db: Db, userId: string, kind: 'is_default_shipping' | 'is_default_billing', exceptId: string): Promise<void> {
  await db
    .update(addresses)
    .set({ [kind]: false })
    .where(and(eq(addresses.user_id, userId), eq(addresses[kind], true), sql`${addresses.id} <> ${exceptId}`))
}

/** First and last names of these users in one statement (shown next to what they wrote). */
/** Active users among `ids`, with what an email to them needs. */
export async function findActiveRecipients(db: Db, ids: string[]): Promise<Array<{ id: string; email: string; first_name: string }>> {
  if (ids.length === 0) return []
  return db.select({ id: users.id, email: users.email, first_name: users.first_name }).from(users).where(and(inArray(users.id, ids), eq(users.is_active, true)))
}

export async function findUserNames(db: Db, ids: string[]): Promise<Array<{ id: string; first_name: string; last_name: string }>> {
  if (ids.length === 0) return []
  return db.select({ id: users.id, first_name: users.first_name, last_name: users.last_name }).from(users).where(inArray(users.id, ids))
}

/**
 * Tokens nobody can use any more: refresh tokens a day past expiry (until then a used one still
 * reveals reuse), one-time tokens a day after they expired or were used.
 */
export async function deleteSpentTokens(db: Db): Promise<{ refresh_tokens: number; one_time_tokens: number }> {
  const dayAgo = sql`now() - interval '1 day'`
  return {
    refresh_tokens: await deleteInBatches(db, refreshTokens, lt(refreshTokens.expires_at, dayAgo)),
    one_time_tokens: await deleteInBatches(db, oneTimeTokens, or(lt(oneTimeTokens.expires_at, dayAgo), lt(oneTimeTokens.used_at, dayAgo))!),
  }
}
