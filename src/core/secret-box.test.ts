import { describe, expect, it } from 'vitest'
import { createSecretBox } from './secret-box.js'

const KEY = 'a-secret-key-long-enough-for-the-test-0123456789'

describe(createSecretBox.name, () => {
  it('opens what it sealed, and the sealed text does not contain the secret', () => {
    const box = createSecretBox(KEY, 'webhook-secrets')
    const sealed = box.seal('whsec_plain-text')
    expect(sealed).not.toContain('whsec_plain-text')
    expect(box.open(sealed)).toBe('whsec_plain-text')
  })

  it('seals the same secret differently each time (random IV)', () => {
    const box = createSecretBox(KEY, 'webhook-secrets')
    expect(box.seal('same')).not.toBe(box.seal('same'))
  })

  it('refuses a text sealed under another SECRET_KEY or purpose, or altered', () => {
    const sealed = createSecretBox(KEY, 'webhook-secrets').seal('whsec_x')
    expect(() => createSecretBox(`${KEY}-rotated`, 'webhook-secrets').open(sealed)).toThrow()
    expect(() => createSecretBox(KEY, 'other-purpose').open(sealed)).toThrow()
    const [version, iv, tag, data] = sealed.split('.')
    const flipped = Buffer.from(data!, 'base64url')
    flipped[0] = flipped[0]! ^ 1
    expect(() => createSecretBox(KEY, 'webhook-secrets').open([version, iv, tag, flipped.toString('base64url')].join('.'))).toThrow()
    expect(() => createSecretBox(KEY, 'webhook-secrets').open('not-sealed')).toThrow('Not a sealed secret')
  })
})
