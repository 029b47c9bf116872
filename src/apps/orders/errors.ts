import { ConflictError } from '../../core/errors.js'
import type { OrderStatus } from './tables.js'

export class IllegalTransitionError extends ConflictError {
  constructor(from: OrderStatus, to: OrderStatus, allowed: readonly OrderStatus[]) {
    super('illegal_transition', `An order that is ${from} cannot become ${to}${allowed.length ? ` (it can become ${allowed.join(', ')})` : ''}.`)
    this.extensions = { from, to, allowed }
  }
}
