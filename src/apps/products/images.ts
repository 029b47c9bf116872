/**
 * Product images: uploads checked by their content (never by file name or the client's content
 * type), stored in media storage under a key of their own, with one `product_images` row each.
 * The URL is built from the key when read, so USE_CDN applies to images uploaded before it.
 *
 * Storage and database cannot share a transaction: the file is written first and the row
 * inserted after, and the file is deleted again when the insert fails, so a row never points at
 * a missing file. Removal deletes the row, then the file. `onChange` runs after every change (the
 * catalog cache's invalidation), once the change is committed and before the caller answers.
 */
import { randomUUID } from 'node:crypto'
import { fileTypeFromBuffer } from 'file-type'
import { imageSize } from 'image-size'
import type { Ctx } from '../../core/context.js'
import { AppError, NotFoundError, ValidationError } from '../../core/errors.js'
import type { Storage } from '../../core/storage.js'
import * as q from './image-queries.js'

export interface ImageDto {
  id: string
  url: string
  alt: string
  width: number | null
  height: number | null
  content_type: string
  size: number
  position: number
}

export interface ImageUpload {
  buffer: Buffer
  /** The client's file name: logged, never trusted for the type. */
  filename: string
  alt?: string
}

/** Accepted types, as detected from the bytes, with the extension their keys get. */
export const ACCEPTED_IMAGE_TYPES = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif', 'image/avif': 'avif' } as const
type AcceptedType = keyof typeof ACCEPTED_IMAGE_TYPES
/** image-size's name for each accepted type: both readers must agree on what the file is. */
const SIZE_READER_TYPE: Record<AcceptedType, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif', 'image/avif': 'avif' }

export const ALT_MAX_LENGTH = 200
/**
 * Bounds on the declared size: a small file can declare a huge canvas (a decompression bomb for
 * whoever decodes it later), and the columns are 32-bit integers.
 */
export const MAX_IMAGE_SIDE = 30_000
export const MAX_IMAGE_PIXELS = 100_000_000
export const DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024

export class ImageTooLargeError extends AppError {
  readonly status = 413
  readonly code = 'file_too_large'
  constructor(limitBytes: number) {
    super(`The file is larger than the ${limitBytes} bytes allowed.`)
  }
}

export class UnsupportedImageTypeError extends AppError {
  readonly status = 415
  readonly code = 'unsupported_media_type'
  constructor() {
    super('The file is not a JPEG, PNG, WebP, GIF or AVIF image (judged by its content, not its name).')
  }
}

export interface ProductImagesDeps {
  storage: Storage
  /** Called after every change, outside the change's own transaction (catalog cache invalidation). */
  onChange: (ctx: Ctx) => Promise<void>
  /** Largest accepted file (MEDIA_MAX_UPLOAD_BYTES). */
  maxBytes?: number
}

