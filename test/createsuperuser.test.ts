/**
 * `manage createsuperuser` as an operator runs it: `tsx src/manage.ts` in processes of its own on
 * an embedded PGlite directory in a temporary folder, with only the variables given here. The
 * rows are then read by opening that directory after the last process has exited.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { users } from '../src/apps/accounts/tables.js'
import { verifyPassword } from '../src/apps/accounts/passwords.js'
import { projectRoot } from '../src/config/index.js'
import { createPglite } from '../src/core/db/index.js'
import { isolatedEnv, NODE, tsArgs } from './run-ts.js'

const STRONG = 'correct-horse-battery-staple-42'
const FLAG_EMAIL = 'a@example.com'
const ENV_EMAIL = 'Root.Env@example.com'
const WEAK_EMAIL = 'weak@example.com'
const STACK_LINE = /^\s{4}at /m

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

let scratch: string
let dataDir: string
const children = new Set<number>()

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'shop-createsuperuser-'))
  dataDir = join(scratch, 'pglite')
})
afterAll(async () => {
  // A failed test may leave its process running: end its process group (tsx and its node child).
  for (const pid of children) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await rm(scratch, { recursive: true, force: true })
})

/**
 * Every known variable blank (blank means unset), so neither the suite's DATABASE_URL/REDIS_URL
 * nor a developer's `.env` reaches the process: the database is the PGlite directory.
 */
function manage(args: string[], vars: Record<string, string> = {}): Promise<Run> {
  const env = isolatedEnv({
    PGLITE_DATA_DIR: dataDir,
    MEDIA_ROOT: join(scratch, 'media'),
    STATIC_ROOT: join(scratch, 'static'),
    EMAIL_FILE_PATH: join(scratch, 'emails'),
    ...vars,
  })
  return new Promise((resolve, reject) => {
    // detached: its own process group, so cleanup reaches tsx's child node process too.
    const child = spawn(NODE, tsArgs('src/manage.ts', args), { cwd: projectRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child.pid!)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    // Bounds a hung process; the command itself exits on its own.
    const timer = setTimeout(() => reject(new Error(`manage ${args.join(' ')} still running\nstdout: ${stdout}\nstderr: ${stderr}`)), 45_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      children.delete(child.pid!)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Every run of the scenario, started once, in order: one PGlite directory takes one process at a time. */
interface Runs {
  unmigrated: Run
  migrate: Run
  created: Run
  again: Run
  fromEnv: Run
  weak: Run
  none: Run
  passwordOnly: Run
  unknownOption: Run
}
let runs: Runs

describe('manage createsuperuser', () => {
  beforeAll(async () => {
    // These stop at the arguments, before opening a database, so they run beside the others (on a
    // directory of their own, should one ever open it).
    const aside = { PGLITE_DATA_DIR: join(scratch, 'aside') }
    const early = Promise.all([
      manage(['createsuperuser'], aside),
      manage(['createsuperuser', '--password', STRONG], { ...aside, DJANGO_SUPERUSER_PASSWORD: STRONG }),
      manage(['createsuperuser', '--email', 'x@example.com', '--password', STRONG, '--staff'], aside),
    ])
    // Awaited below; a failure must not count as unhandled meanwhile.
    early.catch(() => undefined)
    const unmigrated = await manage(['createsuperuser', '--email', FLAG_EMAIL, '--password', STRONG])
    const migrate = await manage(['migrate'])
    const created = await manage(['createsuperuser', '--email', FLAG_EMAIL, '--password', STRONG])
    const again = await manage(['createsuperuser', '--email', FLAG_EMAIL.toUpperCase(), '--password', 'another-strong-passphrase-7'])
    const fromEnv = await manage(['createsuperuser'], { DJANGO_SUPERUSER_EMAIL: ENV_EMAIL, DJANGO_SUPERUSER_PASSWORD: STRONG })
    const weak = await manage(['createsuperuser', '--email', WEAK_EMAIL, '--password', 'password'])
    const [none, passwordOnly, unknownOption] = await early
    runs = { unmigrated, migrate, created, again, fromEnv, weak, none, passwordOnly, unknownOption }
  }, 180_000)

  it('on a database never migrated, says to migrate first (exit 1), not a failed query', () => {
    expect(runs.unmigrated).toMatchObject({ code: 1, stdout: '', stderr: 'The database has no tables yet (or misses newer ones): run `npm run manage -- migrate` first.\n' })
  })

  it('migrates the fresh directory first', () => {
    expect(runs.migrate.stderr).toBe('')
    expect(runs.migrate.code).toBe(0)
    expect(runs.migrate.stdout).toMatch(/^Applied \d+ migrations?\.\n$/)
  })

  it('creates an admin when given --email and --password', () => {
    expect(runs.created.stderr).toBe('')
    expect(runs.created.code).toBe(0)
    expect(runs.created.stdout).toBe(`Superuser ${FLAG_EMAIL} created.\n`)
  })

  it('changes nothing and exits 0 when the email already exists, in any case', () => {
    expect(runs.again.code).toBe(0)
    expect(runs.again.stdout).toContain('already exists')
    expect(runs.again.stdout).not.toContain('created')
  })

  it('takes DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD when no flags are given', () => {
    expect(runs.fromEnv.stderr).toBe('')
    expect(runs.fromEnv.code).toBe(0)
    expect(runs.fromEnv.stdout).toBe(`Superuser ${ENV_EMAIL} created.\n`)
  })

  it('exits 2 with the reason when the password is weak', () => {
    expect(runs.weak.code).toBe(2)
    expect(runs.weak.stdout).toBe('')
    expect(runs.weak.stderr).toContain('not strong enough')
    expect(runs.weak.stderr).toContain('too short')
    expect(runs.weak.stderr).toContain('too common')
    expect(runs.weak.stderr).not.toMatch(STACK_LINE)
  })

  it('exits 2 naming the flags and the variables when no email is given at all', () => {
    for (const run of [runs.none, runs.passwordOnly]) {
      expect(run.code).toBe(2)
      expect(run.stdout).toBe('')
      expect(run.stderr).toContain('--email')
      expect(run.stderr).toContain('DJANGO_SUPERUSER_EMAIL')
    }
  })

  it('exits 2 naming an unknown option', () => {
    expect(runs.unknownOption.code).toBe(2)
    expect(runs.unknownOption.stdout).toBe('')
    expect(runs.unknownOption.stderr).toContain('--staff')
  })

  it('leaves exactly the created users, as verified admins with the given password, once the processes exited', async () => {
    const database = await createPglite(dataDir)
    try {
      const rows = await database.db.select().from(users)
      // Not the weak one, and the repeated email did not add a row.
      expect(rows.map((row) => row.email).sort()).toEqual([ENV_EMAIL, FLAG_EMAIL].sort())
      for (const row of rows) {
        expect(row).toMatchObject({ role: 'admin', email_verified: true, is_active: true, mfa_enabled: false })
        expect(row.password_hash).not.toContain(STRONG)
        // The repeated run with another password did not touch the first admin.
        expect(await verifyPassword(row.password_hash, STRONG)).toBe(true)
      }
    } finally {
      await database.close()
    }
  }, 30_000)
})
