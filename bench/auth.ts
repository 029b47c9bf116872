/**
 * Cost of authentication, against a running server in one run: an authenticated read
 * (JWT verify + the per-request principal lookup) next to an anonymous one, and password sign-in
 * (argon2id, deliberately slow) next to a failed sign-in for an unknown email (which also pays one
 * hash, so timing does not reveal accounts).
 *
 *   npx tsx bench/auth.ts                                   # PGlite
 *   DATABASE_URL=… REDIS_URL=… npx tsx bench/auth.ts        # PostgreSQL + Redis
 *
 * Not run by CI. Loopback only; each target runs BENCH_SECONDS.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { freePort, scratchDatabase } from './support.js'

const DURATION = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20)
const PASSWORD = 'a-benchmark-passphrase-long-enough'

const port = await freePort()
const dir = await mkdtemp(join(tmpdir(), 'bench-auth-'))
const database = await scratchDatabase('bench_auth')
const child = spawn('node', ['--import', 'tsx', 'src/server.ts'], {
  env: {
    ...process.env,
    ...(database ? { DATABASE_URL: database.url } : {}),
    ENVIRONMENT: 'development',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_FORMAT: 'json',
    PGLITE_DATA_DIR: join(dir, 'pglite'),
    RATE_LIMIT_ENABLED: 'false',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
})
const url = `http://127.0.0.1:${port}`

try {
  const deadline = Date.now() + 30_000
  while (!(await fetch(`${url}/health/ready/`).then((res) => res.ok, () => false))) {
    if (Date.now() > deadline) throw new Error('server not ready within 30 s')
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const email = `bench-${Date.now()}@example.com`
  const json = { 'content-type': 'application/json' }
  await fetch(`${url}/api/auth/register/`, { method: 'POST', headers: json, body: JSON.stringify({ email, password: PASSWORD }) })
  const session = (await (await fetch(`${url}/api/auth/login/`, { method: 'POST', headers: json, body: JSON.stringify({ email, password: PASSWORD }) })).json()) as { access: string }

  const targets: Array<{ name: string; options: autocannon.Options }> = [
    { name: 'GET /health/live/ (anonymous)', options: { url: `${url}/health/live/` } },
    { name: 'GET /api/accounts/me/ (bearer)', options: { url: `${url}/api/accounts/me/`, headers: { authorization: `Bearer ${session.access}` } } },
    { name: 'POST /api/auth/login/ (right password)', options: { url: `${url}/api/auth/login/`, method: 'POST', headers: json, body: JSON.stringify({ email, password: PASSWORD }) } },
    { name: 'POST /api/auth/login/ (unknown email)', options: { url: `${url}/api/auth/login/`, method: 'POST', headers: json, body: JSON.stringify({ email: 'nobody@example.com', password: PASSWORD }) } },
  ]
  const rows: string[] = []
  for (const target of targets) {
    await autocannon({ ...target.options, connections: CONNECTIONS, duration: 2 })
    const result = await autocannon({ ...target.options, connections: CONNECTIONS, duration: DURATION })
    rows.push(`| ${target.name} | ${Math.round(result.requests.average)} | ${result.latency.p50} | ${result.latency.p99} | ${result['2xx']} | ${result.non2xx} |`)
  }
  const backend = process.env.DATABASE_URL ? 'postgres' : 'pglite'
  process.stdout.write([`${backend}, ${CONNECTIONS} connections, ${DURATION} s per target`, '| target | req/s | p50 ms | p99 ms | 2xx | non-2xx |', '| --- | --- | --- | --- | --- | --- |', ...rows, ''].join('\n'))
} finally {
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('exit', resolve))
  await rm(dir, { recursive: true, force: true })
  await database?.drop()
}
