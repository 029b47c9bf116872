/**
 * How a payment's status may move (status.ts): provider events arrive late, twice and out of
 * order. The same status never moves; `succeeded` is final and replaces anything, even a
 * cancellation we recorded; `canceled` is final against everything but `succeeded`; otherwise
 * the newer event wins, and events of the same second are ordered by how far along they are.
 */
import { describe, expect, it } from 'vitest'
import { isUsable, mayMove } from './status.js'
import { paymentStatuses, type PaymentStatus } from './tables.js'

const AT = 1_700_000_000
const at = (status: PaymentStatus, seconds: number) => ({ status, at: seconds })

describe('mayMove', () => {
  it.each(paymentStatuses)('never moves %s to itself, whatever the time', (status) => {
    for (const seconds of [AT - 60, AT, AT + 60]) expect(mayMove(at(status, AT), at(status, seconds))).toBe(false)
  })

  it.each(paymentStatuses.filter((status) => status !== 'succeeded'))('keeps succeeded against %s, even from a newer event', (next) => {
    for (const seconds of [AT - 60, AT, AT + 60]) expect(mayMove(at('succeeded', AT), at(next, seconds))).toBe(false)
  })

  it.each(['pending', 'processing', 'failed', 'canceled'] as const)('lets succeeded replace %s, even from an older event', (current) => {
    for (const seconds of [AT - 3600, AT, AT + 1]) expect(mayMove(at(current, AT), at('succeeded', seconds))).toBe(true)
  })

  it.each(['pending', 'processing', 'failed'] as const)('keeps canceled against %s, even from a newer event', (next) => {
    for (const seconds of [AT - 60, AT, AT + 60]) expect(mayMove(at('canceled', AT), at(next, seconds))).toBe(false)
  })

  it.each(['pending', 'processing', 'failed'] as const)('lets canceled replace %s, even from an older event', (current) => {
    for (const seconds of [AT - 60, AT, AT + 60]) expect(mayMove(at(current, AT), at('canceled', seconds))).toBe(true)
  })

  it('lets a newer event win among pending, processing and failed, in either direction', () => {
    expect(mayMove(at('pending', AT), at('processing', AT + 1))).toBe(true)
    expect(mayMove(at('processing', AT), at('failed', AT + 1))).toBe(true)
    // A retry after a decline: the payment is processing again.
    expect(mayMove(at('failed', AT), at('processing', AT + 5))).toBe(true)
    expect(mayMove(at('failed', AT), at('pending', AT + 5))).toBe(true)
    expect(mayMove(at('processing', AT), at('pending', AT + 1))).toBe(true)
  })

  it('never lets an older event move the payment back', () => {
    expect(mayMove(at('processing', AT), at('pending', AT - 1))).toBe(false)
    expect(mayMove(at('failed', AT), at('processing', AT - 1))).toBe(false)
    // Even one further along: it was superseded by what came after it.
    expect(mayMove(at('pending', AT), at('processing', AT - 1))).toBe(false)
    expect(mayMove(at('processing', AT), at('failed', AT - 1))).toBe(false)
  })

  it('orders events of the same second by progress: pending < processing < failed', () => {
    const order = ['pending', 'processing', 'failed'] as const
    for (const [i, current] of order.entries()) {
      for (const [j, next] of order.entries()) {
        if (i !== j) expect(mayMove(at(current, AT), at(next, AT)), `${current} → ${next}`).toBe(j > i)
      }
    }
  })
})

describe('isUsable', () => {
  it('reuses every payment but a cancelled one', () => {
    expect(Object.fromEntries(paymentStatuses.map((status) => [status, isUsable(status)]))).toEqual({
      pending: true,
      processing: true,
      succeeded: true,
      failed: true,
      canceled: false,
    })
  })
})
