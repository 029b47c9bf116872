import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadSettings, withDotEnv } from './index.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dotenv-'))
  await writeFile(
    join(dir, '.env'),
    ['# a Django .env works unchanged', 'DB_ENGINE=django.db.backends.postgresql', 'DB_NAME=ecommerce', 'DB_HOST=127.0.0.1', 'PORT=8100', 'ALLOWED_HOSTS=localhost,127.0.0.1'].join('\n'),
  )
})
afterAll(() => rm(dir, { recursive: true, force: true }))

describe(withDotEnv.name, () => {
  it('reads .env from the directory when the environment does not set a variable', () => {
    const settings = loadSettings(withDotEnv(dir, {}))
    expect(settings.http.port).toBe(8100)
    expect(settings.db).toMatchObject({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/ecommerce' })
    expect(settings.http.allowedHosts).toEqual(['localhost', '127.0.0.1'])
  })

  it('lets a real environment variable win over .env', () => {
    expect(loadSettings(withDotEnv(dir, { PORT: '9000' })).http.port).toBe(9000)
  })

  it('is a no-op when the directory has no .env', () => {
    expect(withDotEnv(tmpdir(), { PORT: '1234' })).toEqual({ PORT: '1234' })
  })
})
