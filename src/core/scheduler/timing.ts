/**
 * When a periodic task runs next. Pure functions of the schedule and the clock, so the scheduler's
 * catch-up rule (one run after downtime, never a burst) can be read and tested on its own.
 */
import { CronExpressionParser } from 'cron-parser'

/** Exactly one of the two, as the table's check constraint requires. */
export type Schedule = { cron: string; every_seconds?: undefined } | { every_seconds: number; cron?: undefined }

/** A schedule as a row stores it: both columns, one of them null. */
export interface StoredSchedule {
  cron: string | null
  every_seconds: number | null
}

/** A schedule the table would accept; throws with a message naming what is wrong. */
export function checkSchedule(schedule: StoredSchedule): void {
  if ((schedule.cron === null) === (schedule.every_seconds === null)) throw new Error('A schedule has either cron or every_seconds, not both and not neither')
  if (schedule.every_seconds !== null && (!Number.isInteger(schedule.every_seconds) || schedule.every_seconds <= 0)) {
    throw new Error(`every_seconds must be a positive whole number, got ${schedule.every_seconds}`)
  }
  if (schedule.cron !== null) nextCronAfter(schedule.cron, new Date())
}

/** The first run of a new row: one interval from now, or the cron's next time. */
export function firstRun(schedule: StoredSchedule, now: Date): Date {
  if (schedule.every_seconds !== null) return new Date(now.getTime() + schedule.every_seconds * 1000)
  return nextCronAfter(schedule.cron!, now)
}

/**
 * The run after the one due at `due`, strictly later than `now`. An interval keeps its phase
 * (due + k intervals) and skips the runs missed while nothing was scheduling; a cron expression
 * takes its next time after now, which skips them the same way.
 */
export function nextRunAfter(schedule: StoredSchedule, due: Date, now: Date): Date {
  if (schedule.every_seconds !== null) {
    const every = schedule.every_seconds * 1000
    const elapsed = Math.max(now.getTime() - due.getTime(), 0)
    return new Date(due.getTime() + (Math.floor(elapsed / every) + 1) * every)
  }
  return nextCronAfter(schedule.cron!, now)
}

/** Cron expressions are read in UTC, so a schedule means the same on every host. */
function nextCronAfter(cron: string, after: Date): Date {
  return CronExpressionParser.parse(cron, { currentDate: after, tz: 'UTC' }).next().toDate()
}

/** `every 1 min`, `every 90 s`, `cron 0 3 * * *`: how the manage command shows a schedule. */
export function describeSchedule(schedule: StoredSchedule): string {
  if (schedule.every_seconds === null) return `cron ${schedule.cron}`
  const seconds = schedule.every_seconds
  if (seconds % 86_400 === 0) return `every ${seconds / 86_400} d`
  if (seconds % 3_600 === 0) return `every ${seconds / 3_600} h`
  if (seconds % 60 === 0) return `every ${seconds / 60} min`
  return `every ${seconds} s`
}
