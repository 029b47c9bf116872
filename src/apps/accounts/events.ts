/** Events the accounts app publishes (payloads carry ids; consumers read the rest through the service). */
export interface AccountsEvents {
  /** A new account; its verification email is sent by a task. */
  'user.registered': { user_id: string }
  /** Someone asked to reset the password of this address (the account may not exist). */
  'user.password_reset_requested': { email: string }
  'user.deactivated': { user_id: string }
}

declare module '../../core/events/index.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface DomainEvents extends AccountsEvents {}
}
