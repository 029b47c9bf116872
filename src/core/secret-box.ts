/**
 * Secrets the shop must read back (webhook signing secrets), stored encrypted with AES-256-GCM
 * under a key derived from SECRET_KEY and a purpose, so a database dump alone does not reveal
 * them and one purpose's ciphertext does not open under another's key. Rotating SECRET_KEY makes
 * the stored secrets unreadable: they must be issued again.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

const VERSION = 'v1'

export interface SecretBox {
  seal(plain: string): string
  /** Throws when the text was not sealed with this key and purpose (or was altered). */
  open(sealed: string): string
}

export function createSecretBox(secretKey: string, purpose: string): SecretBox {
  const key = createHash('sha256').update(`${purpose}:${secretKey}`).digest()
  return {
    seal(plain) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      return [VERSION, ...[iv, cipher.getAuthTag(), data].map((part) => part.toString('base64url'))].join('.')
    },
    open(sealed) {
      const [version, iv, tag, data] = sealed.split('.')
      if (version !== VERSION || !iv || !tag || data === undefined) throw new Error('Not a sealed secret')
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8')
    },
  }
}
