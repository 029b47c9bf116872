import type { Env } from './env.js'
import type { EnvironmentProfile } from './profiles.js'

const MIN_SERVICE_SECRET_LENGTH = 32
const MIN_SECRET_KEY_LENGTH = 50
const serviceSecrets = ['SERVICE_AUTH_SECRET_DJANGO_BACKEND', 'SERVICE_AUTH_SECRET_API_GATEWAY', 'SERVICE_AUTH_SECRET_CELERY_WORKER'] as const

/**
 * What a deployed service must have. Every problem is listed, so one failed start tells the
 * operator everything to fix.
 */
export function checkDeployable(env: Env): string[] {
  const problems: string[] = []
  if (!env.SECRET_KEY) problems.push('SECRET_KEY is missing')
  else if (env.SECRET_KEY.length < MIN_SECRET_KEY_LENGTH || env.SECRET_KEY.startsWith('django-insecure-') || new Set(env.SECRET_KEY).size < 5) {
    problems.push(`SECRET_KEY is weak: use ${MIN_SECRET_KEY_LENGTH}+ random characters, not a django-insecure- key`)
  }
  if (!env.ALLOWED_HOSTS) problems.push('ALLOWED_HOSTS is missing')
  if (!env.DATABASE_URL && !env.DB_NAME && !env.DB_HOST) problems.push('a database is missing: set DATABASE_URL (or DB_ENGINE, DB_NAME, DB_USER, DB_PASSWORD, DB_HOST, DB_PORT)')
  for (const name of ['REDIS_URL', 'CELERY_BROKER_URL', 'CELERY_RESULT_BACKEND'] as const) {
    if (!env[name]) problems.push(`${name} is missing`)
  }
  for (const name of serviceSecrets) {
    const value = env[name]
    if (!value) problems.push(`${name} is missing`)
    else if (value.length < MIN_SERVICE_SECRET_LENGTH) problems.push(`${name} is weak: it needs at least ${MIN_SERVICE_SECRET_LENGTH} characters`)
  }
  if (env.STRIPE_SECRET_KEY && !env.STRIPE_WEBHOOK_SECRET) problems.push('STRIPE_WEBHOOK_SECRET is missing: without it Stripe webhooks cannot be verified and paid orders stay unpaid')
  if (env.WEBHOOK_ALLOW_PRIVATE) problems.push('WEBHOOK_ALLOW_PRIVATE must be off: outgoing webhooks could be pointed at the private network the shop runs in')
  if (env.DEBUG) problems.push('DEBUG must be off')
  return problems
}

export const production: EnvironmentProfile = {
  defaults: { EMAIL_BACKEND: 'smtp', LOG_FORMAT: 'json' },
  overrides: { http: { enforceAllowedHosts: true } },
  check: checkDeployable,
}
