import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPglite } from './index.js'

let scratch: string
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'pglite-lock-'))
})
afterAll(() => rm(scratch, { recursive: true, force: true }))

describe('embedded database lock', () => {
  it('refuses a second opener of the same directory while the first has it, and frees it on close', async () => {
    const dir = join(scratch, 'one')
    const first = await createPglite(dir)
    await expect(createPglite(dir)).rejects.toThrow(`is in use by process ${process.pid}`)
    await first.close()
    expect(existsSync(`${dir}.lock`)).toBe(false)
    const again = await createPglite(dir)
    await again.ping()
    await again.close()
  })

  it('takes over a lock left by a process that died', async () => {
    const dir = join(scratch, 'two')
    // A pid that existed and is gone: a finished child process.
    const { pid } = spawnSync(process.execPath, ['-e', ''])
    writeFileSync(`${dir}.lock`, String(pid))
    const database = await createPglite(dir)
    await database.ping()
    await database.close()
  })
})
