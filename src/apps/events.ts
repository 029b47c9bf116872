/**
 * AppEvents: every app's events.ts map joins core's DomainEvents here, so `ctx.events.publish`
 * knows each event's payload. Apps add `declare module` blocks in their own events.ts and are
 * imported below.
 */
export type { DomainEvents as AppEvents } from '../core/events/index.js'
