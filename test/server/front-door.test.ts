import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import WebSocket from 'ws'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import type {NodeEvent} from '../../src/protocol/events.js'
import {generateIdentity, type Identity} from '../../src/protocol/identity.js'
import {BUNDLE_CHUNK_BYTES, formatTime, type Rejection, type UnsignedCommand} from '../../src/protocol/messages.js'
import {encodeCommand} from '../../src/protocol/wire.js'
import {startNodeServer} from '../../src/runtime/serve.js'
import {allowAddress} from '../../src/runtime/server-allowlist.js'
import {execPipeline, startTestNode, type TestNode} from './helpers.js'
import {RawClient, rejectionFor, replyFor} from './raw-client.js'

/**
 * The node's front door against abuse, over real sockets: replay across a restart, a replay cache
 * strangers cannot fill, connection slots strangers cannot take, public heartbeats that leak and
 * journal nothing, bundle uploads per sender spooled to disk.
 */

function command(nodeAddress: string, action: UnsignedCommand['ACTION'], payload: unknown): UnsignedCommand {
  return {ACTION: action, PAYLOAD: payload, EE_DEST: nodeAddress, INITIATOR_ID: 'front-door', SESSION_ID: 's', TIME: formatTime()}
}

/** Sends a signed command on a raw connection; resolves with its reply or its rejection. */
async function roundTrip(client: RawClient, identity: Identity, action: UnsignedCommand['ACTION'], payload: unknown, text?: string) {
  const encoded = text ? {text, hash: /"EE_HASH":"([0-9a-f]{64})"/.exec(text)![1]!} : encodeCommand(command(client.nodeAddress, action, payload), identity)
  client.send(encoded.text)
  const item = await client.waitFor((i) => replyFor(encoded.hash)(i) || rejectionFor(encoded.hash)(i))
  client.items.splice(client.items.indexOf(item), 1)
  return {item: item as Rejection | (typeof item & {RESULT: unknown}), text: encoded.text, hash: encoded.hash}
}

const reasonOf = (item: unknown) => (item as {REASON?: string}).REASON

describe('replay protection survives a restart', () => {
  let dataDir: string
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'r1-front-replay-'))
  })
  afterAll(async () => rm(dataDir, {recursive: true, force: true}))

  it('a signed UPDATE_CONFIG replayed after the node restarted on the same data dir is REPLAY and changes nothing', async () => {
    const client = generateIdentity()
    await allowAddress(dataDir, client.address)
    const pipeline = (code: string) => ({...execPipeline('replayed', 'exec-1', 30), PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'exec-1', PROCESS_DELAY: 30, CODE: code}]}]})
    let node = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, log: () => undefined})
    let raw = await RawClient.connect(node.url, node.address)
    const old = await roundTrip(raw, client, 'UPDATE_CONFIG', pipeline('return {v: 1}'))
    expect(old.item.EE_EVENT_TYPE).toBe('R1_REPLY')
    expect((await roundTrip(raw, client, 'UPDATE_CONFIG', pipeline('return {v: 2}'))).item.EE_EVENT_TYPE).toBe('R1_REPLY')
    raw.close()
    await node.stop()
    // a partial upload left behind by the last run is cleaned at start
    await mkdir(join(dataDir, 'uploads', 'left-over'), {recursive: true})
    await writeFile(join(dataDir, 'uploads', 'left-over', '0'), 'partial')

    node = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, log: () => undefined})
    try {
      raw = await RawClient.connect(node.url, node.address)
      const again = await roundTrip(raw, client, 'UPDATE_CONFIG', null, old.text)
      expect(reasonOf(again.item)).toBe('REPLAY')
      const plugins = node.core.state().find((p) => p.name === 'replayed')!.config.PLUGINS
      expect(plugins[0]!.INSTANCES[0]!.CODE).toBe('return {v: 2}')
      expect(await readdir(join(dataDir, 'uploads'))).toEqual([])
      raw.close()
    } finally {
      await node.stop()
    }
  })
})

