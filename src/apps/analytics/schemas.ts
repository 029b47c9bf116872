import { Type } from 'typebox'
import { noUnknownFields } from '../../core/http/schemas.js'
import { intervals } from './days.js'
import { clientEventTypes } from './tables.js'

export const IngestBody = Type.Object(
  {
    type: Type.Enum(clientEventTypes, { description: '`product_view` and `add_to_cart` name a `product`; `search` a `query`' }),
    product: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[a-z0-9]+(?:-[a-z0-9]+)*$', description: "the product's slug" })),
    query: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })),
    session_id: Type.Optional(Type.String({ minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: "the client's anonymous session; after sign-in its earlier events count as the user's" })),
  },
  noUnknownFields,
)

export const IngestAnswer = Type.Object({ accepted: Type.Literal(true) })

const Day = (description: string) => Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description })
const Minor = (description: string) => Type.Number({ description: `${description} (minor units of \`currency\`)` })

const dayQuery = {
  from: Type.Optional(Day('first day, YYYY-MM-DD in the shop time zone (TIME_ZONE); default 29 days before `to`')),
  to: Type.Optional(Day('last day, included; default today')),
}

export const DashboardQuery = Type.Object(dayQuery, noUnknownFields)
export const SalesReportQuery = Type.Object(
  {
    ...dayQuery,
    interval: Type.Optional(Type.Enum(intervals, { description: 'day, week (ISO, from Monday) or month; default day' })),
    format: Type.Optional(Type.Enum(['json', 'csv'], { description: '`csv` streams the rows as a CSV download' })),
  },
  noUnknownFields,
)

const summaryFields = {
  orders: Type.Integer({ description: 'orders first paid in the period' }),
  revenue: Minor('their totals'),
  refunds: Minor('money refunded in the period'),
  net_revenue: Minor('revenue minus refunds'),
  average_order_value: Type.Union([Minor('revenue per order'), Type.Null()]),
  units_sold: Type.Integer(),
  sessions: Type.Integer({ description: 'distinct `session_id`s sent with events, per day, added up' }),
  conversion_rate: Type.Union([Type.Number({ description: 'orders per session' }), Type.Null()]),
}

const reportHeader = {
  from: Type.String(),
  to: Type.String(),
  time_zone: Type.String(),
  currency: Type.String(),
  rolled_up_through: Type.Union([Type.String(), Type.Null()], { description: 'days up to here come from the daily rollup; later ones are computed for the answer' }),
}

const ProductFiguresSchema = Type.Object({
  product_id: Type.String(),
  slug: Type.Union([Type.String(), Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  views: Type.Integer(),
  cart_adds: Type.Integer(),
  units_sold: Type.Integer(),
  revenue: Minor('line totals'),
  refunds: Minor("the product's share of refunds"),
})

const LowStockSchema = Type.Object({
  product_id: Type.String(),
  product_name: Type.String(),
  slug: Type.String(),
  variant_id: Type.String(),
  sku: Type.String(),
  variant_name: Type.String(),
  on_hand: Type.Integer(),
  available: Type.Integer(),
})

export const DashboardSchema = Type.Object({
  ...reportHeader,
  ...summaryFields,
  top_products: Type.Array(ProductFiguresSchema, { description: 'ten best sellers: revenue, then units, then views' }),
  low_stock: Type.Array(LowStockSchema, { description: 'variants for sale with LOW_STOCK_THRESHOLD or fewer units available, fewest first (now, whatever the dates)' }),
  zero_result_searches: Type.Array(Type.Object({ query: Type.String(), searches: Type.Integer() }), { description: 'the ten queries most often answered with no product' }),
})

const SalesRowSchema = Type.Object({ period: Day('first day of the period (a Monday for weeks, the 1st for months)'), ...summaryFields })

export const SalesReportSchema = Type.Object({
  ...reportHeader,
  interval: Type.Enum(intervals),
  rows: Type.Array(SalesRowSchema),
  totals: Type.Object(summaryFields),
})
