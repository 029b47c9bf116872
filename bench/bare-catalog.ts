/**
 * The bound for bench/catalog.ts: bare Fastify answering the same catalog data with one
 * hand-written SQL statement per request and JSON.stringify, no validation, no cache, nothing else.
 */
import Fastify from 'fastify'
import pg from 'pg'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_MAX ?? 10) })

const productJson = `json_build_object(
  'id', p.id, 'slug', p.slug, 'name', p.name, 'description', p.description, 'attributes', p.attributes,
  'price', p.price, 'currency', 'USD', 'rating', p.rating, 'review_count', p.review_count,
  'is_active', p.is_active, 'created_at', p.created_at, 'updated_at', p.updated_at,
  'category', (SELECT json_build_object('id', c.id, 'slug', c.slug, 'name', c.name) FROM categories c WHERE c.id = p.category_id),
  'images', (SELECT coalesce(json_agg(json_build_object('id', i.id, 'url', '/media/' || i.key, 'alt', i.alt, 'width', i.width, 'height', i.height) ORDER BY i.position), '[]') FROM product_images i WHERE i.product_id = p.id),
  'variants', (SELECT coalesce(json_agg(json_build_object('id', v.id, 'sku', v.sku, 'name', v.name, 'attributes', v.attributes, 'price', v.price,
      'compare_at_price', v.compare_at_price, 'currency', v.currency, 'in_stock', coalesce(s.on_hand - s.reserved, 0) > 0,
      'stock_available', coalesce(s.on_hand - s.reserved, 0)) ORDER BY v.position), '[]')
    FROM product_variants v LEFT JOIN stock_levels s ON s.variant_id = v.id WHERE v.product_id = p.id AND v.is_active))`
const visible = 'p.deleted_at IS NULL AND p.is_active AND p.price IS NOT NULL'

const page = (where: string, order: string) =>
  `SELECT coalesce(json_agg(x.product), '[]') AS results FROM (SELECT ${productJson} AS product FROM products p WHERE ${visible} ${where} ORDER BY ${order} LIMIT 20) x`

const app = Fastify()
app.get<{ Querystring: { min_price?: string } }>('/list', async (request, reply) => {
  const { min_price: minPrice } = request.query
  const { rows } =
    minPrice === undefined
      ? await pool.query(page('', 'p.created_at DESC, p.id DESC'))
      : await pool.query(page('AND p.price >= $1', 'p.created_at DESC, p.id DESC'), [Number(minPrice)])
  return reply.type('application/json').send(JSON.stringify({ results: rows[0].results }))
})
app.get<{ Params: { slug: string } }>('/detail/:slug', async (request, reply) => {
  const { rows } = await pool.query(`SELECT ${productJson} AS product FROM products p WHERE p.slug = $1 AND ${visible}`, [request.params.slug])
  return reply.type('application/json').send(JSON.stringify(rows[0]?.product ?? null))
})
app.get<{ Querystring: { q: string } }>('/search', async (request, reply) => {
  const { rows } = await pool.query(
    page(`AND p.search_vector @@ websearch_to_tsquery('english', $1)`, `ts_rank(p.search_vector, websearch_to_tsquery('english', $1)) DESC, p.id`),
    [request.query.q],
  )
  return reply.type('application/json').send(JSON.stringify({ results: rows[0].results }))
})
app.get<{ Querystring: { category: string; min_price: string; max_price: string } }>('/filtered', async (request, reply) => {
  const { rows } = await pool.query(
    page(
      `AND p.category_id IN (WITH RECURSIVE t AS (SELECT id FROM categories WHERE slug = $1 UNION ALL SELECT c.id FROM categories c JOIN t ON c.parent_id = t.id) SELECT id FROM t)
       AND p.price BETWEEN $2 AND $3`,
      'p.price, p.id',
    ),
    [request.query.category, Number(request.query.min_price), Number(request.query.max_price)],
  )
  return reply.type('application/json').send(JSON.stringify({ results: rows[0].results }))
})
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
