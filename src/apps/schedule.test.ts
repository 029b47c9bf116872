/** The shipped schedule names tasks the app registers, on schedules the table accepts; every task has its queue. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../../test/harness.js'
import { TASK_ROUTES } from '../core/queue/routing.js'
import { ensureDefaultSchedule, listPeriodicTasks } from '../core/scheduler/index.js'
import { DEFAULT_SCHEDULE } from './schedule.js'

describe('DEFAULT_SCHEDULE', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp()
  })
  afterAll(() => t?.close())

  it('every registered task has its line in TASK_ROUTES (its queue is chosen, not defaulted), and no line names a task nobody registers', () => {
    const registered = t.app.platform.tasks.names()
    expect(registered.filter((task) => !(task in TASK_ROUTES))).toEqual([])
    expect(Object.keys(TASK_ROUTES).filter((task) => !registered.includes(task))).toEqual([])
  })

  it('names only tasks the app registers', () => {
    const registered = t.app.platform.tasks.names()
    expect(DEFAULT_SCHEDULE.filter((entry) => !registered.includes(entry.task))).toEqual([])
  })

  it('is the expiries, the payments reconciliation, the webhook sweep, the analytics rollup and the nightly cleanups, on schedules the table accepts', async () => {
    const db = t.app.platform.database.db
    expect((await ensureDefaultSchedule(db, DEFAULT_SCHEDULE)).sort()).toEqual([
      'accounts.clean_spent_tokens',
      'analytics.prune_events',
      'analytics.rollup',
      'cart.expire_carts',
      'core.clean_expired',
      'orders.expire_reservations',
      'payments.prune_webhook_events',
      'payments.reconcile',
      'webhooks.deliver_due',
      'webhooks.prune_deliveries',
    ])
    expect((await listPeriodicTasks(db)).map((row) => [row.name, row.task, row.every_seconds, row.cron, row.enabled])).toEqual([
      ['accounts.clean_spent_tokens', 'accounts.clean_spent_tokens', null, '20 3 * * *', true],
      ['analytics.prune_events', 'analytics.prune_events', null, '50 3 * * *', true],
      ['analytics.rollup', 'analytics.rollup', 900, null, true],
      ['cart.expire_carts', 'cart.expire_carts', 3_600, null, true],
      ['core.clean_expired', 'core.clean_expired', null, '10 3 * * *', true],
      ['orders.expire_reservations', 'orders.expire_reservations', 60, null, true],
      ['payments.prune_webhook_events', 'payments.prune_webhook_events', null, '30 3 * * *', true],
      ['payments.reconcile', 'payments.reconcile', 300, null, true],
      ['webhooks.deliver_due', 'webhooks.deliver_due', 60, null, true],
      ['webhooks.prune_deliveries', 'webhooks.prune_deliveries', null, '40 3 * * *', true],
    ])
  })
})
