/**
 * What the benchmarks share: a free loopback port, a PostgreSQL database of their own, the
 * production environment and server processes they start, and their memory.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import pg from 'pg'

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * A fresh database on the server DATABASE_URL names, so a benchmark never migrates or fills the
 * one it was pointed at. Null without DATABASE_URL (the benchmark then uses PGlite).
 */
export async function scratchDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> } | null> {
  const server = process.env.DATABASE_URL
  if (!server) return null
  const name = `${prefix}_${Date.now()}`
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: server })
    await client.connect()
    await client.query(statement).finally(() => client.end())
  }
  await admin(`CREATE DATABASE "${name}"`)
  return {
    url: Object.assign(new URL(server), { pathname: `/${name}` }).toString(),
    drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  }
}

/** What production refuses to start without, with throwaway values for a loopback benchmark. */
export function productionEnv(): Record<string, string> {
  // Random per run: production refuses short or well-known keys.
  const secret = randomBytes(40).toString('base64url')
  return {
    ENVIRONMENT: 'production',
    SECRET_KEY: secret,
    ALLOWED_HOSTS: '127.0.0.1,localhost',
    CELERY_BROKER_URL: process.env.REDIS_URL!,
    CELERY_RESULT_BACKEND: process.env.REDIS_URL!,
    SERVICE_AUTH_SECRET_DJANGO_BACKEND: `${secret}-a`,
    SERVICE_AUTH_SECRET_API_GATEWAY: `${secret}-b`,
    SERVICE_AUTH_SECRET_CELERY_WORKER: `${secret}-c`,
    RATE_LIMIT_GLOBAL: '100000000/minute',
    LOG_LEVEL: 'warn',
    SEED_DEMO_ON_START: 'false',
  }
}

/** `npm run start:prod` as a shell command, exec'd so the child's pid is node's (for its memory). */
export async function startProdCommand(): Promise<[string, string[]]> {
  const script = JSON.parse(await readFile('package.json', 'utf8')).scripts['start:prod'] as string
  return ['sh', ['-c', `exec ${script}`]]
}

/** Servers a benchmark started, stopped together at its end (also on failure). */
export function serverPool() {
  const children: ChildProcess[] = []
  return {
    async start(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
      const port = await freePort()
      const child = spawn(command, args, { env: { ...env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'ignore', 'inherit'] })
      children.push(child)
      const url = `http://127.0.0.1:${port}`
      const deadline = Date.now() + 30_000
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`)
        if (await fetch(`${url}/health/live/`).then(() => true, () => false)) return { child, url }
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      throw new Error(`${args.join(' ')}: not listening within 30 s`)
    },
    async stopAll(): Promise<void> {
      for (const child of children) child.kill('SIGTERM')
      await Promise.all(children.map((child) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : null)))
    },
  }
}

/** Resident memory of a process, in MiB. */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

/** Runs a command to its end; rejects when it exits non-zero. */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'inherit', 'inherit'] })
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`))))
  })
}

/** Deletes a run's cache keys (its CACHE_KEY_PREFIX), so runs never share counters or pages. */
export async function dropCacheKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

/**
 * What a production-setup benchmark works in: a scratch database, cache keys under a prefix of
 * its own, and the servers it starts. `setupEnv` runs the setup commands (migrate, seed_demo, …)
 * against them; `cleanUp` stops the servers, drops the database and deletes the keys. Without
 * DATABASE_URL and REDIS_URL the process exits 2, naming the benchmark.
 */
export async function productionBench(name: string) {
  if (!process.env.DATABASE_URL || !process.env.REDIS_URL) {
    process.stderr.write(`The ${name} benchmark runs the production setup: set DATABASE_URL (a PostgreSQL server) and REDIS_URL.\n`)
    process.exit(2)
  }
  const database = (await scratchDatabase(`bench_${name}`))!
  const cachePrefix = `bench_${name}_${Date.now()}:`
  const servers = serverPool()
  return {
    database,
    cachePrefix,
    servers,
    setupEnv: { ...process.env, DATABASE_URL: database.url, CACHE_KEY_PREFIX: cachePrefix, ENVIRONMENT: 'development', SEED_DEMO_ON_START: 'false', LOG_LEVEL: 'warn' },
    async cleanUp() {
      await servers.stopAll()
      await database.drop()
      await dropCacheKeys(process.env.REDIS_URL!, cachePrefix)
    },
  }
}
