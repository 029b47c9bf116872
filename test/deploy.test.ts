/**
 * The deployment files. The compose files are validated by Debian's `docker-compose` (installed by
 * .ci/run); the image cannot be built here (no Docker engine), so the Dockerfile is checked for
 * its stages and files; entrypoint.sh runs for real with a `node` on its PATH that records how it
 * was called; render.yaml is checked for what production refuses to start without.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { envNames } from '../src/config/env.js'
import { projectRoot } from '../src/config/index.js'
import { REQUIRED_IN_PRODUCTION } from './production-env.js'

const run = promisify(execFile)
const compose = join(projectRoot, 'deploy', 'docker', 'compose')
const BACKENDS = ['backend', 'worker', 'beat'] as const

interface ComposeService {
  image?: string
  build?: { context: string; dockerfile: string }
  command?: string[]
  environment?: Record<string, string>
  ports?: Array<{ published: number | string; target: number }>
  depends_on?: Record<string, { condition: string }>
}

describe('docker-compose files', () => {
  let merged: { services: Record<string, ComposeService> }
  beforeAll(async () => {
    // The seed README's command line, as docker-compose itself resolves it.
    const { stdout } = await run('docker-compose', ['-f', join(compose, 'base.yml'), '-f', join(compose, 'development.yml'), 'config'], { cwd: projectRoot })
    merged = parse(stdout) as typeof merged
  })

  it('hold the services the seed README starts, the search node still named elasticsearch', () => {
    expect(Object.keys(merged.services).sort()).toEqual(['backend', 'beat', 'elasticsearch', 'postgres', 'redis', 'worker'])
    expect(merged.services.elasticsearch!.image).toMatch(/^opensearchproject\/opensearch:/)
  })

  it('build the backend, worker and beat from the repository Dockerfile, each with its entrypoint command', () => {
    for (const name of BACKENDS) {
      expect(merged.services[name]!.build).toEqual({ context: projectRoot, dockerfile: 'Dockerfile' })
    }
    expect(BACKENDS.map((name) => merged.services[name]!.command)).toEqual([['web'], ['worker'], ['beat']])
    expect(merged.services.backend!.ports).toEqual([{ published: 8000, target: 8000 }])
  })

  it('point the backends at the stack by service name, waiting for healthy databases', () => {
    for (const name of BACKENDS) {
      const { environment, depends_on } = merged.services[name]!
      expect(environment).toMatchObject({
        DATABASE_URL: expect.stringMatching(/@postgres:5432\//),
        REDIS_URL: expect.stringMatching(/@redis:6379\/0$/),
        CELERY_BROKER_URL: expect.stringMatching(/@redis:6379\//),
        CELERY_RESULT_BACKEND: expect.stringMatching(/@redis:6379\//),
        ELASTICSEARCH_URL: 'http://elasticsearch:9200',
        ENVIRONMENT: 'development',
      })
      expect(depends_on).toMatchObject({ postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } })
    }
    expect(merged.services.backend!.environment).toMatchObject({ RUN_MIGRATIONS: 'true' })
  })

  it('set only variables the application knows', () => {
    const known = new Set<string>(envNames)
    for (const name of BACKENDS) expect(Object.keys(merged.services[name]!.environment!).filter((key) => !known.has(key))).toEqual([])
  })

  it('are refused by docker-compose when broken (the check can fail)', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'compose-'))
    try {
      await writeFile(join(scratch, 'broken.yml'), 'services:\n  backend:\n    depends_on: [nowhere]\n    image: x\n')
      await expect(run('docker-compose', ['-f', join(scratch, 'broken.yml'), 'config'])).rejects.toThrow(/nowhere/)
    } finally {
      await rm(scratch, { recursive: true, force: true })
    }
  })
})

describe('Dockerfile', () => {
  let lines: string[]
  beforeAll(async () => {
    // One instruction per logical line (continuations joined), comments dropped.
    const text = (await readFile(join(projectRoot, 'Dockerfile'), 'utf8')).replace(/\\\n\s*/g, ' ')
    lines = text.split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'))
  })
  const stages = () => lines.filter((line) => line.startsWith('FROM ')).map((line) => /AS (\w+)$/.exec(line)?.[1])
  const runtime = () => lines.slice(lines.findLastIndex((line) => line.startsWith('FROM ')))

  it('builds in stages: compile with every dependency, install production dependencies alone, run', () => {
    expect(stages()).toEqual(['build', 'deps', 'runtime'])
    expect(lines.filter((line) => line.startsWith('FROM ')).every((line) => line.startsWith('FROM node:20-'))).toBe(true)
    const deps = lines.slice(lines.indexOf('FROM node:20-bookworm-slim AS deps'), lines.indexOf('FROM node:20-bookworm-slim AS runtime'))
    expect(deps.some((line) => /^RUN npm ci --omit=dev\b/.test(line))).toBe(true)
    expect(runtime()).toContain('COPY --from=deps /app/node_modules ./node_modules')
    expect(runtime()).toContain('COPY --from=build /app/dist ./dist')
  })

  it('copies into the image only files the repository has, and what the running code reads', () => {
    const sources = runtime()
      .filter((line) => line.startsWith('COPY ') && !line.includes('--from='))
      .flatMap((line) => line.split(/\s+/).slice(1, -1))
    expect(sources.sort()).toEqual(['entrypoint.sh', 'migrations', 'package.json', 'templates'])
    for (const source of sources) expect(existsSync(join(projectRoot, source)), source).toBe(true)
  })

  it('runs as a non-root user, checks /health/live/, and starts through entrypoint.sh', () => {
    expect(runtime().filter((line) => line.startsWith('USER '))).toEqual(['USER node'])
    expect(runtime().find((line) => line.startsWith('HEALTHCHECK '))).toMatch(/CMD node -e .*\/health\/live\//)
    expect(runtime()).toContain('ENTRYPOINT ["./entrypoint.sh"]')
    expect(runtime()).toContain('CMD ["web"]')
  })

  it('keeps secrets, dependencies and build output out of the build context', async () => {
    const ignored = (await readFile(join(projectRoot, '.dockerignore'), 'utf8')).split('\n')
    expect(ignored).toEqual(expect.arrayContaining(['.env', '.git', '.data', 'node_modules', 'dist']))
  })
})

