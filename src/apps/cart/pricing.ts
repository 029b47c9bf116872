/**
 * The totals rule: what a cart and an order cost. Pure (no I/O); the cart shows it, checkout
 * stores it, so both always agree.
 *
 * Every amount is an integer in minor units, computed with BigInt (exact integer products, no
 * floats) and rounded half up (a half goes away from zero; amounts here are never negative) once,
 * where it is computed:
 * - line subtotal = unit_price × quantity; subtotal = Σ line subtotals.
 * - discount: percent → round(subtotal × pct / 100); fixed → min(value, subtotal). A coupon whose
 *   min_subtotal the subtotal does not reach is ignored (discount 0): the caller validates coupons
 *   (coupons.validate / redeem) and says why; here it only cannot discount.
 * - the discount is spread over the lines in proportion to their subtotals by the largest
 *   remainder method (each line gets the floor of its exact share; the units left over go to the
 *   lines with the largest remainders, earlier lines first on a tie), so the line discounts always
 *   add up to the discount exactly.
 * - shipping: 0 when the quote has free_over and subtotal − discount ≥ free_over, else its price.
 *   An empty cart ships nothing (0). Shipping is not taxed.
 * - tax per line, on net = line subtotal − line discount:
 *   prices exclusive of tax: round(net × rate_bp / 10000), added to the total;
 *   prices inclusive of tax: round(net × rate_bp / (10000 + rate_bp)), the tax the price already
 *   contains: reported, not added.
 *   tax = Σ line taxes.
 * - line total = line subtotal − line discount (+ line tax when exclusive);
 *   total = subtotal − discount + shipping (+ tax when exclusive) = Σ line totals + shipping.
 */

export interface PricedLine {
  /** Minor units; includes tax when prices include tax. */
  unit_price: number
  quantity: number
  /** Basis points: 2000 = 20 %. */
  tax_rate_bp: number
}
export interface CouponTerms {
  code: string
  kind: 'percent' | 'fixed'
  /** Percent (1–100) for `percent`, minor units for `fixed`. */
  value: number
  min_subtotal: number
}
export interface ShippingQuote {
  code: string
  name: string
  price: number
  /** Free when the discounted subtotal reaches this amount; null: never free. */
  free_over: number | null
}
export interface LineTotals {
  subtotal: number
  discount: number
  tax: number
  total: number
}
export interface Totals {
  subtotal: number
  discount: number
  shipping: number
  tax: number
  total: number
  /** In the order of the input lines. */
  lines: LineTotals[]
}

export interface TotalsInput {
  lines: PricedLine[]
  coupon: CouponTerms | null
  shipping: ShippingQuote | null
  pricesIncludeTax: boolean
}

/** Computes every amount of a cart or order by the rule above. Throws RangeError on amounts that are not non-negative safe integers. */
export function computeTotals(input: TotalsInput): Totals {
  const lineSubtotals = input.lines.map((line, i) => {
    const unitPrice = amount(line.unit_price, `lines[${i}].unit_price`)
    const quantity = amount(line.quantity, `lines[${i}].quantity`)
    const rate = amount(line.tax_rate_bp, `lines[${i}].tax_rate_bp`)
    if (rate > 10_000n) throw new RangeError(`lines[${i}].tax_rate_bp: at most 10000, got ${line.tax_rate_bp}`)
    return unitPrice * quantity
  })
  const subtotal = sum(lineSubtotals)
  const discount = discountOf(input.coupon, subtotal)
  const lineDiscounts = spread(discount, lineSubtotals)
  const shipping = shippingOf(input.shipping, subtotal, discount, input.lines.length)

  const lines = input.lines.map((line, i): { subtotal: bigint; discount: bigint; tax: bigint; total: bigint } => {
    const net = lineSubtotals[i]! - lineDiscounts[i]!
    const rate = BigInt(line.tax_rate_bp)
    const tax = input.pricesIncludeTax ? roundDiv(net * rate, 10_000n + rate) : roundDiv(net * rate, 10_000n)
    return { subtotal: lineSubtotals[i]!, discount: lineDiscounts[i]!, tax, total: input.pricesIncludeTax ? net : net + tax }
  })
  const tax = sum(lines.map((line) => line.tax))
  const total = subtotal - discount + shipping + (input.pricesIncludeTax ? 0n : tax)

  return {
    subtotal: toNumber(subtotal, 'subtotal'),
    discount: toNumber(discount, 'discount'),
    shipping: toNumber(shipping, 'shipping'),
    tax: toNumber(tax, 'tax'),
    total: toNumber(total, 'total'),
    lines: lines.map((line) => ({ subtotal: toNumber(line.subtotal, 'line subtotal'), discount: toNumber(line.discount, 'line discount'), tax: toNumber(line.tax, 'line tax'), total: toNumber(line.total, 'line total') })),
  }
}

/** The discount a coupon gives on this subtotal: 0 below its minimum (or without one). */
function discountOf(coupon: CouponTerms | null, subtotal: bigint): bigint {
  if (!coupon || subtotal < amount(coupon.min_subtotal, 'coupon.min_subtotal')) return 0n
  const value = amount(coupon.value, 'coupon.value')
  switch (coupon.kind) {
    case 'percent':
      if (value > 100n) throw new RangeError(`coupon.value: a percentage is at most 100, got ${coupon.value}`)
      return roundDiv(subtotal * value, 100n)
    case 'fixed':
      return value < subtotal ? value : subtotal
  }
}

function shippingOf(quote: ShippingQuote | null, subtotal: bigint, discount: bigint, lineCount: number): bigint {
  if (!quote || lineCount === 0) return 0n
  const price = amount(quote.price, 'shipping.price')
  if (quote.free_over !== null && subtotal - discount >= amount(quote.free_over, 'shipping.free_over')) return 0n
  return price
}

/**
 * Splits `total` over `weights` in proportion (largest remainder method): the parts add up to
 * `total` exactly. With no weight at all (every line 0) every part is 0; total is then 0 too.
 */
export function spread(total: bigint, weights: bigint[]): bigint[] {
  const whole = sum(weights)
  if (whole === 0n || total === 0n) return weights.map(() => 0n)
  const parts = weights.map((weight) => (total * weight) / whole)
  const remainders = weights.map((weight, index) => ({ index, remainder: (total * weight) % whole }))
  let left = total - sum(parts)
  // Stable sort: equal remainders keep the lines' order, so earlier lines win ties.
  remainders.sort((a, b) => (a.remainder === b.remainder ? 0 : a.remainder > b.remainder ? -1 : 1))
  for (const { index } of remainders) {
    if (left === 0n) break
    parts[index]! += 1n
    left -= 1n
  }
  return parts
}

/** n / d rounded half up, for n ≥ 0 and d > 0. */
export function roundDiv(n: bigint, d: bigint): bigint {
  return (2n * n + d) / (2n * d)
}

function sum(values: bigint[]): bigint {
  return values.reduce((acc, value) => acc + value, 0n)
}

function amount(value: number, what: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what}: expected a non-negative integer, got ${value}`)
  return BigInt(value)
}

function toNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${what} exceeds the largest safe integer`)
  return Number(value)
}
