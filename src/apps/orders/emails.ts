/**
 * The order emails (templates/email/order_confirmation, order_shipped): what their templates get.
 * Amounts are formatted here in the order's currency, the address put on one line.
 */
import type { EmailMessage } from '../../core/email.js'
import { formatMoney } from '../../core/email.js'
import type { EmailTemplates } from '../../core/email-templates.js'
import type { OrderDto } from './service.js'

export function confirmationEmail(emails: EmailTemplates, order: OrderDto, frontendUrl: string): EmailMessage {
  const money = (amount: number) => formatMoney(amount, order.currency)
  const { subtotal, discount, shipping, tax, total } = order.totals
  const totalRows = [
    ['Subtotal', money(subtotal)],
    ...(discount > 0 ? [['Discount', `-${money(discount)}`]] : []),
    ['Shipping', money(shipping)],
    ['Tax', money(tax)],
    ['Total', money(total)],
  ]
  return { to: order.email, ...emails.render('order_confirmation', { ...orderData(order, frontendUrl), total_rows: totalRows }) }
}

export function shippedEmail(emails: EmailTemplates, order: OrderDto, frontendUrl: string): EmailMessage {
  return { to: order.email, ...emails.render('order_shipped', { ...orderData(order, frontendUrl), tracking_number: order.tracking_number }) }
}

function orderData(order: OrderDto, frontendUrl: string) {
  const address = order.shipping_address
  return {
    number: order.number,
    link: `${frontendUrl}/orders/${order.number}`,
    lines: order.items.map((item) => ({
      quantity: item.quantity,
      name: item.product_name,
      variant: item.variant_name,
      sku: item.sku,
      amount: formatMoney(item.unit_price * item.quantity, order.currency),
    })),
    ship_to: `${address.name}, ${address.line1}, ${address.postal_code} ${address.city}, ${address.country}`,
  }
}
