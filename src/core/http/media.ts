/**
 * Serves local media (MEDIA_ROOT) at MEDIA_URL's path, for the local storage backend only: with
 * USE_S3 the objects are served by S3 or the CDN. Files are served as they are stored, with no
 * directory listing, no index files and no dotfiles (a write in progress is a hidden temporary
 * file). Keys are unique per upload, so files are cached as immutable.
 */
import { mkdir } from 'node:fs/promises'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import type { Settings } from '../../config/index.js'

export async function registerMedia(app: FastifyInstance, settings: Pick<Settings, 'storage'>): Promise<void> {
  const { storage } = settings
  if (storage.useS3) return
  // @fastify/static wants the root to exist; the first upload would create it anyway.
  await mkdir(storage.mediaRoot, { recursive: true })
  await app.register(fastifyStatic, {
    root: storage.mediaRoot,
    prefix: mediaPathOf(storage.mediaUrl),
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'ignore',
    serveDotFiles: false,
    redirect: false,
    // A path ending in "/" names a directory, which would be a 403: not found, like any non-file.
    allowedPath: (path) => !path.endsWith('/'),
    cacheControl: true,
    maxAge: '365d',
    immutable: true,
    setHeaders(reply) {
      // A browser must never sniff an upload into HTML or script: the type is the stored one.
      reply.header('x-content-type-options', 'nosniff')
      // Images are embedded by shop front ends on other sites (the API's own answers stay same-site).
      reply.header('cross-origin-resource-policy', 'cross-origin')
    },
  })
}

/** "/media/" for "/media/", "/media" or "https://host/media/" (a front proxy forwarding that path). */
function mediaPathOf(mediaUrl: string): string {
  const path = new URL(mediaUrl, 'http://localhost').pathname
  return path.endsWith('/') ? path : `${path}/`
}
