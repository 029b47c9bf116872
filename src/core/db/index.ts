/**
 * The database: Drizzle over a `pg` pool when a PostgreSQL server is configured, over embedded
 * PGlite (persisted under ./.data/, or in memory) when not. Both speak the same SQL and run the
 * same migrations.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { sql, type SQL } from 'drizzle-orm'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import type { PgDatabase, PgQueryResultHKT, PgTable } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import pg from 'pg'
import { projectRoot, type Settings } from '../../config/index.js'
import type { Logger } from '../logging.js'

/** A Drizzle handle: the pool, or a transaction (the caller decides which). */
export type Db = PgDatabase<PgQueryResultHKT, Record<string, never>>

export interface PoolStats {
  total: number
  idle: number
  waiting: number
  max: number
}

export interface Database {
  readonly kind: 'postgres' | 'pglite'
  readonly db: Db
  /** Applies pending migrations; returns how many ran. Safe when several processes start at once. */
  migrate(): Promise<number>
  ping(): Promise<void>
  poolStats(): PoolStats
  /** Statements run through `db` since start (tests assert constant query counts with it). */
  queryCount(): number
  close(): Promise<void>
}

export const migrationsFolder = join(projectRoot, 'migrations')
/** Serialises migrations across processes sharing one PostgreSQL server. */
const MIGRATION_LOCK_ID = 724_311_001

/** Counts statements through Drizzle's logger hook (called once per statement, cheap). */
function queryCounter() {
  let statements = 0
  return {
    logQuery: () => void statements++,
    count: () => statements,
  }
}

/**
 * A statement built once per database handle (the pool; a transaction gets its own) and
 * prepared by name on each connection: for the statements hot paths run on every request.
 */
export function preparedFor<T>(cache: WeakMap<Db, T>, db: Db, prepare: (db: Db) => T): T {
  let statement = cache.get(db)
  if (!statement) cache.set(db, (statement = prepare(db)))
  return statement
}

/** The SQLSTATE of a database error (pg puts the code on the error, Drizzle's wrapper on its cause). */
export function sqlStateOf(err: unknown): string | undefined {
  return (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code
}

/** A unique constraint refused the statement. */
export function isUniqueViolation(err: unknown): boolean {
  return sqlStateOf(err) === '23505'
}

/** Rows of a raw `db.execute(sql…)` result, whichever driver produced it. */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows
}

/**
 * Deletes the rows of `table` that match `where`, `batch` at a time: a cleanup of a large backlog
 * runs as many short statements instead of one that locks for long. Answers how many went.
 */
export async function deleteInBatches(db: Db, table: PgTable, where: SQL, batch = 5_000): Promise<number> {
  let total = 0
  for (;;) {
    const result = await db.execute(sql`DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${where} LIMIT ${batch}) RETURNING 1`)
    const deleted = rowsOf(result).length
    total += deleted
    if (deleted < batch) return total
  }
}

export async function createDatabase(settings: Pick<Settings, 'db'>, log: Logger): Promise<Database> {
  const config = settings.db
  return config.kind === 'postgres' ? createPostgres(config, log) : createPglite(config.dataDir)
}

function createPostgres(config: Extract<Settings['db'], { kind: 'postgres' }>, log: Logger): Database {
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolMax,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: 'shop-backend',
    ...(config.statementTimeoutMs > 0 ? { statement_timeout: config.statementTimeoutMs } : {}),
  })
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => log.warn({ err }, 'idle database connection failed'))
  const counter = queryCounter()
  const db = drizzlePg(pool, { logger: counter }) as unknown as Db
  return {
    queryCount: counter.count,
    kind: 'postgres',
    db,
    async migrate() {
      const client = await pool.connect()
      try {
        await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID])
        const before = await countApplied(drizzlePg(client) as unknown as Db)
        await migratePg(drizzlePg(client), { migrationsFolder })
        return (await countApplied(drizzlePg(client) as unknown as Db)) - before
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined)
        client.release()
      }
    },
    async ping() {
      await pool.query('SELECT 1')
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: config.poolMax }),
    close: () => pool.end(),
  }
}

/** PGlite from a data directory (null: in memory) or an existing instance (tests load templates). */
export async function createPglite(dataDir: string | null, existing?: PGlite): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true })
  const unlock = dataDir ? lockDataDir(dataDir) : () => undefined
  const client = existing ?? (await PGlite.create(dataDir ?? undefined, { extensions: { pg_trgm } }).catch((err: unknown) => {
    unlock()
    throw err
  }))
  const counter = queryCounter()
  const db = drizzlePglite(client, { logger: counter }) as unknown as Db
  return {
    queryCount: counter.count,
    kind: 'pglite',
    db,
    async migrate() {
      const before = await countApplied(db)
      await migratePglite(drizzlePglite(client), { migrationsFolder })
      return (await countApplied(db)) - before
    },
    async ping() {
      await client.query('SELECT 1')
    },
    // PGlite is one connection inside this process.
    poolStats: () => ({ total: 1, idle: 1, waiting: 0, max: 1 }),
    async close() {
      await client.close()
      unlock()
    },
  }
}

/**
 * PGlite is one process's database: a second process opening the same directory (a manage
 * command while the server runs) would corrupt it. A lock file with the owner's pid prevents that;
 * one left by a process that died is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const lockFile = `${dataDir.replace(/\/+$/, '')}.lock`
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx' })
      return () => rmSync(lockFile, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number(readFileSync(lockFile, 'utf8'))
      if (isAlive(owner)) {
        throw new Error(`The embedded database in ${dataDir} is in use by process ${owner} (a running server?). Stop it first, or use PostgreSQL (DATABASE_URL).`)
      }
      rmSync(lockFile, { force: true })
    }
  }
  throw new Error(`Could not lock the embedded database in ${dataDir}`)
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function countApplied(db: Db): Promise<number> {
  const exists = rowsOf<{ present: boolean }>(await db.execute(sql`SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS present`))
  if (!exists[0]?.present) return 0
  const rows = rowsOf<{ count: number | string }>(await db.execute(sql`SELECT count(*) AS count FROM drizzle.__drizzle_migrations`))
  return Number(rows[0]?.count ?? 0)
}
