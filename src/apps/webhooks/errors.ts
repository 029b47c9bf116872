import { ConflictError } from '../../core/errors.js'

export class DeliveryPendingError extends ConflictError {
  constructor() {
    super('delivery_pending', 'This delivery has not finished yet: it is still being tried.')
  }
}

export class EndpointInactiveError extends ConflictError {
  constructor() {
    super('endpoint_inactive', 'The endpoint is inactive: activate it first (PATCH is_active), and its pending deliveries go out too.')
  }
}
