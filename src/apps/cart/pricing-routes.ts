/**
 * Pricing routes: staff manage coupons (/api/coupons/), shipping methods
 * (/api/checkout/shipping-methods/{code}/) and tax rates (/api/tax-rates/); anyone lists the
 * shipping methods for a country (GET /api/checkout/shipping-methods/?country=).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { AuthGuards } from '../../core/auth.js'
import { Problem } from '../../core/http/schemas.js'
import type { Coupons } from './coupons.js'
import {
  CouponCodeParams,
  CouponSchema,
  CreateCouponBody,
  CreateShippingMethodBody,
  CreateTaxRateBody,
  ShippingMethodParams,
  ShippingMethodSchema,
  ShippingMethodsQuery,
  ShippingOptionSchema,
  TaxRateParams,
  TaxRateSchema,
  UpdateCouponBody,
  UpdateShippingMethodBody,
  UpdateTaxRateBody,
} from './pricing-schemas.js'
import type { Shipping } from './shipping.js'
import type { Taxes } from './tax.js'

const bearer = [{ bearerAuth: [] }]

export interface PricingRouteDeps {
  coupons: Coupons
  shipping: Shipping
  taxes: Taxes
  guards: AuthGuards
  /** The store currency (settings.currency): every rate is in it. */
  currency: string
}

/** Registered without a prefix: the paths are written out in full. */
export function pricingRoutes(deps: PricingRouteDeps): FastifyPluginAsyncTypebox {
  const { coupons, shipping, taxes, guards } = deps
  return async (app) => {
    // ---- coupons (staff) ----
    const couponTags = ['coupons']
    app.get('/api/coupons/', {
      preValidation: guards.requireStaff,
      schema: { tags: couponTags, summary: 'Every coupon, by code (staff)', security: bearer, response: { 200: Type.Array(CouponSchema), 401: Problem, 403: Problem } },
    }, async (request) => coupons.list(request.ctx))

    app.post('/api/coupons/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: couponTags,
        summary: 'Create a coupon (staff); the code is stored upper case, a taken code is a 409',
        security: bearer,
        body: CreateCouponBody,
        response: { 201: CouponSchema, 401: Problem, 403: Problem, 409: Problem, 422: Problem },
      },
    }, async (request, reply) => reply.code(201).send(await coupons.create(request.ctx, request.body)))

    app.get('/api/coupons/:code/', {
      preValidation: guards.requireStaff,
      schema: { tags: couponTags, summary: 'One coupon, its code in any case (staff)', security: bearer, params: CouponCodeParams, response: { 200: CouponSchema, 401: Problem, 403: Problem, 404: Problem } },
    }, async (request) => coupons.get(request.ctx, request.params.code))

    app.patch('/api/coupons/:code/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: couponTags,
        summary: "Change a coupon's terms (staff)",
        security: bearer,
        params: CouponCodeParams,
        body: UpdateCouponBody,
        response: { 200: CouponSchema, 401: Problem, 403: Problem, 404: Problem, 422: Problem },
      },
    }, async (request) => coupons.update(request.ctx, request.params.code, request.body))

    app.delete('/api/coupons/:code/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: couponTags,
        summary: 'Delete a coupon never redeemed (staff); a redeemed one is a 409: deactivate it instead',
        security: bearer,
        params: CouponCodeParams,
        response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem, 409: Problem },
      },
    }, async (request, reply) => {
      await coupons.remove(request.ctx, request.params.code)
      return reply.code(204).send(null)
    })

    // ---- shipping methods ----
    const shippingTags = ['checkout']
    app.get('/api/checkout/shipping-methods/', {
      schema: {
        tags: shippingTags,
        summary: 'Shipping methods to a country, cheapest first, with its rates',
        description: '`price` is the rate for that country; shipping is free when the discounted subtotal reaches `free_over`.',
        querystring: ShippingMethodsQuery,
        response: { 200: Type.Array(ShippingOptionSchema), 422: Problem },
      },
    }, async (request) => shipping.methodsFor(request.ctx, request.query.country, deps.currency))

    app.post('/api/checkout/shipping-methods/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: shippingTags,
        summary: 'Create a shipping method with its rates (staff)',
        security: bearer,
        body: CreateShippingMethodBody,
        response: { 201: ShippingMethodSchema, 401: Problem, 403: Problem, 409: Problem, 422: Problem },
      },
    }, async (request, reply) => reply.code(201).send(await shipping.create(request.ctx, request.body)))

    app.get('/api/checkout/shipping-methods/:code/', {
      preValidation: guards.requireStaff,
      schema: { tags: shippingTags, summary: 'One shipping method with all its rates (staff)', security: bearer, params: ShippingMethodParams, response: { 200: ShippingMethodSchema, 401: Problem, 403: Problem, 404: Problem } },
    }, async (request) => shipping.get(request.ctx, request.params.code))

    app.patch('/api/checkout/shipping-methods/:code/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: shippingTags,
        summary: 'Change a shipping method (staff); `rates`, when given, is the full list',
        security: bearer,
        params: ShippingMethodParams,
        body: UpdateShippingMethodBody,
        response: { 200: ShippingMethodSchema, 401: Problem, 403: Problem, 404: Problem, 422: Problem },
      },
    }, async (request) => shipping.update(request.ctx, request.params.code, request.body))

    app.delete('/api/checkout/shipping-methods/:code/', {
      preValidation: guards.requireStaff,
      schema: { tags: shippingTags, summary: 'Delete a shipping method and its rates (staff)', security: bearer, params: ShippingMethodParams, response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem } },
    }, async (request, reply) => {
      await shipping.remove(request.ctx, request.params.code)
      return reply.code(204).send(null)
    })

    // ---- tax rates (staff) ----
    const taxTags = ['tax']
    app.get('/api/tax-rates/', {
      preValidation: guards.requireStaff,
      schema: { tags: taxTags, summary: 'Every tax rate, by country and region (staff)', security: bearer, response: { 200: Type.Array(TaxRateSchema), 401: Problem, 403: Problem } },
    }, async (request) => taxes.list(request.ctx))

    app.post('/api/tax-rates/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: taxTags,
        summary: "Create a country's or a region's tax rate (staff); one per country and region",
        security: bearer,
        body: CreateTaxRateBody,
        response: { 201: TaxRateSchema, 401: Problem, 403: Problem, 409: Problem, 422: Problem },
      },
    }, async (request, reply) => reply.code(201).send(await taxes.create(request.ctx, request.body)))

    app.patch('/api/tax-rates/:id/', {
      preValidation: guards.requireStaff,
      schema: {
        tags: taxTags,
        summary: 'Change a tax rate (staff)',
        security: bearer,
        params: TaxRateParams,
        body: UpdateTaxRateBody,
        response: { 200: TaxRateSchema, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem },
      },
    }, async (request) => taxes.update(request.ctx, request.params.id, request.body))

    app.delete('/api/tax-rates/:id/', {
      preValidation: guards.requireStaff,
      schema: { tags: taxTags, summary: 'Delete a tax rate (staff)', security: bearer, params: TaxRateParams, response: { 204: Type.Null(), 401: Problem, 403: Problem, 404: Problem } },
    }, async (request, reply) => {
      await taxes.remove(request.ctx, request.params.id)
      return reply.code(204).send(null)
    })
  }
}
