import type { EnvironmentProfile } from './profiles.js'

/** End-to-end runs against a started server: emails to files a test can read, migrations applied. */
export const e2e: EnvironmentProfile = {
  defaults: {
    SECRET_KEY: 'e2e-secret-key-that-is-long-enough-for-every-signing-purpose-0123456789',
    EMAIL_BACKEND: 'file',
    MIGRATE_ON_START: true,
    RATE_LIMIT_GLOBAL: '100000/minute',
    RATE_LIMIT_AUTH: '1000/minute',
    RATE_LIMIT_AUTH_ACCOUNT: '1000/minute',
    RATE_LIMIT_PASSWORD_RESET: '1000/minute',
    RATE_LIMIT_PASSWORD_RESET_ACCOUNT: '1000/minute',
  },
}
