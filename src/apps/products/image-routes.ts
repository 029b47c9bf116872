/**
 * Staff image routes: POST /api/products/{slug}/images/ (multipart upload) and DELETE
 * /api/products/{slug}/images/{id}/. The multipart parser lives in this plugin's scope only, so
 * no other route accepts multipart bodies.
 *
 * The upload is read in a preValidation hook that runs after the staff guard (nothing is read
 * for a 401/403) and before the idempotency preHandler, which hashes `request.body`: the body is
 * `{ image, alt }`, where `image` serialises to its name, size and SHA-256, so a retry with the
 * same file replays and the same key with another file is a 422.
 */
import { createHash } from 'node:crypto'
import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest, FastifySchema, FastifySchemaCompiler } from 'fastify'
import { Type } from 'typebox'
import type { AuthGuards } from '../../core/auth.js'
import { AppError, BadRequestError, ValidationError } from '../../core/errors.js'
import { Problem, Uuid } from '../../core/http/schemas.js'
import { buildValidator } from '../../core/http/validation.js'
import { ALT_MAX_LENGTH, ImageTooLargeError, type ProductImages } from './images.js'

const bearer = [{ bearerAuth: [] }]

export const ProductImageSchema = Type.Object({
  id: Uuid,
  url: Type.String({ description: 'absolute path under MEDIA_URL, the S3 object URL, or on CDN_DOMAIN' }),
  alt: Type.String(),
  width: Type.Union([Type.Integer(), Type.Null()]),
  height: Type.Union([Type.Integer(), Type.Null()]),
  content_type: Type.String({ description: 'detected from the bytes: image/jpeg, image/png, image/webp, image/gif or image/avif' }),
  size: Type.Integer({ description: 'bytes' }),
  position: Type.Integer(),
})

const ImageUploadParams = Type.Object({ slug: Type.String({ minLength: 1, maxLength: 80 }) })
const ImageParams = Type.Object({ slug: Type.String({ minLength: 1, maxLength: 80 }), id: Uuid })

/** The documented form; the hook below reads and checks it (body validators cannot see a stream). */
const ImageUploadForm = Type.Object({
  image: Type.String({ format: 'binary', description: 'the file (one file part; its field name and file name do not matter): JPEG, PNG, WebP, GIF or AVIF, judged by its content' }),
  alt: Type.Optional(Type.String({ maxLength: ALT_MAX_LENGTH, description: 'alternative text' })),
})

/** The uploaded file as the handler sees it; its JSON (what idempotency hashes) is a digest. */
class UploadedFile {
  constructor(
    readonly buffer: Buffer,
    readonly filename: string,
  ) {}

  toJSON() {
    return { filename: this.filename, size: this.buffer.length, sha256: createHash('sha256').update(this.buffer).digest('hex') }
  }
}

interface UploadBody {
  image: UploadedFile
  alt?: string
}

export function imageRoutes(images: ProductImages, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    await app.register(multipart, {
      // One file and a few small fields; the file may not exceed MEDIA_MAX_UPLOAD_BYTES.
      limits: { files: 1, fileSize: images.maxBytes, fields: 10, fieldSize: 4096, parts: 20, headerPairs: 100 },
      throwFileSizeLimit: true,
    })

    // Params keep the project's validator; the body was checked while reading it.
    const validateParams = buildValidator()
    const readAlready: FastifySchemaCompiler<FastifySchema> = (route) => (route.httpPart === 'body' ? () => true : validateParams(route))
    const readUploadHook = async (request: FastifyRequest) => {
      request.body = await readUpload(request, images.maxBytes)
    }

    app.post('/:slug/images/', {
      preValidation: [guards.requireStaff, readUploadHook],
      validatorCompiler: readAlready,
      schema: {
        tags: ['catalog'],
        summary: 'Upload a product image (staff): multipart/form-data; the type is judged by the content',
        description: `One file part (JPEG, PNG, WebP, GIF or AVIF, at most MEDIA_MAX_UPLOAD_BYTES) and an optional \`alt\` field (up to ${ALT_MAX_LENGTH} characters). A file of another type, whatever its name, is a 415; a larger one a 413; a missing or unreadable one a 422.`,
        security: bearer,
        consumes: ['multipart/form-data'],
        params: ImageUploadParams,
        body: ImageUploadForm,
        response: { 201: ProductImageSchema, 400: Problem, 401: Problem, 403: Problem, 404: Problem, 413: Problem, 415: Problem, 422: Problem },
      },
    }, async (request, reply) => {
      const { image, alt } = request.body as unknown as UploadBody
      const created = await images.add(request.ctx, request.params.slug, { buffer: image.buffer, filename: image.filename, ...(alt !== undefined ? { alt } : {}) })
      return reply.code(201).send(created)
    })

    app.delete('/:slug/images/:id/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: ['catalog'],
        summary: 'Delete a product image (staff): its row, then its file',
        security: bearer,
        params: ImageParams,
        response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem, 422: Problem },
      },
    }, async (request, reply) => {
      await images.remove(request.ctx, request.params.slug, request.params.id)
      return reply.code(204).send(null)
    })
  }
}

/** Reads the multipart body: the one file into memory (bounded by the limit) and `alt`. */
async function readUpload(request: FastifyRequest, maxBytes: number): Promise<UploadBody> {
  if (!request.isMultipart()) throw new UnsupportedBodyError()
  let image: UploadedFile | undefined
  let alt: string | undefined
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') image = new UploadedFile(await part.toBuffer(), part.filename)
      else if (part.fieldname === 'alt') alt = String(part.value)
    }
  } catch (err) {
    throw translate(err, request, maxBytes)
  }
  if (!image) throw new ValidationError('The request did not pass validation.', { image: ['This field is required: attach one image file.'] })
  return { image, ...(alt !== undefined ? { alt } : {}) }
}

/** The multipart plugin's limit errors as our problems; anything else the parser throws is a malformed body. */
function translate(err: unknown, request: FastifyRequest, maxBytes: number): unknown {
  const errors = request.server.multipartErrors
  if (err instanceof errors.RequestFileTooLargeError) return new ImageTooLargeError(maxBytes)
  if (err instanceof errors.FilesLimitError) return new ValidationError('The request did not pass validation.', { image: ['Send one file per request.'] })
  if (err instanceof AppError) return err
  const status = (err as { statusCode?: number }).statusCode
  if (status !== undefined && status >= 400 && status < 500) return err
  return new BadRequestError('malformed_multipart', 'The multipart body could not be read.', { cause: err })
}

class UnsupportedBodyError extends AppError {
  readonly status = 415
  readonly code = 'unsupported_media_type'
  constructor() {
    super('Send the image as multipart/form-data.')
  }
}
