// What the node does for subscribers: filters before the wire, R1_LIVE after history, gaps after retention.
import {afterEach, describe, expect, it} from 'vitest'
import type {NodeEvent} from '../../src/protocol/events.js'
import {GapEventSchema, LiveMarkerSchema} from '../../src/protocol/filter.js'
import {type FrameItem, formatTime} from '../../src/protocol/messages.js'
import {encodeCommand} from '../../src/protocol/wire.js'
import type {SubscriptionItem} from '../../src/session/index.js'
import {startTestNode, type TestNode} from '../server/helpers.js'
import {RawClient, replyFor} from '../server/raw-client.js'

const nodes: TestNode[] = []
const clients: RawClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const n of nodes.splice(0)) await n.dispose()
})
async function node(options: Parameters<typeof startTestNode>[0] = {}): Promise<TestNode> {
  const t = await startTestNode(options)
  nodes.push(t)
  return t
}
function heartbeats(t: TestNode, n: number): number[] {
  return Array.from({length: n}, () => t.node.core.heartbeat().EE_MESSAGE_SEQ)
}
let pipelines = 0
/** A notification from the core: PIPELINE_OK of a new, empty pipeline. */
async function notification(t: TestNode): Promise<void> {
  await t.node.core.execute('UPDATE_CONFIG', {NAME: `p${++pipelines}`, TYPE: 'Void', PLUGINS: []}, {hash: String(pipelines).padStart(64, 'f'), sender: t.client.address})
}

/** A raw subscriber that counts the frames and bytes the node sends it. */
async function rawSubscriber(t: TestNode, payload: Record<string, unknown>) {
  const client = await RawClient.connect(t.node.url, t.node.address)
  clients.push(client)
  const counts = {frames: 0, bytes: 0}
  client.ws.on('message', (data: Buffer) => {
    counts.frames++
    counts.bytes += data.length
  })
  const command = encodeCommand({ACTION: 'R1_SUBSCRIBE', PAYLOAD: payload, EE_DEST: t.node.address, INITIATOR_ID: 'test', SESSION_ID: 's', TIME: formatTime()}, t.client)
  client.send(command.text)
  await client.waitFor(replyFor(command.hash))
  return {client, counts}
}
const isLive = (i: FrameItem) => i.EE_EVENT_TYPE === 'R1_LIVE'
const events = (items: FrameItem[]) => items.filter((i) => ['PAYLOAD', 'NOTIFICATION', 'HEARTBEAT'].includes(i.EE_EVENT_TYPE) && typeof (i as NodeEvent).EE_MESSAGE_SEQ === 'number') as NodeEvent[]

describe('filters run on the node', () => {
  it('sends a filtered subscriber only matching events, in far fewer frames, history and live', async () => {
    const t = await node()
    await notification(t)
    const history = heartbeats(t, 1000)
    const all = await rawSubscriber(t, {SINCE_SEQ: 0})
    const filtered = await rawSubscriber(t, {SINCE_SEQ: 0, FILTER: {TYPES: ['NOTIFICATION']}})
    await all.client.waitFor(isLive)
    await filtered.client.waitFor(isLive)
    expect(events(all.client.items).filter((e) => e.EE_EVENT_TYPE === 'HEARTBEAT').map((e) => e.EE_MESSAGE_SEQ)).toEqual(history)
    const filteredEvents = events(filtered.client.items)
    expect(filteredEvents.length).toBeGreaterThan(0)
    expect(filteredEvents.every((e) => e.EE_EVENT_TYPE === 'NOTIFICATION')).toBe(true)
    const historyFrames = filtered.counts.frames
    expect(filtered.counts.bytes * 20).toBeLessThan(all.counts.bytes)

    // Live: 500 heartbeats, then one notification as a marker that everything before it was handled.
    const live = heartbeats(t, 500)
    await notification(t)
    await filtered.client.waitForCount((i) => i.EE_EVENT_TYPE === 'NOTIFICATION', filteredEvents.length + 1)
    await all.client.waitForCount((i) => i.EE_EVENT_TYPE === 'HEARTBEAT', history.length + live.length)
    expect(events(filtered.client.items).every((e) => e.EE_EVENT_TYPE === 'NOTIFICATION')).toBe(true)
    expect(filtered.counts.frames - historyFrames).toBe(1)
    expect(all.counts.frames - historyFrames).toBeGreaterThan(1)
  })

  it('marks the end of history with R1_LIVE at the last examined seq, also for a live-only subscription', async () => {
    const t = await node()
    const seqs = heartbeats(t, 20)
    const withHistory = await rawSubscriber(t, {SINCE_SEQ: 5, FILTER: {TYPES: ['PAYLOAD']}})
    const marker = LiveMarkerSchema.parse(await withHistory.client.waitFor(isLive))
    expect(marker.POSITION).toBe(seqs.at(-1))
    expect(marker.EE_PAYLOAD_PATH[0]).toBe(t.node.alias)
    const liveOnly = await rawSubscriber(t, {})
    expect(LiveMarkerSchema.parse(await liveOnly.client.waitFor(isLive)).POSITION).toBe(seqs.at(-1))
  })

  it('replays from a time with SINCE_TIME', async () => {
    const t = await node()
    heartbeats(t, 5)
    await new Promise((r) => setTimeout(r, 30))
    const cut = new Date().toISOString()
    await new Promise((r) => setTimeout(r, 30))
    const after = heartbeats(t, 5)
    const sub = await rawSubscriber(t, {SINCE_TIME: cut})
    await sub.client.waitFor(isLive)
    expect(events(sub.client.items).map((e) => e.EE_MESSAGE_SEQ)).toEqual(after)
  })
})

