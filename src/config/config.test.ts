import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { envNames } from './env.js'
import { ConfigError, loadSettings, projectRoot, selectEnvironment, type Environment } from './index.js'
import { REQUIRED_IN_PRODUCTION } from '../../test/production-env.js'

type Raw = Record<string, string>

/** The problems loadSettings reports, or a failed assertion when it accepts the environment. */
function problemsOf(raw: Raw): string[] {
  try {
    loadSettings(raw)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).problems
  }
  return expect.fail(`expected a ConfigError for ${JSON.stringify(raw)}`)
}

const names = (name: string) => new RegExp(`\\b${name}\\b`)
const expectNamed = (problems: string[], name: string) => expect(problems.some((problem) => names(name).test(problem)), `${name} in ${JSON.stringify(problems)}`).toBe(true)


const deployable: Raw = {
  SECRET_KEY: 'q7Rv2mXk9LpZ4tWb8NcY3sHd6FgJ1aEu5oIi0rTy-KjQwPz_VxBn',
  ALLOWED_HOSTS: 'shop.example.com,.example.com',
  DATABASE_URL: 'postgres://shop:db-password@db.internal:5432/shop',
  REDIS_URL: 'redis://:redis_password@127.0.0.1:6379/0',
  CELERY_BROKER_URL: 'redis://:redis_password@127.0.0.1:6379/0',
  CELERY_RESULT_BACKEND: 'redis://:redis_password@127.0.0.1:6379/1',
  SERVICE_AUTH_SECRET_DJANGO_BACKEND: 'backend-secret-0123456789abcdefXY',
  SERVICE_AUTH_SECRET_API_GATEWAY: 'gateway-secret-0123456789abcdefXY',
  SERVICE_AUTH_SECRET_CELERY_WORKER: 'workers-secret-0123456789abcdefXY',
}

describe(selectEnvironment.name, () => {
  const byEnvironment: Array<[string, Environment]> = [
    ['development', 'development'],
    ['staging', 'staging'],
    ['production', 'production'],
    ['test', 'test'],
    ['e2e', 'e2e'],
    ['dev', 'development'],
    ['prod', 'production'],
    ['tests', 'test'],
    ['e2e_test', 'e2e'],
    ['Production', 'production'],
  ]
  it.each(byEnvironment)('selects %s from ENVIRONMENT', (value, expected) => {
    expect(selectEnvironment({ ENVIRONMENT: value })).toEqual({ environment: expected })
  })

  const byModule: Array<[string, Environment]> = [
    ['development', 'development'],
    ['staging', 'staging'],
    ['production', 'production'],
    ['tests', 'test'],
    ['e2e_test', 'e2e'],
  ]
  it.each(byModule)('selects config.settings.%s from DJANGO_SETTINGS_MODULE', (name, expected) => {
    expect(selectEnvironment({ DJANGO_SETTINGS_MODULE: `config.settings.${name}` })).toEqual({ environment: expected })
  })

  it('prefers DJANGO_SETTINGS_MODULE when ENVIRONMENT says otherwise', () => {
    expect(selectEnvironment({ DJANGO_SETTINGS_MODULE: 'config.settings.staging', ENVIRONMENT: 'development' }).environment).toBe('staging')
  })

  it('defers to ENVIRONMENT when DJANGO_SETTINGS_MODULE is config.settings alone', () => {
    expect(selectEnvironment({ DJANGO_SETTINGS_MODULE: 'config.settings', ENVIRONMENT: 'production' }).environment).toBe('production')
    expect(selectEnvironment({ DJANGO_SETTINGS_MODULE: 'config.settings' }).environment).toBe('development')
  })

  it('selects production when PRODUCTION is true and nothing else is set', () => {
    expect(selectEnvironment({ PRODUCTION: 'true' }).environment).toBe('production')
    expect(selectEnvironment({ PRODUCTION: 'True' }).environment).toBe('production')
    expect(selectEnvironment({ PRODUCTION: 'false' }).environment).toBe('development')
    expect(selectEnvironment({ PRODUCTION: 'true', ENVIRONMENT: 'staging' }).environment).toBe('staging')
  })

  it('selects development when nothing is set', () => {
    expect(selectEnvironment({})).toEqual({ environment: 'development' })
  })

  it('reports an unknown ENVIRONMENT as a ConfigError naming the variable', () => {
    expect(selectEnvironment({ ENVIRONMENT: 'qa' }).problem).toMatch(/^ENVIRONMENT: .*"qa"/)
    const problems = problemsOf({ ENVIRONMENT: 'qa' })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^ENVIRONMENT: .*development, staging, production, test, e2e.*"qa"/)
  })

  it('reports an unknown DJANGO_SETTINGS_MODULE as a ConfigError naming the variable', () => {
    for (const module of ['config.settings.local', 'myshop.settings']) {
      const problems = problemsOf({ DJANGO_SETTINGS_MODULE: module })
      expect(problems).toHaveLength(1)
      expect(problems[0]).toMatch(/^DJANGO_SETTINGS_MODULE: /)
      expect(problems[0]).toContain(module)
    }
  })
})

