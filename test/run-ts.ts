/**
 * How tests start the TypeScript entry points as processes: Node itself with tsx's loader, one
 * process. Not the `tsx` command: it relays signals to a child and, when the child does not report
 * one within 30 ms (a loaded machine), SIGKILLs it and exits 143 — a graceful SIGTERM test then
 * fails for reasons that are not ours.
 */
import { execFile } from 'node:child_process'
import { envNames } from '../src/config/env.js'
import { projectRoot } from '../src/config/index.js'

export const NODE = process.execPath

export function tsArgs(script: string, args: string[] = []): string[] {
  return ['--import', 'tsx', script, ...args]
}

/**
 * The environment of a process a test starts: PATH and the like kept, every variable the service
 * knows blank (blank means unset) so neither the suite's DATABASE_URL/REDIS_URL nor a developer's
 * `.env` reaches it, then `vars`.
 */
export function isolatedEnv(vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'TZ']
  return {
    ...Object.fromEntries(keep.filter((name) => process.env[name]).map((name) => [name, process.env[name]])),
    ...Object.fromEntries(envNames.map((name) => [name, ''])),
    ...vars,
  }
}

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** `npm run manage -- <args>` in a process of its own with only `vars` set; the timeout bounds a hung one. */
export function runManage(args: string[], vars: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(NODE, tsArgs('src/manage.ts', args), { cwd: projectRoot, env: isolatedEnv(vars), timeout: 25_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr })
    })
  })
}
