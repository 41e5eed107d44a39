import {describe, expect, it} from 'vitest'
import type {ChildMessage} from '../../src/runtime/ipc.js'
import {Outbox, type OutboxOptions} from '../../src/runtime/outbox.js'
import type {RunnerEvent} from '../../src/plugin/runner.js'

/** A channel that records writes; `backedUp` makes writes report back-pressure, `complete()` finishes them. */
class Channel {
  readonly writes: ChildMessage[] = []
  backedUp = false
  private pending: Array<() => void> = []
  write = (message: ChildMessage, done: () => void): boolean => {
    this.writes.push(message)
    this.pending.push(done)
    return !this.backedUp
  }
  complete(): void {
    for (const done of this.pending.splice(0)) done()
  }
  /** Every message written, batches unpacked, in order. */
  messages(): ChildMessage[] {
    return this.writes.flatMap((m) => (m.t === 'batch' ? m.messages : [m]))
  }
}

const payload = (i: number): ChildMessage => ({t: 'payload', data: {I: i}})
const turn = () => new Promise((resolve) => setImmediate(resolve))
const outbox = (channel: Channel, options: Partial<OutboxOptions> = {}) => new Outbox({write: channel.write, ...options})

describe('instance host outbox', () => {
  it('writes the first message of a turn at once, and the rest of the turn as one batch, in order', async () => {
    const channel = new Channel()
    const box = outbox(channel)
    for (let i = 0; i < 5; i++) box.post(payload(i))
    box.post({t: 'idle', iteration: 1, ok: true})
    expect(channel.writes).toEqual([payload(0)])
    await turn()
    expect(channel.writes).toHaveLength(2)
    expect(channel.writes[1].t).toBe('batch')
    expect(channel.messages()).toEqual([...[0, 1, 2, 3, 4].map(payload), {t: 'idle', iteration: 1, ok: true}])
    // a new turn: its first message goes out at once again
    box.post(payload(5))
    expect(channel.writes.at(-1)).toEqual(payload(5))
  })

  it('a full batch goes out at once, without waiting for the end of the turn', () => {
    const channel = new Channel()
    const box = outbox(channel, {maxBatchMessages: 3})
    for (let i = 0; i < 4; i++) box.post(payload(i))
    expect(channel.writes).toEqual([payload(0), {t: 'batch', messages: [1, 2, 3].map(payload)}])
  })

  it('flushAll writes what is queued even while blocked (the process is exiting)', () => {
    const channel = new Channel()
    const box = outbox(channel, {maxBatchMessages: 2, maxUnackedBatches: 1})
    for (let i = 0; i < 6; i++) box.post(payload(i))
    expect(box.blocked).toBe(true)
    box.flushAll()
    expect(channel.messages()).toEqual([0, 1, 2, 3, 4, 5].map(payload))
  })

  it('postNow writes after what is queued, and calls back once written', async () => {
    const channel = new Channel()
    const box = outbox(channel)
    box.post(payload(0))
    let written = false
    box.postNow({t: 'busy', iteration: 2}, () => (written = true))
    expect(channel.messages()).toEqual([payload(0), {t: 'busy', iteration: 2}])
    expect(written).toBe(false)
    channel.complete()
    expect(written).toBe(true)
  })

  it('a backed-up channel holds further writes until its write completes', async () => {
    const channel = new Channel()
    const box = outbox(channel)
    channel.backedUp = true
    box.post(payload(0))
    await turn()
    expect(box.blocked).toBe(true)
    let drained = false
    void box.drained().then(() => (drained = true))
    box.post(payload(1))
    await turn()
    expect(channel.writes).toHaveLength(1)
    channel.backedUp = false
    channel.complete()
    await turn()
    expect(drained).toBe(true)
    expect(channel.messages()).toEqual([payload(0), payload(1)])
  })

  it('waits for acknowledgements after maxUnackedBatches batches', async () => {
    const channel = new Channel()
    const box = outbox(channel, {maxBatchMessages: 2, maxUnackedBatches: 2})
    for (let i = 0; i < 10; i++) box.post(payload(i))
    // the lone first message, then two batches: blocked
    expect(channel.writes).toHaveLength(3)
    expect(box.blocked).toBe(true)
    await turn()
    expect(channel.writes).toHaveLength(3)
    box.ack(2)
    await turn()
    expect(channel.writes).toHaveLength(5)
    box.ack(2)
    await turn()
    expect(channel.messages()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(payload))
  })

  it('drops payloads past the bound while blocked, and reports the gap where it is; confirmations are kept', async () => {
    const channel = new Channel()
    const box = outbox(channel, {maxBatchMessages: 2, maxUnackedBatches: 1, maxQueuedMessages: 3})
    const confirmation: ChildMessage = {t: 'event', event: {kind: 'notification', type: 'NORMAL', code: 101, message: 'Instance command "X" OK', commandHash: 'h'}}
    for (let i = 0; i < 3; i++) box.post(payload(i)) // written: the first alone, then one unacked batch blocks
    for (let i = 3; i < 6; i++) box.post(payload(i)) // queued up to the bound
    for (let i = 6; i < 10; i++) box.post(payload(i)) // dropped
    box.post({t: 'event', event: {kind: 'log', level: 'info', text: 'dropped too'}})
    box.post(confirmation)
    box.post({t: 'commandDone', id: 1, ok: true})
    expect(box.droppedTotal).toBe(5)
    box.ack(1)
    for (let i = 0; i < 10 && box.pending > 0; i++) {
      await turn()
      box.ack(1)
    }
    const got = channel.messages()
    const gap = got.find((m): m is Extract<ChildMessage, {t: 'event'}> => m.t === 'event' && m.event.kind === 'notification' && m.event.type === 'ABNORMAL FUNCTIONING')
    expect((gap!.event as Extract<RunnerEvent, {kind: 'notification'}>).info).toEqual({DROPPED_PAYLOADS: 4, DROPPED_LOGS: 1, DROPPED_NOTIFICATIONS: 0})
    expect((gap!.event as Extract<RunnerEvent, {kind: 'notification'}>).message).toMatch(/^Dropped 4 payload\(s\), 1 log line\(s\): the instance emitted faster than the node took them/)
    expect(got).toEqual([...[0, 1, 2, 3, 4, 5].map(payload), gap, confirmation, {t: 'commandDone', id: 1, ok: true}])
  })
})
