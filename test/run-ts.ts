/**
 * How tests start the TypeScript entry points as processes: Node itself with tsx's loader, one
 * process. Not the `tsx` command: it relays signals to a child and, when the child does not report
 * one within 30 ms (a loaded machine), SIGKILLs it and exits 143 — a graceful SIGTERM test then
 * fails for reasons that are not ours.
 */
export const NODE = process.execPath

export function tsArgs(script: string, args: string[] = []): string[] {
  return ['--import', 'tsx', script, ...args]
}
