/**
 * Media storage on both backends: local disk (a temporary MEDIA_ROOT) and S3, against a real
 * S3-compatible server (s3rver) on 127.0.0.1 that checks the SDK's request signatures.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetObjectCommand, NoSuchKey, S3Client } from '@aws-sdk/client-s3'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadSettings } from '../config/index.js'
import { createStorage, IMMUTABLE_CACHE_CONTROL, type Storage } from './storage.js'
import { startS3rver } from '../../test/s3rver.js'

const log = pino({ level: 'silent' })
const settingsWith = (env: Record<string, string>) => loadSettings({ ENVIRONMENT: 'test', ...env })
const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex')

/** Every file under dir, relative, temporary ones included. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1)).sort()
}

describe('local storage', () => {
  let root: string
  let storage: Storage
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'media-'))
    storage = createStorage(settingsWith({ MEDIA_ROOT: root }), log)
  })
  afterAll(() => rm(root, { recursive: true, force: true }))

  it('writes the bytes under MEDIA_ROOT at the key and leaves no temporary file', async () => {
    expect(storage.backend).toBe('local')
    await storage.put('products/p1/one.png', png, 'image/png')
    expect(await readFile(join(root, 'products/p1/one.png'))).toEqual(png)
    expect(await filesUnder(root)).toEqual(['products/p1/one.png'])
  })

  it('answers MEDIA_URL followed by the key as the URL', () => {
    expect(storage.url('products/p1/one.png')).toBe('/media/products/p1/one.png')
  })

  it('deletes the file, and deleting a missing key is not an error', async () => {
    await storage.put('products/p2/two.png', png, 'image/png')
    await storage.delete('products/p2/two.png')
    await storage.delete('products/p2/two.png')
    await expect(readFile(join(root, 'products/p2/two.png'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it.each(['../escape.png', 'products/../../escape.png', '/etc/escape.png', 'products//x.png', 'products/.hidden', ''])('refuses the key %j and writes nothing', async (key) => {
    const before = await filesUnder(root)
    await expect(storage.put(key, png, 'image/png')).rejects.toThrow(/storage key/)
    await expect(storage.delete(key)).rejects.toThrow(/storage key/)
    expect(() => storage.url(key)).toThrow(/storage key/)
    expect(await filesUnder(root)).toEqual(before)
    await expect(readFile(join(root, '..', 'escape.png'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('pings when MEDIA_ROOT is writable and fails when it cannot be a directory', async () => {
    await expect(storage.ping()).resolves.toBeUndefined()
    const file = join(root, 'not-a-directory')
    await writeFile(file, 'x')
    await expect(createStorage(settingsWith({ MEDIA_ROOT: join(file, 'media') }), log).ping()).rejects.toMatchObject({ code: 'ENOTDIR' })
  })

  it('answers URLs on CDN_DOMAIN when USE_CDN is on', () => {
    const cdn = createStorage(settingsWith({ MEDIA_ROOT: root, USE_CDN: 'true', CDN_DOMAIN: 'cdn.example.com' }), log)
    expect(cdn.url('products/p1/one.png')).toBe('https://cdn.example.com/products/p1/one.png')
    const withScheme = createStorage(settingsWith({ MEDIA_ROOT: root, USE_CDN: 'true', CDN_DOMAIN: 'https://cdn.example.com/' }), log)
    expect(withScheme.url('products/p1/one.png')).toBe('https://cdn.example.com/products/p1/one.png')
  })

  it('ignores CDN_DOMAIN while USE_CDN is off', () => {
    const local = createStorage(settingsWith({ MEDIA_ROOT: root, CDN_DOMAIN: 'cdn.example.com' }), log)
    expect(local.url('a/b.png')).toBe('/media/a/b.png')
  })
})



describe('S3 storage', () => {
  const bucket = 'media-test'
  let s3: Awaited<ReturnType<typeof startS3rver>>
  let storage: Storage
  let reader: S3Client
  const s3Env = () => ({ USE_S3: 'true', AWS_STORAGE_BUCKET_NAME: bucket, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_S3_ENDPOINT_URL: s3.endpoint })

  beforeAll(async () => {
    s3 = await startS3rver(bucket)
    storage = createStorage(settingsWith(s3Env()), log)
    reader = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } })
  })
  afterAll(async () => {
    storage?.close?.()
    reader?.destroy()
    await s3?.close()
  })

  it('puts the object in the bucket with its content type and a long cache lifetime', async () => {
    expect(storage.backend).toBe('s3')
    await storage.put('products/p1/one.png', png, 'image/png')
    const object = await reader.send(new GetObjectCommand({ Bucket: bucket, Key: 'products/p1/one.png' }))
    expect(Buffer.from(await object.Body!.transformToByteArray())).toEqual(png)
    expect(object.ContentType).toBe('image/png')
    expect(object.CacheControl).toBe(IMMUTABLE_CACHE_CONTROL)
  })

  it('answers the endpoint/bucket/key URL, which serves the object', async () => {
    await storage.put('products/p1/two.png', png, 'image/png')
    const url = storage.url('products/p1/two.png')
    expect(url).toBe(`${s3.endpoint}/${bucket}/products/p1/two.png`)
    const res = await fetch(url)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('image/png')
    expect(Buffer.from(await res.arrayBuffer())).toEqual(png)
  })

  it('deletes the object', async () => {
    await storage.put('products/p1/three.png', png, 'image/png')
    await storage.delete('products/p1/three.png')
    await expect(reader.send(new GetObjectCommand({ Bucket: bucket, Key: 'products/p1/three.png' }))).rejects.toBeInstanceOf(NoSuchKey)
  })

  it('refuses a key with ".." before calling S3', async () => {
    await expect(storage.put('products/../x.png', png, 'image/png')).rejects.toThrow(/storage key/)
  })

  it('pings the bucket, and fails for a bucket that does not exist', async () => {
    await expect(storage.ping()).resolves.toBeUndefined()
    const missing = createStorage(settingsWith({ ...s3Env(), AWS_STORAGE_BUCKET_NAME: 'no-such-bucket' }), log)
    try {
      await expect(missing.ping()).rejects.toThrow('bucket "no-such-bucket" answered HTTP 404')
    } finally {
      missing.close?.()
    }
  })

  it('answers CDN URLs with USE_CDN, and virtual-host AWS URLs without an endpoint', () => {
    const cdn = createStorage(settingsWith({ ...s3Env(), USE_CDN: 'true', CDN_DOMAIN: 'cdn.example.com' }), log)
    const aws = createStorage(settingsWith({ USE_S3: 'true', AWS_STORAGE_BUCKET_NAME: 'shop-media', AWS_S3_REGION_NAME: 'eu-west-1' }), log)
    try {
      expect(cdn.url('products/p1/one.png')).toBe('https://cdn.example.com/products/p1/one.png')
      expect(aws.url('products/p1/one.png')).toBe('https://shop-media.s3.eu-west-1.amazonaws.com/products/p1/one.png')
    } finally {
      cdn.close?.()
      aws.close?.()
    }
  })
})
