// Signing is taken a batch per event-loop turn, so that a fleet command's frames leave while the rest
// are still being signed. Real event loop, no fake timers: what matters is what runs between batches.
import {beforeEach, describe, expect, it} from 'vitest'
import {SIGNED_PER_TURN, signingTurn} from '../../src/session/turns.js'

/** Calls signingTurn() `count` times in one synchronous burst; resolves with the order callers got their turn and the macrotasks seen between. */
async function burst(count: number): Promise<{order: number[]; immediate: number[]; log: string[]}> {
  const order: number[] = []
  const immediate: number[] = []
  const log: string[] = []
  const callers = Array.from({length: count}, async (_, i) => {
    const wait = signingTurn()
    if (wait) await wait
    else immediate.push(i)
    order.push(i)
    log.push(`sign ${i}`)
  })
  // a macrotask queued with the burst, as a socket's readable event would be: it must run between batches
  setImmediate(() => log.push('io'))
  await Promise.all(callers)
  return {order, immediate, log}
}

describe('signingTurn', () => {
  // nothing signed in this turn yet: the batches below are counted from an idle queue
  beforeEach(() => new Promise((resolve) => setImmediate(() => setImmediate(resolve))))

  it('lets the first batch of a turn sign at once and the rest in later turns, first come first served, with other work in between', async () => {
    const count = SIGNED_PER_TURN * 3 + 5
    const {order, immediate, log} = await burst(count)
    expect(immediate).toEqual(Array.from({length: SIGNED_PER_TURN}, (_, i) => i))
    expect(order).toEqual(Array.from({length: count}, (_, i) => i))
    // the macrotask ran after the first batch and before the last caller signed
    const io = log.indexOf('io')
    expect(io).toBeGreaterThanOrEqual(SIGNED_PER_TURN)
    expect(io).toBeLessThan(log.length - 1)
  })

  it('never holds a lone caller back, and is idle again once the queue is empty', async () => {
    await burst(SIGNED_PER_TURN * 2)
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
    expect(signingTurn()).toBeUndefined()
  })
})
