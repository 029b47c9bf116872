/**
 * Every environment variable the service reads: name, type, default and a one-line description.
 * The names are the original Django service's, so an existing `.env` or Render config works as is.
 * README's configuration table is checked against this list by a test.
 */
import { Type, type Static, type TSchema } from 'typebox'
import { Value } from 'typebox/value'

const str = (description: string, options: { default?: string; group: string }) =>
  Type.Optional(Type.String({ description, ...options }))
const bool = (description: string, options: { default: boolean; group: string }) =>
  Type.Optional(Type.Boolean({ description, ...options }))
const int = (description: string, options: { default?: number; minimum?: number; maximum?: number; group: string }) =>
  Type.Optional(Type.Integer({ description, minimum: 0, ...options }))

const general = { group: 'General' }
const http = { group: 'HTTP' }
const db = { group: 'Database' }
const redis = { group: 'Cache and tasks' }
const integrations = { group: 'Integrations' }
const email = { group: 'Email' }
const observability = { group: 'Observability' }
const vault = { group: 'Vault' }
const security = { group: 'Security' }
const accounts = { group: 'Accounts' }
const commerce = { group: 'Cart and orders' }
const webhooks = { group: 'Webhooks' }
const analytics = { group: 'Analytics' }

export const EnvSchema = Type.Object({
  ENVIRONMENT: str('development, staging, production, test or e2e (aliases: dev, prod, tests, e2e_test)', general),
  DJANGO_SETTINGS_MODULE: str('config.settings.<name> selects the environment like ENVIRONMENT (compatibility)', general),
  PRODUCTION: bool('true selects production when neither ENVIRONMENT nor DJANGO_SETTINGS_MODULE is set (entrypoint)', { default: false, ...general }),
  SECRET_KEY: str('signing secret; production needs 50+ characters, not django-insecure-…', general),
  DEBUG: bool('500 answers carry the error message in detail (development default); refused in production', { default: false, ...general }),
  TIME_ZONE: str('IANA time zone of the shop (reports, days)', { default: 'UTC', ...general }),
  STORE_CURRENCY: str('ISO 4217 currency of every price (amounts are integer minor units)', { default: 'USD', ...general }),
  PRICES_INCLUDE_TAX: bool('catalog prices include tax (VAT style) rather than tax being added at checkout', { default: false, ...commerce }),
  ORDER_RESERVATION_MINUTES: int('minutes an unpaid order holds its stock before it is cancelled', { default: 30, minimum: 1, ...commerce }),
  CART_EXPIRY_DAYS: int('days of inactivity after which an open cart expires', { default: 30, minimum: 1, ...commerce }),
  LOG_LEVEL: str('fatal, error, warn, info, debug, trace or silent', { default: 'info', ...observability }),
  LOG_FORMAT: str('json or pretty (pretty is the development default)', { default: 'json', ...observability }),

  PORT: int('port the API listens on', { default: 8000, maximum: 65535, ...http }),
  PUBLIC_URL: str("the API's public base URL, for links to routes of its own (one-click unsubscribe in marketing email)", { default: 'http://localhost:8000', ...http }),
  HOST: str('address the API binds to', { default: '0.0.0.0', ...http }),
  ALLOWED_HOSTS: str('comma-separated host names the API answers to (".example.com" matches subdomains, "*" any); enforced in staging and production', http),
  TRUST_PROXY: str('true, false, a hop count or comma-separated proxy addresses: whose X-Forwarded-* to believe', { default: 'false', ...http }),
  DATA_UPLOAD_MAX_MEMORY_SIZE: int('largest request body in bytes (413 above it)', { default: 2_621_440, minimum: 1024, ...http }),
  SHUTDOWN_TIMEOUT_SECONDS: int('how long SIGTERM waits for in-flight requests before exiting', { default: 10, minimum: 1, ...http }),
  API_DOCS_ENABLED: bool('serve /api/docs/ and /api/schema/', { default: true, ...http }),
  METRICS_TOKEN: str('when set, /metrics/ requires "Authorization: Bearer <token>"', http),
  HEALTH_CHECK_TIMEOUT_MS: int('time each health check may take before it counts as failed', { default: 1000, minimum: 10, ...http }),
  IDEMPOTENCY_TTL_HOURS: int('how long an Idempotency-Key and its response are kept', { default: 24, minimum: 1, ...http }),
  RATE_LIMIT_ENABLED: bool('apply rate limits', { default: true, ...http }),
  RATE_LIMIT_GLOBAL: str('per-IP limit on every route, "<count>/<second|minute|hour|day>"', { default: '600/minute', ...http }),
  RATE_LIMIT_AUTH: str('per-IP limit on each sign-in, registration and token route', { default: '30/minute', ...http }),
  RATE_LIMIT_AUTH_ACCOUNT: str('per-account limit on sign-in attempts (brute force)', { default: '10/minute', ...http }),
  RATE_LIMIT_PASSWORD_RESET: str('per-IP limit on password reset requests', { default: '10/hour', ...http }),
  RATE_LIMIT_PASSWORD_RESET_ACCOUNT: str('per-account limit on password reset requests', { default: '3/hour', ...http }),
  RATE_LIMIT_ANALYTICS: str('per-IP (and per-session) limit on analytics ingestion', { default: '300/minute', ...http }),

  DATABASE_URL: str('postgres://user:password@host:port/name; wins over DB_*', db),
  DB_ENGINE: str('django.db.backends.postgresql (the only engine accepted)', db),
  DB_NAME: str('database name (with DB_HOST etc. when DATABASE_URL is unset)', db),
  DB_USER: str('database user', db),
  DB_PASSWORD: str('database password', db),
  DB_HOST: str('database host', db),
  DB_PORT: int('database port', { default: 5432, maximum: 65535, ...db }),
  DB_POOL_MAX: int('connections per API process', { default: 10, minimum: 1, ...db }),
  DB_STATEMENT_TIMEOUT_MS: int('statement timeout for API queries (0 = none)', { default: 30_000, ...db }),
  PGLITE_DATA_DIR: str('embedded PGlite directory when no database is configured ("memory" keeps nothing); relative paths here and below start at the project root', { default: '.data/pglite', ...db }),
  MIGRATE_ON_START: bool('apply pending migrations when the server starts (development default)', { default: false, ...db }),
  RUN_MIGRATIONS: bool("the original entrypoint's switch: true also applies migrations at start", { default: false, ...db }),
  SEED_DEMO_ON_START: bool('seed the demo catalog into an empty database at start (development default)', { default: false, ...db }),

  REDIS_URL: str('redis://[:password@]host:port/db for cache and rate limits; memory when unset', redis),
  CACHE_KEY_PREFIX: str('prefix of every cache and rate-limit key', { default: 'shop:', ...redis }),
  CELERY_BROKER_URL: str('Redis URL of the task broker; in-process tasks when unset', redis),
  CELERY_RESULT_BACKEND: str('Redis URL for task results', redis),
  WORKER_CONCURRENCY: int('jobs one worker process runs at once per queue (npm run worker --concurrency)', { default: 4, minimum: 1, maximum: 256, ...redis }),
  WORKER_QUEUES: str('queues a worker listens to, comma separated (npm run worker --queues)', { default: 'high,default,low', ...redis }),
  WORKER_METRICS_PORT: int('port where npm run worker serves /metrics/ (task runs and durations of that process); 0 = none', { default: 0, maximum: 65535, ...redis }),
  WORKER_LOCK_SECONDS: int("a running job's lock: a dead worker's jobs go to another worker after this long", { default: 30, minimum: 1, ...redis }),
  ELASTICSEARCH_URL: str('OpenSearch URL; PostgreSQL full-text search when unset', integrations),
  ANALYTICS_RETENTION_DAYS: int('days raw analytics events are kept (daily rollups stay)', { default: 90, minimum: 1, ...analytics }),
  ANALYTICS_LIVE_CACHE_SECONDS: int('each API process reuses a dashboard or sales-report answer for this long (today and low stock may lag by as much; a new rollup shows at once); 0 = computed for every request', { default: 10, minimum: 0, maximum: 3_600, ...analytics }),
  LOW_STOCK_THRESHOLD: int("the analytics dashboard lists variants for sale with this many or fewer units available", { default: 5, minimum: 0, ...analytics }),
  WEBHOOK_LOG_DAYS: int('days finished outgoing webhook deliveries stay in the delivery log', { default: 30, minimum: 1, ...webhooks }),
  WEBHOOK_ALLOW_PRIVATE: bool('let outgoing webhooks reach private, loopback and link-local addresses (local development and tests only; refused in production)', { default: false, ...webhooks }),

  STRIPE_SECRET_KEY: str('Stripe secret key; the built-in dummy provider when unset', integrations),
  STRIPE_PUBLISHABLE_KEY: str('Stripe publishable key returned to clients', integrations),
  STRIPE_WEBHOOK_SECRET: str('whsec_… used to verify /api/payments/webhook/', integrations),
  STRIPE_API_BASE: str('another base URL for the Stripe API (a local stand-in)', integrations),
  USE_S3: bool('store media and static files in S3', { default: false, ...integrations }),
  USE_CDN: bool('serve media and static URLs from CDN_DOMAIN', { default: false, ...integrations }),
  AWS_ACCESS_KEY_ID: str('S3 access key', integrations),
  AWS_SECRET_ACCESS_KEY: str('S3 secret key', integrations),
  AWS_STORAGE_BUCKET_NAME: str('S3 bucket', integrations),
  AWS_S3_REGION_NAME: str('S3 region', { default: 'us-east-1', ...integrations }),
  AWS_S3_ENDPOINT_URL: str('S3-compatible endpoint (MinIO, a local server)', integrations),
  CDN_DOMAIN: str('CDN host name for media and static URLs', integrations),
  MEDIA_ROOT: str('local directory for uploaded media', { default: '.data/media', ...integrations }),
  MEDIA_URL: str('URL prefix of local media', { default: '/media/', ...integrations }),
  MEDIA_MAX_UPLOAD_BYTES: int('largest image upload in bytes (413 above it)', { default: 10_485_760, minimum: 1024, ...integrations }),
  STATIC_ROOT: str('directory collectstatic writes to', { default: '.data/static', ...integrations }),
  STATIC_URL: str('URL prefix of static files', { default: '/static/', ...integrations }),
  COLLECT_STATIC: bool("the original entrypoint's switch to run collectstatic before starting", { default: false, ...integrations }),

  EMAIL_BACKEND: str('console, smtp, file or memory (Django dotted names accepted); smtp in production, console otherwise', email),
  EMAIL_HOST: str('SMTP host', { default: 'localhost', ...email }),
  EMAIL_PORT: int('SMTP port', { default: 25, maximum: 65535, ...email }),
  EMAIL_USE_TLS: bool('STARTTLS', { default: false, ...email }),
  EMAIL_USE_SSL: bool('implicit TLS (port 465)', { default: false, ...email }),
  EMAIL_HOST_USER: str('SMTP user', email),
  EMAIL_HOST_PASSWORD: str('SMTP password', email),
  EMAIL_TIMEOUT: int('SMTP timeout in seconds', { default: 10, minimum: 1, ...email }),
  EMAIL_FILE_PATH: str('directory the file backend writes .eml files to', { default: '.data/emails', ...email }),
  DEFAULT_FROM_EMAIL: str('From address', { default: 'Shop <no-reply@localhost>', ...email }),
  EMAIL_TEMPLATES_DIR: str('directory of the email templates: a copy of templates/email/ with your wording', { default: 'templates/email', ...email }),

  SENTRY_DSN: str('Sentry DSN; errors are reported when set', observability),
  JAEGER_AGENT_HOST: str('Jaeger host; traces are sent over OTLP when set', observability),
  JAEGER_AGENT_PORT: int('Jaeger OTLP/HTTP port', { default: 4318, maximum: 65535, ...observability }),
  OTEL_SERVICE_NAME: str('service name on traces', { default: 'django-backend', ...observability }),
  OTEL_EXPORTER_OTLP_ENDPOINT: str('OTLP endpoint; wins over JAEGER_AGENT_*', observability),

  USE_VAULT: bool('read secrets from HashiCorp Vault (AppRole) at start', { default: false, ...vault }),
  VAULT_ADDR: str('Vault address', vault),
  VAULT_ROLE_ID: str('AppRole role id', vault),
  VAULT_SECRET_ID: str('AppRole secret id', vault),
  VAULT_TOKEN: str('accepted for compatibility and not needed: the service logs in with AppRole', vault),
  VAULT_KV_MOUNT: str('KV v2 mount', { default: 'secret', ...vault }),
  VAULT_SECRET_PATH: str('KV v2 path whose keys become environment variables', { default: 'django-backend', ...vault }),

  SERVICE_AUTH_SECRET_DJANGO_BACKEND: str('HS256 secret of this service (32+ characters)', security),
  SERVICE_AUTH_SECRET_API_GATEWAY: str('HS256 secret of the API gateway (32+ characters)', security),
  SERVICE_AUTH_SECRET_CELERY_WORKER: str('HS256 secret of the task workers (32+ characters)', security),
  SERVICE_AUTH_ALGORITHM: str('HS256 (the per-service secrets) or RS256, ES256, EdDSA (the keys of SERVICE_AUTH_KEYS)', { default: 'HS256', ...security }),
  SERVICE_AUTH_KEYS: str('asymmetric service keys, a JSON array of {kid, service, public_key, private_key?} (PEM); the first key of a service with a private key signs', security),
  SERVICE_TOKEN_LIFETIME_SECONDS: int('lifetime of the service tokens this service issues', { default: 300, minimum: 10, ...security }),
  CORS_ALLOWED_ORIGINS: str('comma-separated origins allowed by CORS', security),
  CORS_ALLOW_ALL_ORIGINS: bool('allow any origin (development default)', { default: false, ...security }),
  CSRF_TRUSTED_ORIGINS: str('comma-separated origins; accepted for compatibility (the API authenticates with bearer tokens, not cookies)', security),

  ACCESS_TOKEN_LIFETIME_MINUTES: int('lifetime of users\' access tokens', { default: 15, minimum: 1, ...accounts }),
  REFRESH_TOKEN_LIFETIME_DAYS: int('lifetime of refresh tokens (each use rotates them)', { default: 14, minimum: 1, ...accounts }),
  JWT_SIGNING_KEY: str('HS256 key for users\' tokens (32+ characters); derived from SECRET_KEY when unset', accounts),
  JWT_ISSUER: str('iss of users\' tokens', { default: 'shop-backend', ...accounts }),
  JWT_AUDIENCE: str('aud of users\' tokens', { default: 'shop-api', ...accounts }),
  PASSWORD_MIN_LENGTH: int('shortest password accepted', { default: 10, minimum: 8, ...accounts }),
  EMAIL_VERIFICATION_TOKEN_HOURS: int('how long an email verification link works', { default: 48, minimum: 1, ...accounts }),
  PASSWORD_RESET_TOKEN_MINUTES: int('how long a password reset link works', { default: 60, minimum: 5, ...accounts }),
  REQUIRE_STAFF_MFA: bool('staff and admin routes need a session signed in with two-factor authentication', { default: false, ...accounts }),
  FRONTEND_URL: str('base URL of the shop front end, for links in emails', { default: 'http://localhost:3000', ...accounts }),
  SHOP_NAME: str('shop name in emails and authenticator apps', { default: 'Shop', ...accounts }),
  DJANGO_SUPERUSER_EMAIL: str('email for `manage createsuperuser` without arguments', accounts),
  DJANGO_SUPERUSER_PASSWORD: str('password for `manage createsuperuser` without arguments', accounts),
})