describe('entrypoint.sh', () => {
  let scratch: string
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'entrypoint-'))
    // A `node` that writes down each call; `dist/manage.js migrate` fails when FAIL_MIGRATE is set.
    await writeFile(
      join(scratch, 'node'),
      '#!/bin/sh\necho "$*" >> "$CALLS"\ncase "$*" in *"manage.js migrate"*) [ -n "${FAIL_MIGRATE:-}" ] && exit 3 ;; esac\nexit 0\n',
    )
    await chmod(join(scratch, 'node'), 0o755)
  })
  afterAll(() => rm(scratch, { recursive: true, force: true }))

  let runs = 0
  let lastStderr = ''
  async function entrypoint(args: string[], env: Record<string, string> = {}): Promise<{ code: number; calls: string[] }> {
    const calls = join(scratch, `calls-${++runs}`)
    await writeFile(calls, '')
    const result = await run('sh', [join(projectRoot, 'entrypoint.sh'), ...args], { cwd: scratch, env: { PATH: `${scratch}:/usr/bin:/bin`, CALLS: calls, ...env } }).then(
      ({ stderr }) => ((lastStderr = stderr), 0),
      (err: { code: number; stderr: string }) => ((lastStderr = err.stderr), err.code),
    )
    return { code: result, calls: (await readFile(calls, 'utf8')).split('\n').filter(Boolean) }
  }
  const heap = '--max-semi-space-size=8 --max-old-space-size=112'

  it('starts the API by default, and the worker, beat or a management command by name, with production heap flags', async () => {
    expect(await entrypoint([])).toEqual({ code: 0, calls: [`${heap} dist/server.js`] })
    expect(await entrypoint(['web'])).toEqual({ code: 0, calls: [`${heap} dist/server.js`] })
    expect(await entrypoint(['worker', '--concurrency', '2'])).toEqual({ code: 0, calls: [`${heap} dist/worker.js --concurrency 2`] })
    expect(await entrypoint(['beat'])).toEqual({ code: 0, calls: [`${heap} dist/scheduler.js`] })
    expect(await entrypoint(['manage', 'createsuperuser', '--email', 'a@b.example'])).toEqual({ code: 0, calls: [`${heap} dist/manage.js createsuperuser --email a@b.example`] })
    expect(await entrypoint(['web'], { NODE_MAX_OLD_SPACE_MB: '256' })).toEqual({ code: 0, calls: ['--max-semi-space-size=8 --max-old-space-size=256 dist/server.js'] })
  })

  it('applies migrations first with RUN_MIGRATIONS (any case of true), and does not start when they fail', async () => {
    expect(await entrypoint(['web'], { RUN_MIGRATIONS: 'True' })).toEqual({ code: 0, calls: ['dist/manage.js migrate', `${heap} dist/server.js`] })
    expect(await entrypoint(['beat'], { RUN_MIGRATIONS: '1' })).toEqual({ code: 0, calls: ['dist/manage.js migrate', `${heap} dist/scheduler.js`] })
    expect(await entrypoint(['web'], { RUN_MIGRATIONS: 'false' })).toEqual({ code: 0, calls: [`${heap} dist/server.js`] })
    expect(await entrypoint(['web'], { RUN_MIGRATIONS: 'true', FAIL_MIGRATE: '1' })).toEqual({ code: 3, calls: ['dist/manage.js migrate'] })
  })

  describe('with USE_VAULT', () => {
    const approle = { USE_VAULT: 'true', VAULT_ADDR: 'https://vault.internal:8200', VAULT_ROLE_ID: 'role-1', VAULT_SECRET_ID: 'secret-1' }

    it('starts every process when VAULT_ADDR, VAULT_ROLE_ID and VAULT_SECRET_ID are set, with no VAULT_TOKEN', async () => {
      expect(await entrypoint(['web'], approle)).toEqual({ code: 0, calls: [`${heap} dist/server.js`] })
      expect(await entrypoint(['worker'], approle)).toEqual({ code: 0, calls: [`${heap} dist/worker.js`] })
      expect(await entrypoint(['beat'], { ...approle, RUN_MIGRATIONS: 'true' })).toEqual({ code: 0, calls: ['dist/manage.js migrate', `${heap} dist/scheduler.js`] })
      expect(await entrypoint(['manage', 'migrate'], approle)).toEqual({ code: 0, calls: [`${heap} dist/manage.js migrate`] })
    })

    it('refuses to start (exit 78, one line naming what is missing) with only VAULT_TOKEN, before any migration', async () => {
      const tokenOnly = { USE_VAULT: 'True', VAULT_ADDR: 'https://vault.internal:8200', VAULT_TOKEN: 'hvs.abc', RUN_MIGRATIONS: 'true' }
      for (const command of ['web', 'worker', 'beat', 'manage']) {
        expect(await entrypoint([command], tokenOnly)).toEqual({ code: 78, calls: [] })
        expect(lastStderr).toBe('USE_VAULT is on but VAULT_ROLE_ID, VAULT_SECRET_ID not set: the service logs in to Vault with AppRole (VAULT_TOKEN is neither needed nor enough)\n')
      }
    })

    it('names each missing AppRole variable, and checks nothing when USE_VAULT is off', async () => {
      expect(await entrypoint(['web'], { ...approle, VAULT_ADDR: '' })).toEqual({ code: 78, calls: [] })
      expect(lastStderr).toMatch(/^USE_VAULT is on but VAULT_ADDR not set: /)
      expect(await entrypoint(['web'], { ...approle, VAULT_SECRET_ID: '' })).toEqual({ code: 78, calls: [] })
      expect(lastStderr).toMatch(/^USE_VAULT is on but VAULT_SECRET_ID not set: /)
      expect(await entrypoint(['web'], { USE_VAULT: 'false' })).toEqual({ code: 0, calls: [`${heap} dist/server.js`] })
    })
  })

  it('runs any other command as given', async () => {
    const { code, calls } = await entrypoint(['node', '--version'])
    expect({ code, calls }).toEqual({ code: 0, calls: ['--version'] })
  })
})

