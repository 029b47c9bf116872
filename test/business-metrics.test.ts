/**
 * Business and reliability metrics from real flows: checkouts against the Stripe stand-in, a
 * failed and a succeeded payment by signed webhook, an expired reservation. The exposition is
 * checked by Prometheus's own `promtool`, and a real Prometheus server (Debian's package, installed
 * by .ci/run) scrapes the listening app, reads the counters back and evaluates every query of the
 * shipped Grafana dashboard.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { eq, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { payments } from '../src/apps/payments/tables.js'
import { projectRoot } from '../src/config/index.js'
import { seedPricingDefaults } from '../src/apps/cart/pricing-queries.js'
import type { OrderDto } from '../src/apps/orders/service.js'
import { factories } from './factories.js'
import { createTestApp, type TestApp } from './harness.js'
import { find, parseMetrics, valueOf } from './prometheus-text.js'
import { ADDRESS, cartWith } from './shopping.js'
import { signedDelivery, startStripeStandIn, stripeEvent, type StripeStandIn } from './stripe-stand-in.js'

const run = promisify(execFile)
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('hex')}`
const TOKEN = `metrics-${randomBytes(8).toString('hex')}`

let standIn: StripeStandIn
let t: TestApp
let f: ReturnType<typeof factories>
beforeAll(async () => {
  standIn = await startStripeStandIn({ secretKey: `sk_test_${randomBytes(16).toString('hex')}` })
  t = await createTestApp({ env: { STRIPE_SECRET_KEY: standIn.secretKey, STRIPE_API_BASE: standIn.url, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, METRICS_TOKEN: TOKEN } })
  await seedPricingDefaults(t.app.platform.database.db)
  f = factories(t)
})
afterAll(async () => {
  await t?.close()
  await standIn?.close()
})

const scrape = async () => {
  const res = await t.request({ url: '/metrics/', headers: { authorization: `Bearer ${TOKEN}` } })
  expect(res.statusCode).toBe(200)
  return { text: res.body, samples: parseMetrics(res.body) }
}
const counter = async (name: string, labels: Record<string, string> = {}) => find((await scrape()).samples, name, labels)[0]?.value ?? 0

async function placeOrder(): Promise<OrderDto> {
  const { skus } = await f.product({ stock: [5], price: 2_500 })
  const auth = await f.auth(await f.user())
  await cartWith(t, [[skus[0]!, 2]], { auth })
  const res = await t.request({ method: 'POST', url: '/api/checkout/', headers: { ...auth, 'idempotency-key': randomUUID() }, payload: { shipping_address: ADDRESS, shipping_method: 'standard' } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<OrderDto>()
}

/** Stripe tells the webhook that the order's intent moved, `ageSeconds` after it happened. */
async function bankSays(order: OrderDto, status: 'succeeded' | 'requires_payment_method', type: string, ageSeconds: number, eventId = `evt_${randomUUID()}`) {
  const [row] = await t.app.platform.database.db.select().from(payments).where(eq(payments.id, order.payment!.id))
  const { amount_refunded: _bookkeeping, ...intent } = standIn.setIntentStatus(row!.provider_ref!, status)
  const event = stripeEvent(type, intent, { id: eventId, created: Math.floor(Date.now() / 1000) - ageSeconds })
  const { payload, headers } = signedDelivery(event, WEBHOOK_SECRET)
  const res = await t.request({ method: 'POST', url: '/api/payments/webhook/', headers, payload })
  expect(res.statusCode, res.body).toBe(200)
  await t.settle()
  return eventId
}

describe('business metrics on /metrics/', () => {
  it('count orders placed and paid, revenue, payment failures with webhook lag, and expired reservations', async () => {
    const before = await scrape()
    expect(find(before.samples, 'shop_orders_placed_total')).toEqual([])

    const paid = await placeOrder()
    const expired = await placeOrder()
    expect(await counter('shop_orders_placed_total', { currency: 'USD' })).toBe(2)

    // Declined first (the event arrives 90 s late), then paid: one failure, one sale.
    const declined = await bankSays(paid, 'requires_payment_method', 'payment_intent.payment_failed', 90)
    await bankSays(paid, 'requires_payment_method', 'payment_intent.payment_failed', 90, declined) // a retry of the same event
    await bankSays(paid, 'succeeded', 'payment_intent.succeeded', 2)
    const { samples } = await scrape()
    expect(valueOf(samples, 'shop_payment_failures_total', { provider: 'stripe' })).toBe(1)
    expect(valueOf(samples, 'shop_orders_paid_total', { currency: 'USD' })).toBe(1)
    expect(valueOf(samples, 'shop_revenue_minor_units_total', { currency: 'USD' })).toBe(paid.totals.total)
    // Two first deliveries (the retry says nothing new): one 90 s late, one about 2 s.
    expect(valueOf(samples, 'shop_webhook_lag_seconds_count', { provider: 'stripe' })).toBe(2)
    expect(valueOf(samples, 'shop_webhook_lag_seconds_bucket', { provider: 'stripe', le: '60' })).toBe(1)
    expect(valueOf(samples, 'shop_webhook_lag_seconds_bucket', { provider: 'stripe', le: '300' })).toBe(2)

    await t.app.platform.database.db.execute(sql`UPDATE orders SET reservation_expires_at = now() - interval '1 minute' WHERE id = ${expired.id}`)
    await t.app.platform.queue.enqueue('orders.expire_reservations', {})
    await t.settle()
    expect(await counter('shop_reservations_expired_total')).toBe(1)
    expect(await counter('shop_orders_paid_total', { currency: 'USD' })).toBe(1)
  })

  it('expose the outbox age beside its backlog, and promtool parses the exposition with no finding on our metrics', async () => {
    const { text, samples } = await scrape()
    expect(valueOf(samples, 'outbox_oldest_event_age_seconds')).toBeGreaterThanOrEqual(0)
    expect(find(samples, 'task_queue_waiting')).toHaveLength(1)
    const lint = await promtoolCheckMetrics(text)
    // The text parses; the only lint findings are prom-client's own Node.js gauges named *_total.
    expect(lint.output).not.toMatch(/error/i)
    expect(lint.output.split('\n').filter((line) => line && !/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/.test(line))).toEqual([])
  })
})

