import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {NodeEvent} from '../../src/protocol/events.js'
import {formatTime} from '../../src/protocol/messages.js'
import {encodeCommand} from '../../src/protocol/wire.js'
import type {SubscriptionItem} from '../../src/session/index.js'
import {startTestNode, type TestNode} from '../server/helpers.js'
import {RawClient, replyFor} from '../server/raw-client.js'

let t: TestNode
beforeAll(async () => {
  t = await startTestNode({server: {maxQueuedEvents: 300, highWaterBytes: 64 * 1024}})
})
afterAll(async () => t?.dispose())

const seqOf = (item: SubscriptionItem) => (item.EE_EVENT_TYPE === 'R1_GAP' ? -1 : (item as NodeEvent).EE_MESSAGE_SEQ)

/** Emits n heartbeats on the node, yielding to the event loop every 200 so frames flow. */
async function heartbeats(n: number): Promise<number[]> {
  const seqs: number[] = []
  for (let i = 0; i < n; i++) {
    seqs.push(t.node.core.heartbeat().EE_MESSAGE_SEQ)
    if (i % 200 === 199) await new Promise((r) => setImmediate(r))
  }
  return seqs
}

async function take(iterator: AsyncGenerator<SubscriptionItem>, n: number): Promise<SubscriptionItem[]> {
  const out: SubscriptionItem[] = []
  while (out.length < n) {
    const next = await iterator.next()
    if (next.done) break
    out.push(next.value)
  }
  return out
}

describe('subscriptions', () => {
  it('live, filtered on the node: only the asked types arrive, in seq order', async () => {
    const session = await t.connect()
    const iterator = session.subscribe({types: ['HEARTBEAT']})
    const first = iterator.next() // subscribes
    await new Promise((r) => setTimeout(r, 100))
    const seqs = await heartbeats(5)
    const items = [(await first).value as SubscriptionItem, ...(await take(iterator, 4))]
    expect(items.map(seqOf)).toEqual(seqs)
    expect(items.every((i) => i.EE_EVENT_TYPE === 'HEARTBEAT')).toBe(true)
    await iterator.return(undefined)
  })

  it('history first (SINCE_SEQ, LAST), then live, without duplicates', async () => {
    const before = await heartbeats(10)
    const session = await t.connect()
    const since = session.subscribe({types: ['HEARTBEAT'], sinceSeq: before[4]})
    const history = await take(since, 5)
    expect(history.map(seqOf)).toEqual(before.slice(5))
    const live = await heartbeats(2)
    expect((await take(since, 2)).map(seqOf)).toEqual(live)
    await since.return(undefined)

    const last = session.subscribe({types: ['HEARTBEAT'], last: 3})
    expect((await take(last, 3)).map(seqOf)).toEqual([...before, ...live].slice(-3))
    await last.return(undefined)
  })

  it('resumes after a dropped connection: nothing lost, nothing repeated', async () => {
    const session = await t.connect({reconnect: {initialDelayMs: 50, maxDelayMs: 200}})
    const iterator = session.subscribe({types: ['HEARTBEAT']})
    const pending = iterator.next()
    await new Promise((r) => setTimeout(r, 100))
    const a = await heartbeats(3)
    const got = [(await pending).value as SubscriptionItem, ...(await take(iterator, 2))]
    session.dropConnection()
    const b = await heartbeats(4) // emitted while the session is away
    const c = await heartbeats(1)
    got.push(...(await take(iterator, 5)))
    const d = await heartbeats(2)
    got.push(...(await take(iterator, 2)))
    expect(got.map(seqOf)).toEqual([...a, ...b, ...c, ...d])
    await iterator.return(undefined)
  })

  it('a reader that stops reading does not make the node buffer without bound; it catches up from the journal', async () => {
    const reader = await RawClient.connect(t.node.url, t.node.address)
    const subscribe = encodeCommand({ACTION: 'R1_SUBSCRIBE', PAYLOAD: {TYPES: ['HEARTBEAT']}, EE_DEST: t.node.address, INITIATOR_ID: 'slow', SESSION_ID: 's', TIME: formatTime()}, t.client)
    reader.send(subscribe.text)
    await reader.waitFor(replyFor(subscribe.hash))
    reader.ws.pause() // stop reading: TCP fills up, the node's socket backs up
    const fallbacksBefore = t.node.server.stats.fallbacks
    const seqs = await heartbeats(30_000)
    await new Promise((r) => setTimeout(r, 200))
    expect(t.node.server.stats.maxQueueLength).toBeLessThan(300 + 50)
    expect(t.node.server.stats.fallbacks).toBeGreaterThan(fallbacksBefore)
    reader.ws.resume()
    const received = await reader.waitForCount((i) => i.EE_EVENT_TYPE === 'HEARTBEAT' && (i as NodeEvent).EE_MESSAGE_SEQ >= seqs[0]!, seqs.length, 60_000)
    expect(received.map((i) => (i as NodeEvent).EE_MESSAGE_SEQ)).toEqual(seqs)
    expect(reader.items.some((i) => i.EE_EVENT_TYPE === 'R1_GAP')).toBe(false)
    reader.close()
  })
})
