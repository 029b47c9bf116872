/**
 * The real processes: `tsx src/server.ts` and `tsx src/manage.ts` started as an operator would, in
 * a temporary directory so nothing is written into the checkout.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { projectRoot } from '../src/config/index.js'
import { dropDatabase, testServerUrl, uniqueName, urlFor, withAdmin } from './database.js'
import { createTestApp, suiteRedisUrl, usesPostgres, type TestApp } from './harness.js'
import { REQUIRED_IN_PRODUCTION } from './production-env.js'
import { isolatedEnv, NODE, tsArgs } from './run-ts.js'
import { freePort } from './free-port.js'

// A bound on waiting, not a speed target: a loaded CI machine boots PGlite and tsx slowly.
const READY_WITHIN_MS = 30_000
const SHUTDOWN_TIMEOUT_SECONDS = 5
const migrationCount = (JSON.parse(readFileSync(join(projectRoot, 'migrations', 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }).entries.length

let scratch: string
const running = new Set<Proc>()

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'shop-process-'))
})
afterAll(async () => {
  // A failed test may leave its process running: end it and its children (its own process group).
  for (const proc of running) proc.kill('SIGKILL')
  await rm(scratch, { recursive: true, force: true })
})

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

interface Proc {
  child: ChildProcess
  stdout(): string
  stderr(): string
  exited: Promise<Exit>
  /** Set once the process has exited. */
  exit: Exit | null
  kill(signal: NodeJS.Signals): void
}

/**
 * Only what a shell needs from this environment; every service variable blank, so neither the
 * suite's DATABASE_URL/REDIS_URL nor a developer's `.env` reaches the process (blank means unset).
 */
function processEnv(dir: string, vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  return isolatedEnv({
    HOST: '127.0.0.1',
    PGLITE_DATA_DIR: join(dir, 'pglite'),
    MEDIA_ROOT: join(dir, 'media'),
    STATIC_ROOT: join(dir, 'static'),
    EMAIL_FILE_PATH: join(dir, 'emails'),
    ...vars,
  })
}

async function workDir(name: string): Promise<string> {
  return mkdtemp(join(scratch, `${name}-`))
}

function run(script: 'src/server.ts' | 'src/manage.ts', args: string[], env: NodeJS.ProcessEnv): Proc {
  // detached: its own process group, so cleanup reaches tsx's child node process too.
  const child = spawn(NODE, tsArgs(script, args), { cwd: projectRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()))
  const proc: Proc = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited: new Promise((resolve) =>
      child.once('close', (code, signal) => {
        proc.exit = { code, signal }
        running.delete(proc)
        resolve(proc.exit)
      }),
    ),
    exit: null,
    kill(signal) {
      try {
        process.kill(-child.pid!, signal)
      } catch {
        // already gone
      }
    },
  }
  running.add(proc)
  return proc
}

