/**
 * The Stripe stand-in (test/stripe-stand-in.ts) driven by the real `stripe` SDK, configured the way
 * the app configures it from STRIPE_API_BASE. If the SDK and the stand-in disagree on a shape, a
 * status or an error type, these tests fail before any payments test can be misled. No database.
 */
import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signedDelivery, startStripeStandIn, stripeEvent, type StripeStandIn } from './stripe-stand-in.js'

let standIn: StripeStandIn
let stripe: Stripe

/** The SDK pointed at a base URL, as the app reads STRIPE_API_BASE. */
function stripeAt(base: string, secretKey: string): Stripe {
  const url = new URL(base)
  return new Stripe(secretKey, {
    host: url.hostname,
    port: url.port,
    protocol: url.protocol === 'http:' ? 'http' : 'https',
    maxNetworkRetries: 0,
    telemetry: false,
  })
}

beforeAll(async () => {
  standIn = await startStripeStandIn()
  stripe = stripeAt(standIn.url, standIn.secretKey)
})

afterAll(async () => {
  await standIn.close()
})

let orderNumber = 0
/** A fresh intent for an order of `amount` cents, with its own idempotency key. */
async function createIntent(amount = 2599) {
  orderNumber += 1
  return stripe.paymentIntents.create(
    { amount, currency: 'eur', metadata: { order_id: `order-${orderNumber}` }, automatic_payment_methods: { enabled: true } },
    { idempotencyKey: `intent-order-${orderNumber}` },
  )
}

describe('payment intents', () => {
  it('creates one intent per idempotency key and replays the first answer to a retry', async () => {
    const params = {
      amount: 2599,
      currency: 'EUR',
      metadata: { order_id: 'ord-42' },
      automatic_payment_methods: { enabled: true },
      receipt_email: 'buyer@example.com',
      description: 'Order ord-42',
    }
    const intentsBefore = standIn.intents.size
    const requestsBefore = standIn.requests.length

    const first = await stripe.paymentIntents.create(params, { idempotencyKey: 'create-ord-42' })
    const retry = await stripe.paymentIntents.create(params, { idempotencyKey: 'create-ord-42' })

    expect(retry).toEqual(first)
    expect(first.lastResponse.headers['idempotent-replayed']).toBeUndefined()
    expect(retry.lastResponse.headers['idempotent-replayed']).toBe('true')
    expect(standIn.intents.size).toBe(intentsBefore + 1)
    expect(first).toMatchObject({
      object: 'payment_intent',
      amount: 2599,
      currency: 'eur',
      status: 'requires_payment_method',
      metadata: { order_id: 'ord-42' },
      amount_received: 0,
      latest_charge: null,
      livemode: false,
      last_payment_error: null,
      receipt_email: 'buyer@example.com',
      description: 'Order ord-42',
    })
    expect(first.id).toMatch(/^pi_/)
    expect(first.client_secret).toMatch(new RegExp(`^${first.id}_secret_`))
    expect(first).not.toHaveProperty('amount_refunded')

    const recorded = standIn.requests.slice(requestsBefore)
    expect(recorded).toHaveLength(2)
    for (const request of recorded) {
      expect(request).toMatchObject({
        method: 'POST',
        path: '/v1/payment_intents',
        idempotencyKey: 'create-ord-42',
        authorization: `Bearer ${standIn.secretKey}`,
      })
      expect(request.params).toMatchObject({ amount: '2599', currency: 'EUR', 'metadata[order_id]': 'ord-42', 'automatic_payment_methods[enabled]': 'true' })
    }
  })

  it('rejects the same idempotency key with different params, creating nothing', async () => {
    await stripe.paymentIntents.create({ amount: 1000, currency: 'eur' }, { idempotencyKey: 'reused-key' })
    const intentsBefore = standIn.intents.size

    const reuse = stripe.paymentIntents.create({ amount: 1001, currency: 'eur' }, { idempotencyKey: 'reused-key' })

    await expect(reuse).rejects.toBeInstanceOf(Stripe.errors.StripeIdempotencyError)
    await expect(reuse).rejects.toMatchObject({ statusCode: 400, rawType: 'idempotency_error' })
    expect(standIn.intents.size).toBe(intentsBefore)
  })

  it('answers a missing or non-integer amount with a parameter error, and does not keep it for the key', async () => {
    const missing = stripe.paymentIntents.create({ currency: 'eur' } as Stripe.PaymentIntentCreateParams, { idempotencyKey: 'fix-and-retry' })
    await expect(missing).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError)
    await expect(missing).rejects.toMatchObject({ statusCode: 400, code: 'parameter_missing', param: 'amount' })

    const fractional = stripe.paymentIntents.create({ amount: 12.5, currency: 'eur' })
    await expect(fractional).rejects.toMatchObject({ statusCode: 400, code: 'parameter_invalid_integer', param: 'amount' })

    // Stripe saves no result for a request that failed validation, so the corrected retry runs.
    const fixed = await stripe.paymentIntents.create({ amount: 500, currency: 'eur' }, { idempotencyKey: 'fix-and-retry' })
    expect(fixed.amount).toBe(500)
  })

  it('retrieves an intent and answers 404 resource_missing for an unknown one', async () => {
    const created = await createIntent()

    expect(await stripe.paymentIntents.retrieve(created.id)).toEqual(created)
    const unknown = stripe.paymentIntents.retrieve('pi_unknown')
    await expect(unknown).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError)
    await expect(unknown).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' })
    expect(standIn.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v1/payment_intents/pi_unknown', idempotencyKey: null })
  })

  it('cancels an open intent but not a succeeded one', async () => {
    const open = await createIntent()
    const canceled = await stripe.paymentIntents.cancel(open.id)
    expect(canceled).toMatchObject({ id: open.id, status: 'canceled' })
    expect((await stripe.paymentIntents.retrieve(open.id)).status).toBe('canceled')

    const paid = await createIntent()
    standIn.setIntentStatus(paid.id, 'succeeded')
    await expect(stripe.paymentIntents.cancel(paid.id)).rejects.toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' })
    expect(standIn.intents.get(paid.id)?.status).toBe('succeeded')
  })

  it('moves an intent as the bank would: processing, failed, succeeded', async () => {
    const intent = await createIntent(4200)

    standIn.setIntentStatus(intent.id, 'processing')
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('processing')

    standIn.setIntentStatus(intent.id, 'requires_payment_method')
    const failed = await stripe.paymentIntents.retrieve(intent.id)
    expect(failed.status).toBe('requires_payment_method')
    expect(failed.last_payment_error).toMatchObject({ type: 'card_error', code: 'card_declined' })

    standIn.setIntentStatus(intent.id, 'succeeded')
    const paid = await stripe.paymentIntents.retrieve(intent.id)
    expect(paid).toMatchObject({ status: 'succeeded', amount_received: 4200, last_payment_error: null })
    expect(paid.latest_charge).toMatch(/^ch_/)
  })
})