describe('the replay cache', () => {
  let t: TestNode
  let offset = 0
  beforeAll(async () => {
    t = await startTestNode({rateLimit: {burst: 1000, perSecond: 1000}, server: {replayPerSender: 20, now: () => Date.now() + offset}})
  })
  afterAll(async () => t?.dispose())

  it('remembers a hash through a housekeeping pass inside the skew window', async () => {
    const raw = await RawClient.connect(t.node.url, t.node.address)
    const first = await roundTrip(raw, t.client, 'R1_STATE', null)
    expect(first.item.EE_EVENT_TYPE).toBe('R1_REPLY')
    offset = 4 * 60_000 // still within ±5 min of the command's TIME
    t.node.server.expire()
    expect(reasonOf((await roundTrip(raw, t.client, 'R1_STATE', null, first.text)).item)).toBe('REPLAY')
    offset = 0
    raw.close()
  })

  it('is not filled by strangers: their refused commands are not remembered (the same frame passes once the key is allowed)', async () => {
    const stranger = generateIdentity()
    const raw = await RawClient.connect(t.node.url, t.node.address)
    const refused = []
    for (let i = 0; i < 200; i++) refused.push((await roundTrip(raw, stranger, 'UPDATE_CONFIG', execPipeline(`s${i}`))).item)
    expect(new Set(refused.map(reasonOf))).toEqual(new Set(['NOT_ALLOWED']))
    const later = encodeCommand(command(t.node.address, 'R1_STATE', null), stranger)
    expect(reasonOf((await roundTrip(raw, stranger, 'R1_STATE', null, later.text)).item)).toBe('NOT_ALLOWED')
    await allowAddress(t.dataDir, stranger.address)
    expect((await roundTrip(raw, stranger, 'R1_STATE', null, later.text)).item.EE_EVENT_TYPE).toBe('R1_REPLY')
    expect(t.node.server.replay.countFor(stranger.address)).toBe(1)
    raw.close()
  })

  it('is bounded per sender: a sender at its bound is THROTTLED, another allowed sender is served', async () => {
    const busy = generateIdentity()
    await allowAddress(t.dataDir, busy.address)
    const raw = await RawClient.connect(t.node.url, t.node.address)
    const outcomes = []
    for (let i = 0; i < 25; i++) outcomes.push((await roundTrip(raw, busy, 'R1_STATE', {NAME: `n${i}`})).item)
    expect(outcomes.filter((o) => o.EE_EVENT_TYPE === 'R1_REPLY')).toHaveLength(20)
    expect(outcomes.slice(20).map(reasonOf)).toEqual(Array(5).fill('THROTTLED'))
    expect((await roundTrip(raw, t.client, 'R1_STATE', null)).item.EE_EVENT_TYPE).toBe('R1_REPLY')
    raw.close()
  })
})

/** Opens a bare r1.v1 socket and sends nothing: 'open', or the HTTP status that refused it. */
function openIdle(url: string, localAddress?: string): Promise<{ws: WebSocket; outcome: 'open' | number | string; closed: Promise<number>}> {
  const ws = new WebSocket(url, 'r1.v1', localAddress ? {localAddress} : {})
  ws.on('error', () => undefined)
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ws, outcome: 'open', closed}))
    ws.once('unexpected-response', (_req, res) => resolve({ws, outcome: res.statusCode ?? 0, closed}))
    ws.once('error', (e) => resolve({ws, outcome: e.message, closed}))
  })
}

