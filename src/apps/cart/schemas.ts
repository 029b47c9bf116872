import { Type, type Static } from 'typebox'
import { noUnknownFields, Uuid } from '../../core/http/schemas.js'
import { MAX_LINE_QUANTITY } from './service.js'

const NO_NUL = '^[^\\u0000]*$'

const Quantity = Type.Integer({ minimum: 1, maximum: MAX_LINE_QUANTITY, description: `1 to ${MAX_LINE_QUANTITY}` })

export const CartLineSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  sku: Type.String(),
  product_name: Type.String(),
  variant_name: Type.String(),
  quantity: Type.Integer(),
  unit_price: Type.Integer({ description: "the catalog's price now, minor units" }),
  line_total: Type.Integer({ description: 'unit_price × quantity; 0 for a line no longer for sale' }),
  currency: Type.String(),
  available: Type.Integer({ description: 'stock available now' }),
  in_stock: Type.Boolean({ description: 'the whole quantity is available now' }),
  for_sale: Type.Boolean({ description: 'false: no longer sold; the line counts in no total and checkout refuses the cart until it is removed' }),
})

const cartFields = {
  id: Type.String({ format: 'uuid' }),
  items: Type.Array(CartLineSchema),
  coupon: Type.Union([Type.String(), Type.Null()], { description: 'the coupon code on the cart' }),
  coupon_error: Type.Union([Type.Object({ code: Type.String(), detail: Type.String() }), Type.Null()], {
    description: 'why the coupon gives no discount now (e.g. the subtotal is below its minimum); it stays on the cart',
  }),
  subtotal: Type.Integer({ description: 'minor units, lines for sale only' }),
  discount: Type.Integer(),
  total: Type.Integer({ description: 'subtotal − discount; tax and shipping are added at checkout' }),
  currency: Type.String(),
  updated_at: Type.String({ format: 'date-time', description: 'last activity; an open cart idle for CART_EXPIRY_DAYS expires' }),
}

export const CartSchema = Type.Object(cartFields)
export type Cart = Static<typeof CartSchema>

export const CreatedCartSchema = Type.Object({
  ...cartFields,
  token: Type.Union([Type.String(), Type.Null()], { description: "a guest cart's X-Cart-Token, shown only here; null for a user's cart" }),
})

export const AddItemBody = Type.Object({
  sku: Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL }),
  quantity: Quantity,
}, noUnknownFields)

export const UpdateItemBody = Type.Object({ quantity: Quantity }, noUnknownFields)

export const ItemParams = Type.Object({ id: Uuid })

export const CouponBody = Type.Object({
  code: Type.String({ minLength: 1, maxLength: 64, pattern: '^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$' }),
}, noUnknownFields)