describe('resuming into seqs the journal does not hold', () => {
  const gapOf = (items: FrameItem[]) => items.filter((i) => i.EE_EVENT_TYPE === 'R1_GAP').map((i) => GapEventSchema.parse(i))

  it('another journal (data dir wiped): a reset gap to 0, then the whole journal', async () => {
    const t = await node()
    const seqs = heartbeats(t, 8)
    const sub = await rawSubscriber(t, {SINCE_SEQ: 500, JOURNAL_ID: 'a-journal-that-is-gone'})
    await sub.client.waitFor(isLive)
    expect(gapOf(sub.client.items)).toMatchObject([{REASON: 'reset', FROM_SEQ: 501, TO_SEQ: 0, JOURNAL_ID: t.node.journal.id}])
    expect(events(sub.client.items).map((e) => e.EE_MESSAGE_SEQ)).toEqual(seqs)
  })

  it('this journal gone back (a restored backup): a reset gap to its last seq, then live', async () => {
    const t = await node()
    heartbeats(t, 8)
    const sub = await rawSubscriber(t, {SINCE_SEQ: 500, JOURNAL_ID: t.node.journal.id})
    await sub.client.waitFor(isLive)
    expect(gapOf(sub.client.items)).toMatchObject([{REASON: 'reset', FROM_SEQ: 501, TO_SEQ: 8}])
    const later = heartbeats(t, 3)
    await sub.client.waitFor((i) => (i as NodeEvent).EE_MESSAGE_SEQ === later.at(-1))
    expect(events(sub.client.items).map((e) => e.EE_MESSAGE_SEQ)).toEqual(later)
  })

  it('the same journal, within it: no gap; and no JOURNAL_ID (an earlier client): no reset', async () => {
    const t = await node()
    const seqs = heartbeats(t, 8)
    const same = await rawSubscriber(t, {SINCE_SEQ: 3, JOURNAL_ID: t.node.journal.id})
    await same.client.waitFor(isLive)
    expect(gapOf(same.client.items)).toEqual([])
    expect(events(same.client.items).map((e) => e.EE_MESSAGE_SEQ)).toEqual(seqs.slice(3))
    const legacy = await rawSubscriber(t, {SINCE_SEQ: 500})
    await legacy.client.waitFor(isLive)
    expect(gapOf(legacy.client.items)).toEqual([])
  })
})

describe('retention', () => {
  it('tells a subscriber exactly which range it lost when retention ran out, then streams the rest', async () => {
    const t = await node({journal: {segmentBytes: 16 * 1024, maxBytes: 64 * 1024}})
    const seqs = heartbeats(t, 2000)
    t.node.journal.flush()
    const first = t.node.journal.firstSeq()
    expect(first).toBeGreaterThan(100)
    const session = await t.connect()
    const items: SubscriptionItem[] = []
    let live = false
    const stop = new AbortController()
    const onLive = () => {
      live = true
      stop.abort()
    }
    for await (const item of session.subscribe({sinceSeq: 10, onLive, signal: stop.signal})) items.push(item)
    expect(GapEventSchema.parse(items[0])).toMatchObject({FROM_SEQ: 11, TO_SEQ: first - 1, REASON: 'retention'})
    expect(items.slice(1).map((i) => (i as NodeEvent).EE_MESSAGE_SEQ)).toEqual(seqs.filter((s) => s >= first))
    expect(live).toBe(true)
  })
})
