import type pg from 'pg'

/**
 * Waits until `count` backends of this database wait on a lock: how concurrency tests know every
 * racer really queues behind the gate before opening it. PostgreSQL is an external process with
 * no event to wait on, so this polls, with a deadline.
 */
export async function waitForLockWaiters(client: pg.Client, count: number, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    if (Number(rows[0]!.n) >= count) return
    if (performance.now() > deadline) throw new Error(`only ${rows[0]!.n} of ${count} racers reached the lock in time`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Runs `race` while `gate` holds the rows `lock` selects FOR UPDATE, and opens the gate once
 * `waiters` racers are blocked behind it, so they really contend instead of running one by one.
 * Answers the racers' outcome; `race`'s failure is the caller's to see once the gate is open.
 */
export async function behindRowLock<T>(gate: pg.Client, observer: pg.Client, lock: { sql: string; params: unknown[] }, waiters: number, race: () => Promise<T>): Promise<T> {
  await gate.query('BEGIN')
  let racing: Promise<T> | undefined
  try {
    const { rowCount } = await gate.query(`${lock.sql} FOR UPDATE`, lock.params)
    if (!rowCount) throw new Error(`the gate locked no row: ${lock.sql}`)
    racing = race()
    racing.catch(() => undefined)
    await waitForLockWaiters(observer, waiters)
  } finally {
    await gate.query('COMMIT')
  }
  return racing!
}
