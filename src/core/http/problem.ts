/**
 * The one error handler: every failure leaves as RFC 9457 problem details. Domain errors keep
 * their status and code; validation failures become 422 with per-field messages; Fastify's own
 * 4xx errors keep their status; anything else is a 500 whose detail stays in the log (and goes to
 * Sentry when configured).
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sqlStateOf } from '../db/index.js'
import type { ErrorReporter } from '../error-reporting.js'
import { AppError } from '../errors.js'
import type { Problem } from './schemas.js'

interface ValidationIssue {
  instancePath: string
  schemaPath?: string
  keyword: string
  message?: string
  params: Record<string, unknown>
}

/**
 * Database refusals that only text from the request can cause: a NUL character in text
 * (22021) or in JSON (22P05). The client's mistake, whichever route let it through.
 */
const UNSTORABLE_TEXT = new Set(['22021', '22P05'])

const FASTIFY_CODES: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
}

export function registerErrorHandling(app: FastifyInstance, options: { debug: boolean; errors: Pick<ErrorReporter, 'requestFailed'> }): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = toProblem(error, request, options.debug)
    if (problem.status >= 500) {
      request.log.error({ err: error }, 'request failed')
      options.errors.requestFailed(error, { method: request.method, route: request.routeOptions.url ?? '(unmatched)', status: problem.status, requestId: String(request.id) })
    } else request.log.info({ code: problem.code, status: problem.status, detail: problem.detail }, 'request rejected')
    if (error instanceof AppError && error.headers) reply.headers(error.headers)
    return sendProblem(reply, problem)
  })

  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problemOf(request, 404, 'not_found', `No route matches ${request.method} ${pathOf(request)}.`)),
  )
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type('application/problem+json').send(problem)
}

export function problemOf(request: FastifyRequest, status: number, code: string, detail: string, extra: Partial<Problem> = {}): Problem {
  // Extensions add members; they never replace the ones RFC 9457 and our clients rely on.
  return {
    ...extra,
    type: `/problems/${code}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    instance: pathOf(request),
    code,
    request_id: String(request.id),
  }
}

/** `debug` (development only) puts an unexpected error's message in the 500's detail. */
export function toProblem(error: FastifyError | Error, request: FastifyRequest, debug = false): Problem {
  if (error instanceof AppError) {
    return problemOf(request, error.status, error.code, error.message, {
      ...(error.errors ? { errors: error.errors } : {}),
      ...error.extensions,
    })
  }
  const fastifyError = error as FastifyError & { validation?: ValidationIssue[]; validationContext?: string }
  if (fastifyError.validation) {
    return problemOf(request, 422, 'validation_error', 'The request did not pass validation.', {
      errors: fieldErrors(fastifyError.validation, fastifyError.validationContext),
    })
  }
  if (UNSTORABLE_TEXT.has(sqlStateOf(error) ?? '')) {
    return problemOf(request, 422, 'unsupported_character', 'The request holds a character that cannot be stored (such as U+0000).')
  }
  const status = fastifyError.statusCode
  if (status && status >= 400 && status < 500) {
    const isJsonError = error instanceof SyntaxError || fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fastifyError.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
    const code = isJsonError ? 'malformed_json' : (FASTIFY_CODES[status] ?? 'bad_request')
    const detail = isJsonError ? 'The body is not valid JSON.' : error.message
    return problemOf(request, status, code, detail)
  }
  const detail = 'An unexpected error occurred. Quote the request id when reporting it.'
  return problemOf(request, 500, 'internal_error', debug ? `${detail} (DEBUG: ${error.message})` : detail)
}

/** Ajv issues → { field: [messages] }, with DRF's `non_field_errors` for the body as a whole. */
function fieldErrors(issues: ValidationIssue[], context = 'body'): Record<string, string[]> {
  const errors: Record<string, string[]> = {}
  for (const issue of issues) {
    let path = issue.instancePath.replace(/^\//, '').replace(/\//g, '.')
    let message = issue.message ?? 'is invalid'
    if (issue.keyword === 'required') {
      path = [path, String(issue.params.missingProperty)].filter(Boolean).join('.')
      message = 'This field is required.'
    } else if (issue.keyword === 'additionalProperties') {
      path = [path, String(issue.params.additionalProperty)].filter(Boolean).join('.')
      message = 'Unknown field.'
    } else if (issue.keyword === 'enum' && Array.isArray(issue.params.allowedValues)) {
      message = `Must be one of: ${issue.params.allowedValues.join(', ')}.`
    } else if (issue.schemaPath?.endsWith('/additionalProperties/not')) {
      // Schemas that refuse extra fields with `additionalProperties: {not: {}}` (Ajv would strip them on `false`).
      message = 'Unknown field.'
    }
    const field = path || (context === 'body' ? 'non_field_errors' : context)
    ;(errors[field] ??= []).push(message)
  }
  return errors
}

function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0] ?? '/'
}
