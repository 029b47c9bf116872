/** What checkout and order tests share: an address with a tax rate, and a cart filled through the API. */
import { expect } from 'vitest'
import type { TestApp } from './harness.js'

/** San Francisco: US-CA has a tax rate (7.25 %) in the pricing defaults. */
export const ADDRESS = { name: 'Ada Lovelace', line1: '1 Main St', city: 'San Francisco', region: 'CA', postal_code: '94105', country: 'US' }

type Headers = Record<string, string>

/**
 * A cart with these lines (and coupon): a new guest cart, answered as its X-Cart-Token header, or
 * the user's own when `auth` (their bearer header) is given.
 */
export async function cartWith(t: TestApp, lines: Array<[sku: string, quantity: number]>, options: { auth?: Headers; coupon?: string } = {}): Promise<Headers> {
  const res = await t.request({ method: 'POST', url: '/api/cart/', headers: options.auth ?? {} })
  expect([200, 201], res.body).toContain(res.statusCode)
  const headers = options.auth ?? { 'x-cart-token': res.json<{ token: string }>().token }
  for (const [sku, quantity] of lines) {
    const added = await t.request({ method: 'POST', url: '/api/cart/items/', headers, payload: { sku, quantity } })
    expect(added.statusCode, added.body).toBe(201)
  }
  if (options.coupon) {
    const applied = await t.request({ method: 'POST', url: '/api/cart/coupon/', headers, payload: { code: options.coupon } })
    expect(applied.statusCode, applied.body).toBe(200)
  }
  return headers
}
