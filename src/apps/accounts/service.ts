/**
 * Accounts: users, passwords, sessions (access + rotating refresh tokens), email verification,
 * password reset, TOTP two-factor sign-in, the address book and staff user management.
 * Owns users, user_addresses, refresh_tokens, one_time_tokens, mfa_recovery_codes.
 * Publishes user.registered, user.password_reset_requested, user.deactivated; its own tasks send
 * the emails. Other apps use `getUserSummary`, `getUserNames`, `loadPrincipal` and the guards of core/auth.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { Settings } from '../../config/index.js'
import type { UserTokens } from '../../core/auth.js'
import { assertOwner } from '../../core/auth.js'
import type { Ctx } from '../../core/context.js'
import { NotFoundError, ValidationError } from '../../core/errors.js'
import * as q from './queries.js'
import type { AddressRow, Role, UserRow } from './queries.js'
import {
  InvalidCredentialsError,
  InvalidMfaCodeError,
  InvalidTokenError,
  LastAdminError,
  MfaStateError,
  RefreshTokenError,
  WeakPasswordError,
} from './errors.js'
import { createMfa, newRecoveryCodes, normaliseRecoveryCode } from './mfa.js'
import { decoyPasswordHash, hashPassword, passwordProblems, verifyPassword } from './passwords.js'
import type { AddressDto, CreateAddressInput, UpdateAddressInput, UserDto } from './schemas.js'

export interface Session {
  access: string
  refresh: string
  user: UserDto
}
export type LoginResult = Session | { mfa_required: true; mfa_token: string }

export interface UserSummary {
  id: string
  email: string
  first_name: string
  last_name: string
  role: Role
  is_active: boolean
  email_verified: boolean
  date_joined: string
}

export interface Page<T> {
  results: T[]
  /** Opaque cursor of the next page, or null on the last one. */
  next_cursor: string | null
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const newOpaqueToken = () => randomBytes(32).toString('base64url')

