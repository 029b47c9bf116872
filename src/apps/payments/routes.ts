import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AuthGuards } from '../../core/auth.js'
import { Problem } from '../../core/http/schemas.js'
import type { BusinessMetrics } from '../../core/metrics.js'
import { CreatePaymentBody, GuestAccessQuery, PaymentParams, PaymentSchema, RefundBody, RefundSchema, WebhookAnswer } from './schemas.js'
import type { PaymentsService } from './service.js'
import { handleStripeEvent, verifyStripeDelivery } from './webhooks.js'

const bearer = [{ bearerAuth: [] }]

export function paymentRoutes(payments: PaymentsService, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/api/payments/', {
      schema: {
        tags: ['payments'],
        summary: "Your order's payment: the open one, or a new one (a Stripe PaymentIntent) when none is usable",
        description: 'For the order of the signed-in customer, or a guest giving the order email. Accepts an `Idempotency-Key`; asking again answers the same open payment.',
        body: CreatePaymentBody,
        response: { 200: PaymentSchema, 404: Problem, 409: Problem, 422: Problem, 503: Problem },
      },
    }, async (request) => payments.paymentForOrder(request.ctx, request.body.order_number, { email: request.body.email }))

    app.get('/api/payments/:id/', {
      schema: {
        tags: ['payments'],
        summary: 'A payment with its refunds (the order owner, or staff)',
        params: PaymentParams,
        querystring: GuestAccessQuery,
        response: { 200: PaymentSchema, 404: Problem },
      },
    }, async (request) => payments.get(request.ctx, request.params.id, { email: request.query.email }))

    app.post('/api/payments/:id/refund/', {
      preValidation: [guards.requireStaff, async (request) => void (request.body ??= {})],
      schema: {
        tags: ['payments'],
        summary: 'Refund a payment in full or in part (staff); never more than it captured',
        description: 'Answers the refund: `succeeded` once the provider confirmed, `pending` while it has not (it is finished in the background).',
        security: bearer,
        params: PaymentParams,
        body: RefundBody,
        response: { 201: RefundSchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request, reply) => reply.code(201).send(await payments.refund(request.ctx, request.params.id, request.body ?? {})))

    app.post('/api/payments/:id/confirm/', {
      preValidation: async (request) => void (request.body ??= {}),
      schema: {
        tags: ['payments'],
        summary: 'Complete a payment of the built-in dummy provider (local use and demos; not with Stripe)',
        params: PaymentParams,
        querystring: GuestAccessQuery,
        response: { 200: PaymentSchema, 404: Problem, 409: Problem },
      },
    }, async (request) => payments.confirmDummy(request.ctx, request.params.id, { email: request.query.email }))
  }
}

/** Stripe's deliveries: the body stays raw bytes here, because the signature covers exactly those. */
export function webhookRoutes(payments: PaymentsService, webhookSecret: string | null, metrics: Pick<BusinessMetrics, 'webhookReceived'>): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Only JSON: Fastify's default text/plain parser would let any other body through.
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))

    app.post('/api/payments/webhook/', {
      // Stripe retries on its own schedule and sends no Idempotency-Key; the event id dedupes.
      config: { idempotency: false, rateLimit: false },
      schema: {
        tags: ['payments'],
        summary: 'Stripe webhook: verified with STRIPE_WEBHOOK_SECRET, each event applied exactly once',
        description: 'A missing, wrong or stale `Stripe-Signature` is a 400 and nothing is recorded. Event types this shop does not handle are recorded and answered 200.',
        response: { 200: WebhookAnswer, 400: Problem, 503: Problem },
      },
    }, async (request) => {
      const signature = request.headers['stripe-signature']
      const event = await verifyStripeDelivery(request.body as Buffer, typeof signature === 'string' ? signature : undefined, webhookSecret)
      const result = await handleStripeEvent(request.ctx, payments, event)
      // Only first deliveries: a retry of an event already applied says nothing new about lag.
      if (!result.duplicate) metrics.webhookReceived('stripe', Date.now() / 1000 - event.created)
      return { received: true, ...result }
    })
  }
}
