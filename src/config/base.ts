/** Turns the parsed variables into Settings, with the checks that hold in every environment. */
import { parseQueueNames, QUEUE_NAMES } from '../core/queue/routing.js'
import type { Env } from './env.js'
import { fromProjectRoot } from './paths.js'
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto'
import {
  serviceAuthAlgorithms,
  serviceNames,
  type DatabaseSettings,
  type EmailBackend,
  type Environment,
  type RateLimitRule,
  type ServiceAuthAlgorithm,
  type ServiceKey,
  type ServiceName,
  type Settings,
} from './settings.js'

const DJANGO_EMAIL_BACKENDS: Record<string, EmailBackend> = {
  'django.core.mail.backends.console.EmailBackend': 'console',
  'django.core.mail.backends.smtp.EmailBackend': 'smtp',
  'django.core.mail.backends.filebased.EmailBackend': 'file',
  'django.core.mail.backends.locmem.EmailBackend': 'memory',
  'django.core.mail.backends.dummy.EmailBackend': 'memory',
}
const EMAIL_BACKENDS = new Set<string>(['console', 'smtp', 'file', 'memory'])
const POSTGRES_ENGINES = new Set(['django.db.backends.postgresql', 'django.db.backends.postgresql_psycopg2', 'postgresql', 'postgres'])
const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
const WINDOW_MS = { second: 1_000, minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const

export function buildSettings(env: Env, environment: Environment): { settings: Settings; problems: string[] } {
  const problems: string[] = []
  const need = <T>(value: T | null, problem: string): T | null => {
    if (value === null) problems.push(problem)
    return value
  }

  const settings: Settings = {
    environment,
    debug: env.DEBUG ?? false,
    secretKey: env.SECRET_KEY ?? '',
    timeZone: need(timeZone(env.TIME_ZONE!), `TIME_ZONE: unknown time zone "${env.TIME_ZONE}"`) ?? 'UTC',
    currency: need(/^[A-Za-z]{3}$/.test(env.STORE_CURRENCY!) ? env.STORE_CURRENCY!.toUpperCase() : null, `STORE_CURRENCY: expected a three-letter ISO 4217 code, got "${env.STORE_CURRENCY}"`) ?? 'USD',
    commerce: {
      pricesIncludeTax: env.PRICES_INCLUDE_TAX!,
      orderReservationMinutes: env.ORDER_RESERVATION_MINUTES!,
      cartExpiryDays: env.CART_EXPIRY_DAYS!,
    },
    http: {
      host: env.HOST!,
      port: env.PORT!,
      publicUrl: httpUrl('PUBLIC_URL', env.PUBLIC_URL, problems) ?? 'http://localhost:8000',
      allowedHosts: list(env.ALLOWED_HOSTS),
      enforceAllowedHosts: false,
      trustProxy: trustProxy(env.TRUST_PROXY!),
      bodyLimit: env.DATA_UPLOAD_MAX_MEMORY_SIZE!,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_SECONDS! * 1000,
    },
    docs: { enabled: env.API_DOCS_ENABLED! },
    metrics: { token: env.METRICS_TOKEN ?? null },
    health: { timeoutMs: env.HEALTH_CHECK_TIMEOUT_MS! },
    idempotency: { ttlMs: env.IDEMPOTENCY_TTL_HOURS! * 3_600_000, lockTimeoutMs: 120_000 },
    rateLimit: {
      enabled: env.RATE_LIMIT_ENABLED!,
      global: rateRule('RATE_LIMIT_GLOBAL', env.RATE_LIMIT_GLOBAL!, problems),
      named: {
        auth: rateRule('RATE_LIMIT_AUTH', env.RATE_LIMIT_AUTH!, problems),
        auth_account: rateRule('RATE_LIMIT_AUTH_ACCOUNT', env.RATE_LIMIT_AUTH_ACCOUNT!, problems),
        password_reset: rateRule('RATE_LIMIT_PASSWORD_RESET', env.RATE_LIMIT_PASSWORD_RESET!, problems),
        password_reset_account: rateRule('RATE_LIMIT_PASSWORD_RESET_ACCOUNT', env.RATE_LIMIT_PASSWORD_RESET_ACCOUNT!, problems),
        analytics: rateRule('RATE_LIMIT_ANALYTICS', env.RATE_LIMIT_ANALYTICS!, problems),
      },
    },
    log: {
      level: need(LOG_LEVELS.has(env.LOG_LEVEL!) ? env.LOG_LEVEL! : null, `LOG_LEVEL: expected one of ${[...LOG_LEVELS].join(', ')}, got "${env.LOG_LEVEL}"`) ?? 'info',
      pretty: need(env.LOG_FORMAT === 'pretty' ? true : env.LOG_FORMAT === 'json' ? false : null, `LOG_FORMAT: expected json or pretty, got "${env.LOG_FORMAT}"`) ?? false,
    },
    db: { ...database(env, problems), migrateOnStart: env.MIGRATE_ON_START! || env.RUN_MIGRATIONS!, seedDemoOnStart: env.SEED_DEMO_ON_START! },
    cache: { redisUrl: redisUrl('REDIS_URL', env.REDIS_URL, problems), keyPrefix: env.CACHE_KEY_PREFIX! },
    queue: {
      brokerUrl: redisUrl('CELERY_BROKER_URL', env.CELERY_BROKER_URL, problems),
      resultBackend: redisUrl('CELERY_RESULT_BACKEND', env.CELERY_RESULT_BACKEND, problems),
      backoffMs: 1_000,
      defaultAttempts: 5,
      defaultTimeoutMs: 60_000,
      outboxPollMs: 5_000,
      enqueueTimeoutMs: 5_000,
      worker: { concurrency: env.WORKER_CONCURRENCY!, queues: queueNames(env.WORKER_QUEUES!, problems), lockDurationMs: env.WORKER_LOCK_SECONDS! * 1000, metricsPort: env.WORKER_METRICS_PORT! },
      periodicEveryMs: 5_000,
    },
    search: { url: httpUrl('ELASTICSEARCH_URL', env.ELASTICSEARCH_URL, problems) },
    stripe: {
      secretKey: env.STRIPE_SECRET_KEY ?? null,
      publishableKey: env.STRIPE_PUBLISHABLE_KEY ?? null,
      webhookSecret: env.STRIPE_WEBHOOK_SECRET ?? null,
      apiBase: httpUrl('STRIPE_API_BASE', env.STRIPE_API_BASE, problems),
    },
    analytics: { retentionDays: env.ANALYTICS_RETENTION_DAYS!, batchSize: 500, flushMs: 1_000, maxBuffered: 50_000, liveCacheMs: env.ANALYTICS_LIVE_CACHE_SECONDS! * 1000, lowStockThreshold: env.LOW_STOCK_THRESHOLD! },
    // 8 attempts 15 s × 4ⁿ apart: the last one about 23 hours after the first.
    webhooks: { logDays: env.WEBHOOK_LOG_DAYS!, allowPrivate: env.WEBHOOK_ALLOW_PRIVATE!, retryBaseMs: 15_000, maxAttempts: 8, timeoutMs: 10_000 },
    storage: {
      useS3: env.USE_S3!,
      useCdn: env.USE_CDN!,
      s3: {
        bucket: env.AWS_STORAGE_BUCKET_NAME ?? null,
        region: env.AWS_S3_REGION_NAME!,
        accessKeyId: env.AWS_ACCESS_KEY_ID ?? null,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? null,
        endpoint: httpUrl('AWS_S3_ENDPOINT_URL', env.AWS_S3_ENDPOINT_URL, problems),
      },
      cdnDomain: env.CDN_DOMAIN ?? null,
      mediaRoot: fromProjectRoot(env.MEDIA_ROOT!),
      mediaUrl: env.MEDIA_URL!,
      maxUploadBytes: env.MEDIA_MAX_UPLOAD_BYTES!,
      staticRoot: fromProjectRoot(env.STATIC_ROOT!),
      staticUrl: env.STATIC_URL!,
    },
    email: {
      backend: emailBackend(env.EMAIL_BACKEND ?? 'console', problems),
      host: env.EMAIL_HOST!,
      port: env.EMAIL_PORT!,
      useTls: env.EMAIL_USE_TLS!,
      useSsl: env.EMAIL_USE_SSL!,
      user: env.EMAIL_HOST_USER ?? null,
      password: env.EMAIL_HOST_PASSWORD ?? null,
      timeoutMs: env.EMAIL_TIMEOUT! * 1000,
      filePath: fromProjectRoot(env.EMAIL_FILE_PATH!),
      from: env.DEFAULT_FROM_EMAIL!,
      templatesDir: fromProjectRoot(env.EMAIL_TEMPLATES_DIR!),
    },
    observability: {
      sentryDsn: env.SENTRY_DSN ?? null,
      otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT ?? (env.JAEGER_AGENT_HOST ? `http://${env.JAEGER_AGENT_HOST}:${env.JAEGER_AGENT_PORT}` : null),
      serviceName: env.OTEL_SERVICE_NAME!,
    },
    vault: {
      enabled: env.USE_VAULT!,
      addr: httpUrl('VAULT_ADDR', env.VAULT_ADDR, problems),
      roleId: env.VAULT_ROLE_ID ?? null,
      secretId: env.VAULT_SECRET_ID ?? null,
      kvMount: env.VAULT_KV_MOUNT!,
      secretPath: env.VAULT_SECRET_PATH!,
    },
    serviceAuth: serviceAuth(env, problems),
    auth: {
      accessTtlSeconds: env.ACCESS_TOKEN_LIFETIME_MINUTES! * 60,
      refreshTtlSeconds: env.REFRESH_TOKEN_LIFETIME_DAYS! * 86_400,
      signingKey: userTokenKey(env, problems),
      issuer: env.JWT_ISSUER!,
      audience: env.JWT_AUDIENCE!,
      passwordMinLength: env.PASSWORD_MIN_LENGTH!,
      verifyEmailTtlMs: env.EMAIL_VERIFICATION_TOKEN_HOURS! * 3_600_000,
      passwordResetTtlMs: env.PASSWORD_RESET_TOKEN_MINUTES! * 60_000,
      requireStaffMfa: env.REQUIRE_STAFF_MFA!,
      frontendUrl: (httpUrl('FRONTEND_URL', env.FRONTEND_URL, problems) ?? 'http://localhost:3000'),
      shopName: env.SHOP_NAME!,
      superuser: { email: env.DJANGO_SUPERUSER_EMAIL ?? null, password: env.DJANGO_SUPERUSER_PASSWORD ?? null },
    },
    cors: {
      allowAll: env.CORS_ALLOW_ALL_ORIGINS!,
      allowedOrigins: origins('CORS_ALLOWED_ORIGINS', env.CORS_ALLOWED_ORIGINS, problems),
      csrfTrustedOrigins: origins('CSRF_TRUSTED_ORIGINS', env.CSRF_TRUSTED_ORIGINS, problems),
    },
  }

  if (settings.storage.useS3 && !settings.storage.s3.bucket) problems.push('USE_S3 is on but AWS_STORAGE_BUCKET_NAME is missing')
  if (settings.storage.useCdn && !settings.storage.cdnDomain) problems.push('USE_CDN is on but CDN_DOMAIN is missing')
  if (settings.vault.enabled) {
    for (const name of ['VAULT_ADDR', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID'] as const) {
      if (!env[name]) problems.push(`USE_VAULT is on but ${name} is missing`)
    }
  }
  return { settings, problems }
}

export function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter(Boolean)
}

function database(env: Env, problems: string[]): DatabaseSettings {
  const pool = { poolMax: env.DB_POOL_MAX!, statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS! }
  if (env.DB_ENGINE && !POSTGRES_ENGINES.has(env.DB_ENGINE)) {
    problems.push(`DB_ENGINE: only PostgreSQL is supported (django.db.backends.postgresql), got "${env.DB_ENGINE}"`)
  }
  if (env.DATABASE_URL) {
    const url = parseUrl(env.DATABASE_URL)
    if (!url || !['postgres:', 'postgresql:'].includes(url.protocol)) {
      problems.push('DATABASE_URL: expected a postgres:// or postgresql:// URL')
    }
    return { kind: 'postgres', url: env.DATABASE_URL, ...pool }
  }
  if (env.DB_NAME || env.DB_HOST) {
    const url = new URL('postgres://localhost')
    url.hostname = env.DB_HOST ?? 'localhost'
    url.port = String(env.DB_PORT)
    url.username = encodeURIComponent(env.DB_USER ?? 'postgres')
    url.password = encodeURIComponent(env.DB_PASSWORD ?? '')
    url.pathname = `/${encodeURIComponent(env.DB_NAME ?? 'postgres')}`
    return { kind: 'postgres', url: url.toString(), ...pool }
  }
  const dir = env.PGLITE_DATA_DIR!
  return { kind: 'pglite', dataDir: dir === 'memory' ? null : fromProjectRoot(dir) }
}

function emailBackend(name: string, problems: string[]): EmailBackend {
  const backend = DJANGO_EMAIL_BACKENDS[name] ?? name
  if (EMAIL_BACKENDS.has(backend)) return backend as EmailBackend
  problems.push(`EMAIL_BACKEND: expected console, smtp, file, memory or a Django backend name, got "${name}"`)
  return 'console'
}

/** "100/minute" → { max: 100, windowMs: 60000 } */
export function rateRule(name: string, text: string, problems: string[]): RateLimitRule {
  const match = /^(\d+)\s*\/\s*(second|minute|hour|day)$/.exec(text.trim())
  if (!match || Number(match[1]) < 1) {
    problems.push(`${name}: expected "<count>/<second|minute|hour|day>", got "${text}"`)
    return { max: 1, windowMs: 60_000 }
  }
  return { max: Number(match[1]), windowMs: WINDOW_MS[match[2] as keyof typeof WINDOW_MS] }
}

function trustProxy(text: string): boolean | number | string[] {
  const lower = text.toLowerCase()
  if (['true', '1', 'yes'].includes(lower)) return true
  if (['false', '0', 'no', ''].includes(lower)) return false
  if (/^\d+$/.test(text)) return Number(text)
  return list(text)
}

function timeZone(name: string): string | null {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name })
    return name
  } catch {
    return null
  }
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text)
  } catch {
    return null
  }
}

