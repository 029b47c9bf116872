/**
 * The category tree: GET /api/categories/ (the whole tree, anyone), GET /api/categories/{slug}/
 * (a subtree) and the staff routes that create, rename, move and delete categories. Every test
 * makes categories with unique slugs, so tests share the file's database without depending on order.
 */
import { randomUUID } from 'node:crypto'
import { count, eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { factories } from '../../../test/factories.js'
import { createTestApp, type TestApp, usesPostgres } from '../../../test/harness.js'
import { expectProblem } from '../../../test/problems.js'
import type { CategoryNode } from './categories.js'
import { categories, products } from './tables.js'

let t: TestApp
let staff: { authorization: string }
let customer: { authorization: string }

beforeAll(async () => {
  t = await createTestApp()
  const f = factories(t)
  staff = await f.auth(await f.user({ role: 'staff' }))
  customer = await f.auth(await f.user())
})
afterAll(() => t.close())

const db = () => t.app.platform.database.db
/** A fresh lowercase suffix for names and slugs. */
const uid = () => randomUUID().slice(0, 8)

async function create(body: { name: string; slug?: string; parent?: string | null }): Promise<CategoryNode> {
  const res = await t.request({ method: 'POST', url: '/api/categories/', headers: staff, payload: body })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<CategoryNode>()
}

const tree = async () => (await t.request({ method: 'GET', url: '/api/categories/' })).json<CategoryNode[]>()
const getOne = (slug: string) => t.request({ method: 'GET', url: `/api/categories/${slug}/` })
const patch = (slug: string, payload: unknown, headers: Record<string, string> = staff) =>
  t.request({ method: 'PATCH', url: `/api/categories/${slug}/`, headers, payload: payload as object })
const remove = (slug: string, headers: Record<string, string> = staff) => t.request({ method: 'DELETE', url: `/api/categories/${slug}/`, headers })

async function rowCount(): Promise<number> {
  const [row] = await db().select({ n: count() }).from(categories)
  return row!.n
}

/** A root with a child and a grandchild, each a leaf below the one above. */
async function chain() {
  const s = uid()
  const root = await create({ name: `Root ${s}`, slug: `root-${s}` })
  const child = await create({ name: `Child ${s}`, slug: `child-${s}`, parent: root.slug })
  const grandchild = await create({ name: `Grandchild ${s}`, slug: `grandchild-${s}`, parent: child.slug })
  return { root, child, grandchild }
}

describe('GET /api/categories/', () => {
  it('answers an empty list on a fresh app', async () => {
    const fresh = await createTestApp()
    try {
      const res = await fresh.request({ method: 'GET', url: '/api/categories/' })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual([])
    } finally {
      await fresh.close()
    }
  })

  it('nests a four-level chain and its siblings, siblings sorted by name, for anyone', async () => {
    const s = uid()
    // Created out of name order, so the sort is the tree's and not insertion order.
    const l1 = await create({ name: `Level1 ${s}`, slug: `l1-${s}` })
    const l2b = await create({ name: `Zeta ${s}`, slug: `l2b-${s}`, parent: l1.slug })
    const l2 = await create({ name: `Level2 ${s}`, slug: `l2-${s}`, parent: l1.slug })
    const l2a = await create({ name: `Alpha ${s}`, slug: `l2a-${s}`, parent: l1.slug })
    const l3 = await create({ name: `Level3 ${s}`, slug: `l3-${s}`, parent: l2.slug })
    const l3b = await create({ name: `Omega ${s}`, slug: `l3b-${s}`, parent: l2.slug })
    const l3a = await create({ name: `Beta ${s}`, slug: `l3a-${s}`, parent: l2.slug })
    const l4 = await create({ name: `Level4 ${s}`, slug: `l4-${s}`, parent: l3.slug })
    const rootB = await create({ name: `Zulu top ${s}`, slug: `top-b-${s}` })
    const rootA = await create({ name: `Alpha top ${s}`, slug: `top-a-${s}` })

    const node = (c: CategoryNode, parent: string | null, children: CategoryNode[] = []): CategoryNode => ({ id: c.id, name: c.name, slug: c.slug, parent, children })
    const expected = node(l1, null, [
      node(l2a, l1.slug),
      node(l2, l1.slug, [node(l3a, l2.slug), node(l3, l2.slug, [node(l4, l3.slug)]), node(l3b, l2.slug)]),
      node(l2b, l1.slug),
    ])

    // No Authorization header: the tree is public.
    const res = await t.request({ method: 'GET', url: '/api/categories/' })
    expect(res.statusCode).toBe(200)
    const roots = res.json<CategoryNode[]>()
    expect(roots.find((root) => root.slug === l1.slug)).toEqual(expected)
    // Top-level categories are sorted by name as well, and only roots are at the top.
    const ours = roots.filter((root) => root.slug.endsWith(s)).map((root) => root.slug)
    expect(ours).toEqual([rootA.slug, l1.slug, rootB.slug])
    expect(roots.some((root) => root.slug === l4.slug)).toBe(false)
  })
})

describe('GET /api/categories/{slug}/', () => {
  it('answers the subtree of a category to anyone', async () => {
    const { root, child, grandchild } = await chain()
    const res = await getOne(child.slug)
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({
      id: child.id,
      name: child.name,
      slug: child.slug,
      parent: root.slug,
      children: [{ id: grandchild.id, name: grandchild.name, slug: grandchild.slug, parent: child.slug, children: [] }],
    })
  })

  it('answers 404 for an unknown slug', async () => {
    expectProblem(await getOne(`missing-${uid()}`), 404, 'not_found')
  })
})

describe('POST /api/categories/', () => {
  /** Runs a request that must fail and checks that it wrote no category. */
  async function rejected(payload: unknown, headers: Record<string, string> = staff) {
    const before = await rowCount()
    const res = await t.request({ method: 'POST', url: '/api/categories/', headers, payload: payload as object })
    expect(await rowCount()).toBe(before)
    return res
  }

  it('answers 201 with a slug derived from the name when none is given', async () => {
    const res = await t.request({ method: 'POST', url: '/api/categories/', headers: staff, payload: { name: '  T-Shirts & Tops  ' } })
    expect(res.statusCode).toBe(201)
    expect(res.json()).toEqual({ id: expect.any(String), name: 'T-Shirts & Tops', slug: 't-shirts-tops', parent: null, children: [] })
    expect((await getOne('t-shirts-tops')).json<CategoryNode>().id).toBe(res.json<CategoryNode>().id)
  })

  it('strips accents when it derives a slug', async () => {
    const created = await create({ name: 'Café Crème' })
    expect(created.slug).toBe('cafe-creme')
  })

  it('derives a slug that fits the slug pattern when the name is cut at 80 characters', async () => {
    // The 80th character of the raw slug is the hyphen between the two words.
    const created = await create({ name: `${'a'.repeat(71)}${uid()} bcd` })
    expect(created.slug).toMatch(/^[a-z0-9]+(?:-[a-z0-9]+)*$/)
    expect(created.slug.length).toBeLessThanOrEqual(80)
    // It can be used wherever a slug is accepted, e.g. as a parent.
    expect((await create({ name: `Below ${uid()}`, parent: created.slug })).parent).toBe(created.slug)
  })

  it('keeps an explicit slug and links the parent', async () => {
    const s = uid()
    const parent = await create({ name: `Parent ${s}`, slug: `parent-${s}` })
    const created = await create({ name: `Shoes ${s}`, slug: `footwear-${s}`, parent: parent.slug })
    expect(created).toMatchObject({ name: `Shoes ${s}`, slug: `footwear-${s}`, parent: parent.slug, children: [] })
    expect((await getOne(parent.slug)).json<CategoryNode>().children.map((c) => c.slug)).toEqual([`footwear-${s}`])
  })

  it('answers 409 slug_taken when the slug is used', async () => {
    const existing = await create({ name: `Taken ${uid()}` })
    expectProblem(await rejected({ name: 'Other', slug: existing.slug }), 409, 'slug_taken')
    // A derived slug collides the same way.
    expectProblem(await rejected({ name: existing.name }), 409, 'slug_taken')
  })

  it('answers 422 naming parent when the parent does not exist', async () => {
    const body = expectProblem(await rejected({ name: `Orphan ${uid()}`, parent: `missing-${uid()}` }), 422)
    expect(Object.keys(body.errors ?? {})).toEqual(['parent'])
  })

  it('answers 422 for a slug that does not fit the pattern', async () => {
    const body = expectProblem(await rejected({ name: `Spaces ${uid()}`, slug: 'Has Spaces' }), 422, 'validation_error')
    expect(body.errors).toHaveProperty('slug')
  })

  it('answers 422 for an empty or missing name', async () => {
    const body = expectProblem(await rejected({ name: '', slug: `empty-${uid()}` }), 422, 'validation_error')
    expect(body.errors).toHaveProperty('name')
    expectProblem(await rejected({ slug: `nameless-${uid()}` }), 422, 'validation_error')
    // Names are trimmed, so a name of spaces is empty too.
    expect(expectProblem(await rejected({ name: '   ', slug: `blank-${uid()}` }), 422, 'validation_error').errors).toHaveProperty('name')
  })

  it('answers 403 to a customer and 401 without a token', async () => {
    expectProblem(await rejected({ name: `Customer ${uid()}` }, customer), 403)
    expectProblem(await rejected({ name: `Anonymous ${uid()}` }, {}), 401)
  })
})

describe('PATCH /api/categories/{slug}/', () => {
  it('renames a category and keeps its slug', async () => {
    const { child } = await chain()
    const res = await patch(child.slug, { name: '  Renamed  ' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: child.id, name: 'Renamed', slug: child.slug })
    expect((await getOne(child.slug)).json<CategoryNode>().name).toBe('Renamed')
  })

  it('changes the slug: the old one is gone, the new one answers and children point at it', async () => {
    const { root, child } = await chain()
    const slug = `renamed-${uid()}`
    const res = await patch(root.slug, { slug })
    expect(res.statusCode).toBe(200)
    expect(res.json<CategoryNode>()).toMatchObject({ id: root.id, slug, children: [{ id: child.id, parent: slug }] })
    expectProblem(await getOne(root.slug), 404, 'not_found')
    expect((await getOne(slug)).json<CategoryNode>().id).toBe(root.id)
    expect((await getOne(child.slug)).json<CategoryNode>().parent).toBe(slug)
  })

  it('answers 409 slug_taken when the new slug is used', async () => {
    const a = await chain()
    const b = await chain()
    expectProblem(await patch(a.child.slug, { slug: b.child.slug }), 409, 'slug_taken')
    expect((await getOne(a.child.slug)).json<CategoryNode>().id).toBe(a.child.id)
    expect((await getOne(b.child.slug)).json<CategoryNode>().id).toBe(b.child.id)
  })

  it('moves a category with its subtree under another parent', async () => {
    const from = await chain()
    const to = await chain()
    const res = await patch(from.child.slug, { parent: to.grandchild.slug })
    expect(res.statusCode).toBe(200)
    expect(res.json<CategoryNode>()).toMatchObject({ slug: from.child.slug, parent: to.grandchild.slug, children: [{ slug: from.grandchild.slug }] })
    expect((await getOne(from.root.slug)).json<CategoryNode>().children).toEqual([])
    expect((await getOne(to.grandchild.slug)).json<CategoryNode>().children.map((c) => c.slug)).toEqual([from.child.slug])
  })

  it('moves a category to the top when parent is null', async () => {
    const { root, child, grandchild } = await chain()
    const res = await patch(child.slug, { parent: null })
    expect(res.statusCode).toBe(200)
    expect(res.json<CategoryNode>()).toMatchObject({ slug: child.slug, parent: null, children: [{ slug: grandchild.slug }] })
    const roots = await tree()
    expect(roots.find((node) => node.slug === child.slug)?.children.map((c) => c.slug)).toEqual([grandchild.slug])
    expect(roots.find((node) => node.slug === root.slug)?.children).toEqual([])
  })

  it('answers 409 category_cycle for a move under itself or a descendant and leaves the tree unchanged', async () => {
    const { root, child, grandchild } = await chain()
    const before = await tree()
    expectProblem(await patch(root.slug, { parent: root.slug }), 409, 'category_cycle')
    expectProblem(await patch(root.slug, { parent: child.slug }), 409, 'category_cycle')
    expectProblem(await patch(root.slug, { parent: grandchild.slug }), 409, 'category_cycle')
    // A rename in the same request is not applied either.
    expectProblem(await patch(child.slug, { name: 'Changed', parent: grandchild.slug }), 409, 'category_cycle')
    expect(await tree()).toEqual(before)
  })

  it('answers 422 naming parent when the new parent does not exist', async () => {
    const { child, root } = await chain()
    const body = expectProblem(await patch(child.slug, { parent: `missing-${uid()}` }), 422)
    expect(Object.keys(body.errors ?? {})).toEqual(['parent'])
    expect((await getOne(child.slug)).json<CategoryNode>().parent).toBe(root.slug)
  })

  it('answers 404 for an unknown slug', async () => {
    expectProblem(await patch(`missing-${uid()}`, { name: 'Nothing' }), 404, 'not_found')
  })

  it('answers 422 for an empty body, a bad slug or a blank name', async () => {
    const { child } = await chain()
    expectProblem(await patch(child.slug, {}), 422, 'validation_error')
    expectProblem(await patch(child.slug, { slug: 'Has Spaces' }), 422, 'validation_error')
    expectProblem(await patch(child.slug, { name: '  ' }), 422, 'validation_error')
    expect((await getOne(child.slug)).json<CategoryNode>().name).toBe(child.name)
  })

  it('answers 403 to a customer and 401 without a token, changing nothing', async () => {
    const { child } = await chain()
    expectProblem(await patch(child.slug, { name: 'By a customer' }, customer), 403)
    expectProblem(await patch(child.slug, { name: 'By nobody' }, {}), 401)
    expect((await getOne(child.slug)).json<CategoryNode>().name).toBe(child.name)
  })
})

describe('DELETE /api/categories/{slug}/', () => {
  it('deletes a leaf: 204, then 404', async () => {
    const { child, grandchild } = await chain()
    const res = await remove(grandchild.slug)
    expect(res.statusCode).toBe(204)
    expect(res.body).toBe('')
    expectProblem(await getOne(grandchild.slug), 404, 'not_found')
    expect((await getOne(child.slug)).json<CategoryNode>().children).toEqual([])
  })

  it('answers 409 category_has_children for a category with subcategories and keeps it', async () => {
    const { root, child } = await chain()
    expectProblem(await remove(root.slug), 409, 'category_has_children')
    expectProblem(await remove(child.slug), 409, 'category_has_children')
    expect((await getOne(root.slug)).json<CategoryNode>().children.map((c) => c.slug)).toEqual([child.slug])
  })

  it('keeps the products of a deleted category, uncategorised', async () => {
    const { grandchild } = await chain()
    const s = uid()
    const [product] = await db().insert(products).values({ slug: `product-${s}`, name: `Product ${s}`, category_id: grandchild.id }).returning()
    expect((await remove(grandchild.slug)).statusCode).toBe(204)
    const [row] = await db().select({ id: products.id, category_id: products.category_id }).from(products).where(eq(products.id, product!.id))
    expect(row).toEqual({ id: product!.id, category_id: null })
  })

  it('answers 404 for an unknown slug', async () => {
    expectProblem(await remove(`missing-${uid()}`), 404, 'not_found')
  })

  it('answers 403 to a customer and 401 without a token, deleting nothing', async () => {
    const { grandchild } = await chain()
    expectProblem(await remove(grandchild.slug, customer), 403)
    expectProblem(await remove(grandchild.slug, {}), 401)
    expect((await getOne(grandchild.slug)).statusCode).toBe(200)
  })
})

describe.runIf(usesPostgres)('concurrent moves', () => {
  let base: string
  beforeAll(async () => {
    base = await t.app.listen({ host: '127.0.0.1', port: 0 })
  })

  const move = (slug: string, parent: string) =>
    fetch(`${base}/api/categories/${slug}/`, { method: 'PATCH', headers: { ...staff, 'content-type': 'application/json' }, body: JSON.stringify({ parent }) })

  it('never lets two siblings move under each other at once, and leaves no cycle', async () => {
    for (let round = 0; round < 10; round += 1) {
      const s = uid()
      const a = await create({ name: `A ${s}`, slug: `a-${s}` })
      const b = await create({ name: `B ${s}`, slug: `b-${s}` })
      const answers = await Promise.all([move(a.slug, b.slug), move(b.slug, a.slug)])
      // Exactly one move wins; the other sees the first and refuses the cycle.
      expect(answers.map((res) => res.status).sort()).toEqual([200, 409])
      const loser = answers.find((res) => res.status === 409)!
      expect(((await loser.json()) as { code: string }).code).toBe('category_cycle')
    }

    const rows = await db().select({ id: categories.id, parent_id: categories.parent_id }).from(categories)
    const parentOf = new Map(rows.map((row) => [row.id, row.parent_id]))
    for (const row of rows) {
      // Walking up from any node must reach the top within as many steps as there are nodes.
      let current: string | null = row.id
      let steps = 0
      while (current !== null && steps <= rows.length) {
        current = parentOf.get(current) ?? null
        steps += 1
      }
      expect(current, `cycle above ${row.id}`).toBeNull()
    }
  })
})
