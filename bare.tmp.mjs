import Fastify from 'fastify'
const app = Fastify()
app.get('/health/live/', async () => ({ status: 'ok' }))
await app.listen({ port: 8050, host: '127.0.0.1' })