function redisUrl(name: string, text: string | undefined, problems: string[]): string | null {
  if (!text) return null
  const url = parseUrl(text)
  if (!url || !['redis:', 'rediss:'].includes(url.protocol)) problems.push(`${name}: expected a redis:// or rediss:// URL`)
  return text
}

/** WORKER_QUEUES: some of high, default, low. */
function queueNames(text: string, problems: string[]): string[] {
  try {
    return parseQueueNames(text)
  } catch {
    problems.push(`WORKER_QUEUES: expected some of ${QUEUE_NAMES.join(', ')} separated by commas, got "${text}"`)
    return [...QUEUE_NAMES]
  }
}

function httpUrl(name: string, text: string | undefined, problems: string[]): string | null {
  if (!text) return null
  const url = parseUrl(text)
  // The value is not repeated: a URL may carry credentials.
  if (!url || !['http:', 'https:'].includes(url.protocol)) problems.push(`${name}: expected an http:// or https:// URL`)
  return text.replace(/\/+$/, '')
}

function origins(name: string, text: string | undefined, problems: string[]): string[] {
  const values = list(text)
  for (const origin of values) {
    const url = parseUrl(origin)
    if (!url || !['http:', 'https:'].includes(url.protocol)) problems.push(`${name}: "${origin}" is not an origin like https://shop.example.com`)
  }
  return values.map((origin) => origin.replace(/\/+$/, ''))
}

