import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { AuthGuards } from '../../core/auth.js'
import { BadRequestError } from '../../core/errors.js'
import { noUnknownFields, Problem } from '../../core/http/schemas.js'
import type { Marketing } from './marketing.js'

const bearer = [{ bearerAuth: [] }]

const BroadcastBody = Type.Object(
  {
    subject: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S', description: 'the email subject and the in-app title' }),
    body: Type.String({ minLength: 1, maxLength: 20_000, pattern: '\\S', description: 'plain text; blank lines separate paragraphs' }),
    link: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2000, description: 'a page of the shop the email links to' })),
    link_label: Type.Optional(Type.String({ minLength: 1, maxLength: 60, description: 'the link button text (default "Have a look")' })),
  },
  noUnknownFields,
)

const BroadcastAnswer = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email_recipients: Type.Integer({ description: 'customers who agreed to marketing email when it was sent' }),
  in_app_recipients: Type.Integer({ description: 'customers who agreed to marketing in the app' }),
})

const UnsubscribeQuery = Type.Object({ token: Type.String({ minLength: 1, maxLength: 2000 }) })
const UnsubscribeAnswer = Type.Object({ unsubscribed: Type.Literal(true), kind: Type.Literal('marketing') })

/** Staff broadcasts, and the unsubscribe link of marketing email (no sign-in: the token says who). */
export function marketingRoutes(marketing: Marketing, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    // RFC 8058: mail clients POST `List-Unsubscribe=One-Click` form-encoded; the token is in the URL.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, _body, done) => done(null, {}))

    app.post('/api/notifications/broadcasts/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: ['notifications'],
        summary: 'Send news to every customer who agreed to marketing (staff)',
        description: 'Email (with a one-click unsubscribe link) to those who turned `email.marketing` on, an in-app notification to those who turned `in_app.marketing` on. Sent in the background; each person gets it once.',
        security: bearer,
        body: BroadcastBody,
        response: { 202: BroadcastAnswer, 401: Problem, 403: Problem, 422: Problem },
      },
    }, async (request, reply) => reply.code(202).send(await marketing.broadcast(request.ctx, request.body)))

    app.get('/api/notifications/unsubscribe/', {
      config: { rateLimit: false },
      schema: {
        tags: ['notifications'],
        summary: "The footer link of marketing email: a page asking to confirm (a link scanner's visit changes nothing)",
        querystring: UnsubscribeQuery,
        produces: ['text/html'],
        response: { 200: Type.String({ description: 'HTML page with a confirm button' }), 422: Problem },
      },
    }, async (request, reply) => {
      const action = `/api/notifications/unsubscribe/?token=${encodeURIComponent(request.query.token)}`
      return reply.type('text/html; charset=utf-8').send(page('Unsubscribe', `<p>Stop receiving news by email?</p><form method="post" action="${action}"><button type="submit">Unsubscribe</button></form>`))
    })

    app.post('/api/notifications/unsubscribe/', {
      config: { idempotency: false },
      schema: {
        tags: ['notifications'],
        summary: 'Turn marketing email off for the person the token names (RFC 8058 one-click; safe to repeat)',
        description: 'Accepts the one-click form body `List-Unsubscribe=One-Click`, JSON or no body. Answers HTML to a browser form, JSON otherwise.',
        querystring: UnsubscribeQuery,
        response: {
          200: { content: { 'application/json': { schema: UnsubscribeAnswer }, 'text/html': { schema: Type.String({ description: 'a confirmation page' }) } } },
          400: Problem,
          422: Problem,
        },
      },
    }, async (request, reply) => {
      const done = await marketing.unsubscribe(request.ctx, request.query.token)
      if (!done) throw new BadRequestError('invalid_token', 'This unsubscribe link is not valid.')
      if (request.headers.accept?.includes('text/html')) {
        return reply.type('text/html; charset=utf-8').send(page('Unsubscribed', '<p>You will not receive news by email any more. Order and account emails still reach you.</p>'))
      }
      return { unsubscribed: true as const, kind: done.kind }
    })
  }
}

function page(title: string, content: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head><body style="font-family:sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"><h1>${title}</h1>${content}</body></html>`
}
