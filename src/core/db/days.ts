/**
 * Shop days: calendar dates in the shop's TIME_ZONE, as 'YYYY-MM-DD'. PostgreSQL's time zone
 * rules turn them into instants, so a day across a daylight-saving change is 23 or 25 hours.
 */
import { sql, type SQL, type SQLWrapper } from 'drizzle-orm'

/** The days `from` to `to`, both included. */
export interface DayRange {
  from: string
  to: string
  timeZone: string
}

/** The first instant of the range and the first instant after it. */
export function dayBounds(range: DayRange): { start: SQL; end: SQL } {
  return {
    start: sql`((${range.from}::date)::timestamp AT TIME ZONE ${range.timeZone})`,
    end: sql`((${range.to}::date + 1)::timestamp AT TIME ZONE ${range.timeZone})`,
  }
}

/** The shop day an instant falls on, as 'YYYY-MM-DD' (group by its position: parameters differ per use). */
export function localDay(instant: SQLWrapper, timeZone: string): SQL<string> {
  return sql<string>`to_char(${instant} AT TIME ZONE ${timeZone}, 'YYYY-MM-DD')`
}
