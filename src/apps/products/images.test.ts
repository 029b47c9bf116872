/**
 * Product images: POST /api/products/{slug}/images/ (multipart, checked by content) and DELETE
 * /api/products/{slug}/images/{id}/, on local media (served back at /media/), with CDN URLs, and
 * on S3 against a real S3-compatible server (s3rver on 127.0.0.1); and the service's listFor.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32, deflateSync } from 'node:zlib'
import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories, type MadeUser } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import type { Ctx } from '../../core/context.js'
import { createProductImages, type ImageDto } from './images.js'
import { productImages, products } from './tables.js'
import { startS3rver } from '../../../test/s3rver.js'

// ---- images made from bytes ------------------------------------------------------------------

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}

function pngHeader(width: number, height: number): Buffer {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bit depth
  header[9] = 2 // RGB
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), pngChunk('IHDR', header)])
}

/** A valid RGB PNG; `noise` fills it with random pixels, which do not compress. */
function png(width: number, height: number, options: { noise?: boolean } = {}): Buffer {
  const rows = Buffer.alloc((width * 3 + 1) * height)
  for (let y = 0; y < height; y += 1) {
    const row = y * (width * 3 + 1) // filter byte 0, then pixels
    const pixels = options.noise ? randomBytes(width * 3) : Buffer.alloc(width * 3, (y * 40) % 256)
    pixels.copy(rows, row + 1)
  }
  return Buffer.concat([pngHeader(width, height), pngChunk('IDAT', deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0))])
}

/** A real 2×2 baseline JPEG (IPython's test image, 331 bytes). */
const JPEG_2X2 = Buffer.from(
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAACAAIBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/ACv/2Q==',
  'base64',
)
/** The classic 1×1 transparent GIF. */
const GIF_1X1 = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64')
/** A 16×16 WebP (CPython's test image, 432 bytes). */
const WEBP_16X16 = Buffer.from(
  'UklGRqgBAABXRUJQVlA4WAoAAAAQAAAADwAADwAAQUxQSMMAAAABJ6KokSTleucYX+ffKpmImP90cY3gJjDi4Yt3MsjBEVyDKzDosHgVjnhRNcEIDAJPkqBqsFUZHNa2bUYvTsZ2PLbtd/uvKa4hov9J0f2PkPe6REkkGzolkTTzFG0Ox9PlFiD0CxS+kOGDtxoynjaCfx0pfk52CPuInrOR75lzRugygtv4zEiy90UwfSD9NheMITJWLaXWayO8XeOlWRXVnIGk2W6WdYoYMQ+KqixQNPowgt+6a1BSKbUtz+lUFAoBAAAAVlA4IL4AAACQAgCdASoQABAAAwA0JbACdDBPCIUMfAMdCCz96AD+/XSg/QKbH4r3Q3ycN/bSDK/T/zVo4u6nvclvG/SqxWOuup+XhN9BojvaW+Tv+MvxvX/hr/o/5Qns9LtmX/+qKdl/yWznhuasl7nkxvSTI4xf3Y85VSB/lU/8Ofj/b9JrA+ifvIOYZm2x1RP/dhfmsf5diuSfR7+z+r/+HR3zEo/+XM/B+vkYw73Pzx+ROaAB/ZoBSzEs3rzZe6qsAAAA',
  'base64',
)
/** A 3×2 AVIF (made with avifenc from a PNG like the ones above, 306 bytes). */
const AVIF_3X2 = Buffer.from(
  'AAAAIGZ0eXBhdmlmAAAAAGF2aWZtaWYxbWlhZk1BMUEAAADybWV0YQAAAAAAAAAoaGRscgAAAAAAAAAAcGljdAAAAAAAAAAAAAAAAGxpYmF2aWYAAAAADnBpdG0AAAAAAAEAAAAeaWxvYwAAAABEAAABAAEAAAABAAABGgAAABgAAAAoaWluZgAAAAAAAQAAABppbmZlAgAAAAABAABhdjAxQ29sb3IAAAAAamlwcnAAAABLaXBjbwAAABRpc3BlAAAAAAAAAAMAAAACAAAAEHBpeGkAAAAAAwgICAAAAAxhdjFDgSAAAAAAABNjb2xybmNseAABAA0ABoAAAAAXaXBtYQAAAAAAAAABAAEEAQKDBAAAACBtZGF0EgAKCDgEKwgIaDSAMgoWQAYYYYQAAHi4',
  'base64',
)
const TEXT = Buffer.from('This is a plain text file, renamed to look like a picture.\n')

