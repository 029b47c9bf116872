/**
 * A stand-in for Sentry's ingestion endpoint (Sentry cannot run here): it takes what the SDK's own
 * transport sends, `POST /api/<project>/envelope/`, and keeps each envelope's events and its raw
 * text, so tests can read exactly what would have left the process.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

export interface ReceivedEnvelope {
  path: string
  /** The envelope as sent (decompressed): tests search it for what must not leave. */
  raw: string
  events: Array<Record<string, unknown>>
}

export interface SentryStandIn {
  dsn: string
  envelopes: ReceivedEnvelope[]
  close(): Promise<void>
}

export async function startSentryStandIn(): Promise<SentryStandIn> {
  const envelopes: ReceivedEnvelope[] = []
  const server = createServer((request, response) => {
    void readBody(request).then((body) => {
      const raw = (request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8')
      // Envelope: a header line, then item header and item payload lines.
      const lines = raw.split('\n').filter(Boolean)
      const events: Array<Record<string, unknown>> = []
      for (let i = 1; i + 1 < lines.length; i += 2) {
        const itemHeader = JSON.parse(lines[i]!) as { type?: string }
        if (itemHeader.type === 'event') events.push(JSON.parse(lines[i + 1]!) as Record<string, unknown>)
      }
      envelopes.push({ path: request.url ?? '', raw, events })
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    dsn: `http://publickey@127.0.0.1:${port}/42`,
    envelopes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => resolve(Buffer.concat(chunks)))
    request.on('error', reject)
  })
}
