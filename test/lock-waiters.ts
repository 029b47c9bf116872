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
