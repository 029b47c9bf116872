/**
 * `manage tasks failed | retry ID` as an operator runs it, in a process of its own, against the
 * suite's Redis: a job that used up its attempts is listed with its error, and retrying it puts
 * it back in its queue.
 */
import { Type } from 'typebox'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../src/core/logging.js'
import { createBullmqQueue, startWorkers, type RunningWorkers } from '../src/core/queue/bullmq.js'
import { defineTask, TaskRegistry } from '../src/core/queue/index.js'
import { QUEUE_NAMES } from '../src/core/queue/routing.js'
import { uniqueName } from './database.js'
import { runManage } from './run-ts.js'

const redisUrl = process.env.REDIS_URL ?? ''
const keyPrefix = `${uniqueName('tasks')}:`
const log = createLogger({ log: { level: 'silent', pretty: false } })
const defaults = { backoffMs: 1, defaultAttempts: 2, defaultTimeoutMs: 5_000 }

const manage = (args: string[], vars: Record<string, string> = {}) => runManage(['tasks', ...args], vars)

it('without a broker explains where failed jobs are, and exits 2', async () => {
  const run = await manage(['failed'], {})
  expect(run.code).toBe(2)
  expect(run.stderr).toMatch(/Without CELERY_BROKER_URL tasks run inside the API process/)
})

describe.runIf(redisUrl)('with a broker', () => {
  const registry = new TaskRegistry().register(
    defineTask({
      name: 'test.always_fails',
      schema: Type.Object({ n: Type.Integer() }),
      async handler() {
        throw new Error('the mail server said no')
      },
    }),
  )
  const settings = { ...defaults, brokerUrl: redisUrl, prefix: `${keyPrefix}bull`, enqueueTimeoutMs: 5_000 }
  const queue = createBullmqQueue({ settings, registry, log })
  let workers: RunningWorkers
  const vars = { CELERY_BROKER_URL: redisUrl, CACHE_KEY_PREFIX: keyPrefix, ENVIRONMENT: 'test' }

  beforeAll(() => {
    workers = startWorkers({ settings: { brokerUrl: redisUrl, prefix: settings.prefix, queues: ['default'], concurrency: 1, lockDurationMs: 5_000 }, defaults, registry, log })
  })
  afterAll(async () => {
    await workers?.close(1_000)
    for (const name of QUEUE_NAMES) await queue.queue(name).obliterate({ force: true })
    await queue.close()
  })

  it('lists a job that used up its attempts, and retry puts it back in its queue', async () => {
    const { id } = await queue.enqueue('test.always_fails', { n: 1 })
    await queue.drain()
    expect(await queue.failed()).toMatchObject([{ id, task: 'test.always_fails', attempts: 2, error: 'the mail server said no' }])

    const listed = await manage(['failed'], vars)
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toContain(`${id}  test.always_fails  attempts 2`)
    expect(listed.stdout).toContain('the mail server said no')

    await workers.close(1_000)
    const retried = await manage(['retry', id], vars)
    expect(retried.code, retried.stderr).toBe(0)
    expect(retried.stdout).toBe(`Job ${id} is queued again from its first attempt.\n`)
    expect(await queue.failed()).toEqual([])
    expect(await queue.queue('default').getJobCounts('waiting')).toEqual({ waiting: 1 })

    const unknown = await manage(['retry', 'no-such-job'], vars)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/No failed job with the id "no-such-job"/)
    expect((await manage(['nonsense'], vars)).code).toBe(2)
  }, 60_000)
})
