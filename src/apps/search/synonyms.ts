/**
 * Synonym groups staff edit (e.g. {tee, t-shirt, tshirt}): a query word in a group also matches
 * the group's other terms. Applied at query time, so an edit needs no reindex.
 */
import { asc, eq, sql } from 'drizzle-orm'
import type { Ctx } from '../../core/context.js'
import { NotFoundError, ValidationError } from '../../core/errors.js'
import { synonyms } from './tables.js'

export interface SynonymGroup {
  id: string
  terms: string[]
  created_at: string
  updated_at: string
}

/** Lower case, single spaces, no duplicates; a group needs two distinct terms. */
function normalize(terms: string[]): string[] {
  const normalized = [...new Set(terms.map((term) => term.trim().toLowerCase().replace(/\s+/g, ' ')).filter(Boolean))]
  if (normalized.length < 2) throw new ValidationError('A synonym group needs at least two different terms.', { terms: ['Give at least two different terms.'] })
  return normalized
}

const toDto = (row: typeof synonyms.$inferSelect): SynonymGroup => ({
  id: row.id,
  terms: row.terms,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
})

export function createSynonyms(options: { onChange: (ctx: Ctx) => Promise<void> }) {
  return {
    async list(ctx: Ctx): Promise<SynonymGroup[]> {
      return (await ctx.db.select().from(synonyms).orderBy(asc(synonyms.created_at), asc(synonyms.id))).map(toDto)
    },

    /** term → every other term it stands for, across all groups. */
    async expansions(ctx: Ctx): Promise<Map<string, string[]>> {
      const expansions = new Map<string, Set<string>>()
      for (const { terms } of await ctx.db.select({ terms: synonyms.terms }).from(synonyms)) {
        for (const term of terms) {
          const others = expansions.get(term) ?? new Set<string>()
          for (const other of terms) if (other !== term) others.add(other)
          expansions.set(term, others)
        }
      }
      return new Map([...expansions].map(([term, others]) => [term, [...others]]))
    },

    async create(ctx: Ctx, terms: string[]): Promise<SynonymGroup> {
      const [row] = await ctx.db.insert(synonyms).values({ terms: normalize(terms) }).returning()
      await options.onChange(ctx)
      return toDto(row!)
    },

    async update(ctx: Ctx, id: string, terms: string[]): Promise<SynonymGroup> {
      const [row] = await ctx.db.update(synonyms).set({ terms: normalize(terms), updated_at: sql`now()` }).where(eq(synonyms.id, id)).returning()
      if (!row) throw new NotFoundError('Synonym group', id)
      await options.onChange(ctx)
      return toDto(row)
    },

    async remove(ctx: Ctx, id: string): Promise<void> {
      const [row] = await ctx.db.delete(synonyms).where(eq(synonyms.id, id)).returning({ id: synonyms.id })
      if (!row) throw new NotFoundError('Synonym group', id)
      await options.onChange(ctx)
    },
  }
}

export type Synonyms = ReturnType<typeof createSynonyms>