describe('render.yaml', () => {
  interface EnvVar {
    key?: string
    value?: string
    fromGroup?: string
    generateValue?: boolean
  }
  let blueprint: { services: Array<{ type: string; name: string; dockerCommand?: string; healthCheckPath?: string; envVars?: EnvVar[] }>; envVarGroups: Array<{ name: string; envVars: EnvVar[] }> }
  beforeAll(async () => {
    blueprint = parse(await readFile(join(projectRoot, 'render.yaml'), 'utf8')) as typeof blueprint
  })

  it('runs the API, one worker and one beat from the image', () => {
    expect(blueprint.services.filter((service) => service.dockerCommand).map((service) => [service.type, service.dockerCommand])).toEqual([
      ['web', './entrypoint.sh web'],
      ['worker', './entrypoint.sh worker'],
      ['worker', './entrypoint.sh beat'],
    ])
    expect(blueprint.services.find((service) => service.type === 'web')!.healthCheckPath).toBe('/health/live/')
  })

  it('gives every backend service each variable production refuses to start without, and known ones only', () => {
    const known = new Set<string>(envNames)
    for (const service of blueprint.services.filter((service) => service.dockerCommand)) {
      const keys = service.envVars!.flatMap((envVar) => (envVar.fromGroup ? blueprint.envVarGroups.find((group) => group.name === envVar.fromGroup)!.envVars : [envVar])).map((envVar) => envVar.key!)
      expect(keys, service.name).toEqual(expect.arrayContaining([...REQUIRED_IN_PRODUCTION, 'ENVIRONMENT']))
      expect(keys.filter((key) => !known.has(key)), service.name).toEqual([])
      expect(service.envVars!.find((envVar) => envVar.key === 'ENVIRONMENT')!.value).toBe('production')
    }
    // Shared secrets are generated once for all three (the worker decrypts what the API encrypted).
    expect(blueprint.envVarGroups[0]!.envVars.every((envVar) => envVar.generateValue === true)).toBe(true)
  })
})
