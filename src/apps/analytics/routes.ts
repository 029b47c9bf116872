import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { stringify } from 'csv-stringify'
import { Type } from 'typebox'
import type { Settings } from '../../config/index.js'
import type { AuthGuards } from '../../core/auth.js'
import { Problem } from '../../core/http/schemas.js'
import { keyedRateLimit, rateLimited } from '../../core/http/rate-limit.js'
import { DashboardQuery, DashboardSchema, IngestAnswer, IngestBody, SalesReportQuery, SalesReportSchema } from './schemas.js'
import type { AnalyticsService } from './service.js'

export function analyticsRoutes(analytics: AnalyticsService, settings: Settings): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/api/analytics/events/', {
      // Per IP, and per session on top: one client cannot flood from many addresses under one session either.
      config: rateLimited(settings, 'analytics'),
      preHandler: keyedRateLimit(app, settings, 'analytics', (request) => {
        const session = (request.body as { session_id?: unknown } | undefined)?.session_id
        return typeof session === 'string' ? `session:${session}` : null
      }),
      schema: {
        tags: ['analytics'],
        summary: "Record a shopper's event (anyone, rate limited)",
        description: 'Answered at once; events are written in batches within a second. Signed-in callers are recorded as themselves, and their `session_id` joins the earlier anonymous events of that session to them.',
        body: IngestBody,
        response: { 202: IngestAnswer, 422: Problem, 429: Problem, 503: Problem },
      },
    }, async (request, reply) => {
      analytics.ingest(request.ctx, request.body)
      return reply.code(202).send({ accepted: true as const })
    })
  }
}

const bearer = [{ bearerAuth: [] }]
const CSV_COLUMNS = ['period', 'orders', 'revenue', 'refunds', 'net_revenue', 'average_order_value', 'units_sold', 'sessions', 'conversion_rate', 'currency'] as const

/** /api/analytics/dashboard/ and /reports/sales/: staff only. */
export function reportRoutes(analytics: AnalyticsService, guards: AuthGuards): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('preValidation', guards.requireStaff)

    app.get('/api/analytics/dashboard/', {
      schema: {
        tags: ['analytics'],
        summary: 'Revenue, orders, conversion, top products, low stock and zero-result searches over shop days (staff)',
        description: 'Days are the shop\'s days in `TIME_ZONE`; see the README section "Analytics" for what each figure counts.',
        security: bearer,
        querystring: DashboardQuery,
        response: { 200: DashboardSchema, 401: Problem, 403: Problem, 422: Problem },
      },
    }, async (request) => analytics.dashboard(request.ctx, request.query))

    app.get('/api/analytics/reports/sales/', {
      schema: {
        tags: ['analytics'],
        summary: 'Sales per day, week or month (staff); `format=csv` for a spreadsheet',
        description: 'One row per period from `from` to `to` (the first and last periods hold only the days inside them). CSV columns: ' + CSV_COLUMNS.join(', ') + '; amounts in minor units.',
        security: bearer,
        querystring: SalesReportQuery,
        response: {
          200: { content: { 'application/json': { schema: SalesReportSchema }, 'text/csv': { schema: Type.String({ description: 'the rows as CSV, with a header line' }) } } },
          401: Problem,
          403: Problem,
          422: Problem,
        },
      },
    }, async (request, reply) => {
      const report = await analytics.salesReport(request.ctx, request.query)
      if (request.query.format !== 'csv') return report
      const csv = stringify({ header: true, columns: [...CSV_COLUMNS] })
      reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="sales-${report.from}-${report.to}-${report.interval}.csv"`)
      // Written row by row as the client reads.
      void pipeline(Readable.from(report.rows.map((row) => ({ ...row, currency: report.currency }))), csv).catch((err: unknown) => request.log.warn({ err }, 'CSV export interrupted'))
      // A stream is sent as it is (the type provider only knows the schema's string).
      return reply.send(csv as unknown as string)
    })
  }
}
