/** The typed, nested shape every part of the service receives instead of reading process.env. */

export const environments = ['development', 'staging', 'production', 'test', 'e2e'] as const
export type Environment = (typeof environments)[number]

export type DatabaseSettings =
  | { kind: 'postgres'; url: string; poolMax: number; statementTimeoutMs: number }
  /** dataDir null keeps the database in memory. */
  | { kind: 'pglite'; dataDir: string | null }

export type EmailBackend = 'console' | 'smtp' | 'file' | 'memory'

export interface RateLimitRule {
  max: number
  /** Window in milliseconds. */
  windowMs: number
}

export interface Settings {
  environment: Environment
  debug: boolean
  secretKey: string
  timeZone: string
  /** ISO 4217, upper case. */
  currency: string
  analytics: {
    retentionDays: number
    /** Ingested events are written when this many wait, or every flushMs. */
    batchSize: number
    flushMs: number
    /** Beyond this many unwritten events ingestion answers 503. */
    maxBuffered: number
    /** How long a process reuses live figures (days not rolled up yet); 0 = never. */
    liveCacheMs: number
    /** The dashboard's low-stock list: available units at or below this. */
    lowStockThreshold: number
  }
  commerce: {
    pricesIncludeTax: boolean
    orderReservationMinutes: number
    cartExpiryDays: number
  }
  http: {
    host: string
    port: number
    /** Where clients reach this API (no trailing slash), for links to its own routes. */
    publicUrl: string
    /** Empty means any host; enforced only when enforceAllowedHosts. */
    allowedHosts: string[]
    enforceAllowedHosts: boolean
    trustProxy: boolean | number | string[]
    bodyLimit: number
    shutdownTimeoutMs: number
  }
  docs: { enabled: boolean }
  metrics: { token: string | null }
  health: { timeoutMs: number }
  idempotency: { ttlMs: number; /** An in-flight key older than this is taken over. */ lockTimeoutMs: number }
  rateLimit: { enabled: boolean; global: RateLimitRule; named: Record<string, RateLimitRule> }
  log: { level: string; pretty: boolean }
  db: DatabaseSettings & { migrateOnStart: boolean; seedDemoOnStart: boolean }
  cache: { redisUrl: string | null; keyPrefix: string }
  queue: {
    brokerUrl: string | null
    resultBackend: string | null
    /** Base delay of the exponential retry backoff. */
    backoffMs: number
    defaultAttempts: number
    defaultTimeoutMs: number
    /** How often the outbox relay looks for events a crash left behind. */
    outboxPollMs: number
    /** How long adding a job may wait for the broker before it fails (the outbox keeps the event). */
    enqueueTimeoutMs: number
    /** `npm run worker`: jobs at once per queue, the queues, and how long a running job's lock lasts. */
    worker: { concurrency: number; queues: string[]; lockDurationMs: number; metricsPort: number }
    /**
     * Without a broker: how often the API process looks for due periodic tasks (the schedule of
     * `periodic_tasks`); 0 turns it off (tests run the tasks directly). With one, `npm run beat` does.
     */
    periodicEveryMs: number
  }
  search: { url: string | null }
  stripe: { secretKey: string | null; publishableKey: string | null; webhookSecret: string | null; apiBase: string | null }
  /** Outgoing webhooks: the delivery log's retention, the SSRF guard, and how hard a delivery is tried. */
  webhooks: {
    logDays: number
    /** Private, loopback and link-local addresses may be reached (development and tests). */
    allowPrivate: boolean
    /** Delay before the second attempt; each later one waits four times longer. */
    retryBaseMs: number
    maxAttempts: number
    /** One attempt's limit, connection to response. */
    timeoutMs: number
  }
  storage: {
    useS3: boolean
    useCdn: boolean
    s3: { bucket: string | null; region: string; accessKeyId: string | null; secretAccessKey: string | null; endpoint: string | null }
    cdnDomain: string | null
    mediaRoot: string
    mediaUrl: string
    /** Largest accepted upload (images), in bytes. */
    maxUploadBytes: number
    staticRoot: string
    staticUrl: string
  }
  email: {
    backend: EmailBackend
    host: string
    port: number
    useTls: boolean
    useSsl: boolean
    user: string | null
    password: string | null
    timeoutMs: number
    filePath: string
    from: string
    templatesDir: string
  }
  observability: {
    sentryDsn: string | null
    otlpEndpoint: string | null
    serviceName: string
  }
  vault: { enabled: boolean; addr: string | null; roleId: string | null; secretId: string | null; kvMount: string; secretPath: string }
  serviceAuth: {
    algorithm: ServiceAuthAlgorithm
    secrets: Record<ServiceName, string | null>
    /** Asymmetric keys (empty with HS256). */
    keys: ServiceKey[]
    tokenTtlSeconds: number
  }
  auth: {
    accessTtlSeconds: number
    refreshTtlSeconds: number
    /** HS256 key of users' tokens. */
    signingKey: string
    issuer: string
    audience: string
    passwordMinLength: number
    verifyEmailTtlMs: number
    passwordResetTtlMs: number
    requireStaffMfa: boolean
    frontendUrl: string
    shopName: string
    superuser: { email: string | null; password: string | null }
  }
  cors: { allowAll: boolean; allowedOrigins: string[]; csrfTrustedOrigins: string[] }
}

export const serviceNames = ['django-backend', 'api-gateway', 'celery-worker'] as const
export type ServiceName = (typeof serviceNames)[number]
export const serviceAuthAlgorithms = ['HS256', 'RS256', 'ES256', 'EdDSA'] as const
export type ServiceAuthAlgorithm = (typeof serviceAuthAlgorithms)[number]

export interface ServiceKey {
  kid: string
  service: ServiceName
  /** PEM (SPKI). */
  publicKey: string
  /** PEM (PKCS#8), for keys this service signs with. */
  privateKey: string | null
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] }
