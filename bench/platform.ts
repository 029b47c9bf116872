/**
 * Platform overhead: how fast the bare stack answers (helmet, CORS, rate limit, request id,
 * metrics, one JSON log line per request) and what a readiness check costs, for each backend
 * available, next to a bare Fastify answering the same route, in one run so the ratios are
 * comparable on a noisy machine.
 *
 *   npx tsx bench/platform.ts                 # PGlite + memory
 *   DATABASE_URL=… REDIS_URL=… npx tsx bench/platform.ts   # adds PostgreSQL + Redis
 *
 * Not run by CI. Loopback only; each run is bounded by DURATION seconds.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { freePort, scratchDatabase } from './support.js'

const DURATION = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)

interface Setup {
  name: string
  env: Record<string, string>
}

const setups: Setup[] = [{ name: 'pglite+memory', env: {} }]
// On PostgreSQL the benchmark migrates a database of its own, dropped at the end.
const database = process.env.REDIS_URL ? await scratchDatabase('bench_platform') : null
if (database) setups.push({ name: 'postgres+redis', env: { DATABASE_URL: database.url, REDIS_URL: process.env.REDIS_URL! } })
const targets = ['/health/live/', '/health/ready/', '/api/nothing/']


async function start(setup: Setup, dir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort()
  const { DATABASE_URL: _db, REDIS_URL: _redis, ...base } = process.env
  const child = spawn('node', ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...base,
      ENVIRONMENT: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_FORMAT: 'json',
      PGLITE_DATA_DIR: join(dir, 'pglite'),
      RATE_LIMIT_GLOBAL: '100000000/minute',
      ...setup.env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/health/ready/`).then((res) => res.ok, () => false)
    if (ok) return { child, url }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  child.kill('SIGKILL')
  throw new Error(`${setup.name}: server not ready within 30 s`)
}

async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

const rows: string[] = []

// The bound, measured in the same run: bare Fastify with the same liveness route.
{
  const port = await freePort()
  const bare = spawn('node', ['--import', 'tsx', 'bench/bare-server.ts'], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}/health/live/`
  while (!(await fetch(url).then((res) => res.ok, () => false))) await new Promise((resolve) => setTimeout(resolve, 100))
  await autocannon({ url, connections: CONNECTIONS, duration: 2 })
  const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION })
  rows.push(`| bare fastify (bound) | /health/live/ | ${Math.round(result.requests.average)} | ${result.latency.p50} | ${result.latency.p99} | ${result.non2xx} | ${Math.round(await rssOf(bare.pid!))} |`)
  bare.kill('SIGTERM')
  await new Promise((resolve) => bare.once('exit', resolve))
}

for (const setup of setups) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-'))
  const { child, url } = await start(setup, dir)
  try {
    for (const path of targets) {
      // A short warm-up so the JIT and pools are settled before measuring.
      await autocannon({ url: url + path, connections: CONNECTIONS, duration: 2 })
      const result = await autocannon({ url: url + path, connections: CONNECTIONS, duration: DURATION })
      rows.push(
        `| ${setup.name} | ${path} | ${Math.round(result.requests.average)} | ${result.latency.p50} | ${result.latency.p99} | ${result.non2xx} | ${Math.round(await rssOf(child.pid!))} |`,
      )
    }
  } finally {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    await rm(dir, { recursive: true, force: true })
  }
}

await database?.drop()

process.stdout.write(
  [`${CONNECTIONS} connections, ${DURATION} s per target`, '| setup | path | req/s | p50 ms | p99 ms | non-2xx | RSS MiB |', '| --- | --- | --- | --- | --- | --- | --- |', ...rows, ''].join('\n'),
)
