/**
 * Settings of a process with USE_VAULT: log in with AppRole, read the KV v2 secret, put its keys
 * into the raw environment (precedence in config/vault.ts), then validate as always. A Vault that
 * refuses the login or the read is a configuration the process cannot run with: ConfigError.
 */
import { ConfigError, EXIT_CONFIG, loadSettings, processEnvLayers, selectEnvironment, type Settings } from '../config/index.js'
import type { DeepPartial } from '../config/settings.js'
import { vaultSourceOf, withVaultSecrets, type EnvLayers, type VaultSource } from '../config/vault.js'
import type { Logger } from './logging.js'
import { createVaultClient, startTokenRenewal, VaultError, type VaultClient } from './vault.js'

/** The logged-in client of a process that read its settings from Vault, and what the secret gave. */
export interface VaultSession {
  client: VaultClient
  source: Pick<VaultSource, 'addr' | 'kvMount' | 'secretPath'>
  applied: string[]
  overridden: string[]
  ignored: string[]
}

export interface SettingsWithVault {
  settings: Settings
  /** null when USE_VAULT is off. */
  vault: VaultSession | null
}

/**
 * Validated settings from the layers, with the Vault secret between them when USE_VAULT is on.
 * @throws ConfigError for missing Vault variables, a failed login or read, or invalid settings
 */
export async function loadSettingsWithVault(
  layers: EnvLayers,
  overrides: DeepPartial<Settings> = {},
  options: { timeoutMs?: number } = {},
): Promise<SettingsWithVault> {
  const raw = { ...layers.dotEnv, ...layers.environment }
  const source = vaultSourceOf(raw)
  if (!source) return { settings: loadSettings(raw, overrides), vault: null }

  const client = createVaultClient({ addr: source.addr, roleId: source.roleId, secretId: source.secretId, timeoutMs: options.timeoutMs })
  let secret: Record<string, unknown>
  try {
    await client.login()
    secret = await client.readSecret(source.kvMount, source.secretPath)
  } catch (err) {
    if (!(err instanceof VaultError)) throw err
    throw new ConfigError(selectEnvironment(raw).environment, [err.message])
  }
  const merged = withVaultSecrets(layers, secret)
  const settings = loadSettings(merged.raw, overrides)
  return {
    settings,
    vault: { client, source: { addr: client.addr, kvMount: source.kvMount, secretPath: source.secretPath }, applied: merged.applied, overridden: merged.overridden, ignored: merged.ignored },
  }
}

/** The settings of this process: its environment over `.env`, with Vault between them when on. */
export function loadProcessSettingsWithVault(overrides: DeepPartial<Settings> = {}): Promise<SettingsWithVault> {
  return loadSettingsWithVault(processEnvLayers(), overrides)
}

/**
 * The settings of an entry point (server, worker, beat). A bad configuration, a refused Vault
 * login included, ends the process with one clear message naming every problem and exit code 78,
 * before anything starts; a stack trace would only hide it.
 */
export async function loadProcessSettingsWithVaultOrExit(overrides: DeepPartial<Settings> = {}): Promise<SettingsWithVault> {
  try {
    return await loadProcessSettingsWithVault(overrides)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`${err.message}\n`)
    return process.exit(EXIT_CONFIG)
  }
}

/**
 * For a long-running process: says what Vault supplied (names, never values) and keeps the token
 * renewed until `stop()` (graceful shutdown).
 */
export function keepVaultSessionAlive(session: VaultSession, log: Logger): { stop(): void } {
  const { addr, kvMount, secretPath } = session.source
  log.info({ vault_addr: addr, secret: `${kvMount}/${secretPath}`, applied: session.applied, overridden: session.overridden }, 'settings read from Vault')
  if (session.ignored.length > 0) {
    log.warn({ keys: session.ignored }, 'vault: secret keys that are not settings (or are Vault variables or not text) were ignored')
  }
  return startTokenRenewal(session.client, log)
}
