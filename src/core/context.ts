/**
 * Ctx: what a service call needs to act: the database (pool or the open transaction), who acts,
 * the request's logger and id, and the event publisher. `ctx.tx(fn)` is the only way to open a
 * transaction; a nested call reuses the outer one, so other apps' writes commit with ours.
 */
import type { Db } from './db/index.js'
import { insertEvent, type DomainEvents, type EventName } from './events/index.js'
import type { Logger } from './logging.js'

export type Role = 'customer' | 'staff' | 'admin'

export interface Actor {
  kind: 'user' | 'service'
  /** User id, or the service name. */
  id: string
  role?: Role
  /** The session was signed in with a second factor. */
  mfa?: boolean
}

export interface Ctx {
  readonly db: Db
  readonly log: Logger
  readonly requestId: string
  readonly actor: Actor | null
  readonly inTransaction: boolean
  tx<T>(fn: (tx: Ctx) => Promise<T>): Promise<T>
  /**
   * Inside a transaction: runs `fn` under a savepoint, so a failure undoes only its own writes and
   * the transaction goes on. Outside one it is `tx`.
   */
  savepoint<T>(fn: (tx: Ctx) => Promise<T>): Promise<T>
  /** Runs after the outermost transaction commits (never after a rollback). */
  afterCommit(fn: () => void): void
  readonly events: {
    /** Writes the event to the outbox in the current transaction. */
    publish<K extends EventName>(name: K, payload: DomainEvents[K]): Promise<void>
  }
}

export interface CtxOptions {
  db: Db
  log: Logger
  requestId: string
  actor?: Actor | null
  /** Called after a transaction that published events commits (the relay's flush). */
  onEventsCommitted?: () => void
}

export function createCtx(options: CtxOptions): Ctx {
  return makeCtx(options, null)
}

function makeCtx(options: CtxOptions, commitHooks: Array<() => void> | null): Ctx {
  const ctx: Ctx = {
    db: options.db,
    log: options.log,
    requestId: options.requestId,
    actor: options.actor ?? null,
    inTransaction: commitHooks !== null,
    async tx(fn) {
      if (commitHooks) return fn(ctx)
      const hooks: Array<() => void> = []
      const result = await options.db.transaction((trx) => fn(makeCtx({ ...options, db: trx as unknown as Db }, hooks)))
      // The change is committed: a failing hook is logged, never turned into the caller's error.
      for (const hook of hooks) {
        try {
          hook()
        } catch (err) {
          options.log.error({ err }, 'after-commit hook failed')
        }
      }
      return result
    },
    async savepoint(fn) {
      if (!commitHooks) return ctx.tx(fn)
      return options.db.transaction((sp) => fn(makeCtx({ ...options, db: sp as unknown as Db }, commitHooks)))
    },
    afterCommit(fn) {
      if (commitHooks) commitHooks.push(fn)
      else fn()
    },
    events: {
      async publish(name, payload) {
        await insertEvent(ctx.db, name, payload as object)
        if (options.onEventsCommitted) ctx.afterCommit(options.onEventsCommitted)
      },
    },
  }
  return ctx
}
