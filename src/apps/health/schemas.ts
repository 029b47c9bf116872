import { Type } from 'typebox'

const CheckResultSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
  backend: Type.String(),
  latency_ms: Type.Number(),
  error: Type.Optional(Type.String()),
  jobs: Type.Optional(Type.Object({ waiting: Type.Integer(), active: Type.Integer(), failed: Type.Integer() }, { description: 'the queue check: its depth' })),
})

const checks = Type.Object({
  database: Type.Optional(CheckResultSchema),
  cache: Type.Optional(CheckResultSchema),
  search: Type.Optional(CheckResultSchema),
  storage: Type.Optional(CheckResultSchema),
  queue: Type.Optional(CheckResultSchema),
  vault: Type.Optional(CheckResultSchema),
})

export const LiveSchema = Type.Object({ status: Type.Literal('ok') })

export const HealthReportSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
  checks,
  failed: Type.Array(Type.String()),
})

/** 503: a problem document that also carries the checks. */
export const NotReadySchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String(),
    code: Type.String(),
    request_id: Type.String(),
    failed: Type.Array(Type.String()),
    checks,
  },
  { additionalProperties: true },
)
