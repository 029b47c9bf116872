import type { Env } from './env.js'
import type { DeepPartial, Settings } from './settings.js'

/** What one environment changes: defaults for variables left unset, settings no variable controls, extra checks. */
export interface EnvironmentProfile {
  defaults: Partial<Env>
  overrides?: DeepPartial<Settings>
  /** Problems that stop the service from starting in this environment. */
  check?: (env: Env) => string[]
}
