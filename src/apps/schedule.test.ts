/** The shipped schedule names tasks the app registers, on schedules the table accepts. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../../test/harness.js'
import { ensureDefaultSchedule, listPeriodicTasks } from '../core/scheduler/index.js'
import { DEFAULT_SCHEDULE } from './schedule.js'

describe('DEFAULT_SCHEDULE', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp()
  })
  afterAll(() => t?.close())

  it('names only tasks the app registers', () => {
    const registered = t.app.platform.tasks.names()
    expect(DEFAULT_SCHEDULE.filter((entry) => !registered.includes(entry.task))).toEqual([])
  })

  it('is the expiry of reservations and carts and the payments reconciliation, on intervals the table accepts', async () => {
    const db = t.app.platform.database.db
    expect((await ensureDefaultSchedule(db, DEFAULT_SCHEDULE)).sort()).toEqual(['cart.expire_carts', 'orders.expire_reservations', 'payments.reconcile'])
    expect((await listPeriodicTasks(db)).map((row) => [row.name, row.task, row.every_seconds, row.cron, row.enabled])).toEqual([
      ['cart.expire_carts', 'cart.expire_carts', 3_600, null, true],
      ['orders.expire_reservations', 'orders.expire_reservations', 60, null, true],
      ['payments.reconcile', 'payments.reconcile', 300, null, true],
    ])
  })
})