// ---- multipart bodies ------------------------------------------------------------------------

type Part = { name: string; value: string } | { name: string; filename: string; type: string; data: Buffer }

/** A multipart/form-data body as a browser would send it (serialised by the platform's FormData). */
async function multipart(parts: Part[]): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const form = new FormData()
  for (const part of parts) {
    if ('value' in part) form.append(part.name, part.value)
    else form.append(part.name, new Blob([part.data], { type: part.type }), part.filename)
  }
  const response = new Response(form)
  return { payload: Buffer.from(await response.arrayBuffer()), headers: { 'content-type': response.headers.get('content-type')! } }
}

const filePart = (data: Buffer, filename = 'photo.png', type = 'image/png'): Part => ({ name: 'image', filename, type, data })

// ---- helpers over one test app ---------------------------------------------------------------

interface Env {
  t: TestApp
  f: ReturnType<typeof factories>
  staff: MadeUser
  mediaRoot: string
}

async function setUp(env: Record<string, string> = {}): Promise<Env> {
  const mediaRoot = await mkdtemp(join(tmpdir(), 'media-'))
  const t = await createTestApp({ env: { MEDIA_ROOT: mediaRoot, MEDIA_MAX_UPLOAD_BYTES: String(MAX_BYTES), ...env } })
  const f = factories(t)
  return { t, f, staff: await f.user({ role: 'staff' }), mediaRoot }
}

async function tearDown(env: Env | undefined): Promise<void> {
  await env?.t.close()
  if (env) await rm(env.mediaRoot, { recursive: true, force: true })
}

const MAX_BYTES = 8192
const imagesUrl = (slug: string) => `/api/products/${slug}/images/`

async function upload(env: Env, slug: string, parts: Part[], options: { user?: MadeUser | null; headers?: Record<string, string> } = {}) {
  const user = options.user === undefined ? env.staff : options.user
  const body = await multipart(parts)
  return env.t.request({ method: 'POST', url: imagesUrl(slug), payload: body.payload, headers: { ...body.headers, ...(user ? await env.f.auth(user) : {}), ...options.headers } })
}

async function remove(env: Env, slug: string, id: string, user: MadeUser | null = env.staff) {
  return env.t.request({ method: 'DELETE', url: `${imagesUrl(slug)}${id}/`, headers: user ? await env.f.auth(user) : {} })
}

async function productOf(env: Env): Promise<{ id: string; slug: string }> {
  const { id } = await env.f.product()
  const [row] = await env.t.app.platform.database.db.select({ slug: products.slug }).from(products).where(eq(products.id, id))
  return { id, slug: row!.slug }
}

const rowsOf = (env: Env, productId: string) =>
  env.t.app.platform.database.db.select().from(productImages).where(eq(productImages.product_id, productId)).orderBy(productImages.position)

