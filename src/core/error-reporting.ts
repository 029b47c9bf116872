/**
 * Error reports to Sentry when SENTRY_DSN is set: requests that failed unexpectedly (500s) and
 * tasks that failed for good, with where they happened (method, route template, status, request
 * id; task and job id). Nothing personal leaves: no headers, cookies, bodies, query strings, user
 * or client address, and email addresses in error messages are masked. Each app has a Sentry
 * client of its own (tests build many apps in one process), never the SDK's global one.
 */
import type { ErrorEvent } from '@sentry/node'

export interface ErrorReporter {
  requestFailed(err: unknown, where: { method: string; route: string; status: number; requestId: string }): void
  taskFailed(err: unknown, where: { task: string; jobId: string; attempts: number }): void
  /** Sends what is queued (at shutdown), waiting at most `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>
}

const EMAIL = /[^\s@'"()<>,;:]+@[^\s@'"()<>,;:]+\.[^\s@'"()<>,;:]+/g

export async function createErrorReporter(options: { dsn: string | null; environment: string; release: string }): Promise<ErrorReporter> {
  if (!options.dsn) return { requestFailed() {}, taskFailed() {}, close: async () => {} }
  // Loaded only when used: the SDK costs about 0.4 s and 17 MB of heap at start.
  const { defaultStackParser, makeNodeTransport, NodeClient, Scope } = await import('@sentry/node')
  const client = new NodeClient({
    dsn: options.dsn,
    environment: options.environment,
    release: options.release,
    transport: makeNodeTransport,
    stackParser: defaultStackParser,
    // No integrations: no breadcrumbs of HTTP calls or console lines, no request data collected.
    integrations: [],
    dataCollection: { userInfo: false, cookies: false, httpHeaders: false, httpBodies: [], urlQueryParams: false },
    beforeSend: scrub,
  })
  client.init()

  const capture = (err: unknown, tags: Record<string, string>) => {
    const scope = new Scope()
    scope.setClient(client)
    scope.setTags(tags)
    scope.captureException(err)
  }
  return {
    requestFailed: (err, where) => capture(err, { kind: 'request', method: where.method, route: where.route, status: String(where.status), request_id: where.requestId }),
    taskFailed: (err, where) => capture(err, { kind: 'task', task: where.task, job_id: where.jobId, attempts: String(where.attempts) }),
    async close(timeoutMs = 2_000) {
      await client.close(timeoutMs)
    },
  }
}

/** The last word on what leaves the process. */
function scrub(event: ErrorEvent): ErrorEvent {
  delete event.request
  delete event.user
  delete event.breadcrumbs
  for (const exception of event.exception?.values ?? []) {
    if (exception.value) exception.value = exception.value.replace(EMAIL, '[email]')
  }
  if (event.message) event.message = event.message.replace(EMAIL, '[email]')
  return event
}
