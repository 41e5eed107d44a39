import {readFile} from 'node:fs/promises'
import WebSocket from 'ws'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {generateIdentity, type Identity} from '../../src/protocol/identity.js'
import {formatTime, type Rejection, type UnsignedCommand} from '../../src/protocol/messages.js'
import {encodeCommand, encodeSigned} from '../../src/protocol/wire.js'
import {allowAddress, allowListPath} from '../../src/runtime/server-allowlist.js'
import {RawClient, rejectionFor, replyFor} from './raw-client.js'
import {execPipeline, startTestNode, type TestNode} from './helpers.js'

let t: TestNode
let raw: RawClient
beforeAll(async () => {
  t = await startTestNode({rateLimit: {burst: 1000, perSecond: 1000}})
  raw = await RawClient.connect(t.node.url, t.node.address)
})
afterAll(async () => {
  raw?.close()
  await t?.dispose()
})

function command(action: UnsignedCommand['ACTION'], payload: unknown, extra: Partial<UnsignedCommand> = {}): UnsignedCommand {
  return {ACTION: action, PAYLOAD: payload, EE_DEST: t.node.address, INITIATOR_ID: 'sec-test', SESSION_ID: 's', TIME: formatTime(), ...extra}
}

async function expectRejected(text: string, hash: string | null, reason: Rejection['REASON'], client = raw): Promise<Rejection> {
  client.send(text)
  const rejection = (await client.waitFor(rejectionFor(hash))) as Rejection
  expect(rejection.REASON).toBe(reason)
  client.items.splice(client.items.indexOf(rejection), 1)
  return rejection
}

/** The connection still works: a fresh valid query is answered. */
async function stillServes(client = raw, identity: Identity = t.client): Promise<void> {
  const {text, hash} = encodeCommand(command('R1_STATE', null), identity)
  client.send(text)
  await client.waitFor(replyFor(hash))
}

async function pipelineNames(): Promise<string[]> {
  return t.node.core.state().map((p) => p.name)
}

describe('node server security: every rejection case, with a reason, nothing changed, connection kept', () => {
  it('a tampered command (bad signature)', async () => {
    const {text, hash} = encodeCommand(command('UPDATE_CONFIG', execPipeline('evil')), t.client)
    await expectRejected(text.replace('"evil"', '"evil2"'), hash, 'BAD_SIGNATURE')
    const forged = encodeCommand(command('UPDATE_CONFIG', execPipeline('evil')), generateIdentity())
    const claimed = forged.text.replace(/"EE_SENDER":"[^"]+"/, `"EE_SENDER":"${t.client.address}"`)
    await expectRejected(claimed, forged.hash, 'BAD_SIGNATURE')
    expect(await pipelineNames()).not.toContain('evil')
    await stillServes()
  })

  it('EE_DEST is another node', async () => {
    const {text, hash} = encodeCommand(command('UPDATE_CONFIG', execPipeline('evil'), {EE_DEST: generateIdentity().address}), t.client)
    const rejection = await expectRejected(text, hash, 'WRONG_DEST')
    expect(rejection.NOTIFICATION).toContain('not this node')
    await stillServes()
  })

  it('TIME outside the allowed skew (past and future)', async () => {
    for (const offset of [-6 * 60_000, 6 * 60_000]) {
      const {text, hash} = encodeCommand(command('UPDATE_CONFIG', execPipeline('evil'), {TIME: formatTime(new Date(Date.now() + offset))}), t.client)
      await expectRejected(text, hash, 'TIME_SKEW')
    }
    expect(await pipelineNames()).not.toContain('evil')
    await stillServes()
  })

  it('a replayed command', async () => {
    const {text, hash} = encodeCommand(command('UPDATE_CONFIG', execPipeline('replayed')), t.client)
    raw.send(text)
    await raw.waitFor(replyFor(hash))
    await expectRejected(text, hash, 'REPLAY')
    // Replayed on another connection too.
    const other = await RawClient.connect(t.node.url, t.node.address)
    await expectRejected(text, hash, 'REPLAY', other)
    other.close()
    await stillServes()
  })

  it('not JSON, not a message, unknown action, invalid payload, encrypted', async () => {
    await expectRejected('{"ACTION": "UPDATE_CONFIG", ', null, 'BAD_JSON')
    await expectRejected('', null, 'BAD_JSON')
    await expectRejected('42', null, 'INVALID_MESSAGE')
    const noTime = encodeSigned({ACTION: 'R1_STATE', PAYLOAD: null, EE_DEST: t.node.address, INITIATOR_ID: 'x', SESSION_ID: 'y'}, t.client)
    await expectRejected(noTime.text, noTime.hash, 'INVALID_MESSAGE')
    const unknown = encodeSigned({...command('R1_STATE', null), ACTION: 'RM_RF'}, t.client)
    await expectRejected(unknown.text, unknown.hash, 'UNKNOWN_ACTION')
    const badPayload = encodeSigned({...command('UPDATE_CONFIG', {NAME: 'x'})}, t.client)
    const rejection = await expectRejected(badPayload.text, badPayload.hash, 'INVALID_PAYLOAD')
    expect(rejection.NOTIFICATION).toMatch(/PAYLOAD\.(TYPE|PLUGINS)/)
    // ACTION and PAYLOAD in the clear next to EE_IS_ENCRYPTED: not an encrypted command
    const encrypted = encodeSigned({...command('R1_STATE', null), EE_IS_ENCRYPTED: true}, t.client)
    await expectRejected(encrypted.text, encrypted.hash, 'INVALID_MESSAGE')
    raw.send(Buffer.from([1, 2, 3]))
    await raw.waitFor(rejectionFor(null))
    await stillServes()
  })

  it('a sender that is not allow-listed; then allowed while the node runs', async () => {
    const stranger = generateIdentity()
    const first = encodeCommand(command('UPDATE_CONFIG', execPipeline('stranger')), stranger)
    const rejection = await expectRejected(first.text, first.hash, 'NOT_ALLOWED')
    expect(rejection.NOTIFICATION).toContain(`r1 node allow ${stranger.address}`)
    const subscribe = encodeCommand(command('R1_SUBSCRIBE', {TYPES: ['PAYLOAD']}), stranger)
    await expectRejected(subscribe.text, subscribe.hash, 'NOT_ALLOWED')
    // Anyone may ask for a heartbeat.
    const heartbeat = encodeCommand(command('FULL_HEARTBEAT', null), stranger)
    raw.send(heartbeat.text)
    await raw.waitFor(replyFor(heartbeat.hash))
    expect(await pipelineNames()).not.toContain('stranger')
    await allowAddress(t.dataDir, stranger.address, 'late')
    const again = encodeCommand(command('R1_STATE', null), stranger)
    raw.send(again.text)
    await raw.waitFor(replyFor(again.hash))
    expect(JSON.parse(await readFile(allowListPath(t.dataDir), 'utf8')).allowed).toHaveLength(2)
  })

  it('a frame over 1 MiB closes that connection with 1009; others are unaffected', async () => {
    const big = await RawClient.connect(t.node.url, t.node.address)
    big.send('{"PAD":"' + 'x'.repeat(1024 * 1024 + 10) + '"}')
    expect(await big.waitClosed()).toBe(1009)
    await stillServes()
  })

  it('the wrong subprotocol is refused at the handshake', async () => {
    const ws = new WebSocket(t.node.url, 'other.v9')
    const status = await new Promise<number | string>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.once('open', () => resolve('open'))
      ws.once('error', (e) => resolve(e.message))
    })
    ws.terminate()
    expect(status).toBe(400)
  })
})