/** Users' tokens: a dedicated key, or one derived from SECRET_KEY (so rotating SECRET_KEY signs everyone out). */
function userTokenKey(env: Env, problems: string[]): string {
  if (env.JWT_SIGNING_KEY) {
    if (env.JWT_SIGNING_KEY.length < 32) problems.push('JWT_SIGNING_KEY is weak: it needs at least 32 characters')
    return env.JWT_SIGNING_KEY
  }
  return createHash('sha256').update(`user-tokens:${env.SECRET_KEY ?? ''}`).digest('base64url')
}

function serviceAuth(env: Env, problems: string[]): Settings['serviceAuth'] {
  let algorithm = env.SERVICE_AUTH_ALGORITHM as ServiceAuthAlgorithm
  if (!serviceAuthAlgorithms.includes(algorithm)) {
    problems.push(`SERVICE_AUTH_ALGORITHM: expected one of ${serviceAuthAlgorithms.join(', ')}, got "${env.SERVICE_AUTH_ALGORITHM}"`)
    algorithm = 'HS256'
  }
  const secrets: Record<ServiceName, string | null> = {
    'django-backend': env.SERVICE_AUTH_SECRET_DJANGO_BACKEND ?? null,
    'api-gateway': env.SERVICE_AUTH_SECRET_API_GATEWAY ?? null,
    'celery-worker': env.SERVICE_AUTH_SECRET_CELERY_WORKER ?? null,
  }
  const keys = algorithm === 'HS256' ? [] : serviceKeys(env.SERVICE_AUTH_KEYS, problems)
  if (algorithm !== 'HS256' && keys.length === 0 && !problems.some((p) => p.startsWith('SERVICE_AUTH_KEYS'))) {
    problems.push(`SERVICE_AUTH_KEYS is missing: ${algorithm} needs the services' keys`)
  }
  return { algorithm, secrets, keys, tokenTtlSeconds: env.SERVICE_TOKEN_LIFETIME_SECONDS! }
}

