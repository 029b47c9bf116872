/**
 * Request validation with two Ajv instances: query strings, params and headers arrive as text and
 * are coerced to the schema's types ("?limit=10" is a number); JSON bodies are typed already and
 * are validated strictly, so `{"first_name": 123}` or `null` is a 422, not a silent conversion.
 */
import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyInstance } from 'fastify'

const common: Options = { allErrors: true, removeAdditional: true, useDefaults: true, strict: false }

export function registerValidation(app: FastifyInstance): void {
  const strict = addFormats.default(new Ajv({ ...common, coerceTypes: false }))
  const coercing = addFormats.default(new Ajv({ ...common, coerceTypes: 'array' }))
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema))
}
