/**
 * Domain errors: each class fixes a stable `code` (part of the API contract) and an HTTP status.
 * Services throw them; one handler in core/http turns them into RFC 9457 problem details.
 */
export abstract class AppError extends Error {
  abstract readonly status: number
  abstract readonly code: string
  /** Per-field messages, for 422 answers. */
  errors?: Record<string, string[]>
  /** Extra members of the problem document (e.g. which dependencies failed). */
  extensions?: Record<string, unknown>
  /** Response headers the problem needs (e.g. Retry-After). */
  headers?: Record<string, string>
}

export class BadRequestError extends AppError {
  readonly status = 400
  constructor(readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

export class ValidationError extends AppError {
  readonly status = 422
  readonly code: string
  constructor(message: string, errors?: Record<string, string[]>, code = 'validation_error') {
    super(message)
    this.code = code
    if (errors) this.errors = errors
  }
}

export class UnauthorizedError extends AppError {
  readonly status = 401
  constructor(readonly code = 'not_authenticated', message = 'Authentication credentials were missing or invalid.') {
    super(message)
  }
}

export class ForbiddenError extends AppError {
  readonly status = 403
  constructor(readonly code = 'permission_denied', message = 'You do not have permission to perform this action.') {
    super(message)
  }
}

export class NotFoundError extends AppError {
  readonly status = 404
  readonly code = 'not_found'
  constructor(what: string, id?: string) {
    super(id === undefined ? `${what} was not found.` : `${what} "${id}" was not found.`)
  }
}

export class ConflictError extends AppError {
  readonly status = 409
  constructor(readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

export class RateLimitedError extends AppError {
  readonly status = 429
  readonly code = 'rate_limited'
  constructor(retryAfterSeconds: number) {
    super(`Too many requests: try again in ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'}.`)
    this.headers = { 'retry-after': String(retryAfterSeconds) }
  }
}

export class DependencyUnavailableError extends AppError {
  readonly status = 503
  readonly code = 'dependency_unavailable'
  constructor(message: string, extensions?: Record<string, unknown>, options?: ErrorOptions) {
    super(message, options)
    if (extensions) this.extensions = extensions
  }
}