describe('flooding', () => {
  let f: TestNode
  beforeAll(async () => {
    f = await startTestNode({rateLimit: {burst: 20, perSecond: 10, closeAfter: 300}})
  })
  afterAll(async () => f?.dispose())

  it('over the rate: THROTTLED, connection kept; keeps flooding: closed 1008; other sessions fine', async () => {
    const flooder = await RawClient.connect(f.node.url, f.node.address)
    const texts = Array.from({length: 60}, () => encodeCommand({ACTION: 'R1_STATE', PAYLOAD: null, EE_DEST: f.node.address, INITIATOR_ID: 'x', SESSION_ID: 'y', TIME: formatTime()}, f.client))
    for (const {text} of texts) flooder.send(text)
    const throttled = await flooder.waitFor((i) => (i as Rejection).REASON === 'THROTTLED')
    expect((throttled as Rejection).COMMAND_HASH).toMatch(/^[0-9a-f]{64}$/)
    await flooder.waitForCount((i) => i.EE_EVENT_TYPE === 'R1_REPLY', 20)
    expect(flooder.closeCode).toBeUndefined()
    const honest = await f.connect()
    for (let i = 0; i < 1000 && flooder.closeCode === undefined; i++) flooder.send('x')
    expect(await flooder.waitClosed()).toBe(1008)
    const state = await honest.state()
    expect(state.ADDRESS).toBe(f.node.address)
  })
})

describe('liveness', () => {
  let l: TestNode
  beforeAll(async () => {
    l = await startTestNode({pingIntervalMs: 100})
  })
  afterAll(async () => l?.dispose())

  it('a peer that stops answering pings is dropped; one that answers stays', async () => {
    const deaf = new WebSocket(l.node.url, 'r1.v1', {autoPong: false})
    const closed = new Promise<number>((resolve) => deaf.once('close', (code) => resolve(code)))
    deaf.on('error', () => undefined)
    const healthy = await l.connect()
    expect(await closed).toBe(1006) // terminated, no close handshake
    await new Promise((r) => setTimeout(r, 400))
    expect((await healthy.state()).ADDRESS).toBe(l.node.address)
    expect(l.node.server.connectionCount).toBe(1)
  })
})

describe('connection cap', () => {
  let c: TestNode
  beforeAll(async () => {
    c = await startTestNode({server: {maxConnections: 2}})
  })
  afterAll(async () => c?.dispose())

  it('beyond maxConnections, all held by allow-listed senders, the upgrade is refused (503, exit 7 for a session); a freed slot is reusable', async () => {
    const first = await c.connect()
    await first.state()
    await (await c.connect()).state()
    const third = await c.connect().catch((e) => e)
    expect(third).toMatchObject({exitCode: 7})
    expect(third.message).toContain('503')
    await first.close()
    await new Promise((r) => setTimeout(r, 100))
    expect((await (await c.connect()).state()).ADDRESS).toBe(c.node.address)
  })
})
