import { ConflictError, ValidationError } from '../../core/errors.js'

export class OrderNotPayableError extends ConflictError {
  constructor(number: string, status: string) {
    super('order_not_payable', `Order ${number} is ${status} and cannot be paid.`)
    // Not `status`: problem extensions sit beside the document's own members, and `status` is the HTTP code.
    this.extensions = { order_status: status }
  }
}

export class NotCapturedError extends ConflictError {
  constructor(status: string) {
    super('payment_not_captured', `Only a succeeded payment can be refunded; this one is ${status}.`)
  }
}

export class FullyRefundedError extends ConflictError {
  constructor() {
    super('fully_refunded', 'Everything this payment captured has been refunded or is being refunded.')
  }
}

export class RefundTooLargeError extends ValidationError {
  constructor(remaining: number, currency: string) {
    super(`At most ${remaining} ${currency} can still be refunded.`, { amount: [`At most ${remaining} (${currency} minor units).`] }, 'refund_exceeds_captured')
    this.extensions = { refundable: remaining }
  }
}

export class ConfirmUnavailableError extends ConflictError {
  constructor(reason: string) {
    super('confirm_unavailable', reason)
  }
}
