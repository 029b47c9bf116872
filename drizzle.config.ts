import { defineConfig } from 'drizzle-kit'

// `npm run db:generate` writes a new SQL migration from the tables.ts files; commit it.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/**/tables.ts',
  out: './migrations',
})
