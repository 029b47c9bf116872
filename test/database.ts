/**
 * Test databases. Migrations run once (global setup) into a template; every test file then gets
 * its own copy: `CREATE DATABASE … TEMPLATE` on PostgreSQL, a PGlite loaded from a dump otherwise.
 * The server is TEST_DATABASE_URL, else DATABASE_URL (what CI exports); neither means PGlite.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export function testServerUrl(): string | null {
  return process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || null
}

/** The same server, another database. */
export function urlFor(serverUrl: string, database: string): string {
  const url = new URL(serverUrl)
  url.pathname = `/${database}`
  return url.toString()
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`
}

export async function withAdmin<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await withAdmin(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))
}
