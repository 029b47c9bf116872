/** Migrate once; test files copy the result (see test/database.ts). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import type { TestProject } from 'vitest/node'
import { loadSettings } from '../src/config/index.js'
import { createDatabase, createPglite } from '../src/core/db/index.js'
import { createLogger } from '../src/core/logging.js'
import { dropDatabase, testServerUrl, uniqueName, urlFor, withAdmin } from './database.js'

declare module 'vitest' {
  export interface ProvidedContext {
    pgTemplate: string | null
    pgliteTemplate: string | null
  }
}

export default async function setup(project: TestProject) {
  const serverUrl = testServerUrl()
  const log = createLogger({ log: { level: 'silent', pretty: false } })
  if (serverUrl) {
    const template = uniqueName('shop_test_template')
    await withAdmin(serverUrl, (client) => client.query(`CREATE DATABASE "${template}"`))
    const settings = loadSettings({ ENVIRONMENT: 'test', DATABASE_URL: urlFor(serverUrl, template) })
    const database = await createDatabase(settings, log)
    await database.migrate()
    await database.close()
    project.provide('pgTemplate', template)
    project.provide('pgliteTemplate', null)
    return async () => dropDatabase(serverUrl, template)
  }

  const client = await PGlite.create({ extensions: { pg_trgm } })
  await (await createPglite(null, client)).migrate()
  const dump = Buffer.from(await (await client.dumpDataDir('gzip')).arrayBuffer())
  await client.close()
  const dir = await mkdtemp(join(tmpdir(), 'shop-test-'))
  const file = join(dir, 'template.tar.gz')
  await writeFile(file, dump)
  project.provide('pgTemplate', null)
  project.provide('pgliteTemplate', file)
  return async () => rm(dir, { recursive: true, force: true })
}
