import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { decodeJwt } from 'jose'
import { Type } from 'typebox'
import type { Settings } from '../../config/index.js'
import type { AuthGuards } from '../../core/auth.js'
import type { Ctx } from '../../core/context.js'
import { keyedRateLimit, rateLimited } from '../../core/http/rate-limit.js'
import { pageUrl } from '../../core/http/pagination.js'
import { Page, Problem } from '../../core/http/schemas.js'
import {
  AddressSchema,
  ChangePasswordBody,
  CreateAddressBody,
  DetailSchema,
  EmailBody,
  IdParams,
  LoginBody,
  MfaChallengeSchema,
  MfaCodeBody,
  MfaLoginBody,
  MfaSetupSchema,
  RecoveryCodesSchema,
  RefreshBody,
  RegisterBody,
  ResetConfirmBody,
  SessionSchema,
  TokenBody,
  TokenPairSchema,
  UpdateAddressBody,
  UpdateMeBody,
  UpdateUserBody,
  UserListQuery,
  UserSchema,
} from './schemas.js'
import type { AccountsService, LoginResult } from './service.js'

/**
 * Runs after a successful sign-in with the request's headers (the cart app merges the guest cart
 * of an X-Cart-Token). The sign-in has committed by then: a failing hook is logged, and the
 * client still gets its session.
 */
export type SignInHook = (ctx: Ctx, userId: string, headers: IncomingHttpHeaders) => Promise<void>

async function afterSignIn<T extends LoginResult>(request: FastifyRequest, result: T, onSignIn: SignInHook | undefined): Promise<T> {
  if (!onSignIn || !('user' in result)) return result
  try {
    await onSignIn(request.ctx, result.user.id, request.headers)
  } catch (err) {
    request.log.error({ err }, 'sign-in hook failed')
  }
  return result
}

const bearer = [{ bearerAuth: [] }]

const emailKey = (request: FastifyRequest) => {
  const email = (request.body as { email?: unknown } | undefined)?.email
  return typeof email === 'string' ? email.trim().toLowerCase() : null
}

/** The account an MFA step is for (unverified here: it only picks the rate-limit bucket). */
const mfaKey = (request: FastifyRequest) => {
  try {
    return decodeJwt(String((request.body as { mfa_token?: unknown }).mfa_token)).sub ?? null
  } catch {
    return null
  }
}

export function authRoutes(accounts: AccountsService, guards: AuthGuards, settings: Settings, onSignIn?: SignInHook): FastifyPluginAsyncTypebox {
  return async (app) => {
    const perIp = rateLimited(settings, 'auth')
    // Answers that carry credentials (tokens, TOTP secrets, recovery codes) are never kept for
    // Idempotency-Key replays: the store would hold them in clear for a day.
    const secretAnswer = { ...perIp, idempotency: false as const }
    const perAccount = keyedRateLimit(app, settings, 'auth_account', emailKey)

    app.post('/register/', {
      config: perIp,
      schema: { tags: ['auth'], summary: 'Create an account (sends a verification email)', body: RegisterBody, response: { 201: UserSchema, 409: Problem, 422: Problem, 429: Problem } },
    }, async (request, reply) => reply.code(201).send(await accounts.register(request.ctx, request.body)))

    app.post('/login/', {
      config: secretAnswer,
      preHandler: perAccount,
      schema: {
        tags: ['auth'],
        summary: 'Sign in with email and password',
        description: 'Answers the tokens, or `{mfa_required, mfa_token}` when the account uses two-factor authentication.',
        body: LoginBody,
        response: { 200: Type.Union([SessionSchema, MfaChallengeSchema]), 401: Problem, 422: Problem, 429: Problem },
      },
    }, async (request) => afterSignIn(request, await accounts.login(request.ctx, request.body), onSignIn))

    app.post('/login/mfa/', {
      config: secretAnswer,
      preHandler: keyedRateLimit(app, settings, 'auth_account', mfaKey),
      schema: { tags: ['auth'], summary: 'Second sign-in step: a TOTP or recovery code', body: MfaLoginBody, response: { 200: SessionSchema, 401: Problem, 422: Problem, 429: Problem } },
    }, async (request) => afterSignIn(request, await accounts.loginWithMfa(request.ctx, request.body), onSignIn))

    app.post('/refresh/', {
      config: secretAnswer,
      schema: {
        tags: ['auth'],
        summary: 'Exchange a refresh token for a new pair',
        description: 'The old refresh token is spent; presenting a spent one signs out its whole session family (401).',
        body: RefreshBody,
        response: { 200: TokenPairSchema, 401: Problem, 422: Problem },
      },
    }, async (request) => accounts.refresh(request.ctx, request.body.refresh))

    app.post('/logout/', {
      preValidation: guards.requireUser,
      schema: { tags: ['auth'], summary: 'Sign out: revoke the refresh token and its session', security: bearer, body: RefreshBody, response: { 204: Type.Null(), 401: Problem, 422: Problem } },
    }, async (request, reply) => {
      await accounts.logout(request.ctx, request.body.refresh)
      return reply.code(204).send(null)
    })

    app.post('/verify-email/', {
      config: perIp,
      schema: { tags: ['auth'], summary: 'Confirm the email address with the emailed token', body: TokenBody, response: { 200: UserSchema, 422: Problem } },
    }, async (request) => accounts.verifyEmail(request.ctx, request.body.token))

    app.post('/password-reset/', {
      config: rateLimited(settings, 'password_reset'),
      preHandler: keyedRateLimit(app, settings, 'password_reset_account', emailKey),
      schema: {
        tags: ['auth'],
        summary: 'Email a password reset link',
        description: 'Always 202, whether or not an account uses this address.',
        body: EmailBody,
        response: { 202: DetailSchema, 422: Problem, 429: Problem },
      },
    }, async (request, reply) => {
      await accounts.requestPasswordReset(request.ctx, request.body.email)
      return reply.code(202).send({ detail: 'If an account uses this address, a reset link is on its way.' })
    })

    app.post('/password-reset/confirm/', {
      config: perIp,
      schema: { tags: ['auth'], summary: 'Set a new password with the emailed token (signs out every session)', body: ResetConfirmBody, response: { 200: DetailSchema, 422: Problem } },
    }, async (request) => {
      await accounts.confirmPasswordReset(request.ctx, request.body)
      return { detail: 'The password has been changed.' }
    })

    app.post('/mfa/setup/', {
      config: { idempotency: false },
      preValidation: guards.requireUser,
      schema: { tags: ['auth'], summary: 'Start two-factor setup: a TOTP secret for an authenticator app', security: bearer, response: { 200: MfaSetupSchema, 401: Problem, 409: Problem } },
    }, async (request) => accounts.setupMfa(request.ctx))

    app.post('/mfa/enable/', {
      config: { idempotency: false },
      preValidation: guards.requireUser,
      schema: { tags: ['auth'], summary: 'Turn two-factor on with a code; answers recovery codes (shown once)', security: bearer, body: MfaCodeBody, response: { 200: RecoveryCodesSchema, 401: Problem, 409: Problem, 422: Problem } },
    }, async (request) => accounts.enableMfa(request.ctx, request.body.code))

    app.post('/mfa/disable/', {
      preValidation: guards.requireUser,
      schema: { tags: ['auth'], summary: 'Turn two-factor off with a code or a recovery code', security: bearer, body: MfaCodeBody, response: { 200: DetailSchema, 401: Problem, 409: Problem, 422: Problem } },
    }, async (request) => {
      await accounts.disableMfa(request.ctx, request.body.code)
      return { detail: 'Two-factor authentication is off.' }
    })
  }
}