describe('refunds', () => {
  it('refunds part, refuses more than remains, refunds the rest by default, then nothing more', async () => {
    const intent = await createIntent(5000)
    const charge = standIn.setIntentStatus(intent.id, 'succeeded').latest_charge

    const partial = await stripe.refunds.create(
      { payment_intent: intent.id, amount: 1500, reason: 'requested_by_customer', metadata: { return_id: 'ret-1' } },
      { idempotencyKey: 'refund-ret-1' },
    )
    expect(partial).toMatchObject({
      object: 'refund',
      amount: 1500,
      currency: 'eur',
      payment_intent: intent.id,
      charge,
      status: 'succeeded',
      reason: 'requested_by_customer',
      metadata: { return_id: 'ret-1' },
    })
    expect(partial.id).toMatch(/^re_/)
    expect(standIn.intents.get(intent.id)?.amount_refunded).toBe(1500)
    expect(await stripe.refunds.retrieve(partial.id)).toEqual(partial)

    const tooMuch = stripe.refunds.create({ payment_intent: intent.id, amount: 3501 })
    await expect(tooMuch).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError)
    await expect(tooMuch).rejects.toMatchObject({ statusCode: 400, code: 'amount_too_large', param: 'amount' })
    expect(standIn.intents.get(intent.id)?.amount_refunded).toBe(1500)

    const rest = await stripe.refunds.create({ payment_intent: intent.id })
    expect(rest.amount).toBe(3500)
    expect(standIn.intents.get(intent.id)?.amount_refunded).toBe(5000)
    await expect(stripe.refunds.create({ payment_intent: intent.id })).rejects.toMatchObject({ code: 'charge_already_refunded' })
  })

  it('refuses to refund an intent that has not succeeded, and answers 404 for an unknown refund', async () => {
    const intent = await createIntent()
    await expect(stripe.refunds.create({ payment_intent: intent.id })).rejects.toMatchObject({
      statusCode: 400,
      code: 'payment_intent_unexpected_state',
    })
    await expect(stripe.refunds.retrieve('re_unknown')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' })
  })

  it('fails the next call to a path once, as failNext asks, and a retry with the same key then runs', async () => {
    const intent = await createIntent(3000)
    standIn.setIntentStatus(intent.id, 'succeeded')
    standIn.failNext('/v1/refunds', 500)

    const failed = stripe.refunds.create({ payment_intent: intent.id }, { idempotencyKey: 'refund-after-outage' })
    await expect(failed).rejects.toBeInstanceOf(Stripe.errors.StripeAPIError)
    await expect(failed).rejects.toMatchObject({ statusCode: 500 })
    expect(standIn.intents.get(intent.id)?.amount_refunded).toBe(0)

    const retried = await stripe.refunds.create({ payment_intent: intent.id }, { idempotencyKey: 'refund-after-outage' })
    expect(retried.amount).toBe(3000)

    standIn.failNext('/v1/refunds', 402, 'card_declined')
    await expect(stripe.refunds.create({ payment_intent: intent.id })).rejects.toMatchObject({ statusCode: 402, code: 'card_declined' })
  })
})

