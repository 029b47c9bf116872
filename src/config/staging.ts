import type { EnvironmentProfile } from './profiles.js'
import { checkDeployable } from './production.js'

/** A deployed rehearsal of production: the same requirements, more logging. */
export const staging: EnvironmentProfile = {
  defaults: { EMAIL_BACKEND: 'smtp', LOG_FORMAT: 'json', LOG_LEVEL: 'debug' },
  overrides: { http: { enforceAllowedHosts: true } },
  check: checkDeployable,
}