/** The process's exit, or a failure once `ms` have passed. */
async function exitWithin(proc: Proc, ms: number) {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms\nstdout: ${proc.stdout()}\nstderr: ${proc.stderr()}`)), ms)
  })
  try {
    return await Promise.race([proc.exited, late])
  } finally {
    clearTimeout(timer)
  }
}


/**
 * Polls GET `path` until it answers (any status when `status` is omitted) or the deadline
 * passes; the process is external, so there is no event to wait on.
 */
async function pollUntil(proc: Proc, url: string, deadline: number, status?: number): Promise<Response> {
  let last = 'no answer'
  while (performance.now() < deadline) {
    if (proc.exit) throw new Error(`exited with ${proc.exit.code} before answering\nstderr: ${proc.stderr()}\nstdout: ${proc.stdout()}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.ceil(Math.max(1, Math.min(2_000, deadline - performance.now())))) })
      if (status === undefined || res.status === status) return res
      last = `status ${res.status}`
      await res.body?.cancel()
    } catch (err) {
      last = (err as Error).message
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${url} did not answer${status ? ` ${status}` : ''} in time (last: ${last})\nstdout: ${proc.stdout()}\nstderr: ${proc.stderr()}`)
}

const STACK_LINE = /^\s{4}at /m

describe.concurrent('src/server.ts', () => {
  it('exits non-zero naming every required variable, without a stack trace, when production has nothing set', async ({ expect }) => {
    const proc = run('src/server.ts', [], processEnv(await workDir('prod'), { ENVIRONMENT: 'production' }))
    const { code } = await exitWithin(proc, 20_000)
    expect(code).not.toBe(0)
    expect(code).not.toBeNull()
    for (const name of REQUIRED_IN_PRODUCTION) expect(proc.stderr()).toContain(name)
    expect(proc.stderr()).not.toMatch(STACK_LINE)
  }, 30_000)

  it('becomes ready on embedded PGlite with nothing configured, then exits 0 on SIGTERM and keeps its data', async ({ expect }) => {
    const dir = await workDir('dev')
    const port = await freePort()
    const started = performance.now()
    const proc = run('src/server.ts', [], processEnv(dir, { PORT: String(port), SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_SECONDS) }))
    const res = await pollUntil(proc, `http://127.0.0.1:${port}/health/ready/`, started + READY_WITHIN_MS, 200)
    const body = (await res.json()) as { status: string; checks: Record<string, { status: string; backend: string }> }
    expect(body.status).toBe('ok')
    expect(body.checks.database).toMatchObject({ status: 'ok', backend: 'pglite' })
    expect(body.checks.cache).toMatchObject({ status: 'ok', backend: 'memory' })

    const stopping = performance.now()
    proc.child.kill('SIGTERM')
    const { code } = await exitWithin(proc, SHUTDOWN_TIMEOUT_SECONDS * 1000)
    expect(code).toBe(0)
    expect(performance.now() - stopping).toBeLessThan(SHUTDOWN_TIMEOUT_SECONDS * 1000)
    const pgliteDir = join(dir, 'pglite')
    expect(existsSync(join(pgliteDir, 'PG_VERSION'))).toBe(true)
    expect(readdirSync(pgliteDir).length).toBeGreaterThan(1)
  }, 60_000)
})

