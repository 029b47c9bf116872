/**
 * One HTTP POST of a webhook delivery with node:http(s): no redirects followed, one deadline from
 * connecting to the answer, at most the first KB of the answer kept, and (unless private
 * addresses are allowed) only public addresses connected to: an IP literal is checked here, a
 * name where it is resolved.
 */
import http from 'node:http'
import https from 'node:https'
import { guardedLookup, hostRefusal, RefusedAddressError } from './address-guard.js'

/** What is kept of a receiver's answer. */
export const RESPONSE_BODY_LIMIT = 1024

export interface PostOutcome {
  status: number
  /** The first RESPONSE_BODY_LIMIT bytes of the answer, as text. */
  body: string
}

export interface PostOptions {
  url: string
  headers: Record<string, string>
  body: string
  timeoutMs: number
  allowPrivate: boolean
  signal?: AbortSignal
}

/** Resolves with the receiver's answer, whatever its status; rejects when none came (refused, timed out, network). */
export async function postWebhook(options: PostOptions): Promise<PostOutcome> {
  const url = new URL(options.url)
  if (!options.allowPrivate) {
    const refusal = hostRefusal(url.hostname)
    if (refusal) throw new RefusedAddressError(`Refused: ${refusal}`)
  }
  const client = url.protocol === 'https:' ? https : http
  return new Promise<PostOutcome>((resolve, reject) => {
    const request = client.request(url, {
      method: 'POST',
      headers: { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) },
      // A fresh connection each time: a pooled socket would skip the address check.
      agent: false,
      ...(options.allowPrivate ? {} : { lookup: guardedLookup }),
    })
    const timer = setTimeout(() => request.destroy(new Error(`No answer within ${options.timeoutMs / 1000} s`)), options.timeoutMs)
    const onAbort = () => request.destroy(new Error('Delivery interrupted'))
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const finish = (settle: () => void) => {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      settle()
    }
    request.on('error', (err) => finish(() => reject(err)))
    request.on('response', (response) => {
      const chunks: Buffer[] = []
      let size = 0
      const done = () => finish(() => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, RESPONSE_BODY_LIMIT).toString('utf8') }))
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        size += chunk.length
        // Enough kept: the rest of a large answer is not read.
        if (size >= RESPONSE_BODY_LIMIT) {
          response.destroy()
          done()
        }
      })
      response.on('end', done)
      response.on('error', done)
    })
    request.end(options.body)
  })
}
