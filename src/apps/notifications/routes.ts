import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AuthGuards } from '../../core/auth.js'
import { pageUrl } from '../../core/http/pagination.js'
import { Problem } from '../../core/http/schemas.js'
import { NotificationListQuery, NotificationPageSchema, NotificationParams, NotificationSchema, PreferencesPatchBody, PreferencesSchema, ReadAllAnswer } from './schemas.js'
import { signedInUser, type NotificationsService } from './service.js'

const bearer = [{ bearerAuth: [] }]

export function notificationRoutes(notifications: NotificationsService, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/api/notifications/', {
      preValidation: guards.requireUser,
      schema: {
        tags: ['notifications'],
        summary: 'Your in-app notifications, newest first',
        description: '`?unread=true` lists only unread ones. `count` counts what the filter matches; `unread_count` all your unread ones.',
        security: bearer,
        querystring: NotificationListQuery,
        response: { 200: NotificationPageSchema, 401: Problem, 422: Problem },
      },
    }, async (request) => {
      const page = await notifications.list(request.ctx, request.query)
      return { count: page.count, unread_count: page.unread_count, next: pageUrl(request, page.next_cursor), previous: null, results: page.results }
    })

    app.post('/api/notifications/read-all/', {
      preValidation: guards.requireUser,
      schema: {
        tags: ['notifications'],
        summary: 'Mark all your notifications read',
        security: bearer,
        response: { 200: ReadAllAnswer, 401: Problem },
      },
    }, async (request) => notifications.markAllRead(request.ctx))

    app.post('/api/notifications/:id/read/', {
      preValidation: guards.requireUser,
      schema: {
        tags: ['notifications'],
        summary: 'Mark one of your notifications read (again: no change)',
        security: bearer,
        params: NotificationParams,
        response: { 200: NotificationSchema, 401: Problem, 404: Problem, 422: Problem },
      },
    }, async (request) => notifications.markRead(request.ctx, request.params.id))

    app.get('/api/notifications/preferences/', {
      preValidation: guards.requireUser,
      schema: {
        tags: ['notifications'],
        summary: 'What you receive, per channel (email, in-app) and kind',
        security: bearer,
        response: { 200: PreferencesSchema, 401: Problem },
      },
    }, async (request) => notifications.getPreferences(request.ctx, signedInUser(request.ctx)))

    app.patch('/api/notifications/preferences/', {
      preValidation: guards.requireUser,
      schema: {
        tags: ['notifications'],
        summary: 'Change some of your notification preferences',
        description: 'Send only what changes, e.g. `{"email": {"marketing": true}}`. Account and order-update email is transactional: turning it off is a 422 `preference_locked` and nothing changes.',
        security: bearer,
        body: PreferencesPatchBody,
        response: { 200: PreferencesSchema, 401: Problem, 422: Problem },
      },
    }, async (request) => notifications.updatePreferences(request.ctx, signedInUser(request.ctx), request.body))
  }
}
