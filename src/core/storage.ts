/**
 * Media storage: uploaded files by key ("products/<product id>/<image id>.png"), on local disk
 * under MEDIA_ROOT (served at MEDIA_URL by core/http/media.ts) or in an S3 bucket with USE_S3.
 * URLs are built from the key at read time, on CDN_DOMAIN when USE_CDN is on, so switching the
 * CDN on or off needs no change to stored rows.
 *
 * Keys are written once and never overwritten (each upload gets a new id), which is what lets
 * S3 objects and local files be cached by browsers and CDNs as immutable.
 */
import { randomUUID } from 'node:crypto'
import { access, constants, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import type { Settings } from '../config/index.js'
import type { Logger } from './logging.js'

export interface Storage {
  readonly backend: 'local' | 's3'
  /** Stores `body` under `key`, readable at `url(key)` once this resolves. */
  put(key: string, body: Buffer, contentType: string): Promise<void>
  /** Removes the object; a missing one is not an error. */
  delete(key: string): Promise<void>
  /** The public URL of the object (the CDN's when USE_CDN is on). */
  url(key: string): string
  /** Throws when the store cannot be written to (local) or does not answer (S3). */
  ping(signal?: AbortSignal): Promise<void>
  close?(): void
}

/** Objects never change under a key, so clients and CDNs may keep them for a year. */
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable'

const KEY_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

/**
 * Keys are relative paths of plain segments: no "..", no leading slash, no empty or hidden
 * segment. They are made by our code, so a bad one is a bug, never a user error.
 */
export function assertKey(key: string): void {
  const segments = key.split('/')
  if (key.length > 512 || segments.some((segment) => !KEY_SEGMENT.test(segment) || segment.includes('..'))) {
    throw new Error(`Invalid storage key "${key}"`)
  }
}

export function createStorage(settings: Pick<Settings, 'storage'>, log: Logger): Storage {
  const config = settings.storage
  const cdnBase = config.useCdn && config.cdnDomain ? cdnBaseOf(config.cdnDomain) : null
  log.debug({ backend: config.useS3 ? 's3' : 'local', cdn: cdnBase }, 'media storage')
  return config.useS3 ? createS3Storage(config, cdnBase) : createLocalStorage(config, cdnBase)
}

/** CDN_DOMAIN is a host name ("cdn.example.com"); a value given with its scheme is kept as it is. */
function cdnBaseOf(domain: string): string {
  const trimmed = domain.replace(/\/+$/, '')
  return /^https?:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`
}

const encodeKey = (key: string) => key.split('/').map(encodeURIComponent).join('/')

function createLocalStorage(config: Settings['storage'], cdnBase: string | null): Storage {
  const root = resolve(config.mediaRoot)
  const mediaUrl = config.mediaUrl.endsWith('/') ? config.mediaUrl : `${config.mediaUrl}/`

  const pathOf = (key: string) => {
    assertKey(key)
    const path = resolve(root, key)
    // Belt and braces on top of assertKey: nothing is ever written outside MEDIA_ROOT.
    if (!path.startsWith(root + sep)) throw new Error(`Storage key "${key}" leaves MEDIA_ROOT`)
    return path
  }

  return {
    backend: 'local',
    async put(key, body) {
      const path = pathOf(key)
      await mkdir(dirname(path), { recursive: true })
      // Written beside the target and renamed into place, so a reader never sees half a file.
      // The dot keeps the temporary file hidden from the static file server.
      const temporary = join(dirname(path), `.${randomUUID()}.tmp`)
      try {
        await writeFile(temporary, body, { flag: 'wx' })
        await rename(temporary, path)
      } catch (err) {
        await rm(temporary, { force: true })
        throw err
      }
    },
    async delete(key) {
      await rm(pathOf(key), { force: true })
    },
    url: (key) => {
      assertKey(key)
      return cdnBase ? `${cdnBase}/${encodeKey(key)}` : `${mediaUrl}${encodeKey(key)}`
    },
    async ping() {
      await mkdir(root, { recursive: true })
      await access(root, constants.W_OK)
    },
  }
}

function createS3Storage(config: Settings['storage'], cdnBase: string | null): Storage {
  const { bucket, region, endpoint, accessKeyId, secretAccessKey } = config.s3
  if (!bucket) throw new Error('USE_S3 is on but AWS_STORAGE_BUCKET_NAME is missing')
  // The SDK is loaded only with USE_S3: processes on local disk do not carry it in memory.
  const sdk = import('@aws-sdk/client-s3')
  const connect = async () => {
    const { S3Client } = await sdk
    return new S3Client({
      region,
      ...(endpoint
        ? {
            endpoint,
            // S3-compatible servers (MinIO, Ceph, local stand-ins) address buckets by path, and
            // many do not know the CRC checksums the SDK adds by default.
            forcePathStyle: true,
            requestChecksumCalculation: 'WHEN_REQUIRED' as const,
            responseChecksumValidation: 'WHEN_REQUIRED' as const,
          }
        : {}),
      // Without keys the SDK's default chain applies (instance or task role, AWS_PROFILE, ...).
      ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
      // An upload must fail in bounded time rather than hold the request forever.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
    })
  }
  const client = connect()
  const objectBase = endpoint ? `${endpoint}/${encodeURIComponent(bucket)}` : `https://${bucket}.s3.${region}.amazonaws.com`

  return {
    backend: 's3',
    async put(key, body, contentType) {
      assertKey(key)
      const { PutObjectCommand } = await sdk
      await (await client).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, CacheControl: IMMUTABLE_CACHE_CONTROL }))
    },
    async delete(key) {
      assertKey(key)
      const { DeleteObjectCommand } = await sdk
      await (await client).send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    },
    url: (key) => {
      assertKey(key)
      return `${cdnBase ?? objectBase}/${encodeKey(key)}`
    },
    async ping(signal) {
      const { HeadBucketCommand } = await sdk
      try {
        await (await client).send(new HeadBucketCommand({ Bucket: bucket }), signal ? { abortSignal: signal } : {})
      } catch (err) {
        // HEAD answers carry no error body, so the SDK's own message is often just "UnknownError".
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
        throw new Error(status ? `bucket "${bucket}" answered HTTP ${status}` : `bucket "${bucket}" did not answer: ${(err as Error).message}`, { cause: err })
      }
    },
    close() {
      void client.then((s3) => s3.destroy())
    },
  }
}
