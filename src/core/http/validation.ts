/**
 * Request validation with two Ajv instances: query strings, params and headers arrive as text and
 * are coerced to the schema's types ("?limit=10" is a number); JSON bodies are typed already and
 * are validated strictly, so `{"first_name": 123}` or `null` is a 422, not a silent conversion.
 *
 * Installed as Fastify's validator factory (not with setValidatorCompiler): a plugin context that
 * gains shared schemas later rebuilds its compiler from the factory, and would otherwise fall back
 * to Fastify's default, coercing one.
 */
import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchema, FastifySchemaCompiler } from 'fastify'

const common: Options = { allErrors: true, removeAdditional: true, useDefaults: true, strict: false }

export function buildValidator(externalSchemas: Record<string, unknown> = {}): FastifySchemaCompiler<FastifySchema> {
  const make = (coerceTypes: Options['coerceTypes']) => {
    const ajv = addFormats.default(new Ajv({ ...common, coerceTypes }))
    for (const schema of Object.values(externalSchemas)) ajv.addSchema(schema as object)
    return ajv
  }
  const strict = make(false)
  const coercing = make('array')
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object)
}
