import type { EnvironmentProfile } from './profiles.js'

/** Local work with nothing configured: embedded database, console email, pretty logs, demo data. */
export const development: EnvironmentProfile = {
  defaults: {
    DEBUG: true,
    SECRET_KEY: 'django-insecure-development-only-key-never-use-in-production',
    LOG_FORMAT: 'pretty',
    EMAIL_BACKEND: 'console',
    CORS_ALLOW_ALL_ORIGINS: true,
    MIGRATE_ON_START: true,
    SEED_DEMO_ON_START: true,
  },
}