describe('connection slots: strangers cannot lock an allow-listed sender out', () => {
  const sockets: WebSocket[] = []
  afterEach(() => {
    for (const ws of sockets.splice(0)) ws.terminate()
  })

  it('300 idle unauthenticated sockets on a 64-slot node: an allow-listed session still connects and gets its state', async () => {
    const t = await startTestNode({server: {maxConnections: 64, maxConnectionsPerIp: 1000}})
    try {
      for (let round = 0; round < 3; round++) {
        const opened = await Promise.all(Array.from({length: 100}, () => openIdle(t.node.url)))
        sockets.push(...opened.map((o) => o.ws))
      }
      expect(t.node.server.connectionCount).toBeLessThanOrEqual(64)
      const session = await t.connect()
      expect((await session.state()).ADDRESS).toBe(t.node.address)
      expect(t.node.server.stats.evicted).toBeGreaterThan(200)
      // strangers stay below the soft cap: the reserved slots are there for allow-listed senders
      const stillOpen = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length
      expect(stillOpen).toBeLessThanOrEqual(64 - 8)
    } finally {
      await t.dispose()
    }
  })

  it('per IP: one address holds at most maxConnectionsPerIp unauthenticated sockets (its oldest are evicted, 1013); other addresses keep theirs', async () => {
    const t = await startTestNode({server: {maxConnectionsPerIp: 10}})
    try {
      const other = await openIdle(t.node.url, '127.0.0.3')
      sockets.push(other.ws)
      const flood = []
      for (let i = 0; i < 40; i++) flood.push(await openIdle(t.node.url, '127.0.0.2'))
      sockets.push(...flood.map((o) => o.ws))
      expect(flood.every((o) => o.outcome === 'open')).toBe(true)
      expect(await flood[0]!.closed).toBe(1013)
      await Promise.all(flood.slice(0, 30).map((o) => o.closed))
      expect(flood.slice(30).every((o) => o.ws.readyState === WebSocket.OPEN)).toBe(true)
      expect(other.ws.readyState).toBe(WebSocket.OPEN)
    } finally {
      await t.dispose()
    }
  })

  it('an unauthenticated connection is closed after the grace (1008), even one that got a public heartbeat; an allow-listed one stays', async () => {
    const t = await startTestNode({server: {authGraceMs: 300}})
    try {
      const session = await t.connect()
      await session.state()
      const idle = await openIdle(t.node.url)
      sockets.push(idle.ws)
      const stranger = await RawClient.connect(t.node.url, t.node.address)
      expect((await roundTrip(stranger, generateIdentity(), 'FULL_HEARTBEAT', null)).item.EE_EVENT_TYPE).toBe('R1_REPLY')
      expect(await idle.closed).toBe(1008)
      expect(await stranger.waitClosed()).toBe(1008)
      // the session connected before both: its grace ran out first, and it is still served
      expect((await session.state()).ADDRESS).toBe(t.node.address)
    } finally {
      await t.dispose()
    }
  })
})

describe('public heartbeats', () => {
  let t: TestNode
  beforeAll(async () => {
    t = await startTestNode({rateLimit: {burst: 1000, perSecond: 1000}})
    const session = await t.connect()
    const failing = {...execPipeline('billing-db'), PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'sync', PROCESS_DELAY: 5, CODE: "throw new Error('cannot reach postgres://admin:hunter2@db.internal/billing')"}]}]}
    await session.send('UPDATE_CONFIG', failing)
    const deadline = Date.now() + 20_000
    while (!t.node.core.state().some((p) => p.instances.some((i) => i.lastError?.includes('hunter2'))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  })
  afterAll(async () => t?.dispose())

  it('a stranger gets identity, version, uptime and load only; never journaled; rate-limited; an allowed sender gets the full one', async () => {
    expect(t.node.core.state()[0]!.instances[0]!.lastError).toContain('hunter2')
    const heartbeats: NodeEvent[] = []
    const off = t.node.core.onEvent((event) => event.EE_EVENT_TYPE === 'HEARTBEAT' && heartbeats.push(event))
    const stranger = generateIdentity()
    const raw = await RawClient.connect(t.node.url, t.node.address)
    const answers = []
    for (let i = 0; i < 30; i++) answers.push((await roundTrip(raw, stranger, 'FULL_HEARTBEAT', null)).item)
    off()
    const replies = answers.filter((a) => a.EE_EVENT_TYPE === 'R1_REPLY') as Array<{RESULT: Record<string, unknown>}>
    expect(replies.length).toBeGreaterThanOrEqual(1)
    expect(answers.some((a) => reasonOf(a) === 'THROTTLED')).toBe(true)
    const result = replies[0]!.RESULT
    expect(result).toMatchObject({EE_EVENT_TYPE: 'HEARTBEAT', EE_ADDR: t.node.address, EE_ALIAS: t.node.alias, R1_PUBLIC: true, PIPELINES: [], ACTIVE_PLUGINS: []})
    expect(typeof result.UPTIME).toBe('number')
    expect(typeof result.VERSION).toBe('string')
    const text = JSON.stringify(replies)
    expect(text).not.toContain('hunter2')
    expect(text).not.toContain('billing-db')
    expect(heartbeats).toEqual([])
    const full = (await roundTrip(raw, t.client, 'FULL_HEARTBEAT', null)).item as {RESULT: {PIPELINES: string[]}}
    expect(full.RESULT.PIPELINES).toContain('billing-db')
    raw.close()
  })
})

