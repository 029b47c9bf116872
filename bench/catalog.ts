/**
 * Catalog benchmark: a production-mode API process (built JavaScript, PostgreSQL, Redis) on a
 * seeded catalog, against its bound — bare Fastify serving the same data with one hand-written
 * SQL statement and JSON.stringify (bench/bare-catalog.ts) — measured turn by turn in one run, so
 * the ratios hold on a noisy machine.
 *
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench
 *
 * The catalog is seeded into a scratch database (dropped at the end). BENCH_PRODUCTS (10000),
 * BENCH_CONNECTIONS (32) and BENCH_SECONDS (10) change the run. Not run by CI.
 */
import autocannon from 'autocannon'
import pg from 'pg'
import { productionBench, productionEnv, rssOf, run, startProdCommand } from './support.js'

const PRODUCTS = Number(process.env.BENCH_PRODUCTS ?? 10_000)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const DURATION = Number(process.env.BENCH_SECONDS ?? 10)
const TARGETS = { ratio: 0.7, p99Ms: 30, rssMiB: 150 }

// The run's own scratch database and cache keys, removed at the end (also on failure).
const { database, cachePrefix, servers, setupEnv, cleanUp } = await productionBench('catalog')

try {
  await run('node', ['--import', 'tsx', 'src/manage.ts', 'migrate'], setupEnv)
  const seeded = Date.now()
  await run('node', ['--import', 'tsx', 'src/manage.ts', 'seed_demo', '--products', String(PRODUCTS)], setupEnv)
  process.stdout.write(`seeded ${PRODUCTS} products in ${((Date.now() - seeded) / 1000).toFixed(1)} s\n`)

  const sample = await pickSample(database.url)
  // Exactly what production runs: `npm run start:prod`, its Node flags included.
  const ours = await servers.start(...(await startProdCommand()), {
    ...process.env,
    ...productionEnv(),
    CACHE_KEY_PREFIX: cachePrefix,
    DATABASE_URL: database.url,
  })
  const bound = await servers.start('node', ['--import', 'tsx', 'bench/bare-catalog.ts'], { ...process.env, DATABASE_URL: database.url })

  // A counter shared by every connection: each request asks for a page no one asked for before.
  const fresh = (path: (n: number) => string) => {
    let n = 0
    return () => path(n++)
  }
  const scenarios = [
    { name: 'product list (20, with variants)', ours: ['/api/products/?limit=20'], bound: ['/list'] },
    { name: 'product detail', ours: sample.slugs.map((slug) => `/api/products/${slug}/`), bound: sample.slugs.map((slug) => `/detail/${slug}`) },
    { name: `search "${sample.word}"`, ours: [`/api/search/?q=${sample.word}`], bound: [`/search?q=${sample.word}`] },
    {
      // Every request a different page: what an uncached read costs (render, count, four statements).
      name: 'product list, cold cache',
      ours: fresh((n) => `/api/products/?limit=20&min_price=${n}`),
      bound: fresh((n) => `/list?min_price=${n}`),
    },
    {
      name: 'filtered list',
      ours: [`/api/products/?category=${sample.category}&min_price=1000&max_price=10000&ordering=price`],
      bound: [`/filtered?category=${sample.category}&min_price=1000&max_price=10000`],
    },
  ]

  const rows: string[] = []
  const verdicts: string[] = []
  let peakRss = 0
  let targetPeakRss = 0
  for (const scenario of scenarios) {
    const isTarget = !scenario.name.startsWith('filtered') && !scenario.name.includes('cold')
    const base = await measure(bound.url, scenario.bound)
    let scenarioRss = 0
    const mine = await measure(ours.url, scenario.ours, () => rssOf(ours.child.pid!).then((rss) => void (scenarioRss = Math.max(scenarioRss, rss))))
    peakRss = Math.max(peakRss, scenarioRss)
    if (isTarget) targetPeakRss = Math.max(targetPeakRss, scenarioRss)
    const ratio = mine.rps / base.rps
    rows.push(`| ${scenario.name} | ${mine.rps} | ${mine.p50} | ${mine.p99} | ${base.rps} | ${base.p50} | ${base.p99} | ${(ratio * 100).toFixed(0)} % | ${mine.errors + base.errors} | ${scenarioRss.toFixed(0)} |`)
    if (isTarget) {
      verdicts.push(`${scenario.name}: ${ratio >= TARGETS.ratio ? 'meets' : 'MISSES'} ≥ ${TARGETS.ratio * 100} % of the bound; p99 ${mine.p99} ms ${mine.p99 < TARGETS.p99Ms ? 'meets' : 'MISSES'} < ${TARGETS.p99Ms} ms`)
    }
  }
  verdicts.push(`API process peak RSS over the list, detail and search runs ${targetPeakRss.toFixed(0)} MiB: ${targetPeakRss < TARGETS.rssMiB ? 'meets' : 'MISSES'} < ${TARGETS.rssMiB} MiB (over every run: ${peakRss.toFixed(0)} MiB)`)

  process.stdout.write(
    [
      '',
      `${PRODUCTS} products, ${CONNECTIONS} connections, ${DURATION} s per run, production mode (npm run start:prod) vs bare Fastify + one SQL statement`,
      '| scenario | req/s | p50 ms | p99 ms | bound req/s | bound p50 | bound p99 | ratio | errors | API RSS MiB |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
      ...verdicts,
      '',
    ].join('\n'),
  )
} finally {
  await cleanUp()
}

/** Requests per second and latency percentiles for a set of paths cycled by every connection, or a path per request. */
async function measure(url: string, paths: string[] | (() => string), onSample?: () => Promise<void>) {
  const requests =
    typeof paths === 'function'
      ? [{ method: 'GET' as const, setupRequest: (request: { path?: string }) => ({ ...request, path: paths() }) }]
      : paths.map((path) => ({ method: 'GET' as const, path }))
  await autocannon({ url, requests, connections: CONNECTIONS, duration: 2 })
  const timer = onSample ? setInterval(() => void onSample(), 250) : null
  const result = await autocannon({ url, requests, connections: CONNECTIONS, duration: DURATION })
  if (timer) clearInterval(timer)
  return { rps: Math.round(result.requests.average), p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}

/** Slugs for detail pages, a category with many products, and a word many names share. */
async function pickSample(url: string) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const slugs = (await client.query<{ slug: string }>(`SELECT slug FROM products WHERE is_active AND deleted_at IS NULL AND price IS NOT NULL ORDER BY md5(id::text) LIMIT 100`)).rows.map((row) => row.slug)
    const category = (await client.query<{ slug: string }>(`SELECT c.slug FROM categories c WHERE c.parent_id IS NULL ORDER BY (SELECT count(*) FROM categories s WHERE s.parent_id = c.id) DESC, c.slug LIMIT 1`)).rows[0]!.slug
    const word = (await client.query<{ word: string }>(`SELECT word FROM search_words w WHERE length(word) >= 5 ORDER BY (SELECT count(*) FROM products p WHERE p.name ILIKE '%' || w.word || '%') DESC, word LIMIT 1`)).rows[0]!.word
    return { slugs, category, word }
  } finally {
    await client.end()
  }
}