function serviceKeys(text: string | undefined, problems: string[]): ServiceKey[] {
  if (!text) return []
  let entries: unknown
  try {
    entries = JSON.parse(text)
  } catch {
    problems.push('SERVICE_AUTH_KEYS: expected a JSON array of {kid, service, public_key, private_key?}')
    return []
  }
  if (!Array.isArray(entries)) {
    problems.push('SERVICE_AUTH_KEYS: expected a JSON array of {kid, service, public_key, private_key?}')
    return []
  }
  const keys: ServiceKey[] = []
  entries.forEach((entry: Record<string, unknown> | null, i) => {
    const problem = serviceKeyProblem(entry, keys)
    if (problem) problems.push(`SERVICE_AUTH_KEYS[${i}]: ${problem}`)
    else keys.push({ kid: String(entry!.kid), service: entry!.service as ServiceName, publicKey: String(entry!.public_key), privateKey: entry!.private_key ? String(entry!.private_key) : null })
  })
  return keys
}

/** What is wrong with one SERVICE_AUTH_KEYS entry, or null. Keys are parsed so a bad one stops the start, not the first request. */
function serviceKeyProblem(entry: Record<string, unknown> | null, earlier: ServiceKey[]): string | null {
  const { kid, service, public_key, private_key } = entry ?? {}
  if (typeof kid !== 'string' || kid === '') return 'kid is missing'
  if (!serviceNames.includes(service as ServiceName)) return `service must be one of ${serviceNames.join(', ')}`
  if (earlier.some((key) => key.kid === kid)) return `kid "${kid}" is used twice`
  try {
    createPublicKey(String(public_key))
  } catch {
    return 'public_key is not a PEM public key'
  }
  if (private_key === undefined || private_key === null) return null
  try {
    createPrivateKey(String(private_key))
  } catch {
    return 'private_key is not a PEM private key'
  }
  return null
}