/** Files under MEDIA_ROOT (relative paths), hidden temporary ones included. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1)).sort()
}

// ---- local storage ---------------------------------------------------------------------------

describe('product images on local media', () => {
  let env: Env
  beforeAll(async () => {
    env = await setUp()
  })
  afterAll(() => tearDown(env))

  describe('POST /api/products/{slug}/images/', () => {
    it('stores a PNG for staff (201) and serves it back byte for byte at its /media/ URL', async () => {
      const product = await productOf(env)
      const image = png(3, 2)
      const res = await upload(env, product.slug, [filePart(image), { name: 'alt', value: 'Front view' }])
      expect(res.statusCode, res.body).toBe(201)
      const body = res.json<ImageDto>()
      expect(body).toEqual({ id: expect.any(String), url: `/media/products/${product.id}/${body.id}.png`, alt: 'Front view', width: 3, height: 2, content_type: 'image/png', size: image.length, position: 0 })

      const served = await env.t.request({ method: 'GET', url: body.url })
      expect(served.statusCode).toBe(200)
      expect(served.headers['content-type']).toBe('image/png')
      expect(served.headers['x-content-type-options']).toBe('nosniff')
      expect(served.headers['cache-control']).toMatch(/immutable/)
      expect(served.rawPayload.equals(image)).toBe(true)
      expect(await readFile(join(env.mediaRoot, 'products', product.id, `${body.id}.png`))).toEqual(image)
      expect(await rowsOf(env, product.id)).toMatchObject([{ id: body.id, key: `products/${product.id}/${body.id}.png`, content_type: 'image/png', size: image.length, width: 3, height: 2, alt: 'Front view' }])
    })

    it('judges the type by content: a JPEG named photo.png and sent as image/png is stored as image/jpeg', async () => {
      const product = await productOf(env)
      const res = await upload(env, product.slug, [filePart(JPEG_2X2, 'photo.png', 'image/png')])
      expect(res.statusCode, res.body).toBe(201)
      const body = res.json<ImageDto>()
      expect(body).toMatchObject({ content_type: 'image/jpeg', width: 2, height: 2, size: JPEG_2X2.length, alt: '' })
      expect(body.url).toMatch(/\.jpg$/)
      const served = await env.t.request({ method: 'GET', url: body.url })
      expect(served.headers['content-type']).toBe('image/jpeg')
      expect(served.rawPayload.equals(JPEG_2X2)).toBe(true)
    })

    it.each([
      ['image/jpeg', 'jpg', JPEG_2X2, 2, 2],
      ['image/webp', 'webp', WEBP_16X16, 16, 16],
      ['image/gif', 'gif', GIF_1X1, 1, 1],
      ['image/avif', 'avif', AVIF_3X2, 3, 2],
    ] as const)('accepts %s, named and sent as anything, and serves it back as that type', async (type, ext, data, width, height) => {
      const product = await productOf(env)
      const res = await upload(env, product.slug, [filePart(data, 'upload', 'application/octet-stream')])
      expect(res.statusCode, res.body).toBe(201)
      const body = res.json<ImageDto>()
      expect(body).toMatchObject({ content_type: type, width, height, size: data.length })
      expect(body.url).toBe(`/media/products/${product.id}/${body.id}.${ext}`)
      const served = await env.t.request({ method: 'GET', url: body.url })
      expect(served.headers['content-type']).toBe(type)
      expect(served.rawPayload.equals(data)).toBe(true)
    })

    it('places each new image after the others', async () => {
      const product = await productOf(env)
      const positions = []
      for (const data of [png(1, 1), GIF_1X1, AVIF_3X2]) positions.push((await upload(env, product.slug, [filePart(data)])).json<ImageDto>().position)
      expect(positions).toEqual([0, 1, 2])
      expect((await rowsOf(env, product.id)).map((row) => row.position)).toEqual([0, 1, 2])
    })

    it('marks the catalog cache stale', async () => {
      const product = await productOf(env)
      const generation = () => env.t.app.platform.cache.get<number>('catalog:gen:catalog')
      const before = (await generation()) ?? 0
      expect((await upload(env, product.slug, [filePart(png(1, 1))])).statusCode).toBe(201)
      expect(await generation()).toBe(before + 1)
    })

    it('answers 401 without a token and 403 to a customer, storing nothing', async () => {
      const product = await productOf(env)
      expectProblem(await upload(env, product.slug, [filePart(png(1, 1))], { user: null }), 401)
      expectProblem(await upload(env, product.slug, [filePart(png(1, 1))], { user: await env.f.user() }), 403)
      expect(await rowsOf(env, product.id)).toEqual([])
      expect((await filesUnder(env.mediaRoot)).filter((file) => file.includes(product.id))).toEqual([])
    })

    it('answers 404 for an unknown or soft-deleted product', async () => {
      expectProblem(await upload(env, `no-such-product-${randomUUID()}`, [filePart(png(1, 1))]), 404, 'not_found')
      const deleted = await productOf(env)
      await env.t.app.platform.database.db.update(products).set({ deleted_at: new Date() }).where(eq(products.id, deleted.id))
      expectProblem(await upload(env, deleted.slug, [filePart(png(1, 1))]), 404, 'not_found')
      expect(await rowsOf(env, deleted.id)).toEqual([])
    })

    it('answers 415 for a text file renamed .png, with no row and no file stored', async () => {
      const product = await productOf(env)
      const before = await filesUnder(env.mediaRoot)
      const res = await upload(env, product.slug, [filePart(TEXT, 'cat.png', 'image/png')])
      expectProblem(res, 415, 'unsupported_media_type')
      expect(await rowsOf(env, product.id)).toEqual([])
      expect(await filesUnder(env.mediaRoot)).toEqual(before)
    })

    it('answers 422 invalid_image for a file that starts like a PNG but is damaged', async () => {
      const product = await productOf(env)
      const damaged = png(2, 2).subarray(0, 20)
      const body = expectProblem(await upload(env, product.slug, [filePart(damaged)]), 422, 'invalid_image')
      expect(body.errors).toHaveProperty('image')
      expect(await rowsOf(env, product.id)).toEqual([])
    })

    it.each([
      ['40000 pixels wide', 40_000, 1],
      ['20000 × 20000 pixels', 20_000, 20_000],
      ['wider than a 32-bit column', 0xffffffff, 1],
    ])('answers 422 for a small file declaring an image %s', async (_label, width, height) => {
      const product = await productOf(env)
      const declared = Buffer.concat([pngHeader(width, height), pngChunk('IEND', Buffer.alloc(0))])
      const body = expectProblem(await upload(env, product.slug, [filePart(declared)]), 422, 'image_dimensions_too_large')
      expect(body.errors).toHaveProperty('image')
      expect(await rowsOf(env, product.id)).toEqual([])
    })

    it('answers 413 for a file over MEDIA_MAX_UPLOAD_BYTES, storing nothing', async () => {
      const product = await productOf(env)
      const big = png(64, 64, { noise: true })
      expect(big.length).toBeGreaterThan(MAX_BYTES)
      const before = await filesUnder(env.mediaRoot)
      const body = expectProblem(await upload(env, product.slug, [filePart(big)]), 413, 'file_too_large')
      expect(body.detail).toContain(String(MAX_BYTES))
      expect(await rowsOf(env, product.id)).toEqual([])
      expect(await filesUnder(env.mediaRoot)).toEqual(before)
    })

    it('answers 422 naming the image when the form has no file part', async () => {
      const product = await productOf(env)
      const body = expectProblem(await upload(env, product.slug, [{ name: 'alt', value: 'No file here' }]), 422, 'validation_error')
      expect(Object.keys(body.errors ?? {})).toEqual(['image'])
      const empty = expectProblem(await upload(env, product.slug, [filePart(Buffer.alloc(0))]), 422)
      expect(Object.keys(empty.errors ?? {})).toEqual(['image'])
    })

    it('answers 422 for two files and for an alt text over 200 characters', async () => {
      const product = await productOf(env)
      const two = expectProblem(await upload(env, product.slug, [filePart(png(1, 1)), filePart(png(1, 1), 'b.png')]), 422)
      expect(two.errors).toHaveProperty('image')
      const long = expectProblem(await upload(env, product.slug, [filePart(png(1, 1)), { name: 'alt', value: 'x'.repeat(201) }]), 422)
      expect(long.errors).toHaveProperty('alt')
      expect(await rowsOf(env, product.id)).toEqual([])
    })

    it('answers 415 to a JSON body and 400 to a multipart body without a boundary', async () => {
      const product = await productOf(env)
      const auth = await env.f.auth(env.staff)
      expectProblem(await env.t.request({ method: 'POST', url: imagesUrl(product.slug), payload: { image: 'x' }, headers: auth }), 415, 'unsupported_media_type')
      const noBoundary = await env.t.request({ method: 'POST', url: imagesUrl(product.slug), payload: 'garbage', headers: { ...auth, 'content-type': 'multipart/form-data' } })
      expectProblem(noBoundary, 400, 'malformed_multipart')
    })

    it('replays a retry with the same Idempotency-Key and file, and refuses that key with another file', async () => {
      const product = await productOf(env)
      const key = { 'idempotency-key': `img-${randomUUID()}` }
      const image = png(2, 2)
      const first = await upload(env, product.slug, [filePart(image)], { headers: key })
      const retry = await upload(env, product.slug, [filePart(image)], { headers: key })
      expect(first.statusCode).toBe(201)
      expect(retry.statusCode).toBe(201)
      expect(retry.headers['idempotent-replayed']).toBe('true')
      expect(retry.json()).toEqual(first.json())
      expectProblem(await upload(env, product.slug, [filePart(png(3, 3))], { headers: key }), 422, 'idempotency_key_reused')
      expect(await rowsOf(env, product.id)).toHaveLength(1)
    })

    it('is documented as a multipart/form-data request', async () => {
      const schema = (await env.t.request({ method: 'GET', url: '/api/schema/' })).json<{ paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>> }>()
      const operation = schema.paths['/api/products/{slug}/images/']!.post!
      expect(Object.keys(operation.requestBody!.content)).toEqual(['multipart/form-data'])
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['201', '401', '403', '404', '413', '415', '422']))
    })
  })

  describe('DELETE /api/products/{slug}/images/{id}/', () => {
    it('removes the row and the file (204), after which the URL is a 404', async () => {
      const product = await productOf(env)
      const created = (await upload(env, product.slug, [filePart(png(2, 2))])).json<ImageDto>()
      const res = await remove(env, product.slug, created.id)
      expect(res.statusCode).toBe(204)
      expect(await rowsOf(env, product.id)).toEqual([])
      expect((await filesUnder(env.mediaRoot)).filter((file) => file.includes(created.id))).toEqual([])
      expectProblem(await env.t.request({ method: 'GET', url: created.url }), 404)
      expectProblem(await remove(env, product.slug, created.id), 404, 'not_found')
    })

    it('answers 401, 403, and 404 for an image of another product, leaving the image', async () => {
      const product = await productOf(env)
      const other = await productOf(env)
      const created = (await upload(env, product.slug, [filePart(png(2, 2))])).json<ImageDto>()
      expectProblem(await remove(env, product.slug, created.id, null), 401)
      expectProblem(await remove(env, product.slug, created.id, await env.f.user()), 403)
      expectProblem(await remove(env, other.slug, created.id), 404)
      expectProblem(await remove(env, product.slug, 'not-a-uuid'), 422)
      expect(await rowsOf(env, product.id)).toHaveLength(1)
      expect((await env.t.request({ method: 'GET', url: created.url })).statusCode).toBe(200)
    })
  })

  describe('GET /media/', () => {
    it('lists no directory and serves no hidden file', async () => {
      const product = await productOf(env)
      await upload(env, product.slug, [filePart(png(1, 1))])
      expectProblem(await env.t.request({ method: 'GET', url: `/media/products/${product.id}/` }), 404, 'not_found')
      expectProblem(await env.t.request({ method: 'GET', url: `/media/products/${product.id}` }), 404, 'not_found')
      expectProblem(await env.t.request({ method: 'GET', url: '/media/' }), 404, 'not_found')
      await writeFile(join(env.mediaRoot, 'products', product.id, '.upload.tmp'), 'half written')
      expectProblem(await env.t.request({ method: 'GET', url: `/media/products/${product.id}/.upload.tmp` }), 404)
      expect((await env.t.request({ method: 'GET', url: '/media/../package.json' })).statusCode).toBe(404)
      expect((await env.t.request({ method: 'GET', url: '/media/%2e%2e/package.json' })).statusCode).toBe(404)
    })
  })

  describe('createProductImages', () => {
    const service = (onChange: (ctx: Ctx) => Promise<void> = async () => undefined) => createProductImages({ storage: env.t.app.platform.storage, onChange, maxBytes: MAX_BYTES })
    const ctx = () => env.t.app.platform.context()

    it('lists the images of several products in display order, with an entry for every id asked', async () => {
      const a = await productOf(env)
      const b = await productOf(env)
      const empty = await productOf(env)
      const images = service()
      const a0 = await images.add(ctx(), a.slug, { buffer: png(1, 1), filename: 'a0.png' })
      const b0 = await images.add(ctx(), b.slug, { buffer: JPEG_2X2, filename: 'b0.jpg', alt: 'b' })
      const a1 = await images.add(ctx(), a.slug, { buffer: GIF_1X1, filename: 'a1.gif' })
      const listed = await images.listFor(ctx(), [a.id, b.id, empty.id])
      expect([...listed.keys()]).toEqual([a.id, b.id, empty.id])
      expect(listed.get(a.id)).toEqual([a0, a1])
      expect(listed.get(b.id)).toEqual([b0])
      expect(listed.get(empty.id)).toEqual([])
      expect((await images.listFor(ctx(), [])).size).toBe(0)
      expect(images.urlOf(`products/${a.id}/x.png`)).toBe(`/media/products/${a.id}/x.png`)
    })

    it('calls onChange once after each add and remove, outside their transactions', async () => {
      const product = await productOf(env)
      const calls: Array<{ inTransaction: boolean; rows: number }> = []
      const images = service(async (changed) => void calls.push({ inTransaction: changed.inTransaction, rows: (await rowsOf(env, product.id)).length }))
      const added = await images.add(ctx(), product.slug, { buffer: png(1, 1), filename: 'a.png' })
      await images.remove(ctx(), product.slug, added.id)
      // Each call sees the change committed: the row is there after the add and gone after the remove.
      expect(calls).toEqual([{ inTransaction: false, rows: 1 }, { inTransaction: false, rows: 0 }])
    })

    it('reads dimensions from the file alone, never from bytes past its end in a shared buffer', async () => {
      const product = await productOf(env)
      // A PNG cut off inside its header, as a view over a larger buffer (Node pools small Buffers).
      const shared = Buffer.concat([png(2, 2).subarray(0, 20), Buffer.from([0, 0, 0x30, 0x39, 8, 2, 0, 0, 0])])
      const truncated = shared.subarray(0, 20)
      const error = await service().add(ctx(), product.slug, { buffer: truncated, filename: 'cut.png' }).catch((err: unknown) => err)
      expect(error).toMatchObject({ status: 422, code: 'invalid_image' })
      expect(await rowsOf(env, product.id)).toEqual([])
    })

    it('deletes the stored file again when the product is deleted while the file is written', async () => {
      const product = await productOf(env)
      const before = await filesUnder(env.mediaRoot)
      const real = env.t.app.platform.storage
      const onChange: string[] = []
      const images = createProductImages({
        // The real storage, and a staff member deleting the product while the file is written.
        storage: {
          ...real,
          put: async (key, body, type) => {
            await real.put(key, body, type)
            await env.t.app.platform.database.db.update(products).set({ deleted_at: new Date() }).where(eq(products.id, product.id))
          },
        },
        onChange: async () => void onChange.push('changed'),
      })
      const error = await images.add(ctx(), product.slug, { buffer: png(1, 1), filename: 'a.png' }).catch((err: unknown) => err)
      expect(error).toMatchObject({ status: 404, code: 'not_found' })
      expect(await rowsOf(env, product.id)).toEqual([])
      expect(await filesUnder(env.mediaRoot)).toEqual(before)
      expect(onChange).toEqual([])
    })
  })
})

// ---- CDN -------------------------------------------------------------------------------------

describe('product images with USE_CDN', () => {
  let env: Env
  beforeAll(async () => {
    env = await setUp({ USE_CDN: 'true', CDN_DOMAIN: 'cdn.example.com' })
  })
  afterAll(() => tearDown(env))

  it('answers the URL on CDN_DOMAIN, while the file is stored locally', async () => {
    const product = await productOf(env)
    const res = await upload(env, product.slug, [filePart(png(2, 1))])
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json<ImageDto>()
    expect(body.url).toBe(`https://cdn.example.com/products/${product.id}/${body.id}.png`)
    expect(await filesUnder(env.mediaRoot)).toContain(`products/${product.id}/${body.id}.png`)
  })
})

// ---- S3 --------------------------------------------------------------------------------------



describe('product images with USE_S3', () => {
  const bucket = 'shop-media'
  let s3: Awaited<ReturnType<typeof startS3rver>>
  let env: Env
  const s3Env = () => ({ USE_S3: 'true', AWS_STORAGE_BUCKET_NAME: bucket, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_S3_ENDPOINT_URL: s3.endpoint })
  beforeAll(async () => {
    s3 = await startS3rver(bucket)
    env = await setUp(s3Env())
  })
  afterAll(async () => {
    await tearDown(env)
    await s3?.close()
  })

  it('puts the object in the bucket with its content type, answers its S3 URL and deletes it', async () => {
    const product = await productOf(env)
    const image = png(4, 3)
    const res = await upload(env, product.slug, [filePart(image, 'upload.bin', 'application/octet-stream')])
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json<ImageDto>()
    expect(body.url).toBe(`${s3.endpoint}/${bucket}/products/${product.id}/${body.id}.png`)
    const object = await fetch(body.url)
    expect(object.status).toBe(200)
    expect(object.headers.get('content-type')).toBe('image/png')
    expect(Buffer.from(await object.arrayBuffer()).equals(image)).toBe(true)
    // Nothing on local disk, and /media/ is not served with S3.
    expect(await filesUnder(env.mediaRoot)).toEqual([])
    expectProblem(await env.t.request({ method: 'GET', url: `/media/products/${product.id}/${body.id}.png` }), 404)

    expect((await remove(env, product.slug, body.id)).statusCode).toBe(204)
    expect((await fetch(body.url)).status).toBe(404)
  })

  it('refuses a non-image without writing to the bucket', async () => {
    const product = await productOf(env)
    expectProblem(await upload(env, product.slug, [filePart(TEXT, 'x.png')]), 415)
    const listing = await (await fetch(`${s3.endpoint}/${bucket}?prefix=${encodeURIComponent(`products/${product.id}/`)}`)).text()
    expect(listing).toContain('<ListBucketResult')
    expect(listing).not.toContain('<Key>')
  })

  it('checks the bucket for readiness: ok while it answers, 503 naming storage when it does not exist', async () => {
    const ready = await env.t.request({ method: 'GET', url: '/health/ready/' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json<{ checks: Record<string, unknown> }>().checks.storage).toMatchObject({ status: 'ok', backend: 's3' })

    const missing = await setUp({ ...s3Env(), AWS_STORAGE_BUCKET_NAME: 'no-such-bucket' })
    try {
      const res = await missing.t.request({ method: 'GET', url: '/health/ready/' })
      const problem = expectProblem(res, 503, 'dependency_unavailable')
      expect(problem.failed).toEqual(['storage'])
      expect(problem.checks).toMatchObject({ storage: { status: 'error', backend: 's3', error: 'bucket "no-such-bucket" answered HTTP 404' } })
    } finally {
      await tearDown(missing)
    }
  })
})
