import type { FastifyInstance } from 'fastify'
import type { AuthGuards } from '../../core/auth.js'
import type { Categories } from './categories.js'
import { categoryRoutes, inventoryRoutes } from './routes.js'
import { CategorySchemaDefinition } from './schemas.js'
import type { ProductsService } from './service.js'

/** The catalog so far: /api/categories/ and the staff inventory routes under /api/products/. */
export async function productsApp(app: FastifyInstance, deps: { products: ProductsService; categories: Categories; guards: AuthGuards }): Promise<void> {
  app.addSchema(CategorySchemaDefinition)
  // Full paths: the list lives at /api/categories/ itself, with its trailing slash documented.
  await app.register(categoryRoutes(deps.categories, deps.guards))
  await app.register(inventoryRoutes(deps.products, deps.guards), { prefix: '/api/products' })
}
