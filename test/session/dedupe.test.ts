// A node that re-sends events the client already has (a resume that starts too early, a frame sent
// twice): the session, followNodes and `r1 logs --json` must show every seq exactly once. The node here
// is a real ws server on 127.0.0.1:0 that signs every frame with its own identity, so the client's
// whole path (verification, batches, resume) runs as it does against `r1 node start`.
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {WebSocketServer, type WebSocket} from 'ws'
import type {NodeEvent} from '../../src/protocol/events.js'
import {gapEvent, type GapEvent} from '../../src/protocol/filter.js'
import {cliKeyPath, generateIdentity, type Identity, writeIdentity} from '../../src/protocol/identity.js'
import {SUBPROTOCOL} from '../../src/protocol/messages.js'
import {decodeCommand, encodeBatch, encodeSigned, itemCanonical} from '../../src/protocol/wire.js'
import {followNodes, type FollowEntry} from '../../src/session/follow.js'
import {Session, type SubscriptionItem} from '../../src/session/index.js'
import {LogsProc} from '../logs/helpers.js'

const ALIAS = 'resender'
const JOURNAL_ID = 'journal-1'

type Item = NodeEvent | GapEvent
/** What the node sends after it accepted a subscription: single frames, batches, or a pause/close. */
type Step = {one: Item} | {batch: Item[]} | {close: true}

const payload = (seq: number): NodeEvent => ({
  EE_EVENT_TYPE: 'PAYLOAD',
  EE_PAYLOAD_PATH: [ALIAS, 'temps', 'TEMP_MONITOR', 'monitor-1'],
  EE_MESSAGE_SEQ: seq,
  EE_TIMESTAMP: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
  READING: seq,
})
const one = (seq: number): Step => ({one: payload(seq)})
const batch = (...seqs: number[]): Step => ({batch: seqs.map(payload)})

/**
 * Connection 1 sends 1..5 with re-sends of the last delivered seq (3 after 3, 5 after 5) and an
 * overlapping batch, then closes. On the resume (connection 2) the node starts two events before the
 * client's SINCE_SEQ, so it re-sends the boundary seq (= the last delivered) and the one before it, then
 * goes on, re-sending again, including a gap twice and a seq from before the gap.
 */
const SCRIPT: Step[][] = [
  [one(1), one(2), one(3), one(3), batch(2, 3, 4, 5), one(5), {close: true}],
  [batch(3, 4, 5, 6, 7), one(7), one(8), batch(8, 9, 10), {one: gapEvent(11, 12, 'retention')}, {one: gapEvent(11, 12, 'retention')}, one(12), one(13), one(13)],
]
const EXPECTED_SEQS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13]

/** The re-sending node: a real, signing r1.v1 server with a scripted event stream per connection. */
class ResendingNode {
  readonly identity = generateIdentity()
  readonly subscribes: Array<Record<string, unknown>> = []
  private connections = 0
  private constructor(readonly wss: WebSocketServer) {}

