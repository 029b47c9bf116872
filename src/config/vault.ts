/**
 * The configuration side of USE_VAULT: what a raw environment says about logging in to Vault, and
 * how the keys of the Vault secret join the environment before loadSettings validates it.
 *
 * Precedence, highest first: a variable set (non-blank) in the real environment, then the Vault
 * secret, then `.env`, then the environment profile's defaults. Vault therefore replaces what a
 * stale `.env` says, while an operator can still pin one value from outside.
 */
import { envNames, parseEnv, type EnvName } from './env.js'
import { ConfigError, selectEnvironment } from './index.js'

type RawEnv = Record<string, string | undefined>

/** The real environment and `.env` kept apart, so Vault can go between them. */
export interface EnvLayers {
  environment: RawEnv
  dotEnv: RawEnv
}

export interface VaultSource {
  addr: string
  roleId: string
  secretId: string
  kvMount: string
  secretPath: string
}

const LOGIN_NAMES = ['VAULT_ADDR', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID'] as const

/**
 * Where to log in and what to read when USE_VAULT is on, else null.
 * @throws ConfigError naming every missing or malformed Vault variable
 */
export function vaultSourceOf(raw: RawEnv): VaultSource | null {
  const { env } = parseEnv(raw)
  if (env.USE_VAULT !== true) return null
  const problems: string[] = []
  const missing = LOGIN_NAMES.filter((name) => !env[name])
  if (missing.length > 0) {
    // The original entrypoint checked VAULT_TOKEN, which the client never used: say so.
    const token = env.VAULT_TOKEN ? ' (VAULT_TOKEN is not enough: the service logs in with AppRole)' : ''
    problems.push(`USE_VAULT is on but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing${token}`)
  }
  if (env.VAULT_ADDR && !/^https?:\/\/[^/]+/i.test(env.VAULT_ADDR)) problems.push(`VAULT_ADDR: expected an http(s) URL, got "${env.VAULT_ADDR}"`)
  if (problems.length > 0) throw new ConfigError(selectEnvironment(raw).environment, problems)
  return { addr: env.VAULT_ADDR!, roleId: env.VAULT_ROLE_ID!, secretId: env.VAULT_SECRET_ID!, kvMount: env.VAULT_KV_MOUNT!, secretPath: env.VAULT_SECRET_PATH! }
}

/** Variables a Vault secret may not set: they chose this very secret and login. */
const NOT_FROM_VAULT = new Set<string>(['USE_VAULT', 'VAULT_ADDR', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID', 'VAULT_TOKEN', 'VAULT_KV_MOUNT', 'VAULT_SECRET_PATH'])
const KNOWN = new Set<string>(envNames)

export interface WithVaultSecrets {
  /** The raw environment to validate. */
  raw: RawEnv
  /** Known variables the secret supplied (names only). */
  applied: EnvName[]
  /** Of those, the ones a real environment variable overrides. */
  overridden: EnvName[]
  /** Secret keys that are not settings, Vault's own variables, or not text: left out, names only. */
  ignored: string[]
}

/** The layers and a Vault secret combined by the precedence above. */
export function withVaultSecrets(layers: EnvLayers, secret: Record<string, unknown>): WithVaultSecrets {
  const fromVault: RawEnv = {}
  const applied: EnvName[] = []
  const ignored: string[] = []
  for (const [key, value] of Object.entries(secret)) {
    const text = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : null
    if (!KNOWN.has(key) || NOT_FROM_VAULT.has(key) || text === null) {
      ignored.push(key)
      continue
    }
    fromVault[key] = text
    applied.push(key as EnvName)
  }
  // Blank means unset (as loadSettings reads it), so a blank variable does not hide Vault's value.
  const setInEnvironment = Object.fromEntries(Object.entries(layers.environment).filter(([, value]) => value !== undefined && value.trim() !== ''))
  const overridden = applied.filter((name) => name in setInEnvironment)
  return { raw: { ...layers.dotEnv, ...fromVault, ...setInEnvironment }, applied, overridden, ignored: ignored.sort() }
}