describe('a real Prometheus server', () => {
  let scratch: string
  let prometheus: ChildProcess | undefined
  afterAll(async () => {
    prometheus?.kill('SIGTERM')
    if (prometheus && prometheus.exitCode === null) await new Promise((resolve) => prometheus!.once('exit', resolve))
    if (scratch) await rm(scratch, { recursive: true, force: true })
  })

  it("validates the shipped scrape config, scrapes the app with its token and reads the shop's counters", async () => {
    expect((await run('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml'])).stdout).toContain('SUCCESS')

    const address = await t.app.listen({ host: '127.0.0.1', port: 0 })
    const target = new URL(address).host
    scratch = await mkdtemp(join(tmpdir(), 'prometheus-'))
    await writeFile(
      join(scratch, 'prometheus.yml'),
      `global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: shop-backend\n    metrics_path: /metrics/\n    authorization: {type: Bearer, credentials: ${TOKEN}}\n    static_configs: [{targets: ["${target}"]}]\n`,
    )
    const port = 20_000 + Math.floor(Math.random() * 20_000)
    prometheus = spawn('prometheus', [`--config.file=${join(scratch, 'prometheus.yml')}`, `--storage.tsdb.path=${join(scratch, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' })

    // Polled, not slept: Prometheus answers once it has started and scraped.
    const query = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('shop_orders_placed_total{job="shop-backend"}')}`).catch(() => null)
      const body = res?.ok ? ((await res.json()) as { data: { result: Array<{ value: [number, string] }> } }) : null
      return body?.data.result[0]?.value[1] ?? null
    }
    const deadline = Date.now() + 30_000
    let placed: string | null = null
    while (placed === null && Date.now() < deadline) {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited with ${prometheus.exitCode}`)
      placed = await query()
      if (placed === null) await new Promise((resolve) => setTimeout(resolve, 250))
    }
    expect(placed).toBe('2')
    const up = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=up`)).json()) as { data: { result: Array<{ value: [number, string] }> } }
    expect(up.data.result.map((sample) => sample.value[1])).toEqual(['1'])

    // Every query of the shipped Grafana dashboard is one this Prometheus evaluates.
    for (const expr of dashboardQueries()) {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`)
      expect({ expr, status: ((await res.json()) as { status: string }).status }).toEqual({ expr, status: 'success' })
    }
  })
})

describe('the Grafana dashboard (deploy/grafana/shop-backend.json)', () => {
  it('asks only for series the app exposes, in PromQL that promtool accepts', async () => {
    const exposed = new Set(parseMetrics((await scrape()).text).map((sample) => sample.name))
    const queries = dashboardQueries()
    expect(queries.length).toBeGreaterThan(10)
    // Metric names have underscores; PromQL's functions and our label names here do not, but one.
    const names = new Set(queries.flatMap((expr) => expr.match(/\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b/g) ?? []).filter((name) => name !== 'histogram_quantile'))
    expect([...names].filter((name) => !exposed.has(name))).toEqual([])

    const scratch = await mkdtemp(join(tmpdir(), 'grafana-'))
    try {
      const rules = queries.map((expr, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(expr)}`).join('\n')
      await writeFile(join(scratch, 'rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`)
      expect((await run('promtool', ['check', 'rules', join(scratch, 'rules.yml')])).stdout).toContain(`SUCCESS: ${queries.length} rules found`)
    } finally {
      await rm(scratch, { recursive: true, force: true })
    }
  })
})

function dashboardQueries(): string[] {
  const dashboard = JSON.parse(readFileSync(join(projectRoot, 'deploy', 'grafana', 'shop-backend.json'), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> }
  return dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr))
}

async function promtoolCheckMetrics(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code: code ?? -1, output: output.trim() }))
    child.stdin.end(text)
  })
}
