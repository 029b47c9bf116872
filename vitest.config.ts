import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file has its own database, so files run in parallel safely. Vitest's default is one
    // worker less than the cores (one, here); on PostgreSQL the files mostly wait on the server,
    // so three workers; PGlite (WASM) computes itself, so one per core.
    maxWorkers: process.env.DATABASE_URL ? 3 : 2,
    fileParallelism: true,
  },
})
