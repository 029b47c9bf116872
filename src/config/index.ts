/**
 * loadSettings: the one place that reads the environment. Picks the environment (ENVIRONMENT or
 * DJANGO_SETTINGS_MODULE), applies its defaults under the given variables, validates everything and
 * throws one ConfigError that lists every problem.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseDotEnv } from 'dotenv'
import { buildSettings } from './base.js'
import { development } from './development.js'
import { e2e } from './e2e.js'
import { parseEnv } from './env.js'
import { projectRoot } from './paths.js'
import { production } from './production.js'
import type { EnvironmentProfile } from './profiles.js'
import { environments, type DeepPartial, type Environment, type Settings } from './settings.js'
import { staging } from './staging.js'
import { test } from './test.js'

export type { Settings, Environment } from './settings.js'
export { environments } from './settings.js'
export { projectRoot } from './paths.js'

const profiles: Record<Environment, EnvironmentProfile> = { development, staging, production, test, e2e }

const ALIASES: Record<string, Environment> = { dev: 'development', prod: 'production', tests: 'test', e2e_test: 'e2e' }

export class ConfigError extends Error {
  constructor(
    readonly environment: string,
    readonly problems: string[],
  ) {
    super(`Configuration for ${environment} is invalid:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

type RawEnv = Record<string, string | undefined>

/** Which environment a raw environment asks for, or a problem. */
export function selectEnvironment(raw: RawEnv): { environment: Environment; problem?: string } {
  const module = raw.DJANGO_SETTINGS_MODULE?.trim()
  if (module && module !== 'config.settings') {
    const match = /^config\.settings\.(\w+)$/.exec(module)
    const name = match && normalise(match[1]!)
    if (name) return { environment: name }
    return { environment: 'development', problem: `DJANGO_SETTINGS_MODULE: expected config.settings.<${environments.join('|')}>, got "${module}"` }
  }
  const requested = raw.ENVIRONMENT?.trim()
  if (requested) {
    const name = normalise(requested)
    if (name) return { environment: name }
    return { environment: 'development', problem: `ENVIRONMENT: expected one of ${environments.join(', ')}, got "${requested}"` }
  }
  if (/^(1|true|yes|on)$/i.test(raw.PRODUCTION?.trim() ?? '')) return { environment: 'production' }
  return { environment: 'development' }
}

function normalise(name: string): Environment | null {
  const lower = name.toLowerCase()
  if ((environments as readonly string[]).includes(lower)) return lower as Environment
  return ALIASES[lower] ?? null
}

/**
 * Validated, frozen settings from a raw environment. `overrides` (tests, tools) are merged last.
 * @throws ConfigError naming every problem
 */
export function loadSettings(raw: RawEnv, overrides: DeepPartial<Settings> = {}): Settings {
  const selected = selectEnvironment(raw)
  const profile = profiles[selected.environment]
  const withDefaults: RawEnv = { ...stringify(profile.defaults), ...withoutEmpty(raw) }
  const { env, problems } = parseEnv(withDefaults)
  if (selected.problem) problems.unshift(selected.problem)
  const built = buildSettings(env, selected.environment)
  problems.push(...built.problems, ...(profile.check?.(env) ?? []))
  if (problems.length > 0) throw new ConfigError(selected.environment, problems)
  return deepFreeze(deepMerge(deepMerge(built.settings, profile.overrides ?? {}), overrides))
}

/**
 * EX_CONFIG of sysexits.h: what the entry points exit with for a configuration they cannot run.
 * The entry points load their settings through core/vault-settings.ts (USE_VAULT needs a login
 * before validation, so it is async and lives beside the Vault client).
 */
export const EXIT_CONFIG = 78

/** `dir/.env` (when present) under the given variables: a real environment variable always wins. */
export function withDotEnv(dir: string, env: RawEnv): RawEnv {
  return { ...readDotEnv(dir), ...env }
}

/**
 * This process's environment and the project's `.env`, kept apart for a source that goes between
 * them (Vault: see config/vault.ts).
 */
export function processEnvLayers(): { environment: RawEnv; dotEnv: RawEnv } {
  return { environment: { ...process.env }, dotEnv: readDotEnv(projectRoot) }
}

function readDotEnv(dir: string): RawEnv {
  const file = join(dir, '.env')
  return existsSync(file) ? parseDotEnv(readFileSync(file)) : {}
}

function stringify(values: object): RawEnv {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, String(value)]))
}

function withoutEmpty(raw: RawEnv): RawEnv {
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined && value.trim() !== ''))
}

/** Objects merge key by key; arrays and everything else are replaced. */
export function deepMerge<T>(base: T, patch: DeepPartial<T>): T {
  if (!isPlainObject(base) || !isPlainObject(patch)) return (patch === undefined ? base : patch) as T
  const result: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue
    result[key] = isPlainObject(value) && isPlainObject(result[key]) ? deepMerge(result[key], value as never) : value
  }
  return result as T
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}
