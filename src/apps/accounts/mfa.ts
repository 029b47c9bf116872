/**
 * TOTP (RFC 6238, as authenticator apps use it) and recovery codes. Secrets are stored encrypted
 * with AES-256-GCM under a key derived from SECRET_KEY, so a database dump alone cannot mint codes.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomInt } from 'node:crypto'
import { Secret, TOTP } from 'otpauth'

const PERIOD = 30
/** Codes from the previous and next period are accepted too (clock drift). */
const WINDOW = 1

export function createMfa(options: { secretKey: string; issuer: string }) {
  const key = createHash('sha256').update(`mfa-secrets:${options.secretKey}`).digest()

  const totpFor = (secret: string, label: string) =>
    new TOTP({ issuer: options.issuer, label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(secret) })

  return {
    newSecret: () => new Secret({ size: 20 }).base32,
    otpauthUrl: (secret: string, email: string) => totpFor(secret, email).toString(),
    /** The time step of a valid code newer than `lastStep`, or null (wrong, or replayed). */
    acceptCode(secret: string, code: string, lastStep: number | null): number | null {
      if (!/^\d{6}$/.test(code)) return null
      const delta = totpFor(secret, 'user').validate({ token: code, window: WINDOW })
      if (delta === null) return null
      const step = Math.floor(Date.now() / 1000 / PERIOD) + delta
      return lastStep !== null && step <= lastStep ? null : step
    },
    /** The current code (tests, and nothing else, need this). */
    currentCode: (secret: string) => totpFor(secret, 'user').generate(),
    encrypt(secret: string): string {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const data = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()])
      return [iv, cipher.getAuthTag(), data].map((part) => part.toString('base64url')).join('.')
    },
    decrypt(stored: string): string {
      const [iv, tag, data] = stored.split('.').map((part) => Buffer.from(part, 'base64url'))
      const decipher = createDecipheriv('aes-256-gcm', key, iv!)
      decipher.setAuthTag(tag!)
      return Buffer.concat([decipher.update(data!), decipher.final()]).toString('utf8')
    },
  }
}

export type Mfa = ReturnType<typeof createMfa>

/** Ten codes like "7kq2-m9xd": shown once, stored hashed, each usable once. */
export function newRecoveryCodes(count = 10): string[] {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789'
  return Array.from({ length: count }, () => {
    const chars = Array.from({ length: 8 }, () => alphabet[randomInt(alphabet.length)])
    return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`
  })
}

export function normaliseRecoveryCode(code: string): string {
  return code.trim().toLowerCase().replace(/\s+/g, '')
}
