/**
 * Periodic tasks on a timer, until the database scheduler of `npm run beat` exists: every
 * `settings.queue.periodicEveryMs` each API process enqueues the listed tasks. The tasks are
 * idempotent and lock what they change, so several processes doing this at once is harmless.
 */
import type { Platform } from './platform.js'

export function startPeriodicTasks(platform: Platform, tasks: string[]): () => void {
  const every = platform.settings.queue.periodicEveryMs
  if (every <= 0 || tasks.length === 0) return () => {}
  const timer = setInterval(() => {
    for (const task of tasks) {
      platform.queue.enqueue(task, {}).catch((err: unknown) => platform.log.error({ err, task }, 'periodic task not enqueued'))
    }
  }, every)
  // A timer must not keep a finished process alive.
  timer.unref()
  return () => clearInterval(timer)
}
