/** Password hashing (argon2id) and the strength rules of a new password. */
import { hash, verify } from '@node-rs/argon2'
import { COMMON_PASSWORDS } from './common-passwords.js'

// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
const ARGON2 = { algorithm: 2 /* Argon2id */, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const
const MAX_LENGTH = 256

export const hashPassword = (password: string) => hash(password, ARGON2)

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password)
  } catch {
    return false
  }
}

/** Hash of a random password: verified against when the account does not exist, so that costs the same. */
let decoyHash: Promise<string> | null = null
export function decoyPasswordHash(): Promise<string> {
  decoyHash ??= hashPassword(`decoy-${Math.random()}`)
  return decoyHash
}

/** Problems with a new password; empty when it is acceptable. */
export function passwordProblems(password: string, context: { email: string; minLength: number; names?: string[] }): string[] {
  const problems: string[] = []
  const lower = password.toLowerCase()
  if (password.length < context.minLength) problems.push(`This password is too short: use at least ${context.minLength} characters.`)
  if (password.length > MAX_LENGTH) problems.push(`This password is too long: use at most ${MAX_LENGTH} characters.`)
  if (COMMON_PASSWORDS.has(lower)) problems.push('This password is too common.')
  if (/^\d+$/.test(password)) problems.push('This password is entirely numeric.')
  const local = context.email.toLowerCase().split('@')[0] ?? ''
  const personal = [context.email.toLowerCase(), local, ...(context.names ?? []).map((name) => name.toLowerCase())].filter((part) => part.length >= 3)
  if (personal.some((part) => lower.includes(part))) problems.push('This password is too similar to your email or name.')
  return problems
}
