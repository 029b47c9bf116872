/**
 * The whole purchase as a new customer makes it with the built-in dummy provider, through the
 * public API only: register, sign in, fill a cart, check out, pay, and find the order paid, the
 * stock sold and the confirmation email sent; then staff ship it and the customer is emailed the
 * tracking number and finds it in their in-app notifications.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { seedPricingDefaults } from '../src/apps/cart/pricing-queries.js'
import type { OrderDto } from '../src/apps/orders/service.js'
import type { PaymentDto } from '../src/apps/payments/service.js'
import { factories } from './factories.js'
import { createTestApp, type TestApp } from './harness.js'
import { ADDRESS, cartWith } from './shopping.js'
import { stockQueries } from './stock-ledger.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
  await seedPricingDefaults(t.app.platform.database.db)
})
afterAll(() => t.close())

it('register, cart, checkout, pay with the dummy provider: the order is paid, the stock sold, the confirmation emailed', async () => {
  const { skus } = await factories(t).product({ stock: [5], price: 2500 })
  const email = 'grace@example.com'
  const registered = await t.request({ method: 'POST', url: '/api/auth/register/', payload: { email, password: 'correct horse battery staple', first_name: 'Grace', last_name: 'Hopper' } })
  expect(registered.statusCode, registered.body).toBe(201)
  const login = await t.request({ method: 'POST', url: '/api/auth/login/', payload: { email, password: 'correct horse battery staple' } })
  expect(login.statusCode, login.body).toBe(200)
  const auth = { authorization: `Bearer ${login.json<{ access: string }>().access}` }

  await cartWith(t, [[skus[0]!, 2]], { auth })
  const checkout = await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...auth, 'idempotency-key': 'flow-1' }, payload: { shipping_address: ADDRESS, shipping_method: 'standard' } })
  expect(checkout.statusCode, checkout.body).toBe(201)
  const order = checkout.json<OrderDto>()
  expect(order).toMatchObject({ status: 'pending_payment', payment_status: 'unpaid', payment: { provider: 'dummy', status: 'pending' } })
  expect(order.payment!.client_secret).toEqual(expect.any(String))

  // Asking for the order's payment again answers the same one.
  const again = await t.request({ method: 'POST', url: '/api/payments/', headers: auth, payload: { order_number: order.number } })
  expect(again.statusCode, again.body).toBe(200)
  expect(again.json<PaymentDto>()).toMatchObject({ id: order.payment!.id, amount: order.totals.total, currency: order.currency, status: 'pending' })

  const confirmed = await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/`, headers: auth })
  expect(confirmed.statusCode, confirmed.body).toBe(200)
  expect(confirmed.json<PaymentDto>()).toMatchObject({ status: 'succeeded', amount_refunded: 0, client_secret: null })
  await t.settle()

  const paid = (await t.request({ method: 'GET', url: `/api/orders/${order.number}/`, headers: auth })).json<OrderDto>()
  expect(paid).toMatchObject({ status: 'paid', payment_status: 'paid', reservation_expires_at: null, payment: { id: order.payment!.id, status: 'succeeded', client_secret: null } })
  expect(paid.events.map((event) => [event.type, event.to_status])).toEqual([
    ['created', 'pending_payment'],
    ['payment_succeeded', 'paid'],
  ])
  // Sold: on hand and reserved both went down by two.
  expect(await stockQueries(() => t).stockOf(skus[0]!)).toEqual({ on_hand: 3, reserved: 0, available: 3 })

  const confirmation = t.app.platform.mailer.outbox.filter((message) => message.to === email && message.subject.includes(order.number))
  expect(confirmation).toHaveLength(1)
  expect(confirmation[0]!.subject).toBe(`Your ${t.settings.auth.shopName} order ${order.number} is confirmed`)
  expect(confirmation[0]!.text).toContain(`2 × ${paid.items[0]!.product_name}`)
  expect(confirmation[0]!.text).toContain(`Total     $${(order.totals.total / 100).toFixed(2)}`)
  expect(confirmation[0]!.html).toContain(`<strong>${order.number}</strong> is paid`)

  // Confirming twice changes nothing and sends nothing more.
  expect((await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/`, headers: auth })).json<PaymentDto>()).toMatchObject({ status: 'succeeded' })
  await t.settle()
  expect(t.app.platform.mailer.outbox.filter((message) => message.subject.includes(order.number))).toHaveLength(1)
})

it('ships a paid order: the customer gets the shipping email with the tracking number and an in-app notice', async () => {
  const { skus } = await factories(t).product({ stock: [5], price: 1500 })
  const customer = await factories(t).user({ first_name: 'Ada' })
  const auth = await factories(t).auth(customer)
  const staff = await factories(t).auth(await factories(t).user({ role: 'staff' }))
  await cartWith(t, [[skus[0]!, 1]], { auth })
  const order = (await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...auth, 'idempotency-key': 'flow-2' }, payload: { shipping_address: ADDRESS, shipping_method: 'standard' } })).json<OrderDto>()
  expect((await t.request({ method: 'POST', url: `/api/payments/${order.payment!.id}/confirm/`, headers: auth })).statusCode).toBe(200)
  for (const payload of [{ status: 'processing' }, { status: 'shipped', tracking_number: '1Z999AA10123456784' }]) {
    const moved = await t.request({ method: 'POST', url: `/api/orders/${order.number}/transition/`, headers: staff, payload })
    expect(moved.statusCode, moved.body).toBe(200)
  }
  await t.settle()

  const shipped = t.app.platform.mailer.outbox.filter((message) => message.to === customer.email && message.subject === `Your ${t.settings.auth.shopName} order ${order.number} has shipped`)
  expect(shipped).toHaveLength(1)
  expect(shipped[0]!.text).toContain('Tracking number: 1Z999AA10123456784\n')
  expect(shipped[0]!.text).toContain(`1 × ${order.items[0]!.product_name}`)
  expect(shipped[0]!.html).toContain('Tracking number: <strong>1Z999AA10123456784</strong>')
  expect(shipped[0]!.text).toContain(`${t.settings.auth.frontendUrl}/orders/${order.number}`)

  const inbox = (await t.request({ url: '/api/notifications/?unread=true', headers: auth })).json<{ results: Array<{ type: string; body: string }> }>()
  expect(inbox.results.map((notice) => notice.type)).toEqual(['order.shipped', 'order.paid'])
  expect(inbox.results[0]!.body).toContain('1Z999AA10123456784')
})