export function createAccountsService(deps: { settings: Settings; tokens: UserTokens }) {
  const { settings, tokens } = deps
  const config = settings.auth
  const mfa = createMfa({ secretKey: settings.secretKey, issuer: config.shopName })

  const checkPassword = (field: string, password: string, user: { email: string; first_name?: string; last_name?: string }) => {
    const problems = passwordProblems(password, { email: user.email, minLength: config.passwordMinLength, names: [user.first_name ?? '', user.last_name ?? ''] })
    if (problems.length > 0) throw new WeakPasswordError(field, problems)
  }

  /** A new sign-in: a refresh token family of its own. */
  const startSession = async (ctx: Ctx, user: UserRow, withMfa: boolean): Promise<Session> => {
    const refresh = newOpaqueToken()
    const updated = await ctx.tx(async (tx) => {
      await q.insertRefreshToken(tx.db, { user_id: user.id, family_id: randomUUID(), token_hash: sha256(refresh), mfa: withMfa, expires_at: inSeconds(config.refreshTtlSeconds) })
      return q.updateUser(tx.db, user.id, { last_login: new Date() })
    })
    return { access: await tokens.signAccess(updated, withMfa), refresh, user: toUserDto(updated) }
  }

  const requireActor = async (ctx: Ctx): Promise<UserRow> => {
    const user = ctx.actor?.kind === 'user' ? await q.findUserById(ctx.db, ctx.actor.id) : undefined
    if (!user) throw new NotFoundError('User')
    return user
  }

  const issueOneTimeToken = async (ctx: Ctx, user: UserRow, purpose: q.TokenPurpose, ttlMs: number): Promise<string> => {
    const token = newOpaqueToken()
    await q.insertOneTimeToken(ctx.db, { user_id: user.id, purpose, token_hash: sha256(token), expires_at: new Date(Date.now() + ttlMs) })
    return token
  }

  return {
    /** Creates a customer account; the verification email goes out from a task after commit. */
    async register(ctx: Ctx, input: { email: string; password: string; first_name?: string; last_name?: string }): Promise<UserDto> {
      const email = input.email.trim()
      checkPassword('password', input.password, { ...input, email })
      const password_hash = await hashPassword(input.password)
      return ctx.tx(async (tx) => {
        const user = await q.insertUser(tx.db, { email, password_hash, first_name: input.first_name?.trim() ?? '', last_name: input.last_name?.trim() ?? '' })
        await tx.events.publish('user.registered', { user_id: user.id })
        return toUserDto(user)
      })
    },

    /**
     * Password sign-in. Unknown email, wrong password and inactive account answer alike, and an
     * unknown email still costs one hash verification, so timing does not tell them apart.
     */
    async login(ctx: Ctx, input: { email: string; password: string }): Promise<LoginResult> {
      const user = await q.findUserByEmail(ctx.db, input.email.trim())
      const valid = await verifyPassword(user?.password_hash ?? (await decoyPasswordHash()), input.password)
      if (!user || !valid || !user.is_active) throw new InvalidCredentialsError()
      if (user.mfa_enabled) return { mfa_required: true, mfa_token: await tokens.signMfa(user) }
      return startSession(ctx, user, false)
    },

    /** Second step of a sign-in with two-factor authentication: a TOTP code or an unused recovery code. */
    async loginWithMfa(ctx: Ctx, input: { mfa_token: string; code: string }): Promise<Session> {
      const claims = await tokens.verifyMfa(input.mfa_token)
      const user = await ctx.tx(async (tx) => {
        const locked = await q.lockUserById(tx.db, claims.sub)
        if (!locked?.is_active || !locked.mfa_enabled || !locked.mfa_secret) throw new InvalidCredentialsError()
        await acceptSecondFactor(tx, locked, input.code)
        return locked
      })
      return startSession(ctx, user, true)
    },

    /**
     * Exchanges a refresh token for a new pair. A token presented a second time means it leaked:
     * its whole family (that sign-in on every device) is revoked.
     */
    async refresh(ctx: Ctx, refresh: string): Promise<{ access: string; refresh: string }> {
      const outcome = await ctx.tx(async (tx) => {
        const row = await q.lockRefreshToken(tx.db, sha256(refresh))
        if (!row || row.revoked_at || row.expires_at <= new Date()) return { ok: false as const, reused: false }
        if (row.used_at) {
          await q.revokeFamily(tx.db, row.family_id)
          return { ok: false as const, reused: true }
        }
        const user = await q.findUserById(tx.db, row.user_id)
        if (!user?.is_active) return { ok: false as const, reused: false }
        const next = newOpaqueToken()
        await q.markRefreshTokenUsed(tx.db, row.id)
        await q.insertRefreshToken(tx.db, { user_id: user.id, family_id: row.family_id, token_hash: sha256(next), mfa: row.mfa, expires_at: inSeconds(config.refreshTtlSeconds) })
        return { ok: true as const, user, mfa: row.mfa, next }
      })
      // Thrown after commit, so the family revocation above is kept.
      if (!outcome.ok) throw new RefreshTokenError(outcome.reused)
      return { access: await tokens.signAccess(outcome.user, outcome.mfa), refresh: outcome.next }
    },

    /** Signs out the session the refresh token belongs to (its family). Someone else's token changes nothing. */
    async logout(ctx: Ctx, refresh: string): Promise<void> {
      await ctx.tx(async (tx) => {
        const row = await q.lockRefreshToken(tx.db, sha256(refresh))
        if (row && row.user_id === ctx.actor?.id) await q.revokeFamily(tx.db, row.family_id)
      })
    },

    /** Marks the email verified; the token is single-use and expires. */
    async verifyEmail(ctx: Ctx, token: string): Promise<UserDto> {
      return ctx.tx(async (tx) => {
        const row = await q.lockUsableToken(tx.db, sha256(token), 'verify_email')
        if (!row) throw new InvalidTokenError()
        await q.spendTokens(tx.db, row.user_id, 'verify_email')
        return toUserDto(await q.updateUser(tx.db, row.user_id, { email_verified: true }))
      })
    },

    /**
     * Records a reset request. The same work happens whether or not the account exists (one
     * outbox row); the task decides whether to send, so the answer time reveals nothing.
     */
    async requestPasswordReset(ctx: Ctx, email: string): Promise<void> {
      await ctx.tx((tx) => tx.events.publish('user.password_reset_requested', { email: email.trim() }))
    },

    /** Sets a new password from a reset token and signs the user out everywhere. */
    async confirmPasswordReset(ctx: Ctx, input: { token: string; password: string }): Promise<void> {
      const row = await q.lockUsableToken(ctx.db, sha256(input.token), 'password_reset')
      const user = row && (await q.findUserById(ctx.db, row.user_id))
      if (!row || !user?.is_active) throw new InvalidTokenError()
      checkPassword('password', input.password, user)
      const password_hash = await hashPassword(input.password)
      await ctx.tx(async (tx) => {
        // Re-checked under lock: two confirmations of one token cannot both succeed.
        if (!(await q.lockUsableToken(tx.db, sha256(input.token), 'password_reset'))) throw new InvalidTokenError()
        await q.spendTokens(tx.db, user.id, 'password_reset')
        await q.updateUser(tx.db, user.id, { password_hash })
        await q.revokeAllSessions(tx.db, user.id)
      })
    },

    /** Task side of verification: a fresh token for the user, or null when there is nothing to send. */
    async createVerificationToken(ctx: Ctx, userId: string): Promise<{ email: string; first_name: string; token: string } | null> {
      const user = await q.findUserById(ctx.db, userId)
      if (!user || user.email_verified || !user.is_active) return null
      return { email: user.email, first_name: user.first_name, token: await issueOneTimeToken(ctx, user, 'verify_email', config.verifyEmailTtlMs) }
    },

    /** Task side of password reset: a token when the address belongs to an active account. */
    async createPasswordResetToken(ctx: Ctx, email: string): Promise<{ email: string; first_name: string; token: string } | null> {
      const user = await q.findUserByEmail(ctx.db, email)
      if (!user?.is_active) return null
      return { email: user.email, first_name: user.first_name, token: await issueOneTimeToken(ctx, user, 'password_reset', config.passwordResetTtlMs) }
    },

    /** Starts TOTP setup: a new secret, pending until `enableMfa` confirms a code from it. */
    async setupMfa(ctx: Ctx): Promise<{ secret: string; otpauth_url: string }> {
      const user = await requireActor(ctx)
      if (user.mfa_enabled) throw new MfaStateError('Two-factor authentication is already on: disable it first.')
      const secret = mfa.newSecret()
      await q.updateUser(ctx.db, user.id, { mfa_pending_secret: mfa.encrypt(secret) })
      return { secret, otpauth_url: mfa.otpauthUrl(secret, user.email) }
    },

    /** Confirms the pending secret with a code; answers the recovery codes, shown only now. */
    async enableMfa(ctx: Ctx, code: string): Promise<{ recovery_codes: string[] }> {
      const codes = newRecoveryCodes()
      await ctx.tx(async (tx) => {
        const user = await q.lockUserById(tx.db, ctx.actor!.id)
        if (!user) throw new NotFoundError('User')
        if (user.mfa_enabled) throw new MfaStateError('Two-factor authentication is already on.')
        if (!user.mfa_pending_secret) throw new MfaStateError('Start with /api/auth/mfa/setup/.')
        const step = mfa.acceptCode(mfa.decrypt(user.mfa_pending_secret), code.trim(), null)
        if (step === null) throw new InvalidMfaCodeError()
        await q.updateUser(tx.db, user.id, { mfa_secret: user.mfa_pending_secret, mfa_pending_secret: null, mfa_enabled: true, mfa_last_step: step })
        await q.replaceRecoveryCodes(tx.db, user.id, codes.map((recovery) => recoveryHash(user.id, recovery)))
      })
      return { recovery_codes: codes }
    },

    /** Turns two-factor authentication off, given a current code or a recovery code. */
    async disableMfa(ctx: Ctx, code: string): Promise<void> {
      await ctx.tx(async (tx) => {
        const user = await q.lockUserById(tx.db, ctx.actor!.id)
        if (!user) throw new NotFoundError('User')
        if (!user.mfa_enabled) throw new MfaStateError('Two-factor authentication is not on.')
        await acceptSecondFactor(tx, user, code)
        await q.updateUser(tx.db, user.id, { mfa_enabled: false, mfa_secret: null, mfa_pending_secret: null, mfa_last_step: null })
        await q.replaceRecoveryCodes(tx.db, user.id, [])
      })
    },

    async getMe(ctx: Ctx): Promise<UserDto> {
      return toUserDto(await requireActor(ctx))
    },

    async updateMe(ctx: Ctx, input: { first_name?: string; last_name?: string }): Promise<UserDto> {
      const user = await requireActor(ctx)
      const patch = { ...(input.first_name !== undefined ? { first_name: input.first_name.trim() } : {}), ...(input.last_name !== undefined ? { last_name: input.last_name.trim() } : {}) }
      return toUserDto(await q.updateUser(ctx.db, user.id, patch))
    },

    /** Changes the password; every session is signed out (sign in again with the new one). */
    async changePassword(ctx: Ctx, input: { current_password: string; new_password: string }): Promise<void> {
      const user = await requireActor(ctx)
      if (!(await verifyPassword(user.password_hash, input.current_password))) {
        throw new ValidationError('The current password is wrong.', { current_password: ['The current password is wrong.'] }, 'wrong_password')
      }
      checkPassword('new_password', input.new_password, user)
      const password_hash = await hashPassword(input.new_password)
      await ctx.tx(async (tx) => {
        await q.updateUser(tx.db, user.id, { password_hash })
        await q.revokeAllSessions(tx.db, user.id)
      })
    },

    async listAddresses(ctx: Ctx): Promise<AddressDto[]> {
      const user = await requireActor(ctx)
      return (await q.listAddresses(ctx.db, user.id)).map(toAddressDto)
    },

    async getAddress(ctx: Ctx, id: string): Promise<AddressDto> {
      return toAddressDto(await ownAddress(ctx, id))
    },

    /** Adds an address; making it a default clears that default on the others. */
    async createAddress(ctx: Ctx, input: CreateAddressInput): Promise<AddressDto> {
      const user = await requireActor(ctx)
      return ctx.tx(async (tx) => {
        const row = await q.insertAddress(tx.db, { ...cleanAddress(input), user_id: user.id })
        await keepOneDefault(tx, row)
        return toAddressDto(row)
      })
    },

    async updateAddress(ctx: Ctx, id: string, input: UpdateAddressInput): Promise<AddressDto> {
      await ownAddress(ctx, id)
      return ctx.tx(async (tx) => {
        // Deleted since the ownership check: the same answer as for an unknown address.
        const row = await q.updateAddress(tx.db, id, cleanAddress(input))
        if (!row) throw new NotFoundError('Address', id)
        await keepOneDefault(tx, row)
        return toAddressDto(row)
      })
    },

    async deleteAddress(ctx: Ctx, id: string): Promise<void> {
      await ownAddress(ctx, id)
      await q.deleteAddress(ctx.db, id)
    },

    /** Staff: users newest first, filtered by a search over email and names, and by role. */
    async listUsers(ctx: Ctx, filter: { search?: string; role?: Role; limit?: number; cursor?: string }): Promise<Page<UserDto>> {
      const limit = filter.limit ?? 20
      const after = filter.cursor ? decodeCursor(filter.cursor) : undefined
      const rows = await q.listUsers(ctx.db, { ...(filter.search ? { search: filter.search } : {}), ...(filter.role ? { role: filter.role } : {}), limit: limit + 1, ...(after ? { after } : {}) })
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return { results: page.map(toUserDto), next_cursor: rows.length > limit && last ? encodeCursor(last) : null }
    },

    /**
     * Admin: changes a user's role or active flag. The last active admin cannot be demoted or
     * deactivated (admin rows are locked, so two concurrent changes cannot both pass the check).
     * Deactivation signs the user out everywhere.
     */
    async updateUser(ctx: Ctx, id: string, input: { role?: Role; is_active?: boolean }): Promise<UserDto> {
      return ctx.tx(async (tx) => {
        const admins = await q.lockActiveAdmins(tx.db)
        const user = await q.lockUserById(tx.db, id)
        if (!user) throw new NotFoundError('User', id)
        const losesAdmin = admins.includes(user.id) && ((input.role !== undefined && input.role !== 'admin') || input.is_active === false)
        if (losesAdmin && admins.length <= 1) throw new LastAdminError()
        const updated = await q.updateUser(tx.db, id, { ...(input.role ? { role: input.role } : {}), ...(input.is_active !== undefined ? { is_active: input.is_active } : {}) })
        if (input.is_active === false && user.is_active) {
          await q.revokeAllSessions(tx.db, id)
          await tx.events.publish('user.deactivated', { user_id: id })
        }
        return toUserDto(updated)
      })
    },

    /** For other services (internal API). */
    /** Display names by user id in one query (review authors); unknown ids are absent. */
    async getUserNames(ctx: Ctx, ids: string[]): Promise<Map<string, { first_name: string; last_name: string }>> {
      return new Map((await q.findUserNames(ctx.db, ids)).map((row) => [row.id, { first_name: row.first_name, last_name: row.last_name }]))
    },

    /** Who of `ids` can be written to (active accounts): address and first name. */
    getRecipients: (ctx: Ctx, ids: string[]) => q.findActiveRecipients(ctx.db, ids),

    async getUserSummary(ctx: Ctx, id: string): Promise<UserSummary> {
      const user = await q.findUserById(ctx.db, id)
      if (!user) throw new NotFoundError('User', id)
      const dto = toUserDto(user)
      return { id: dto.id, email: dto.email, first_name: dto.first_name, last_name: dto.last_name, role: dto.role, is_active: dto.is_active, email_verified: dto.email_verified, date_joined: dto.date_joined }
    },

    /** What core/auth re-reads on every authenticated request. */
    loadPrincipal: async (ctx: Ctx, userId: string) => (await q.findPrincipal(ctx.db, userId)) ?? null,

    /**
     * `manage createsuperuser`: an admin with a verified email. An existing account with that email
     * is left as it is (deploy scripts run this on every release).
     */
    async createSuperuser(ctx: Ctx, input: { email: string; password: string }): Promise<{ created: boolean; user: UserDto }> {
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(input.email.trim())) {
        throw new ValidationError('The email address is invalid.', { email: ['Enter a valid email address.'] })
      }
      const existing = await q.findUserByEmail(ctx.db, input.email.trim())
      if (existing) return { created: false, user: toUserDto(existing) }
      checkPassword('password', input.password, { email: input.email })
      const user = await q.insertUser(ctx.db, { email: input.email.trim(), password_hash: await hashPassword(input.password), role: 'admin', email_verified: true })
      return { created: true, user: toUserDto(user) }
    },
  }

  async function acceptSecondFactor(tx: Ctx, user: UserRow, code: string): Promise<void> {
    const trimmed = code.trim()
    if (/^\d{6}$/.test(trimmed)) {
      const step = mfa.acceptCode(mfa.decrypt(user.mfa_secret!), trimmed, user.mfa_last_step)
      if (step === null) throw new InvalidMfaCodeError()
      await q.updateUser(tx.db, user.id, { mfa_last_step: step })
      return
    }
    if (!(await q.spendRecoveryCode(tx.db, user.id, recoveryHash(user.id, trimmed)))) throw new InvalidMfaCodeError()
  }

  async function ownAddress(ctx: Ctx, id: string): Promise<AddressRow> {
    const row = await q.findAddress(ctx.db, id)
    if (!row) throw new NotFoundError('Address', id)
    assertOwner(ctx.actor, row.user_id, 'Address', id)
    return row
  }

  async function keepOneDefault(tx: Ctx, row: AddressRow): Promise<void> {
    if (row.is_default_shipping) await q.clearDefault(tx.db, row.user_id, 'is_default_shipping', row.id)
    if (row.is_default_billing) await q.clearDefault(tx.db, row.user_id, 'is_default_billing', row.id)
  }
}

