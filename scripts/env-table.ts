/**
 * Rewrites README.md's configuration tables from src/config/env.ts (between the env-table
 * markers), so the documentation cannot drift from what the service reads. `npm run docs:env`.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { EnvSchema } from '../src/config/env.js'
import { projectRoot } from '../src/config/paths.js'

const START = '<!-- env-table:start -->'
const END = '<!-- env-table:end -->'

interface VariableSchema {
  type?: string
  default?: unknown
  description: string
  group: string
}

const groups = new Map<string, string[]>()
for (const [name, schema] of Object.entries(EnvSchema.properties as unknown as Record<string, VariableSchema>)) {
  const type = schema.type === 'boolean' ? 'bool' : schema.type === 'integer' ? 'int' : 'string'
  const fallback = schema.default === undefined ? '' : `\`${String(schema.default)}\``
  const row = `| \`${name}\` | ${type} | ${fallback} | ${schema.description.replace(/\|/g, '\\|')} |`
  groups.set(schema.group, [...(groups.get(schema.group) ?? []), row])
}
const tables = [...groups].map(([group, rows]) => `#### ${group}\n| variable | type | default | meaning |\n| --- | --- | --- | --- |\n${rows.join('\n')}`)

const file = join(projectRoot, 'README.md')
const readme = readFileSync(file, 'utf8')
const start = readme.indexOf(START)
const end = readme.indexOf(END)
if (start < 0 || end < start) throw new Error(`README.md needs ${START} and ${END} around the tables`)
writeFileSync(file, `${readme.slice(0, start + START.length)}\n${tables.join('\n\n')}\n${readme.slice(end)}`)