describe('authentication', () => {
  it('refuses any key but the stand-in secret key, and records what was sent', async () => {
    const intentsBefore = standIn.intents.size
    const stranger = stripeAt(standIn.url, 'sk_test_wrong_key_1234')

    const attempt = stranger.paymentIntents.create({ amount: 1000, currency: 'eur' })

    await expect(attempt).rejects.toBeInstanceOf(Stripe.errors.StripeAuthenticationError)
    await expect(attempt).rejects.toMatchObject({ statusCode: 401 })
    expect(standIn.intents.size).toBe(intentsBefore)
    expect(standIn.requests.at(-1)?.authorization).toBe('Bearer sk_test_wrong_key_1234')
  })
})

describe('webhook deliveries', () => {
  const secret = 'whsec_standin_test'
  const event = stripeEvent('payment_intent.succeeded', { id: 'pi_123', object: 'payment_intent', amount: 2599, status: 'succeeded' })

  it('builds an event shaped like Stripe delivers it', () => {
    expect(event).toMatchObject({ object: 'event', type: 'payment_intent.succeeded', livemode: false, api_version: Stripe.API_VERSION })
    expect(event.id).toMatch(/^evt_/)
    expect(event.data.object).toMatchObject({ id: 'pi_123' })
  })

  it('signs a delivery that the SDK verifies', () => {
    const delivery = signedDelivery(event, secret)

    const verified = stripe.webhooks.constructEvent(delivery.payload, delivery.headers['stripe-signature'], secret)

    expect(verified).toEqual(event)
    expect(delivery.headers['content-type']).toBe('application/json')
  })

  it('is rejected when the body was tampered with or signed with another secret', () => {
    const tampered = signedDelivery(event, secret, { tamper: true })
    expect(() => stripe.webhooks.constructEvent(tampered.payload, tampered.headers['stripe-signature'], secret)).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    )
    const foreign = signedDelivery(event, 'whsec_someone_else')
    expect(() => stripe.webhooks.constructEvent(foreign.payload, foreign.headers['stripe-signature'], secret)).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    )
  })

  it('is rejected when signed ten minutes ago with a tolerance of five', () => {
    const stale = signedDelivery(event, secret, { timestamp: Math.floor(Date.now() / 1000) - 600 })

    expect(() => stripe.webhooks.constructEvent(stale.payload, stale.headers['stripe-signature'], secret, 300)).toThrow(
      /Timestamp outside the tolerance zone/,
    )
    // The signature itself is good: a wider tolerance accepts it.
    expect(stripe.webhooks.constructEvent(stale.payload, stale.headers['stripe-signature'], secret, 900)).toEqual(event)
  })
})
