import type { FastifyInstance } from 'fastify'
import type { Settings } from '../../config/index.js'
import type { AuthGuards } from '../../core/auth.js'
import type { Logger } from '../../core/logging.js'
import type { Catalog } from '../products/catalog.js'
import type { SearchBackend } from './backend.js'
import { createPostgresSearch } from './postgres.js'
import { searchRoutes, type OnSearch } from './routes.js'
import type { SearchService } from './service.js'
import type { Synonyms } from './synonyms.js'

/** /api/search/ and the staff-edited synonym groups. */
export async function searchApp(app: FastifyInstance, deps: { search: SearchService; synonyms: Synonyms; guards: AuthGuards; onSearch?: OnSearch }): Promise<void> {
  await app.register(searchRoutes(deps.search, deps.synonyms, deps.guards, deps.onSearch))
}

/**
 * OpenSearch when ELASTICSEARCH_URL is set, PostgreSQL full-text search otherwise. The OpenSearch
 * client is loaded only when used: a process that never talks to it does not carry it in memory.
 */
export async function createSearchBackend(settings: Settings, catalog: Catalog, log: Logger): Promise<SearchBackend & { close(): Promise<void> }> {
  if (!settings.search.url) return { ...createPostgresSearch(catalog), close: async () => {} }
  const { createOpenSearchBackend } = await import('./opensearch.js')
  return createOpenSearchBackend({
    url: settings.search.url,
    source: { documents: (ctx, ids) => catalog.searchDocuments(ctx, ids), batch: (ctx, afterId, limit) => catalog.searchDocumentBatch(ctx, afterId, limit) },
    log,
    indexPrefix: settings.cache.keyPrefix,
  })
}