describe.runIf(usesPostgres && suiteRedisUrl).concurrent('src/server.ts with PostgreSQL and Redis', () => {
  const serverUrl = testServerUrl()!
  const databases: string[] = []

  async function freshDatabaseUrl(): Promise<string> {
    const name = uniqueName('shop_process')
    databases.push(name)
    await withAdmin(serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`))
    return urlFor(serverUrl, name)
  }
  afterAll(async () => {
    for (const name of databases) await dropDatabase(serverUrl, name)
  })

  async function start(redisUrl: string) {
    const port = await freePort()
    const env = { PORT: String(port), DATABASE_URL: await freshDatabaseUrl(), REDIS_URL: redisUrl, CACHE_KEY_PREFIX: `${uniqueName('process')}:` }
    const started = performance.now()
    const proc = run('src/server.ts', [], processEnv(await workDir('pg'), env))
    return { proc, started, url: `http://127.0.0.1:${port}/health/ready/` }
  }

  it('becomes ready on a fresh database with Redis, then exits 0 on SIGTERM', async ({ expect }) => {
    const { proc, started, url } = await start(suiteRedisUrl!)
    const res = await pollUntil(proc, url, started + READY_WITHIN_MS, 200)
    const body = (await res.json()) as { checks: Record<string, { status: string; backend: string }> }
    expect(body.checks.database).toMatchObject({ status: 'ok', backend: 'postgres' })
    expect(body.checks.cache).toMatchObject({ status: 'ok', backend: 'redis' })
    proc.child.kill('SIGTERM')
    expect((await exitWithin(proc, 10_000)).code).toBe(0)
  }, 60_000)

  it('answers 503 naming cache within 2 s when Redis does not answer', async ({ expect }) => {
    const { proc, started, url } = await start('redis://127.0.0.1:1')
    // Up (live) first; readiness is what is being measured.
    await pollUntil(proc, url.replace('/ready/', '/live/'), started + READY_WITHIN_MS, 200)
    const asked = performance.now()
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
    expect(performance.now() - asked).toBeLessThan(2_000)
    expect(res.status).toBe(503)
    const body = (await res.json()) as { failed: string[]; checks: Record<string, { status: string }> }
    expect(body.failed).toContain('cache')
    expect(body.failed).not.toContain('database')
    expect(body.checks.cache!.status).toBe('error')
    proc.child.kill('SIGTERM')
    expect((await exitWithin(proc, 10_000)).code).toBe(0)
  }, 60_000)
})

describe('graceful shutdown', () => {
  let t: TestApp
  let entered!: () => void
  let release!: () => void
  const inHandler = new Promise<void>((resolve) => (entered = resolve))
  const released = new Promise<void>((resolve) => (release = resolve))

  beforeAll(async () => {
    t = await createTestApp({
      redis: false,
      setup(app) {
        app.get('/test/slow/', async () => {
          entered()
          await released
          // The database is still open while an in-flight request finishes.
          await app.platform.database.ping()
          return { finished: true }
        })
      },
    })
  })
  afterAll(() => t.close())

  /** A request on a new connection: its status, or the connection error code. */
  function freshRequest(port: number, path: string): Promise<number | string> {
    return new Promise((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume()
        resolve(res.statusCode!)
      })
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
      req.end()
    })
  }

  it('finishes an in-flight request and refuses new ones when closing', async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = t.app.server.address() as AddressInfo
    expect(await freshRequest(port, '/health/live/')).toBe(200)

    const inflight = fetch(`http://127.0.0.1:${port}/test/slow/`)
    await inHandler
    let closed = false
    const closing = t.app.close().then(() => (closed = true))

    // Refused, or reset when accepted just before the listener closed, or answered 503: never served.
    expect([503, 'ECONNREFUSED', 'ECONNRESET']).toContain(await freshRequest(port, '/health/live/'))
    expect(closed).toBe(false)

    release()
    const res = await inflight
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ finished: true })
    await closing
    expect(closed).toBe(true)
  })
})

describe.concurrent('src/manage.ts', () => {
  it('applies the migrations to a fresh PGlite directory once', async ({ expect }) => {
    const env = processEnv(await workDir('migrate'))
    const first = run('src/manage.ts', ['migrate'], env)
    expect((await exitWithin(first, 45_000)).code).toBe(0)
    expect(first.stdout()).toContain(`Applied ${migrationCount} migration${migrationCount === 1 ? '' : 's'}.`)

    const second = run('src/manage.ts', ['migrate'], env)
    expect((await exitWithin(second, 30_000)).code).toBe(0)
    expect(second.stdout().trim()).toBe('No migrations to apply.')
  }, 90_000)

  it('exits 2 with usage for an unknown command', async ({ expect }) => {
    const proc = run('src/manage.ts', ['nope'], processEnv(await workDir('nope')))
    expect((await exitWithin(proc, 20_000)).code).toBe(2)
    expect(proc.stderr()).toContain('Unknown command "nope"')
    expect(proc.stderr()).toMatch(/Usage: .*\n[\s\S]*\bmigrate\b[\s\S]*\bcheck\b/)
  }, 30_000)

  it('check exits non-zero naming every required variable when production has nothing set', async ({ expect }) => {
    const proc = run('src/manage.ts', ['check'], processEnv(await workDir('check'), { ENVIRONMENT: 'production' }))
    const { code } = await exitWithin(proc, 20_000)
    expect(code).not.toBe(0)
    expect(code).not.toBeNull()
    for (const name of REQUIRED_IN_PRODUCTION) expect(proc.stderr()).toContain(name)
    expect(proc.stderr()).not.toMatch(STACK_LINE)
    expect(proc.stdout()).not.toContain('is valid')
  }, 30_000)
})