describe('bundle uploads: per sender, spooled, expiring', () => {
  let t: TestNode
  let offset = 0
  beforeAll(async () => {
    t = await startTestNode({rateLimit: {burst: 1000, perSecond: 1000}, server: {now: () => Date.now() + offset}})
  })
  afterAll(async () => t?.dispose())

  const chunk0 = (seed: number) => {
    const bytes = Buffer.alloc(BUNDLE_CHUNK_BYTES + 10, seed)
    return {HASH: createHash('sha256').update(bytes).digest('hex'), SIZE: bytes.length, INDEX: 0, COUNT: 2, DATA: bytes.subarray(0, BUNDLE_CHUNK_BYTES).toString('base64')}
  }

  it("abandoned uploads use their sender's slots only, on disk; they expire after the idle time", async () => {
    const hoarder = generateIdentity()
    await allowAddress(t.dataDir, hoarder.address)
    const raw = await RawClient.connect(t.node.url, t.node.address)
    const outcomes = []
    for (let i = 0; i < 16; i++) outcomes.push((await roundTrip(raw, hoarder, 'R1_BUNDLE_PUT', chunk0(i))).item)
    expect(outcomes.slice(0, 4).every((o) => o.EE_EVENT_TYPE === 'R1_REPLY')).toBe(true)
    expect(outcomes.slice(4).map(reasonOf)).toEqual(Array(12).fill('EXECUTION_FAILED'))
    expect((outcomes[4] as Rejection).NOTIFICATION).toContain(hoarder.address)
    // the partial chunks are on disk under the data dir, not in memory
    const spooled = await readdir(join(t.dataDir, 'uploads'), {recursive: true})
    expect(spooled.filter((f) => f.endsWith('/0'))).toHaveLength(4)
    // another sender deploys meanwhile
    const session = await t.connect()
    const bundle = Buffer.alloc(1_100_000, 42)
    const hash = createHash('sha256').update(bundle).digest('hex')
    await session.putBundle(hash, bundle)
    expect(await session.missingBundles([hash])).toEqual([])
    // idle past the expiry: the hoarder's slots and files are freed
    offset = 61_000
    t.node.server.expire()
    await new Promise((r) => setTimeout(r, 50))
    expect(await readdir(join(t.dataDir, 'uploads'))).toEqual([])
    expect((await roundTrip(raw, hoarder, 'R1_BUNDLE_PUT', chunk0(100))).item.EE_EVENT_TYPE).toBe('R1_REPLY')
    offset = 0
    raw.close()
  })

  it('a refused (oversized) chunk frees its slot', async () => {
    const sender = generateIdentity()
    await allowAddress(t.dataDir, sender.address)
    const raw = await RawClient.connect(t.node.url, t.node.address)
    for (let i = 0; i < 20; i++) {
      const bytes = Buffer.alloc(BUNDLE_CHUNK_BYTES + 1, 200 + i)
      const put = {HASH: createHash('sha256').update(bytes).digest('hex'), SIZE: bytes.length, INDEX: 0, COUNT: 1, DATA: bytes.toString('base64')}
      const refused = (await roundTrip(raw, sender, 'R1_BUNDLE_PUT', put)).item as Rejection
      expect(refused.REASON).toBe('EXECUTION_FAILED')
      expect(refused.NOTIFICATION).toContain(`at most ${BUNDLE_CHUNK_BYTES}`)
    }
    expect((await roundTrip(raw, sender, 'R1_BUNDLE_PUT', chunk0(300))).item.EE_EVENT_TYPE).toBe('R1_REPLY')
    raw.close()
  })
})
