/**
 * The token of a one-click unsubscribe link (RFC 8058): who, and from what, signed with a key derived
 * from SECRET_KEY. It does not expire: a link in a years-old email must still work.
 */
import { createHash } from 'node:crypto'
import { jwtVerify, SignJWT } from 'jose'
import type { NotificationKind } from './tables.js'

const PURPOSE = 'unsubscribe'

export function createUnsubscribeTokens(secretKey: string) {
  const key = createHash('sha256').update(`unsubscribe-links:${secretKey}`).digest()
  return {
    sign: (userId: string, kind: NotificationKind): Promise<string> =>
      new SignJWT({ purpose: PURPOSE, kind }).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().sign(key),
    /** The user and kind, or null for anything not signed by us for this purpose. */
    async verify(token: string): Promise<{ userId: string; kind: NotificationKind } | null> {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] })
        if (payload.purpose !== PURPOSE || typeof payload.sub !== 'string' || payload.kind !== 'marketing') return null
        return { userId: payload.sub, kind: payload.kind }
      } catch {
        return null
      }
    },
  }
}

export type UnsubscribeTokens = ReturnType<typeof createUnsubscribeTokens>
