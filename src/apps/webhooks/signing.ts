/**
 * Webhook secrets and signatures. A receiver checks `Webhook-Signature: t=<ts>,v1=<hex>` by
 * computing HMAC-SHA256 with the whole secret (`whsec_…`, as UTF-8) over `<ts>.<body>`, and
 * refuses old timestamps, so a captured delivery cannot be replayed much later.
 */
import { createHmac, randomBytes } from 'node:crypto'

export const SECRET_PREFIX = 'whsec_'

export const newSecret = () => `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`

export function signatureOf(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
}

export const signatureHeader = (secret: string, timestamp: number, body: string) => `t=${timestamp},v1=${signatureOf(secret, timestamp, body)}`