  static async start(): Promise<ResendingNode> {
    const wss = new WebSocketServer({host: '127.0.0.1', port: 0, handleProtocols: () => SUBPROTOCOL, perMessageDeflate: false})
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()))
    const node = new ResendingNode(wss)
    wss.on('connection', (ws) => node.accept(ws))
    return node
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as {port: number}).port}`
  }

  get address(): string {
    return this.identity.address
  }

  private sign(item: Record<string, unknown>): string {
    return encodeSigned(item, this.identity).text
  }

  private send(ws: WebSocket, frame: string | Buffer): Promise<void> {
    return new Promise((resolve) => ws.send(frame, {binary: false}, () => resolve()))
  }

  private accept(ws: WebSocket): void {
    const script = SCRIPT[Math.min(this.connections++, SCRIPT.length - 1)]!
    const path = [ALIAS, null, null, null]
    void this.send(ws, this.sign({EE_EVENT_TYPE: 'R1_HELLO', EE_PAYLOAD_PATH: path, EE_TIMESTAMP: new Date().toISOString(), EE_ADDR: this.address, EE_ALIAS: ALIAS, LAST_SEQ: 0, VERSION: 'test', PROTOCOL: SUBPROTOCOL}))
    ws.on('message', async (data) => {
      const command = decodeCommand(data.toString())
      if (!command.ok || command.encrypted || command.command.EE_DEST !== this.address) return
      const reply = (result: unknown) => this.sign({EE_EVENT_TYPE: 'R1_REPLY', EE_PAYLOAD_PATH: path, EE_TIMESTAMP: new Date().toISOString(), COMMAND_HASH: command.hash, ACTION: command.action, RESULT: result})
      if (command.action !== 'R1_SUBSCRIBE') {
        await this.send(ws, reply(null))
        return
      }
      const request = (command.payload ?? {}) as Record<string, unknown>
      this.subscribes.push(request)
      // A fresh subscription starts at 0 (nothing journaled yet); a resume replays from what it asked for.
      const from = typeof request.SINCE_SEQ === 'number' ? request.SINCE_SEQ : 0
      await this.send(ws, reply({LAST_SEQ: from, FROM_SEQ: from, JOURNAL_ID}))
      await this.send(ws, this.sign({EE_EVENT_TYPE: 'R1_LIVE', EE_PAYLOAD_PATH: path, EE_TIMESTAMP: new Date().toISOString(), POSITION: from}))
      for (const step of script) {
        if ('close' in step) {
          ws.close(1012, 'restarting')
          return
        }
        await this.send(ws, 'one' in step ? this.sign(step.one as unknown as Record<string, unknown>) : encodeBatch(step.batch.map(itemCanonical), this.identity).frame)
      }
    })
  }

  async stop(): Promise<void> {
    for (const client of this.wss.clients) client.terminate()
    await new Promise<void>((resolve) => this.wss.close(() => resolve()))
  }
}

const seqOf = (item: SubscriptionItem | FollowEntry) => (item.EE_EVENT_TYPE === 'R1_GAP' ? `gap ${item.FROM_SEQ}..${item.TO_SEQ}` : (item as NodeEvent).EE_MESSAGE_SEQ)
const EXPECTED = [...EXPECTED_SEQS.slice(0, 10), 'gap 11..12', 13]

let node: ResendingNode | undefined
const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
  await node?.stop()
  node = undefined
})

describe('a node that re-sends events: each seq is shown once', () => {
  it('Session.subscribe: re-sent seqs (the boundary = last delivered included) are dropped, live and on resume', async () => {
    node = await ResendingNode.start()
    const session = await Session.connect({url: node.url, nodeAddress: node.address, identity: generateIdentity(), reconnect: {initialDelayMs: 20, maxDelayMs: 100}})
    cleanups.push(() => session.close())
    const got: Array<number | string> = []
    for await (const item of session.subscribe()) {
      got.push(seqOf(item))
      if (got.at(-1) === 13) break
    }
    expect(got).toEqual(EXPECTED)
    // the resume asked for what follows the last seq delivered on the first connection
    expect(node.subscribes.map((s) => s.SINCE_SEQ)).toEqual([undefined, 5])
  })

  it('followNodes (what `r1 logs` runs): each seq once', async () => {
    node = await ResendingNode.start()
    const stop = new AbortController()
    const got: Array<number | string> = []
    const result = await followNodes(
      {
        targets: [{name: 'resender', url: node.url, address: node.address}],
        identity: generateIdentity(),
        follow: true,
        signal: stop.signal,
        session: {reconnect: {initialDelayMs: 20, maxDelayMs: 100}},
        retry: {initialDelayMs: 20, maxDelayMs: 100},
      },
      {
        onEntry(_target, entry) {
          got.push(seqOf(entry))
          if (got.at(-1) === 13) stop.abort()
        },
      },
    )
    expect(got).toEqual(EXPECTED)
    expect(result.targets[0]).toMatchObject({status: 'interrupted', events: EXPECTED_SEQS.length, gaps: 1, lastSeq: 13})
  })

  it('r1 logs --follow --json (the built CLI): each seq is one line', async () => {
    node = await ResendingNode.start()
    const configDir = await mkdtemp(join(tmpdir(), 'r1-dedupe-cli-'))
    cleanups.push(() => rm(configDir, {recursive: true, force: true}))
    const env = {R1_CONFIG_DIR: configDir}
    const identity: Identity = generateIdentity()
    await writeIdentity(cliKeyPath(env), identity)
    const logs = new LogsProc(['--node', node.url, '--address', node.address, '--follow', '--json'], env)
    cleanups.push(() => logs.interrupt())
    await logs.until(() => logs.seqs().includes(13), 'seq 13')
    expect(await logs.interrupt()).toBe(0)
    expect(logs.lines.map(seqOf)).toEqual(EXPECTED)
  })
})
