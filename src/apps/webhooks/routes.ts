import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { AuthGuards } from '../../core/auth.js'
import { pageUrl } from '../../core/http/pagination.js'
import { Page, Problem } from '../../core/http/schemas.js'
import {
  CreateEndpointBody,
  DeliveryListQuery,
  DeliveryParams,
  DeliverySchema,
  EndpointListQuery,
  EndpointParams,
  EndpointSchema,
  EndpointWithSecretSchema,
  EventTypeSchema,
  UpdateEndpointBody,
} from './schemas.js'
import type { WebhooksService } from './service.js'

const bearer = [{ bearerAuth: [] }]
// Answers that carry the signing secret are never kept for Idempotency-Key replays: the store would hold it in clear.
const secretAnswer = { idempotency: false as const }

/** /api/webhooks/: staff manage receiver endpoints and read their delivery logs. */
export function webhookRoutes(webhooks: WebhooksService, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('preValidation', guards.requireStaff)

    app.get('/api/webhooks/event-types/', {
      schema: { tags: ['webhooks'], summary: 'The event types endpoints can subscribe to (staff)', security: bearer, response: { 200: Type.Array(EventTypeSchema), 401: Problem, 403: Problem } },
    }, async () => webhooks.eventTypes())

    app.get('/api/webhooks/', {
      schema: { tags: ['webhooks'], summary: 'Webhook endpoints, newest first (staff)', security: bearer, querystring: EndpointListQuery, response: { 200: Page(EndpointSchema), 401: Problem, 403: Problem, 422: Problem } },
    }, async (request) => {
      const page = await webhooks.list(request.ctx, request.query)
      return { count: null, next: pageUrl(request, page.next_cursor), previous: null, results: page.results }
    })

    app.post('/api/webhooks/', {
      config: secretAnswer,
      schema: {
        tags: ['webhooks'],
        summary: 'Register a webhook endpoint (staff); the answer shows its signing secret, once',
        description: 'Every matching event is POSTed as JSON signed with `Webhook-Signature: t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>`; see the README section "Outgoing webhooks".',
        security: bearer,
        body: CreateEndpointBody,
        response: { 201: EndpointWithSecretSchema, 401: Problem, 403: Problem, 422: Problem },
      },
    }, async (request, reply) => reply.code(201).send(await webhooks.create(request.ctx, request.body)))

    app.get('/api/webhooks/:id/', {
      schema: { tags: ['webhooks'], summary: 'A webhook endpoint (staff; never its secret)', security: bearer, params: EndpointParams, response: { 200: EndpointSchema, 401: Problem, 403: Problem, 404: Problem } },
    }, async (request) => webhooks.get(request.ctx, request.params.id))

    app.patch('/api/webhooks/:id/', {
      schema: {
        tags: ['webhooks'],
        summary: 'Change URL, events, active flag or description (staff); an inactive endpoint keeps its pending deliveries until activated',
        security: bearer,
        params: EndpointParams,
        body: UpdateEndpointBody,
        response: { 200: EndpointSchema, 401: Problem, 403: Problem, 404: Problem, 422: Problem },
      },
    }, async (request) => webhooks.update(request.ctx, request.params.id, request.body))

    app.delete('/api/webhooks/:id/', {
      schema: { tags: ['webhooks'], summary: 'Delete a webhook endpoint and its delivery log (staff)', security: bearer, params: EndpointParams, response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem } },
    }, async (request, reply) => {
      await webhooks.remove(request.ctx, request.params.id)
      return reply.code(204).send(null)
    })

    app.post('/api/webhooks/:id/rotate-secret/', {
      config: secretAnswer,
      schema: { tags: ['webhooks'], summary: 'Replace the signing secret (staff); the new one is shown once and signs every delivery from now on', security: bearer, params: EndpointParams, response: { 200: EndpointWithSecretSchema, 401: Problem, 403: Problem, 404: Problem } },
    }, async (request) => webhooks.rotateSecret(request.ctx, request.params.id))

    app.get('/api/webhooks/:id/deliveries/', {
      schema: {
        tags: ['webhooks'],
        summary: "An endpoint's delivery log, newest first (staff)",
        description: `Finished deliveries are kept for WEBHOOK_LOG_DAYS days.`,
        security: bearer,
        params: EndpointParams,
        querystring: DeliveryListQuery,
        response: { 200: Page(DeliverySchema), 401: Problem, 403: Problem, 404: Problem, 422: Problem },
      },
    }, async (request) => {
      const page = await webhooks.deliveries(request.ctx, request.params.id, request.query)
      return { count: null, next: pageUrl(request, page.next_cursor), previous: null, results: page.results }
    })

    app.post('/api/webhooks/deliveries/:id/replay/', {
      schema: {
        tags: ['webhooks'],
        summary: 'Send a finished delivery again (staff): the same body and Webhook-Id, a fresh set of attempts',
        security: bearer,
        params: DeliveryParams,
        response: { 202: DeliverySchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem },
      },
    }, async (request, reply) => reply.code(202).send(await webhooks.replay(request.ctx, request.params.id)))
  }
}
