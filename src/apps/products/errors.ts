import { ConflictError, NotFoundError, ValidationError } from '../../core/errors.js'

export class OutOfStockError extends ConflictError {
  constructor(
    readonly sku: string,
    readonly available: number,
  ) {
    super('out_of_stock', `Only ${available} of ${sku} ${available === 1 ? 'is' : 'are'} available.`)
    this.extensions = { sku, available }
  }
}

/** The variant exists (orders and the ledger keep it) but is no longer sold: it was dropped or its product deactivated or deleted. */
export class NotForSaleError extends ConflictError {
  constructor(readonly sku: string) {
    super('not_for_sale', `${sku} is no longer for sale.`)
    this.extensions = { sku }
  }
}

export class UnknownSkuError extends NotFoundError {
  constructor(sku: string) {
    super('Variant', sku)
  }
}

export class StockBelowReservedError extends ConflictError {
  constructor(sku: string, reserved: number) {
    super('stock_below_reserved', `${sku} has ${reserved} reserved: on-hand stock cannot go below that.`)
    this.extensions = { sku, reserved }
  }
}

export class AlreadyReservedError extends ConflictError {
  constructor(reference: string) {
    super('already_reserved', `Stock is already reserved for ${reference}.`)
  }
}

export class InvalidQuantityError extends ValidationError {
  constructor(field: string, message: string) {
    super(message, { [field]: [message] })
  }
}
