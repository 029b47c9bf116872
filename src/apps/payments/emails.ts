/** The customer's payment emails (templates/email/payment_failed, refund): what their templates get. */
import { formatMoney, type EmailMessage } from '../../core/email.js'
import type { EmailTemplates } from '../../core/email-templates.js'

interface OrderRef {
  number: string
  email: string
}

export function paymentFailedEmail(emails: EmailTemplates, frontendUrl: string, order: OrderRef, reason: string | null): EmailMessage {
  return { to: order.email, ...emails.render('payment_failed', { number: order.number, reason, link: orderLink(frontendUrl, order) }) }
}

/** Why a refund happened, in the customer's words, by the reason the refund was recorded with. */
const REFUND_EXPLANATIONS: Record<string, string> = {
  order_unavailable: 'Your payment arrived after the order had been cancelled, and the items are no longer in stock, so we refunded you in full.',
  order_cancelled: 'Your order was cancelled, so we refunded your payment.',
  duplicate: 'The order had already been paid, so we refunded the second payment.',
}

export function refundEmail(emails: EmailTemplates, frontendUrl: string, order: OrderRef, amount: number, currency: string, reason: string | null): EmailMessage {
  const explanation = (reason && REFUND_EXPLANATIONS[reason]) ?? 'We have refunded part or all of your payment.'
  return { to: order.email, ...emails.render('refund', { number: order.number, amount: formatMoney(amount, currency), explanation, link: orderLink(frontendUrl, order) }) }
}

const orderLink = (frontendUrl: string, order: OrderRef) => `${frontendUrl}/orders/${order.number}`
