import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file has its own database, so files run in parallel safely. On PostgreSQL the files
    // mostly wait on the server, so one more worker than the 2 cores cuts the pass by a third;
    // PGlite (WASM) keeps the CPU busy itself and stays at the default.
    fileParallelism: true,
    ...(process.env.DATABASE_URL ? { maxWorkers: 3 } : {}),
  },
})
