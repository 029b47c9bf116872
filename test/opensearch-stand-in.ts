/**
 * A local stand-in for OpenSearch, which cannot run here: a node:http server that records every
 * request (method, path, query, JSON or NDJSON body) and answers with responses each test scripts,
 * shaped like OpenSearch's own (the builders below). Tests assert the exact exchanges.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RecordedRequest {
  method: string
  /** Decoded path, e.g. `/products-*\/_alias` or `/a,b`. */
  path: string
  query: Record<string, string>
  headers: IncomingHttpHeaders
  /** Parsed JSON, an array of parsed lines for NDJSON, or null without a body. */
  body: unknown
}

export interface Answer {
  status: number
  body?: unknown
}

type Responder = Answer | ((request: RecordedRequest) => Answer)

export interface OpenSearchStandIn {
  url: string
  requests: RecordedRequest[]
  /** Answers requests to `method path` (exact string or RegExp over the decoded path); the newest matching route wins. */
  on(method: string, path: string | RegExp, answer: Responder): this
  /** Forgets the recorded requests and the routes. */
  reset(): void
  close(): Promise<void>
}

export interface StandInOptions {
  /** Listen on this port (a stand-in brought back up where a closed one was); any free port by default. */
  port?: number
}

export async function startOpenSearchStandIn(options: StandInOptions = {}): Promise<OpenSearchStandIn> {
  const routes: Array<{ method: string; path: string | RegExp; answer: Responder }> = []

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stand-in')
      const request: RecordedRequest = {
        method: req.method ?? 'GET',
        path: decodeURIComponent(url.pathname),
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body: parseBody(Buffer.concat(chunks).toString('utf8'), req.headers['content-type']),
      }
      standIn.requests.push(request)
      const route = [...routes].reverse().find((candidate) => candidate.method === request.method && matches(candidate.path, request.path))
      const answer = route
        ? typeof route.answer === 'function'
          ? route.answer(request)
          : route.answer
        : osError(501, 'stand_in_exception', `The stand-in has no answer for ${request.method} ${request.path}`)
      res.writeHead(answer.status, { 'content-type': 'application/json; charset=UTF-8' })
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body))
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', resolve)
  })

  const standIn: OpenSearchStandIn = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: [],
    on(method, path, answer) {
      routes.push({ method, path, answer })
      return this
    },
    reset() {
      standIn.requests.length = 0
      routes.length = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return standIn
}

function matches(pattern: string | RegExp, path: string): boolean {
  return typeof pattern === 'string' ? pattern === path : pattern.test(path)
}

function parseBody(text: string, contentType: string | undefined): unknown {
  if (text === '') return null
  if (contentType?.includes('ndjson')) {
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as unknown)
  }
  return JSON.parse(text) as unknown
}

/** An OpenSearch error document (`{error: {type, reason, root_cause}, status}`). */
export function osError(status: number, type: string, reason: string): Answer {
  const cause = { type, reason }
  return { status, body: { error: { root_cause: [cause], ...cause }, status } }
}

export function acknowledged(extra: Record<string, unknown> = {}): Answer {
  return { status: 200, body: { acknowledged: true, ...extra } }
}

/** PUT /{index}: what OpenSearch answers when the index was created. */
export function indexCreated(index: string): Answer {
  return acknowledged({ shards_acknowledged: true, index })
}

export function clusterHealth(status: 'green' | 'yellow' | 'red'): Answer {
  return {
    status: 200,
    body: {
      cluster_name: 'stand-in',
      status,
      timed_out: false,
      number_of_nodes: 1,
      number_of_data_nodes: 1,
      active_primary_shards: 1,
      active_shards: 1,
      relocating_shards: 0,
      initializing_shards: 0,
      unassigned_shards: status === 'green' ? 0 : 1,
    },
  }
}

/** GET /{pattern}/_alias: each index with the aliases it has (`{}` when none matches). */
export function aliasesOf(indices: Record<string, string[]>): Answer {
  const body = Object.fromEntries(
    Object.entries(indices).map(([index, aliases]) => [index, { aliases: Object.fromEntries(aliases.map((alias) => [alias, {}])) }]),
  )
  return { status: 200, body }
}

export interface BulkItemFailure {
  status: number
  type: string
  reason: string
}

/**
 * POST /_bulk: one item per action line of the request, in order. `fail` picks the items that
 * fail (by action and _id) and how; a delete of an id `missing` reports not_found as OpenSearch does.
 */
export interface BulkAnswerOptions {
  fail?: (action: string, id: string, index: string) => BulkItemFailure | null
  missing?: (id: string) => boolean
}

export function bulkAnswer(request: RecordedRequest, options: BulkAnswerOptions = {}): Answer {
  const lines = request.body as Array<Record<string, { _index: string; _id: string }>>
  const items: Array<Record<string, unknown>> = []
  let errors = false
  for (let i = 0; i < lines.length; i += 1) {
    const [action, meta] = Object.entries(lines[i]!)[0]!
    if (action !== 'delete') i += 1 // the document line follows
    const failure = options.fail?.(action, meta._id, meta._index) ?? null
    const base = { _index: meta._index, _id: meta._id }
    if (failure) {
      errors = true
      items.push({ [action]: { ...base, status: failure.status, error: { type: failure.type, reason: failure.reason, index: meta._index } } })
      continue
    }
    const notFound = action === 'delete' && (options.missing?.(meta._id) ?? false)
    items.push({
      [action]: {
        ...base,
        _version: 1,
        result: action === 'delete' ? (notFound ? 'not_found' : 'deleted') : 'created',
        _shards: { total: 2, successful: 1, failed: 0 },
        _seq_no: i,
        _primary_term: 1,
        status: action === 'delete' ? (notFound ? 404 : 200) : 201,
      },
    })
  }
  return { status: 200, body: { took: 3, errors, items } }
}
