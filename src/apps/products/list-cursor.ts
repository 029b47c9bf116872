/**
 * The product list's keyset cursor: the ordering it belongs to, the last row's sort value and id,
 * and the direction. Checked before use, so a forged or damaged cursor is a 422 instead of a
 * failed cast (a 500) in the database.
 */
import type { SortField } from './catalog-queries.js'
import type { Ordering } from './catalog.js'

/** A keyset position: the ordering it belongs to, the last row's sort value and id, and the direction. */
export interface KeysetCursor {
  o: Ordering
  v: string
  id: string
  back?: true
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const UTC_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/

/** A real calendar instant in the form catalog-queries writes (2020-02-31 is not one). */
function isUtcTimestamp(value: string): boolean {
  const parts = UTC_TIMESTAMP.exec(value)?.slice(1).map(Number)
  if (!parts) return false
  const [year, month, day, hour, minute, second] = parts as [number, number, number, number, number, number]
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second))
  return year >= 1000 && date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day && date.getUTCHours() === hour && date.getUTCMinutes() === minute
}

/**
 * Whether a cursor's sort value casts back to its column's type: a forged or damaged cursor is a
 * 422 here instead of a failed cast (a 500) in the database.
 */
const SORT_VALUE_OK: Record<SortField, (value: string) => boolean> = {
  created_at: isUtcTimestamp,
  price: (value) => /^\d{1,10}$/.test(value) && Number(value) <= 2_147_483_647,
  name: (value) => !value.includes('\u0000'),
  rating: (value) => /^\d{1,3}(\.\d{1,6})?$/.test(value),
}

export const isKeysetCursor = (value: unknown): value is KeysetCursor => {
  if (typeof value !== 'object' || value === null) return false
  const { o, v, id } = value as Partial<KeysetCursor>
  if (typeof o !== 'string' || typeof v !== 'string' || !UUID.test(String(id))) return false
  const check = SORT_VALUE_OK[o.replace(/^-/, '') as SortField] as ((value: string) => boolean) | undefined
  return check !== undefined && check(v)
}
