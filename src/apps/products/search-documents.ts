/** What a search index holds for one product, built from its row and the category tree. */
import type { DocumentRow } from './search-queries.js'

export interface SearchDocumentDto {
  id: string
  slug: string
  name: string
  description: string
  category_ids: string[]
  category_names: string[]
  attributes: Array<{ name: string; value: string }>
  price: number
  in_stock: boolean
  rating: number
  created_at: string
}

export function toDocuments(rows: DocumentRow[], categoryRows: Array<{ id: string; name: string; parent_id: string | null }>): SearchDocumentDto[] {
  const byId = new Map(categoryRows.map((category) => [category.id, category]))
  const pathOf = (id: string | null) => {
    const path: Array<{ id: string; name: string }> = []
    for (let category = id ? byId.get(id) : undefined; category && path.length < 64; category = category.parent_id ? byId.get(category.parent_id) : undefined) path.push(category)
    return path
  }
  return rows.map((row) => {
    const path = pathOf(row.category_id)
    const attributes = new Map<string, { name: string; value: string }>()
    for (const source of [row.attributes, ...(row.variant_attributes ?? [])]) {
      for (const [name, value] of Object.entries(source)) attributes.set(`${name}\u0000${value}`, { name, value })
    }
    return {
      id: row.id,
      slug: row.slug,
      name: row.name,
      description: row.description,
      category_ids: path.map((category) => category.id),
      category_names: path.map((category) => category.name),
      attributes: [...attributes.values()],
      price: row.price,
      in_stock: row.in_stock,
      rating: Number(row.rating ?? 0),
      created_at: new Date(row.created_at).toISOString(),
    }
  })
}
