import { sql } from 'drizzle-orm'
import { boolean, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

export const roles = ['customer', 'staff', 'admin'] as const

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** As the user typed it; uniqueness ignores case (index below). */
    email: text('email').notNull(),
    first_name: text('first_name').notNull().default(''),
    last_name: text('last_name').notNull().default(''),
    role: text('role', { enum: roles }).notNull().default('customer'),
    is_active: boolean('is_active').notNull().default(true),
    email_verified: boolean('email_verified').notNull().default(false),
    password_hash: text('password_hash').notNull(),
    /** TOTP secret, encrypted (see mfa.ts); pending until the first code confirms it. */
    mfa_secret: text('mfa_secret'),
    mfa_pending_secret: text('mfa_pending_secret'),
    mfa_enabled: boolean('mfa_enabled').notNull().default(false),
    /** Last TOTP time step accepted: a code is never accepted twice. */
    mfa_last_step: integer('mfa_last_step'),
    /** Carried by access tokens as `ver`; raised to refuse every token issued so far (password reset or change, deactivation). */
    token_version: integer('token_version').notNull().default(0),
    date_joined: timestamp('date_joined', { withTimezone: true }).notNull().defaultNow(),
    last_login: timestamp('last_login', { withTimezone: true }),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('users_email_lower_idx').on(sql`lower(${table.email})`),
    index('users_role_idx').on(table.role),
    index('users_date_joined_idx').on(table.date_joined, table.id),
  ],
)

export const addresses = pgTable(
  'user_addresses',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    user_id: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    full_name: text('full_name').notNull(),
    line1: text('line1').notNull(),
    line2: text('line2').notNull().default(''),
    city: text('city').notNull(),
    region: text('region').notNull().default(''),
    postal_code: text('postal_code').notNull().default(''),
    /** ISO 3166-1 alpha-2. */
    country: text('country').notNull(),
    phone: text('phone').notNull().default(''),
    is_default_shipping: boolean('is_default_shipping').notNull().default(false),
    is_default_billing: boolean('is_default_billing').notNull().default(false),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('user_addresses_user_idx').on(table.user_id, table.created_at)],
)

/** Refresh tokens, stored as SHA-256 hashes. A family is one sign-in; every refresh rotates within it. */
export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    user_id: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    family_id: uuid('family_id').notNull(),
    token_hash: text('token_hash').notNull().unique(),
    mfa: boolean('mfa').notNull().default(false),
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** Set when exchanged for a new token: presenting it again is reuse. */
    used_at: timestamp('used_at', { withTimezone: true }),
    revoked_at: timestamp('revoked_at', { withTimezone: true }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('refresh_tokens_family_idx').on(table.family_id), index('refresh_tokens_user_idx').on(table.user_id)],
)

export const tokenPurposes = ['verify_email', 'password_reset'] as const

/** Single-use tokens sent by email, stored as SHA-256 hashes. */
export const oneTimeTokens = pgTable(
  'one_time_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    user_id: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    purpose: text('purpose', { enum: tokenPurposes }).notNull(),
    token_hash: text('token_hash').notNull().unique(),
    expires_at: timestamp('expires_at', { withTimezone: true }).notNull(),
    used_at: timestamp('used_at', { withTimezone: true }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('one_time_tokens_user_idx').on(table.user_id, table.purpose)],
)

export const recoveryCodes = pgTable(
  'mfa_recovery_codes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    user_id: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    code_hash: text('code_hash').notNull(),
    used_at: timestamp('used_at', { withTimezone: true }),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('mfa_recovery_codes_user_idx').on(table.user_id)],
)
