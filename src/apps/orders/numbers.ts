/**
 * Order numbers: "ORD-" and 8 characters of Crockford's base32 (no I, L, O, U: nothing to misread
 * on a phone call), from a cryptographic source. 32^8 ≈ 10^12 values: not sequential, not
 * guessable; the unique index catches the rare collision and the caller draws again.
 */
import { randomBytes } from 'node:crypto'

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

export function newOrderNumber(): string {
  const bytes = randomBytes(8)
  let suffix = ''
  for (const byte of bytes) suffix += ALPHABET[byte & 31]
  return `ORD-${suffix}`
}

export const ORDER_NUMBER_PATTERN = '^ORD-[0-9A-HJKMNP-TV-Z]{8}$'
