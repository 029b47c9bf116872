import { sql } from 'drizzle-orm'
import { boolean, check, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core'

/**
 * The periodic schedule `npm run beat` acts on (django_celery_beat's PeriodicTask). Each row runs
 * `task` with `payload` on a cron expression (UTC) or every N seconds, never both. Operators
 * switch rows on and off; `next_run_at` is when the scheduler next enqueues the task.
 */
export const periodicTasks = pgTable(
  'periodic_tasks',
  {
    name: text('name').primaryKey(),
    task: text('task').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull().default({}),
    cron: text('cron'),
    every_seconds: integer('every_seconds'),
    enabled: boolean('enabled').notNull().default(true),
    last_run_at: timestamp('last_run_at', { withTimezone: true }),
    next_run_at: timestamp('next_run_at', { withTimezone: true }).notNull(),
    total_run_count: integer('total_run_count').notNull().default(0),
    created_at: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    check('periodic_tasks_one_schedule', sql`(${table.cron} IS NULL) <> (${table.every_seconds} IS NULL)`),
    check('periodic_tasks_every_seconds_positive', sql`${table.every_seconds} > 0`),
  ],
)

export type PeriodicTaskRow = typeof periodicTasks.$inferSelect