export function accountRoutes(accounts: AccountsService, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/me/', {
      preValidation: guards.requireUser,
      schema: { tags: ['accounts'], summary: 'Your profile', security: bearer, response: { 200: UserSchema, 401: Problem } },
    }, async (request) => accounts.getMe(request.ctx))

    app.patch('/me/', {
      preValidation: guards.requireUser,
      schema: { tags: ['accounts'], summary: 'Update your names', security: bearer, body: UpdateMeBody, response: { 200: UserSchema, 401: Problem, 422: Problem } },
    }, async (request) => accounts.updateMe(request.ctx, request.body))

    app.post('/me/password/', {
      preValidation: guards.requireUser,
      schema: { tags: ['accounts'], summary: 'Change your password (signs out every session)', security: bearer, body: ChangePasswordBody, response: { 200: DetailSchema, 401: Problem, 422: Problem } },
    }, async (request) => {
      await accounts.changePassword(request.ctx, request.body)
      return { detail: 'The password has been changed.' }
    })

    app.get('/me/addresses/', {
      preValidation: guards.requireUser,
      schema: { tags: ['accounts'], summary: 'Your address book', security: bearer, response: { 200: Page(AddressSchema), 401: Problem } },
    }, async (request) => {
      const results = await accounts.listAddresses(request.ctx)
      return { count: results.length, next: null, previous: null, results }
    })

    app.post('/me/addresses/', {
      preValidation: guards.requireUser,
      schema: { tags: ['accounts'], summary: 'Add an address', security: bearer, body: CreateAddressBody, response: { 201: AddressSchema, 401: Problem, 422: Problem } },
    }, async (request, reply) => reply.code(201).send(await accounts.createAddress(request.ctx, request.body)))

    app.get('/me/addresses/:id/', {
      preValidation: guards.requireUser,
      schema: { tags: ['accounts'], summary: 'One of your addresses', security: bearer, params: IdParams, response: { 200: AddressSchema, 401: Problem, 404: Problem } },
    }, async (request) => accounts.getAddress(request.ctx, request.params.id))

    app.patch('/me/addresses/:id/', {
      preValidation: guards.requireUser,
      schema: { tags: ['accounts'], summary: 'Update one of your addresses', security: bearer, params: IdParams, body: UpdateAddressBody, response: { 200: AddressSchema, 401: Problem, 404: Problem, 422: Problem } },
    }, async (request) => accounts.updateAddress(request.ctx, request.params.id, request.body))

    app.delete('/me/addresses/:id/', {
      preValidation: guards.requireUser,
      schema: { tags: ['accounts'], summary: 'Delete one of your addresses', security: bearer, params: IdParams, response: { 204: Type.Null(), 401: Problem, 404: Problem } },
    }, async (request, reply) => {
      await accounts.deleteAddress(request.ctx, request.params.id)
      return reply.code(204).send(null)
    })

    app.get('/users/', {
      preValidation: guards.requireStaff,
      schema: { tags: ['accounts'], summary: 'Users, newest first (staff)', security: bearer, querystring: UserListQuery, response: { 200: Page(UserSchema), 401: Problem, 403: Problem, 422: Problem } },
    }, async (request) => {
      const page = await accounts.listUsers(request.ctx, request.query)
      return { count: null, next: pageUrl(request, page.next_cursor ?? null), previous: null, results: page.results }
    })

    app.patch('/users/:id/', {
      preValidation: guards.requireAdmin,
      schema: { tags: ['accounts'], summary: "Change a user's role or active flag (admin)", security: bearer, params: IdParams, body: UpdateUserBody, response: { 200: UserSchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem } },
    }, async (request) => accounts.updateUser(request.ctx, request.params.id, request.body))
  }
}
