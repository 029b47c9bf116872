/**
 * Opaque list cursors and the links that carry them. A cursor is base64url JSON that only the
 * code which made it reads back; a cursor that does not decode is the client's mistake (422).
 */
import type { FastifyRequest } from 'fastify'
import { ValidationError } from '../errors.js'

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** Decodes a cursor and checks its shape with `isValid`; anything else is a 422 on `cursor`. */
export function decodeCursor<T>(cursor: string, isValid: (value: unknown) => value is T): T {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    value = undefined
  }
  if (!isValid(value)) throw new ValidationError('The cursor is not valid for this list.', { cursor: ['Invalid cursor: use the next or previous link of a page.'] })
  return value
}

/** The same URL with `cursor` replaced (scheme and host as the client sees them, with TRUST_PROXY). */
export function pageUrl(request: FastifyRequest, cursor: string | null): string | null {
  if (cursor === null) return null
  const [path = '', query = ''] = request.url.split('?')
  const params = new URLSearchParams(query)
  params.set('cursor', cursor)
  return `${request.protocol}://${request.host}${path}?${params.toString()}`
}
