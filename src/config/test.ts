import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EnvironmentProfile } from './profiles.js'

/** The automated tests: in-memory everything, silent logs, fast retries, generous rate limits. */
export const test: EnvironmentProfile = {
  defaults: {
    SECRET_KEY: 'test-secret-key-that-is-long-enough-for-every-signing-purpose-0123456789',
    LOG_LEVEL: 'silent',
    EMAIL_BACKEND: 'memory',
    PGLITE_DATA_DIR: 'memory',
    // Uploads of a test run go to the system's temp directory, never into the checkout.
    MEDIA_ROOT: join(tmpdir(), `shop-test-media-${process.pid}`),
    MIGRATE_ON_START: true,
    RATE_LIMIT_GLOBAL: '100000/minute',
    RATE_LIMIT_AUTH: '1000/minute',
    RATE_LIMIT_AUTH_ACCOUNT: '1000/minute',
    RATE_LIMIT_PASSWORD_RESET: '1000/minute',
    RATE_LIMIT_PASSWORD_RESET_ACCOUNT: '1000/minute',
    RATE_LIMIT_ANALYTICS: '100000/minute',
  },
  // No timers that act on their own: tests flush the outbox and the analytics buffer when they mean to.
  // Reports compute live figures for every request (a test of their reuse turns it on).
  overrides: { queue: { backoffMs: 1, outboxPollMs: 0, periodicEveryMs: 0 }, analytics: { flushMs: 0, liveCacheMs: 0 } },
}
