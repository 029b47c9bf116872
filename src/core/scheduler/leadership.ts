/**
 * One scheduler acts at a time. On PostgreSQL the leader holds a session advisory lock on a
 * connection of its own: the lock lives exactly as long as that connection, so when the leader's
 * process or network dies the server releases it and a follower's next try takes over. On PGlite
 * one process owns the database, so that process leads.
 *
 * Leadership saves work, it is not what keeps runs single: ticks lock their rows and enqueue with
 * a deterministic job id, so two leaders overlapping for a moment still enqueue each run once.
 */
import pg from 'pg'
import type { Logger } from '../logging.js'

/** Distinct from the migration lock (724_311_001) and the apps' transaction locks (724_311_1xx, 2xx). */
export const SCHEDULER_LOCK_ID = 724_311_002

export interface Leadership {
  /** Becomes the leader if no one is, or confirms this one still is; resolves to whether it leads. */
  acquire(): Promise<boolean>
  readonly isLeader: boolean
  /** Gives the lock up (a follower may take over at once) and closes the connection. */
  release(): Promise<void>
}

/** PGlite: nobody else can open the database, so this process leads from the start. */
export function soleLeadership(): Leadership {
  let leading = false
  return {
    async acquire() {
      leading = true
      return true
    },
    get isLeader() {
      return leading
    },
    async release() {
      leading = false
    },
  }
}

export function advisoryLockLeadership(options: { url: string; log: Logger; lockId?: number }): Leadership {
  const { url, log } = options
  const lockId = options.lockId ?? SCHEDULER_LOCK_ID
  let client: pg.Client | null = null
  let leading = false

  /** A broken connection has lost the lock with it: forget both. */
  const drop = (broken: pg.Client) => {
    if (client !== broken) return
    client = null
    leading = false
    broken.end().catch(() => undefined)
  }

  const connect = async (): Promise<pg.Client> => {
    const fresh = new pg.Client({ connectionString: url, application_name: 'shop-scheduler' })
    // Without a listener a dropped connection would crash the process; losing it only ends leadership.
    fresh.on('error', (err) => {
      if (leading && client === fresh) log.warn({ err }, 'scheduler lost its leader connection')
      drop(fresh)
    })
    try {
      await fresh.connect()
    } catch (err) {
      await fresh.end().catch(() => undefined)
      throw err
    }
    return fresh
  }

  return {
    async acquire() {
      try {
        client ??= await connect()
        const current = client
        if (leading) {
          // The session still answering means the server still holds its lock.
          await current.query('SELECT 1')
          return true
        }
        const result = await current.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [lockId])
        leading = result.rows[0]?.locked === true
        return leading
      } catch (err) {
        log.warn({ err }, 'scheduler could not reach the database for leadership')
        if (client) drop(client)
        return false
      }
    },
    get isLeader() {
      return leading
    },
    async release() {
      const current = client
      client = null
      if (!current) return
      // Ending the session releases the lock too; unlocking first just says so explicitly.
      if (leading) await current.query('SELECT pg_advisory_unlock($1)', [lockId]).catch(() => undefined)
      leading = false
      await current.end().catch(() => undefined)
    },
  }
}