export type Env = Static<typeof EnvSchema>
export type EnvName = keyof Env
export const envNames = Object.keys(EnvSchema.properties) as EnvName[]

export interface EnvParseResult {
  env: Env
  problems: string[]
}

const TRUE = new Set(['1', 'true', 'yes', 'on', 't', 'y'])
const FALSE = new Set(['0', 'false', 'no', 'off', 'f', 'n'])

/**
 * Reads the known variables out of a raw environment, converting booleans (Django's spellings:
 * True, yes, 1, ...) and integers. Empty strings count as unset. Unknown variables are ignored.
 */
export function parseEnv(raw: Record<string, string | undefined>): EnvParseResult {
  const env: Record<string, unknown> = {}
  const problems: string[] = []
  for (const name of envNames) {
    const schema = EnvSchema.properties[name] as TSchema & { type?: string; default?: unknown }
    const text = raw[name]?.trim()
    if (text === undefined || text === '') {
      if (schema.default !== undefined) env[name] = schema.default
      continue
    }
    const value = convert(schema.type, text)
    if (value === undefined || !Value.Check(schema, value)) {
      problems.push(`${name}: ${describeExpected(schema)}, got "${text}"`)
      continue
    }
    env[name] = value
  }
  return { env: env as Env, problems }
}

function convert(type: string | undefined, text: string): unknown {
  if (type === 'boolean') {
    const lower = text.toLowerCase()
    return TRUE.has(lower) ? true : FALSE.has(lower) ? false : undefined
  }
  if (type === 'integer') return /^-?\d+$/.test(text) ? Number(text) : undefined
  return text
}

function describeExpected(schema: TSchema & { type?: string; minimum?: number; maximum?: number }): string {
  if (schema.type === 'boolean') return 'expected true or false'
  if (schema.type === 'integer') {
    const range = schema.maximum !== undefined ? ` from ${schema.minimum ?? 0} to ${schema.maximum}` : ` of at least ${schema.minimum ?? 0}`
    return `expected a whole number${range}`
  }
  return 'invalid value'
}
