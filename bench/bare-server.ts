/** The bound for bench/platform.ts: a bare Fastify answering the liveness route, nothing else. */
import Fastify from 'fastify'

const app = Fastify()
app.get('/health/live/', async () => ({ status: 'ok' }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
