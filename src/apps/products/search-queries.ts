/**
 * Full-text search over the products' weighted search documents (PostgreSQL and PGlite): typo
 * corrections from the vocabulary, ranked hits with highlighted snippets, facet counts, and the
 * documents an external index (OpenSearch) is built from.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'
import { rowsOf } from '../../core/db/index.js'
import { listConditions, tsQuery, type ListFilters, type SortField, type TermGroups } from './catalog-queries.js'
import { toArray } from './derived-queries.js'

export interface Correction {
  term: string
  /** Some vocabulary word starts with the term: it is fine as typed. */
  known: boolean
  /** The closest vocabulary word by trigram similarity, when the term is unknown. */
  nearest: string | null
}

/**
 * For each term: is it (a prefix of) a known word, or another form of one (its English stem is a
 * prefix: "hoodies" of "hoodie", which the search matches anyway, so it is no typo), and if not,
 * the nearest known word. One statement.
 */
export async function corrections(db: Db, terms: string[]): Promise<Correction[]> {
  if (terms.length === 0) return []
  const result = await db.execute(sql`
    SELECT t.term,
      EXISTS (
        SELECT 1 FROM search_words w
        WHERE w.word LIKE replace(replace(t.term, '%', ''), '_', '') || '%'
          OR w.word LIKE replace(replace((ts_lexize('english_stem', t.term))[1], '%', ''), '_', '') || '%'
      ) AS known,
      (SELECT w.word FROM search_words w WHERE w.word % t.term ORDER BY similarity(w.word, t.term) DESC, w.word LIMIT 1) AS nearest
    FROM unnest(${toArray(terms)}::text[]) AS t(term)`)
  return rowsOf<Correction>(result)
}

export interface HitRow {
  id: string
  total: number
  name_highlight: string
  description_highlight: string
}

const escapeHtml = (column: SQL) => sql`replace(replace(replace(${column}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`

const SORT_EXPR: Record<SortField, SQL> = {
  created_at: sql`p.created_at`,
  price: sql`p.price`,
  name: sql`p.name`,
  rating: sql`coalesce(p.rating, 0)`,
}

/**
 * Ranked hits with the total in the same statement. Relevance is ts_rank over the weighted
 * document, plus a boost when the whole name is what was typed (exact names come first).
 */
export async function searchHits(
  db: Db,
  query: { text: string; groups: TermGroups; filters: ListFilters; sort: SortField | 'relevance'; descending: boolean; offset: number; limit: number },
): Promise<HitRow[]> {
  const tsq = tsQuery(query.groups)
  const direction = query.descending ? sql`DESC` : sql`ASC`
  const order =
    query.sort === 'relevance'
      ? sql`ts_rank(p.search_vector, ${tsq}) + CASE WHEN lower(p.name) = lower(${query.text}) THEN 1 ELSE 0 END DESC, p.id`
      : sql`${SORT_EXPR[query.sort]} ${direction}, p.id ${direction}`
  const result = await db.execute(sql`
    WITH hits AS (
      SELECT p.id, p.name, p.description, count(*) OVER () AS total
      FROM products p
      WHERE ${listConditions(query.filters, query.groups)}
      ORDER BY ${order}
      OFFSET ${query.offset} LIMIT ${query.limit}
    )
    SELECT id, total::int AS total,
      ts_headline('english', ${escapeHtml(sql`name`)}, ${tsq}, 'StartSel=<mark>, StopSel=</mark>, HighlightAll=true') AS name_highlight,
      ts_headline('english', ${escapeHtml(sql`description`)}, ${tsq}, 'StartSel=<mark>, StopSel=</mark>, MaxWords=25, MinWords=8, MaxFragments=2') AS description_highlight
    FROM hits`)
  return rowsOf<HitRow>(result)
}

export interface FacetRow {
  kind: 'category' | 'price' | 'attribute'
  key: string
  value: string | null
  count: number
}

/**
 * Facet counts over everything that matches (not just one page): products per own category,
 * per price bucket (index into `buckets`), and per attribute value of the product or its variants.
 */
export async function facetCounts(db: Db, filters: ListFilters, groups: TermGroups | undefined, buckets: ReadonlyArray<readonly [number, number | null]>): Promise<FacetRow[]> {
  const bucketCase = sql.join(
    buckets.map(([low, high], i) => (high === null ? sql`WHEN m.price >= ${low} THEN ${i}` : sql`WHEN m.price >= ${low} AND m.price < ${high} THEN ${i}`)),
    sql` `,
  )
  const result = await db.execute(sql`
    WITH matched AS (SELECT p.id, p.category_id, p.price, p.attributes FROM products p WHERE ${listConditions(filters, groups)})
    SELECT 'category' AS kind, m.category_id::text AS key, NULL AS value, count(*)::int AS count FROM matched m WHERE m.category_id IS NOT NULL GROUP BY m.category_id
    UNION ALL
    SELECT 'price', (CASE ${bucketCase} END)::text, NULL, count(*)::int FROM matched m GROUP BY 2
    UNION ALL
    SELECT 'attribute', a.key, a.value, count(DISTINCT a.id)::int FROM (
      SELECT m.id, e.key, e.value FROM matched m, jsonb_each_text(m.attributes) e
      UNION ALL
      SELECT m.id, e.key, e.value FROM matched m JOIN product_variants v ON v.product_id = m.id AND v.is_active, jsonb_each_text(v.attributes) e
    ) a GROUP BY a.key, a.value`)
  return rowsOf<FacetRow>(result)
}

export interface DocumentRow {
  id: string
  slug: string
  name: string
  description: string
  category_id: string | null
  attributes: Record<string, string>
  variant_attributes: Array<Record<string, string>> | null
  price: number
  in_stock: boolean
  rating: string | null
  created_at: string
}

const documentSelect = sql`
  SELECT p.id, p.slug, p.name, p.description, p.category_id, p.attributes, p.price, coalesce(p.rating, 0) AS rating, p.created_at,
    (SELECT json_agg(v.attributes) FROM product_variants v WHERE v.product_id = p.id AND v.is_active) AS variant_attributes,
    EXISTS (SELECT 1 FROM product_variants v JOIN stock_levels s ON s.variant_id = v.id WHERE v.product_id = p.id AND v.is_active AND s.on_hand > s.reserved) AS in_stock
  FROM products p`

/** Index documents of these products, when visible (active, not deleted, with a price). */
export async function documentRows(db: Db, ids: string[]): Promise<DocumentRow[]> {
  if (ids.length === 0) return []
  const result = await db.execute(sql`${documentSelect} WHERE p.id = ANY(${toArray(ids)}::uuid[]) AND ${listConditions({})}`)
  return rowsOf<DocumentRow>(result)
}

/** Visible products in id order after `afterId`: a full rebuild reads the catalog in these batches. */
export async function documentBatch(db: Db, afterId: string | null, limit: number): Promise<DocumentRow[]> {
  const after = afterId ? sql`AND p.id > ${afterId}::uuid` : sql``
  const result = await db.execute(sql`${documentSelect} WHERE ${listConditions({})} ${after} ORDER BY p.id LIMIT ${limit}`)
  return rowsOf<DocumentRow>(result)
}
