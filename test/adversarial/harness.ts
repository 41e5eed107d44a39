// The adversarial suite's tools: a real `r1 node start` child, raw r1.v1 connections that pace
// themselves under the node's per-connection rate limit, and signing that bypasses the client's own
// payload validation (an attacker does not validate).
import {copyFile, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import WebSocket from 'ws'
import {freePort} from '../../bench/servers.js'
import {signingCanonical} from '../../src/protocol/canonical.js'
import {type Identity, nodeKeyPath} from '../../src/protocol/identity.js'
import {type FrameItem, formatTime, SUBPROTOCOL} from '../../src/protocol/messages.js'
import {decodeNodeFrame, signCanonical} from '../../src/protocol/wire.js'
import {type NodeProc, spawnNode} from '../logs/helpers.js'

/** Deterministic PRNG (mulberry32): the same seed gives the same cases. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

let sessionCounter = 0

/** An unsigned command envelope; every one gets its own SESSION_ID so no two hash alike by accident. */
export function envelope(action: string, payload: unknown, dest: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {ACTION: action, PAYLOAD: payload, EE_DEST: dest, INITIATOR_ID: 'adversary', SESSION_ID: `adv-${++sessionCounter}`, TIME: formatTime(), ...extra}
}

/**
 * Signs any message as a client would, without validating its payload. `splice` replaces the JSON
 * string `"<placeholder>"` in the canonical text with raw JSON (e.g. 100,000 nested objects, which
 * no recursive encoder can produce); that JSON must itself be canonical.
 */
export function sign(message: Record<string, unknown>, identity: Identity, splice?: {placeholder: string; json: string}): {text: string; hash: string} {
  let canonical = signingCanonical(message)
  if (splice) canonical = canonical.replace(JSON.stringify(splice.placeholder), splice.json)
  return signCanonical(canonical, identity)
}

/** A real node process on 127.0.0.1 in a temp data dir (restartable on the same port and data dir). */
export class AdvNode {
  private constructor(
    public proc: NodeProc,
    readonly dataDir: string,
    readonly allow: string[],
  ) {}

  /** `sameKeyAs`: a node whose key to reuse (a replacement for a crashed node keeps its address). */
  static async start(allow: string[], sameKeyAs?: AdvNode): Promise<AdvNode> {
    const dataDir = await mkdtemp(join(tmpdir(), 'r1-adversarial-'))
    if (sameKeyAs) await copyFile(nodeKeyPath(sameKeyAs.dataDir), nodeKeyPath(dataDir))
    const proc = await spawnNode({dataDir, port: await freePort(), alias: 'adv-node', allow})
    return new AdvNode(proc, dataDir, allow)
  }

  get url(): string {
    return this.proc.url
  }

  get address(): string {
    return this.proc.address
  }

  get alive(): boolean {
    return this.proc.child.exitCode === null && this.proc.child.signalCode === null
  }

  /** SIGTERM and start again on the same data dir and port (what an operator's restart does). */
  async restart(): Promise<void> {
    await this.proc.stop()
    this.proc = await spawnNode({dataDir: this.dataDir, port: this.proc.port, alias: 'adv-node', allow: []})
  }

  /** Kills the node; `keepDir` leaves its data dir (and key) for a replacement, removed by a later dispose. */
  async dispose(keepDir = false): Promise<void> {
    await this.proc.kill9()
    if (!keepDir) await rm(this.dataDir, {recursive: true, force: true})
  }
}

/** What a frame carries that the adversary's checks look at: replies and rejections name a command hash. */
function answerHash(item: FrameItem): string | undefined {
  if (item.EE_EVENT_TYPE === 'R1_REPLY') return item.COMMAND_HASH
  if (item.EE_EVENT_TYPE === 'NOTIFICATION' && (item as {EE_MESSAGE_SEQ?: unknown}).EE_MESSAGE_SEQ === undefined) return (item as {COMMAND_HASH?: string}).COMMAND_HASH
  return undefined
}

/**
 * One raw r1.v1 connection. Sends at most `perSecond` frames a second after a `burst` (under the
 * node's 200 burst / 100 per second), keeps every frame it receives as text (for the leak check) and
 * counts answers per command hash. A connection the node closed is replaced on the next send.
 */
export class Conn {
  ws!: WebSocket
  /** Every text frame received, in order (kept across reconnects). */
  readonly received: string[] = []
  readonly answers = new Map<string, number>()
  readonly answerItems = new Map<string, FrameItem[]>()
  /** R1_REPLY count per command hash: the node accepted that command. */
  readonly replies = new Map<string, number>()
  /** Planted strings this connection itself sent (echoes of them are not leaks). */
  readonly sentTokens = new Set<string>()
  closes = 0
  private expected = new Map<string, number>()
  private tokens: number
  private last = Date.now()
  private waiters: Array<() => void> = []
  private opening?: Promise<void>

  constructor(
    readonly url: string,
    readonly nodeAddress: string,
    readonly name: string,
    private readonly burst = 120,
    private readonly perSecond = 80,
  ) {
    this.tokens = burst
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN
  }

  async connect(): Promise<void> {
    this.opening ??= new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(this.url, SUBPROTOCOL, {maxPayload: 8 * 1024 * 1024, perMessageDeflate: false})
      this.ws = ws
      let hello = false
      ws.on('message', (data, isBinary) => {
        const text = isBinary ? `<binary ${Buffer.from(data as Buffer).toString('latin1')}>` : data.toString()
        this.received.push(text)
        const frame = decodeNodeFrame(text, this.nodeAddress)
        if (frame.ok) {
          for (const item of frame.items) {
            if (item.EE_EVENT_TYPE === 'R1_HELLO' && !hello) {
              hello = true
              resolve()
            }
            const hash = answerHash(item)
            if (hash && item.EE_EVENT_TYPE === 'R1_REPLY') this.replies.set(hash, (this.replies.get(hash) ?? 0) + 1)
            if (hash) {
              this.answers.set(hash, (this.answers.get(hash) ?? 0) + 1)
              const list = this.answerItems.get(hash) ?? []
              if (list.length < 4) list.push(item)
              this.answerItems.set(hash, list)
            }
          }
        }
        this.wake()
      })
      ws.on('close', () => {
        this.closes++
        this.wake()
        if (!hello) reject(new Error(`${this.name}: closed before the hello`))
      })
      ws.on('error', () => undefined)
      this.tokens = this.burst
      this.last = Date.now()
      setTimeout(() => (hello ? undefined : reject(new Error(`${this.name}: no hello within 15 s`))), 15_000).unref()
    }).finally(() => (this.opening = undefined))
    return this.opening
  }

  private async pace(): Promise<void> {
    for (;;) {
      const now = Date.now()
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond)
      this.last = now
      if (this.tokens >= 1) {
        this.tokens -= 1
        return
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / this.perSecond) * 1000)))
    }
  }

  /** Sends one frame (text or binary); with `hash`, the node's answer to it is awaited by `settle`. False when no connection could be opened. */
  async send(frame: string | Buffer, options: {hash?: string; binary?: boolean; tokens?: string[]} = {}): Promise<boolean> {
    if (!this.open) {
      try {
        await this.connect()
      } catch {
        return false // the node refused the connection
      }
    }
    await this.pace()
    const text = typeof frame === 'string' ? frame : frame.toString('latin1')
    for (const token of options.tokens ?? []) if (text.includes(token)) this.sentTokens.add(token)
    if (options.hash) this.expected.set(options.hash, (this.expected.get(options.hash) ?? this.answers.get(options.hash) ?? 0) + 1)
    await new Promise<void>((resolve) => this.ws.send(frame, {binary: options.binary ?? false}, () => resolve()))
    return true
  }

  /** Waits until every awaited hash was answered (or the connection closed, or `timeoutMs`); returns the unanswered count. */
  async settle(timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs
    const missing = () => [...this.expected].filter(([hash, n]) => (this.answers.get(hash) ?? 0) < n).length
    while (missing() > 0 && this.open && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    const left = missing()
    this.expected.clear()
    return left
  }

  /** A command's answers (reply or rejection) on this connection. */
  answersFor(hash: string): FrameItem[] {
    return this.answerItems.get(hash) ?? []
  }

  close(): void {
    this.ws?.terminate()
  }
}

/** Sends one signed command on `conn` and waits for its answer; returns it (undefined on timeout). */
export async function roundTrip(conn: Conn, identity: Identity, action: string, payload: unknown, dest: string, timeoutMs = 30_000): Promise<{hash: string; text: string; answer?: FrameItem}> {
  const signed = sign(envelope(action, payload, dest), identity)
  await conn.send(signed.text, {hash: signed.hash})
  await conn.settle(timeoutMs)
  return {...signed, answer: conn.answersFor(signed.hash).at(-1)}
}
