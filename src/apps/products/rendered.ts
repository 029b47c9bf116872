/**
 * Product JSON rendered once and cached as text, with a marker where each variant's live stock
 * goes. A cached read then costs one string scan to fill in the stock, instead of parsing,
 * copying and serialising every product again: far less work and garbage per request, which
 * is what keeps a busy API process fast and small.
 *
 * The markers are JSON strings "\u0000<n>" in the `in_stock` and `stock_available` fields.
 * They cannot be forged by product text: inside a JSON string every quote is escaped, so the
 * sequence `"in_stock":"` only ever comes from the renderer itself.
 */
import type { FastifyReply } from 'fastify'
import type { CachedProduct } from './catalog.js'

export interface RenderedProducts {
  /**
   * A JSON array of products (or one product, for a product page) cut at its stock markers:
   * text, field name, variant number, text, field name, variant number, …, text.
   */
  parts: string[]
  /** The variant id behind each marker number. */
  variantIds: string[]
  /** The same ids as a PostgreSQL array literal, built once for the stock query of every read. */
  variantIdsLiteral: string
}

const MARKER = /"(in_stock|stock_available)":"\\u0000(\d+)"/g

/** Renders products, each optionally with extra fields (search highlights), as JSON with markers. */
export function renderProducts(items: Array<CachedProduct & Record<string, unknown>>, single = false): RenderedProducts {
  const variantIds: string[] = []
  const marked = items.map((item) => ({
    ...item,
    variants: item.variants.map((variant) => {
      const marker = `\u0000${variantIds.push(variant.id) - 1}`
      return { ...variant, in_stock: marker, stock_available: marker }
    }),
  }))
  // Cut once here, so a read joins pieces instead of scanning the whole text for markers.
  const parts = JSON.stringify(single ? marked[0] : marked).split(MARKER)
  // Ids are UUIDs: nothing to escape in the array literal.
  return { parts, variantIds, variantIdsLiteral: `{${variantIds.join(',')}}` }
}

/** Puts the availability of each variant (on hand − reserved) where its markers were. */
export function fillStock(rendered: RenderedProducts, available: Map<string, number>): string {
  const { parts, variantIds } = rendered
  const out = new Array<string>(parts.length)
  for (let i = 0; i < parts.length; i += 3) {
    out[i] = parts[i]!
    if (i + 2 >= parts.length) break
    const count = available.get(variantIds[Number(parts[i + 2])]!) ?? 0
    out[i + 1] = parts[i + 1] === 'in_stock' ? `"in_stock":${count > 0}` : `"stock_available":${count}`
    out[i + 2] = ''
  }
  return out.join('')
}

/** A list page's JSON: `count`, `next` and `previous` first, then the results, then any extra fields. */
export function pageJson(head: { count: number | null; next: string | null; previous: string | null }, results: string, extra?: Record<string, unknown>): string {
  const tail = extra && Object.keys(extra).length > 0 ? `,${JSON.stringify(extra).slice(1)}` : "}"
  return `${JSON.stringify(head).slice(0, -1)},"results":${results}${tail}`
}

/**
 * Sends rendered JSON as it is: Fastify does not serialise a string sent as JSON. The route's
 * response schema still documents the shape.
 */
export function sendRendered(reply: FastifyReply, json: string, status = 200): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(json)
}