export function createProductImages(deps: ProductImagesDeps) {
  const { storage, onChange } = deps
  const maxBytes = deps.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES
  const toDto = (row: q.ImageRow): ImageDto => ({
    id: row.id,
    url: storage.url(row.key),
    alt: row.alt,
    width: row.width,
    height: row.height,
    content_type: row.content_type,
    size: row.size,
    position: row.position,
  })

  return {
    maxBytes,

    /**
     * Adds an image after the product's others. Unknown and deleted products are a 404; a file
     * that is not an accepted image is a 415, one over the limit a 413, an unreadable one a 422.
     */
    async add(ctx: Ctx, slug: string, upload: ImageUpload): Promise<ImageDto> {
      const alt = checkAlt(upload.alt)
      const productId = await q.findLiveProductId(ctx.db, slug)
      if (!productId) throw new NotFoundError('product', slug)
      const image = await inspect(upload.buffer, maxBytes)

      const id = randomUUID()
      const key = `products/${productId}/${id}.${ACCEPTED_IMAGE_TYPES[image.contentType]}`
      // Network or disk I/O stays outside the transaction.
      await storage.put(key, upload.buffer, image.contentType)
      let row: q.ImageRow
      try {
        row = await ctx.tx(async (tx) => {
          // The product may have been deleted while the file was written.
          if (!(await q.lockLiveProduct(tx.db, productId))) throw new NotFoundError('product', slug)
          return q.insertImage(tx.db, { id, product_id: productId, key, content_type: image.contentType, size: upload.buffer.length, width: image.width, height: image.height, alt })
        })
      } catch (err) {
        // No row points at the file: take it away again.
        await storage.delete(key).catch((cleanupErr: unknown) => ctx.log.error({ err: cleanupErr, key }, 'could not delete the file of a failed image upload'))
        throw err
      }
      // After commit (or after the caller's commit, inside its transaction), before the answer.
      await onChange(ctx)
      ctx.log.info({ product_id: productId, image_id: id, filename: upload.filename, content_type: image.contentType, size: row.size }, 'product image added')
      return toDto(row)
    },

    /** Removes an image of a product (404 when either is unknown): the row, then the file. */
    async remove(ctx: Ctx, slug: string, imageId: string): Promise<void> {
      const row = await q.deleteImage(ctx.db, slug, imageId)
      if (!row) throw new NotFoundError('image', imageId)
      await onChange(ctx)
      // The row is gone, so the image is gone for clients; a file left behind is only an orphan.
      await storage.delete(row.key).catch((err: unknown) => ctx.log.warn({ err, key: row.key }, 'could not delete the file of a removed image'))
    },

    /** Images of each product, in display order, read in one query (every id gets an entry). */
    async listFor(ctx: Ctx, productIds: string[]): Promise<Map<string, ImageDto[]>> {
      const byProduct = new Map<string, ImageDto[]>(productIds.map((id) => [id, []]))
      for (const row of await q.findImagesOf(ctx.db, [...new Set(productIds)])) byProduct.get(row.product_id)?.push(toDto(row))
      return byProduct
    },

    /** The public URL of a stored key (local, S3 or CDN). */
    urlOf: (key: string): string => storage.url(key),
  }
}

export type ProductImages = ReturnType<typeof createProductImages>

function checkAlt(alt: string | undefined): string {
  const text = (alt ?? '').trim()
  if (text.length > ALT_MAX_LENGTH) throw new ValidationError('The request did not pass validation.', { alt: [`Ensure this field has no more than ${ALT_MAX_LENGTH} characters.`] })
  return text
}

/** Type from the bytes, then size and dimensions; throws the answer for anything else. */
async function inspect(buffer: Buffer, maxBytes: number): Promise<{ contentType: AcceptedType; width: number; height: number }> {
  if (buffer.length === 0) throw new ValidationError('The file is empty.', { image: ['The submitted file is empty.'] })
  if (buffer.length > maxBytes) throw new ImageTooLargeError(maxBytes)
  // Both readers get a copy that owns exactly the file's bytes: image-size reads through DataViews
  // over `input.buffer` with no length, so on a Buffer sharing Node's pool it would read past the
  // file into unrelated bytes.
  const bytes = new Uint8Array(buffer)
  // A damaged file can make the detector itself fail: that is an unrecognised file, not a 500.
  const detected = await fileTypeFromBuffer(bytes).catch(() => undefined)
  if (!detected || !(detected.mime in ACCEPTED_IMAGE_TYPES)) throw new UnsupportedImageTypeError()
  const contentType = detected.mime as AcceptedType
  let size: { width: number; height: number; type?: string }
  try {
    size = imageSize(bytes)
  } catch {
    throw unreadable()
  }
  if (size.type !== SIZE_READER_TYPE[contentType] || !(size.width > 0) || !(size.height > 0)) throw unreadable()
  if (size.width > MAX_IMAGE_SIDE || size.height > MAX_IMAGE_SIDE || size.width * size.height > MAX_IMAGE_PIXELS) {
    throw new ValidationError('The image is too large.', { image: [`Images may be at most ${MAX_IMAGE_SIDE} pixels a side and ${MAX_IMAGE_PIXELS / 1_000_000} megapixels.`] }, 'image_dimensions_too_large')
  }
  return { contentType, width: size.width, height: size.height }
}

const unreadable = () => new ValidationError('The image could not be read.', { image: ['Upload a valid image: the file is damaged or not an image.'] }, 'invalid_image')
