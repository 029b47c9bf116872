/** OpenAPI 3.1 at /api/schema/ and Swagger UI at /api/docs/, served from local assets (no CDN). */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import type { Settings } from '../../config/index.js'

export async function registerDocs(app: FastifyInstance, settings: Settings): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Shop backend API',
        version: '1.0.0',
        description:
          'E-commerce REST API. Errors are RFC 9457 problem details; money is integer minor units; every POST accepts an Idempotency-Key header.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          serviceToken: { type: 'apiKey', in: 'header', name: 'X-Service-Token' },
          cartToken: { type: 'apiKey', in: 'header', name: 'X-Cart-Token' },
        },
      },
    },
    // Shared schemas keep their $id as the component name: #/components/schemas/Problem.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  })

  if (!settings.docs.enabled) return
  app.get('/api/schema/', { schema: { hide: true } }, async () => app.swagger())
  await app.register(swaggerUi, {
    routePrefix: '/api/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true },
    staticCSP: true,
    // Everything is served from here: no https upgrade (docs must work over plain http on a LAN),
    // no remote styles, fonts or validator images.
    transformStaticCSP: (header) =>
      header
        .replace(/\s*upgrade-insecure-requests;?/, '')
        .replace(/ https:/g, '')
        .replace(' validator.swagger.io', ''),
  })
}
