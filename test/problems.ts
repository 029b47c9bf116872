import { expect } from 'vitest'

/** A problem document as the API sends it (RFC 9457 plus code and request_id). */
export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  instance: string
  code: string
  request_id: string
  errors?: Record<string, string[]>
  [extension: string]: unknown
}

interface Answer {
  statusCode: number
  headers: Record<string, unknown>
  json(): unknown
}

/** Asserts a problem+json answer with this status (and code, when given) and returns its body. */
export function expectProblem(res: Answer, status: number, code?: string): ProblemBody {
  expect(res.statusCode, JSON.stringify(res.json())).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
  const body = res.json() as ProblemBody
  expect(body.status).toBe(status)
  if (code !== undefined) {
    expect(body.code).toBe(code)
    expect(body.type).toBe(`/problems/${code}`)
  }
  return body
}