export type AccountsService = ReturnType<typeof createAccountsService>

function recoveryHash(userId: string, code: string): string {
  return sha256(`${userId}:${normaliseRecoveryCode(code)}`)
}

function inSeconds(seconds: number): Date {
  return new Date(Date.now() + seconds * 1000)
}

function cleanAddress<T extends Partial<CreateAddressInput>>(input: T): T {
  return input.country ? { ...input, country: input.country.toUpperCase() } : input
}

function encodeCursor(user: UserRow): string {
  return Buffer.from(JSON.stringify([user.date_joined.toISOString(), user.id])).toString('base64url')
}

function decodeCursor(cursor: string): { date_joined: Date; id: string } {
  try {
    const [joined, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string]
    const date_joined = new Date(joined)
    if (Number.isNaN(date_joined.getTime()) || !/^[0-9a-f-]{36}$/i.test(id)) throw new Error('bad cursor')
    return { date_joined, id }
  } catch {
    throw new ValidationError('The cursor is invalid.', { cursor: ['Invalid cursor.'] })
  }
}

export function toUserDto(user: UserRow): UserDto {
  return {
    id: user.id,
    email: user.email,
    first_name: user.first_name,
    last_name: user.last_name,
    role: user.role,
    is_active: user.is_active,
    email_verified: user.email_verified,
    mfa_enabled: user.mfa_enabled,
    date_joined: user.date_joined.toISOString(),
    last_login: user.last_login?.toISOString() ?? null,
  }
}

function toAddressDto(row: AddressRow): AddressDto {
  return {
    id: row.id,
    full_name: row.full_name,
    line1: row.line1,
    line2: row.line2,
    city: row.city,
    region: row.region,
    postal_code: row.postal_code,
    country: row.country,
    phone: row.phone,
    is_default_shipping: row.is_default_shipping,
    is_default_billing: row.is_default_billing,
  }
}
