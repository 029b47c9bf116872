import type { FastifyInstance } from 'fastify'
import type { AuthGuards } from '../../core/auth.js'
import type { Categories } from './categories.js'
import { reviewRoutes } from './review-routes.js'
import { imageRoutes } from './image-routes.js'
import type { ProductImages } from './images.js'
import type { Reviews } from './reviews.js'
import { catalogRoutes, categoryRoutes, internalInventoryRoutes, inventoryRoutes } from './routes.js'
import type { Catalog } from './catalog.js'
import type { SearchService } from '../search/service.js'
import { CategorySchemaDefinition } from './schemas.js'
import type { ProductsService } from './service.js'

/** The catalog: /api/categories/, /api/products/ with variants, stock, images and reviews. */
export async function productsApp(app: FastifyInstance, deps: { products: ProductsService; catalog: Catalog; search: SearchService; categories: Categories; reviews: Reviews; images: ProductImages; guards: AuthGuards }): Promise<void> {
  app.addSchema(CategorySchemaDefinition)
  // Full paths: the list lives at /api/categories/ itself, with its trailing slash documented.
  await app.register(categoryRoutes(deps.categories, deps.guards))
  await app.register(inventoryRoutes(deps.products, deps.guards), { prefix: '/api/products' })
  await app.register(catalogRoutes(deps.catalog, deps.search, deps.guards))
  await app.register(internalInventoryRoutes(deps.products))
  await app.register(reviewRoutes(deps.reviews, deps.guards), { prefix: '/api/products' })
  await app.register(imageRoutes(deps.images, deps.guards), { prefix: '/api/products' })
}