describe(loadSettings.name, () => {
  describe('environment', () => {
    it('loads the environment ENVIRONMENT names', () => {
      expect(loadSettings({ ENVIRONMENT: 'tests' }).environment).toBe('test')
      expect(loadSettings({ ENVIRONMENT: 'e2e_test' }).environment).toBe('e2e')
      expect(loadSettings({ ...deployable, ENVIRONMENT: 'prod' }).environment).toBe('production')
      expect(loadSettings({ ...deployable, DJANGO_SETTINGS_MODULE: 'config.settings.staging' }).environment).toBe('staging')
    })
  })

  describe('development', () => {
    it('works with nothing set, on embedded and in-memory defaults', () => {
      const settings = loadSettings({})
      expect(settings.environment).toBe('development')
      expect(settings.db).toMatchObject({ kind: 'pglite', dataDir: resolve('.data/pglite'), migrateOnStart: true, seedDemoOnStart: true })
      expect(settings.cache.redisUrl).toBeNull()
      expect(settings.queue.brokerUrl).toBeNull()
      expect(settings.email.backend).toBe('console')
      expect(settings.log.pretty).toBe(true)
    })
  })

  describe('production', () => {
    it('names every missing requirement in one ConfigError when nothing is set', () => {
      let error: unknown
      try {
        loadSettings({ ENVIRONMENT: 'production' })
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(ConfigError)
      const { problems, message, environment } = error as ConfigError
      expect(environment).toBe('production')
      for (const name of REQUIRED_IN_PRODUCTION) expectNamed(problems, name)
      expect(problems.some((problem) => /database/.test(problem))).toBe(true)
      for (const problem of problems) expect(message).toContain(problem)
    })

    it('accepts a complete environment', () => {
      const settings = loadSettings({ ...deployable, ENVIRONMENT: 'production' })
      expect(settings.environment).toBe('production')
      expect(settings.debug).toBe(false)
      expect(settings.http.enforceAllowedHosts).toBe(true)
      expect(settings.http.allowedHosts).toEqual(['shop.example.com', '.example.com'])
      expect(settings.email.backend).toBe('smtp')
      expect(settings.log.pretty).toBe(false)
      expect(settings.db).toMatchObject({ kind: 'postgres', url: deployable.DATABASE_URL })
      expect(settings.serviceAuth.secrets['api-gateway']).toBe(deployable.SERVICE_AUTH_SECRET_API_GATEWAY)
    })

    it('names a 31-character service secret as weak and accepts 32', () => {
      const problems = problemsOf({ ...deployable, ENVIRONMENT: 'production', SERVICE_AUTH_SECRET_API_GATEWAY: 'x1'.repeat(15) + 'y' })
      expect(problems).toEqual([expect.stringMatching(/^SERVICE_AUTH_SECRET_API_GATEWAY is weak/)])
      const settings = loadSettings({ ...deployable, ENVIRONMENT: 'production', SERVICE_AUTH_SECRET_API_GATEWAY: 'x1'.repeat(16) })
      expect(settings.serviceAuth.secrets['api-gateway']).toHaveLength(32)
    })

    it('names a django-insecure- SECRET_KEY as weak', () => {
      const problems = problemsOf({ ...deployable, ENVIRONMENT: 'production', SECRET_KEY: `django-insecure-${deployable.SECRET_KEY}` })
      expect(problems).toEqual([expect.stringMatching(/^SECRET_KEY is weak/)])
    })

    it('refuses DEBUG=true', () => {
      expect(problemsOf({ ...deployable, ENVIRONMENT: 'production', DEBUG: 'True' })).toEqual([expect.stringMatching(/DEBUG/)])
    })

    it('refuses WEBHOOK_ALLOW_PRIVATE=true: webhooks must not reach the private network', () => {
      expect(problemsOf({ ...deployable, ENVIRONMENT: 'production', WEBHOOK_ALLOW_PRIVATE: 'true' })).toEqual([expect.stringMatching(/^WEBHOOK_ALLOW_PRIVATE must be off/)])
      expect(loadSettings({ ...deployable, ENVIRONMENT: 'production', WEBHOOK_ALLOW_PRIVATE: 'false' }).webhooks.allowPrivate).toBe(false)
    })

    it('refuses Stripe without STRIPE_WEBHOOK_SECRET: payments could never be confirmed', () => {
      expect(problemsOf({ ...deployable, ENVIRONMENT: 'production', STRIPE_SECRET_KEY: 'sk_live_x' })).toEqual([expect.stringMatching(/^STRIPE_WEBHOOK_SECRET is missing/)])
      expect(loadSettings({ ...deployable, ENVIRONMENT: 'production', STRIPE_SECRET_KEY: 'sk_live_x', STRIPE_WEBHOOK_SECRET: 'whsec_x' }).stripe).toMatchObject({ secretKey: 'sk_live_x', webhookSecret: 'whsec_x' })
    })
  })

  describe('staging', () => {
    it('has the same requirements as production', () => {
      const problems = problemsOf({ ENVIRONMENT: 'staging' })
      for (const name of REQUIRED_IN_PRODUCTION) expectNamed(problems, name)
      expect(problems).toEqual(problemsOf({ ENVIRONMENT: 'production' }))
      expect(problemsOf({ ...deployable, ENVIRONMENT: 'staging', DEBUG: '1' })).toEqual([expect.stringMatching(/DEBUG/)])
      expect(loadSettings({ ...deployable, ENVIRONMENT: 'staging' }).environment).toBe('staging')
    })
  })

  describe('database', () => {
    const password = 'p@ss:w/rd#1?%& x'

    it('prefers DATABASE_URL over DB_*', () => {
      const settings = loadSettings({ DATABASE_URL: 'postgres://a@h1:5432/one', DB_HOST: 'h2', DB_NAME: 'two' })
      expect(settings.db).toMatchObject({ kind: 'postgres', url: 'postgres://a@h1:5432/one' })
    })

    it('builds a postgres URL from DB_*, encoding special characters', () => {
      const settings = loadSettings({
        DB_ENGINE: 'django.db.backends.postgresql',
        DB_NAME: 'shop',
        DB_USER: 'shop user',
        DB_PASSWORD: password,
        DB_HOST: 'db.internal',
        DB_PORT: '6543',
      })
      expect(settings.db.kind).toBe('postgres')
      const url = new URL((settings.db as { url: string }).url)
      expect(url.protocol).toBe('postgres:')
      expect(url.hostname).toBe('db.internal')
      expect(url.port).toBe('6543')
      expect(url.pathname).toBe('/shop')
      expect(decodeURIComponent(url.username)).toBe('shop user')
      expect(decodeURIComponent(url.password)).toBe(password)
    })

    it.each(['django.db.backends.mysql', 'django.db.backends.sqlite3'])('refuses DB_ENGINE=%s with a clear message and no password', (engine) => {
      let error: ConfigError | undefined
      try {
        loadSettings({ DB_ENGINE: engine, DB_NAME: 'shop', DB_USER: 'shop', DB_PASSWORD: password, DB_HOST: 'db.internal' })
      } catch (err) {
        error = err as ConfigError
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect(error!.problems).toEqual([expect.stringMatching(/^DB_ENGINE: only PostgreSQL is supported/)])
      expect(error!.problems[0]).toContain(engine)
      expect(error!.message).not.toContain(password)
      expect(error!.message).not.toContain('p@ss')
    })

    it('refuses a mysql:// DATABASE_URL without printing its password', () => {
      let error: ConfigError | undefined
      try {
        loadSettings({ DATABASE_URL: 'mysql://shop:hunter2-secret@db.internal:3306/shop' })
      } catch (err) {
        error = err as ConfigError
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect(error!.problems).toEqual([expect.stringMatching(/^DATABASE_URL: expected a postgres/)])
      expect(error!.message).not.toContain('hunter2-secret')
    })
  })

  describe('types', () => {
    it.each([
      ['True', true],
      ['False', false],
      ['1', true],
      ['0', false],
      ['yes', true],
      ['no', false],
    ])('reads the boolean %s', (text, expected) => {
      expect(loadSettings({ DEBUG: text }).debug).toBe(expected)
      expect(loadSettings({ CORS_ALLOW_ALL_ORIGINS: text }).cors.allowAll).toBe(expected)
    })

    it('names a boolean it cannot read', () => {
      expect(problemsOf({ DEBUG: 'maybe' })).toEqual([expect.stringMatching(/^DEBUG: expected true or false, got "maybe"/)])
    })

    it('reads integers and names the variable when one is not a valid number', () => {
      expect(loadSettings({ PORT: '8080' }).http.port).toBe(8080)
      expect(problemsOf({ PORT: 'abc' })).toEqual([expect.stringMatching(/^PORT: .*"abc"/)])
      expect(problemsOf({ PORT: '70000' })).toEqual([expect.stringMatching(/^PORT: .*65535.*"70000"/)])
    })

    it('reads comma-separated lists with spaces', () => {
      const settings = loadSettings({
        ALLOWED_HOSTS: 'shop.example.com, .example.com ,127.0.0.1',
        CORS_ALLOWED_ORIGINS: 'https://shop.example.com, http://localhost:3000/ ',
      })
      expect(settings.http.allowedHosts).toEqual(['shop.example.com', '.example.com', '127.0.0.1'])
      expect(settings.cors.allowedOrigins).toEqual(['https://shop.example.com', 'http://localhost:3000'])
    })

    it('refuses an origin without a scheme', () => {
      const problems = problemsOf({ CORS_ALLOWED_ORIGINS: 'https://shop.example.com, shop.example.com' })
      expect(problems).toEqual([expect.stringMatching(/^CORS_ALLOWED_ORIGINS: "shop\.example\.com" is not an origin/)])
      expect(problemsOf({ CSRF_TRUSTED_ORIGINS: 'localhost:3000' })).toEqual([expect.stringMatching(/^CSRF_TRUSTED_ORIGINS: /)])
    })

    it.each([
      ['django.core.mail.backends.console.EmailBackend', 'console'],
      ['django.core.mail.backends.smtp.EmailBackend', 'smtp'],
      ['django.core.mail.backends.filebased.EmailBackend', 'file'],
      ['django.core.mail.backends.locmem.EmailBackend', 'memory'],
      ['smtp', 'smtp'],
    ])('maps EMAIL_BACKEND %s to %s', (name, backend) => {
      expect(loadSettings({ EMAIL_BACKEND: name }).email.backend).toBe(backend)
    })

    it('refuses an unknown EMAIL_BACKEND', () => {
      const name = 'anymail.backends.sendgrid.EmailBackend'
      expect(problemsOf({ EMAIL_BACKEND: name })).toEqual([expect.stringMatching(/^EMAIL_BACKEND: /)])
      expect(problemsOf({ EMAIL_BACKEND: name })[0]).toContain(name)
    })

    it('accepts a redis URL with a password and refuses another scheme', () => {
      expect(loadSettings({ REDIS_URL: 'redis://:password@127.0.0.1:6379/0' }).cache.redisUrl).toBe('redis://:password@127.0.0.1:6379/0')
      expect(problemsOf({ REDIS_URL: 'http://127.0.0.1:6379/0' })).toEqual([expect.stringMatching(/^REDIS_URL: /)])
      expect(problemsOf({ CELERY_BROKER_URL: 'amqp://guest@127.0.0.1//' })).toEqual([expect.stringMatching(/^CELERY_BROKER_URL: /)])
    })

    it('parses rate limit rules and refuses one it cannot read', () => {
      const settings = loadSettings({ RATE_LIMIT_AUTH: '10/minute', RATE_LIMIT_GLOBAL: '100 / hour' })
      expect(settings.rateLimit.named.auth).toEqual({ max: 10, windowMs: 60_000 })
      expect(settings.rateLimit.global).toEqual({ max: 100, windowMs: 3_600_000 })
      expect(problemsOf({ RATE_LIMIT_AUTH: 'ten' })).toEqual([expect.stringMatching(/^RATE_LIMIT_AUTH: .*"ten"/)])
    })

    it('accepts an IANA TIME_ZONE and refuses an unknown one', () => {
      expect(loadSettings({ TIME_ZONE: 'Europe/Paris' }).timeZone).toBe('Europe/Paris')
      expect(problemsOf({ TIME_ZONE: 'Mars/Base' })).toEqual([expect.stringMatching(/^TIME_ZONE: .*"Mars\/Base"/)])
    })

    it('refuses USE_S3 without a bucket', () => {
      expect(problemsOf({ USE_S3: 'True' })).toEqual([expect.stringMatching(/AWS_STORAGE_BUCKET_NAME/)])
      expect(loadSettings({ USE_S3: 'True', AWS_STORAGE_BUCKET_NAME: 'shop-media' }).storage).toMatchObject({ useS3: true, s3: { bucket: 'shop-media' } })
    })

    it('refuses USE_VAULT without its address and AppRole credentials', () => {
      const problems = problemsOf({ USE_VAULT: 'yes' })
      expect(problems).toHaveLength(3)
      for (const name of ['VAULT_ADDR', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID']) expectNamed(problems, name)
      const settings = loadSettings({ USE_VAULT: 'yes', VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_ROLE_ID: 'role', VAULT_SECRET_ID: 'secret' })
      expect(settings.vault).toMatchObject({ enabled: true, addr: 'http://127.0.0.1:8200', roleId: 'role', secretId: 'secret' })
    })
  })

  it('lists several problems in one ConfigError', () => {
    const raw = { PORT: 'abc', DEBUG: 'maybe', TIME_ZONE: 'Mars/Base', RATE_LIMIT_AUTH: 'ten', EMAIL_BACKEND: 'pigeon' }
    const problems = problemsOf(raw)
    expect(problems).toHaveLength(5)
    for (const name of Object.keys(raw)) expectNamed(problems, name)
  })

  it('returns frozen settings', () => {
    const settings = loadSettings({ ALLOWED_HOSTS: 'a.example.com' })
    expect(Object.isFrozen(settings)).toBe(true)
    expect(Object.isFrozen(settings.http)).toBe(true)
    expect(Object.isFrozen(settings.http.allowedHosts)).toBe(true)
    expect(() => {
      ;(settings.http as { port: number }).port = 1
    }).toThrow(TypeError)
    expect(settings.http.port).toBe(8000)
  })
})

describe('envNames', () => {
  /**
   * Variable names in the original README: backticked names (several may share one span, as in
   * `DB_ENGINE/DB_NAME/...`) and `NAME=value` lines of its example .env.
   */
  function seedReadmeNames(): string[] {
    const text = readFileSync('/work/shared/seed/backend-README.md', 'utf8')
    const found = new Set<string>()
    for (const [, span] of text.matchAll(/`([^`\n]+)`/g)) {
      for (const token of span!.split(/[\s/,]+/)) if (/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Z]{4,}$/.test(token)) found.add(token)
    }
    for (const [, name] of text.matchAll(/^([A-Z][A-Z0-9_]+)=/gm)) found.add(name!)
    return [...found].sort()
  }

  it('includes every variable the original README lists', () => {
    const listed = seedReadmeNames()
    // The parse found the README's variables at all (guards against a parse that finds nothing).
    expect(listed).toEqual(expect.arrayContaining(['SECRET_KEY', 'DB_PORT', 'CELERY_RESULT_BACKEND', 'VAULT_SECRET_ID', 'RUN_MIGRATIONS', 'VAULT_TOKEN']))
    const missing = listed.filter((name) => !(envNames as string[]).includes(name))
    expect(missing).toEqual([])
  })

  it('are all documented in README.md', () => {
    const readme = join(projectRoot, 'README.md')
    expect(existsSync(readme), `${readme} exists`).toBe(true)
    const text = readFileSync(readme, 'utf8')
    const undocumented = envNames.filter((name) => !names(name).test(text))
    expect(undocumented).toEqual([])
  })
})
