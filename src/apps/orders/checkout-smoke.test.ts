import { afterAll, beforeAll, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp } from '../../../test/harness.js'
import { seedPricingDefaults } from '../cart/pricing-queries.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
  await seedPricingDefaults(t.app.platform.database.db)
})
afterAll(() => t.close())

it('smoke: guest cart to order, then cancel by staff', async () => {
  const f = factories(t)
  const { skus } = await f.product({ stock: [3], price: 2500 })
  let res = await t.request({ method: 'POST', url: '/api/cart/' })
  expect(res.statusCode, res.body).toBe(201)
  const token = res.json().token as string
  res = await t.request({ method: 'POST', url: '/api/cart/items/', headers: { 'x-cart-token': token }, payload: { sku: skus[0], quantity: 2 } })
  expect(res.statusCode, res.body).toBe(201)
  const address = { name: 'Ada Lovelace', line1: '1 Main St', city: 'Springfield', postal_code: '12345', country: 'US', region: 'CA' }
  res = await t.request({ method: 'POST', url: '/api/checkout/', headers: { 'x-cart-token': token, 'idempotency-key': 'k1' }, payload: { email: 'ada@example.com', shipping_address: address, shipping_method: 'standard' } })
  console.log(res.statusCode, res.body)
  expect(res.statusCode).toBe(201)
  const order = res.json()
  res = await t.request({ method: 'GET', url: `/api/orders/${order.number}/?email=ADA@example.com` })
  expect(res.statusCode, res.body).toBe(200)
  const staff = await f.auth(await f.user({ role: 'staff' }))
  res = await t.request({ method: 'POST', url: `/api/orders/${order.number}/transition/`, headers: staff, payload: { status: 'shipped' } })
  console.log(res.statusCode, res.body)
  res = await t.request({ method: 'POST', url: `/api/orders/${order.number}/cancel/`, headers: staff, payload: {} })
  console.log(res.statusCode, res.json().status, res.json().events)
})
