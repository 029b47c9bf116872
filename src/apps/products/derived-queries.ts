/**
 * What is derived from a product's rows and kept on it for fast reads: its lowest active variant
 * price and its weighted search document. Set-based, so one statement serves a single product
 * after an edit and the whole catalog after a bulk load.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Db } from '../../core/db/index.js'

/** The products to refresh: some ids, every product in some categories, or all of them. */
export type DerivedScope = { productIds: string[] } | { categoryIds: string[] } | 'all'

function scopeCondition(scope: DerivedScope): SQL {
  if (scope === 'all') return sql`true`
  if ('productIds' in scope) return sql`p.id = ANY(${toArray(scope.productIds)}::uuid[])`
  return sql`p.category_id = ANY(${toArray(scope.categoryIds)}::uuid[])`
}

/** A text[] literal: drizzle passes JS arrays as separate parameters, PGlite and pg both take this. */
export function toArray(values: string[]): string {
  return `{${values.map((value) => `"${value.replace(/["\\]/g, '\\$&')}"`).join(',')}}`
}

/**
 * Recomputes price and search_vector: name (weight A), the category and its ancestors (B),
 * product and variant attribute values (C), description (D); english stemming.
 */
export async function refreshDerived(db: Db, scope: DerivedScope): Promise<void> {
  await db.execute(sql`
    WITH RECURSIVE category_path AS (
      SELECT id, name::text AS path FROM categories WHERE parent_id IS NULL
      UNION ALL
      SELECT c.id, cp.path || ' ' || c.name FROM categories c JOIN category_path cp ON c.parent_id = cp.id
    )
    UPDATE products p SET
      price = (SELECT min(v.price) FROM product_variants v WHERE v.product_id = p.id AND v.is_active),
      search_vector =
        setweight(to_tsvector('english', p.name), 'A') ||
        setweight(to_tsvector('english', coalesce((SELECT cp.path FROM category_path cp WHERE cp.id = p.category_id), '')), 'B') ||
        setweight(to_tsvector('english', coalesce((
          SELECT string_agg(value, ' ') FROM (
            SELECT value FROM jsonb_each_text(p.attributes)
            UNION SELECT a.value FROM product_variants v, jsonb_each_text(v.attributes) a WHERE v.product_id = p.id AND v.is_active
          ) attribute_values), '')), 'C') ||
        setweight(to_tsvector('english', p.description), 'D')
    WHERE ${scopeCondition(scope)}`)
  await recordWords(db, scope)
}

/** Adds the words of names, categories and attribute values to the vocabulary typo correction uses. */
async function recordWords(db: Db, scope: DerivedScope): Promise<void> {
  await db.execute(sql`
    INSERT INTO search_words (word)
    SELECT DISTINCT word FROM products p
    LEFT JOIN categories c ON c.id = p.category_id,
    LATERAL regexp_split_to_table(
      lower(p.name || ' ' || coalesce(c.name, '') || ' ' ||
        coalesce((SELECT string_agg(value, ' ') FROM jsonb_each_text(p.attributes)), '') || ' ' ||
        coalesce((SELECT string_agg(a.value, ' ') FROM product_variants v, jsonb_each_text(v.attributes) a WHERE v.product_id = p.id AND v.is_active), '')),
      '[^[:alnum:]]+') AS word
    WHERE ${scopeCondition(scope)} AND length(word) >= 3
    ON CONFLICT (word) DO NOTHING`)
}
