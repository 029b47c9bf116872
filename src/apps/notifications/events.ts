/** Events the notifications app publishes. */
export interface NotificationsEvents {
  /** Staff sent news to every customer who agreed to marketing (the text travels with the event). */
  'notifications.broadcast_requested': { broadcast_id: string; subject: string; body: string; link: string | null; link_label: string | null }
}

declare module '../../core/events/index.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface DomainEvents extends NotificationsEvents {}
}
