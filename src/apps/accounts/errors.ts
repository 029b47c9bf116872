import { ConflictError, UnauthorizedError, ValidationError } from '../../core/errors.js'

export class InvalidCredentialsError extends UnauthorizedError {
  constructor() {
    super('invalid_credentials', 'The email or password is wrong.')
  }
}

export class EmailTakenError extends ConflictError {
  constructor() {
    super('email_taken', 'An account with this email already exists.')
  }
}

export class WeakPasswordError extends ValidationError {
  constructor(field: string, problems: string[]) {
    super('The password is not strong enough.', { [field]: problems }, 'weak_password')
  }
}

export class InvalidTokenError extends ValidationError {
  constructor(field = 'token') {
    super('The token is invalid, used or expired.', { [field]: ['This token is invalid, used or expired.'] }, 'invalid_token')
  }
}

export class RefreshTokenError extends UnauthorizedError {
  constructor(reused = false) {
    super(reused ? 'refresh_token_reused' : 'invalid_refresh_token', reused ? 'This refresh token was already used: every session it belongs to has been signed out.' : 'The refresh token is invalid, revoked or expired.')
  }
}

export class InvalidMfaCodeError extends ValidationError {
  constructor() {
    super('The code is wrong or was already used.', { code: ['This code is wrong or was already used.'] }, 'invalid_mfa_code')
  }
}

export class MfaStateError extends ConflictError {
  constructor(message: string) {
    super('mfa_state', message)
  }
}

export class LastAdminError extends ConflictError {
  constructor() {
    super('last_admin', 'The last active admin cannot be demoted or deactivated.')
  }
}
