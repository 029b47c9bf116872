/** What the benchmarks share: a free loopback port, and a PostgreSQL database of their own. */
import { createServer } from 'node:net'
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
