import {randomUUID} from 'node:crypto'
import {ExitCode, R1Error} from '../errors.js'
import {type Confirmation, ConfirmationTracker} from '../fleet/confirm.js'
import type {EventType, NodeEvent, NotificationEvent} from '../protocol/events.js'
import {compileFilter, type EventFilter, type EventMatcher, type GapEvent, type LiveMarker} from '../protocol/filter.js'
import {type Identity, normalizeAddress} from '../protocol/identity.js'
import {
  type Action,
  BUNDLE_CHUNK_BYTES,
  FEATURE_KEEPS_WAITING_SESSIONS,
  formatTime,
  type FrameItem,
  type Hello,
  type HeartbeatResult,
  parseResult,
  type PayloadOf,
  CONFIRMED_ACTIONS,
  PUBLIC_ACTIONS,
  type Rejection,
  type Reply,
  type ResultOf,
  type StateResult,
  type Subscribe,
  type SubscribeResult,
} from '../protocol/messages.js'
import {decodeNodeFrame, decodeSigned, encodeCommand, encodeEncryptedCommand} from '../protocol/wire.js'
import type {BrokerConfig} from '../transport/mqtt.js'
import {brokerDialer} from './broker-link.js'
import {connectionError, type FrameLink, type LinkDialer, webSocketDialer} from './link.js'
import {signingTurn} from './turns.js'

/**
 * The client side of the r1 protocol (PROTOCOL.md): one session with one node, over a WebSocket or
 * through an MQTT broker (link.ts, broker-link.ts), used by deploy, status, logs and `r1 run`'s
 * embedded node. It verifies every frame against the node address it expects, matches
 * confirmations to commands by EE_HASH, and keeps a subscription alive across reconnects (resuming
 * after the last seq it delivered).
 */

export interface SessionOptions {
  /** `ws://host:port` or `wss://host:port`; with `broker`, the broker's URL. */
  url: string
  /** Reach the node through this MQTT broker instead (`url` is then the broker's; `nodeAddress` is required). */
  broker?: BrokerConfig
  /**
   * The node's address; every frame must be signed by it (the hello first, before anything is sent).
   * Undefined only to learn it: the address that signs a valid hello is taken (`r1 node info`).
   */
  nodeAddress: string | undefined
  /** The client's key (commands are signed with it). */
  identity: Identity
  /** INITIATOR_ID of commands (default `r1-cli`). */
  initiatorId?: string
  /** Connect (TCP + TLS + WebSocket + signed hello) within this (default 10 s), else exit 7. */
  connectTimeoutMs?: number
  /** Trusted CA certificate(s) in PEM, for nodes with self-signed certificates. */
  ca?: string | Buffer
  /** Skip TLS certificate checks (the node's signature is still checked on every frame). */
  insecure?: boolean
  /** Reconnect back-off for subscriptions (default 200 ms doubling to 10 s). */
  reconnect?: {initialDelayMs?: number; maxDelayMs?: number}
  /** Liveness probe period: ws ping, or R1_PING through a broker (default 15 s; 5 s through a broker). Silent for two periods (through a broker, at least the connect timeout) is gone. */
  pingIntervalMs?: number
  /** Frames that fail verification are dropped and reported here (default: ignored). */
  onWarning?: (message: string) => void
  /** Keep each batched event's signed JSON text (`wireTextOf`), for a consumer that prints it as is. */
  wireTexts?: boolean
  /** A dropped connection that is not back within this long (default 3 s) is lost: `onLost` listeners hear it. */
  lostAfterMs?: number
  /**
   * Through a broker: `connect` only joins the broker, and the session's first command is its greeting
   * (the node answers a new session's first command with its hello and the answer, often in one frame)
   * instead of an R1_PING: one round trip and two signed frames less per node. A node that does not
   * answer within the connect timeout fails that first command as unreachable (exit 7).
   */
  greetWithFirstCommand?: boolean
}

/** What a node notification must look like to confirm a command. */
export type Expectation = Confirmation

/** What R1_STATE is asked for: one pipeline (`name`), a fresh heartbeat with it, which of `bundles` the node lacks. */
export interface StateQuery {
  name?: string
  heartbeat?: boolean
  bundles?: string[]
}

export interface SendOptions {
  /** Confirmations to wait for after the R1_REPLY (the fleet's one matcher, src/fleet/confirm.ts: a negative code naming the command, or an awaited instance's failure, fails it). */
  expect?: Expectation[]
  /** Called with the command's EE_HASH before it leaves. */
  onHash?: (hash: string) => void
  /** Default 30 s; then R1Error exit 5. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Send ACTION and PAYLOAD encrypted to the node's key (EE_IS_ENCRYPTED; R1_SECRETS must be). */
  encrypted?: boolean
  /** How long the caller waits for confirmations after the answer (default `timeoutMs`): frames a broker loses meanwhile are asked for again. */
  confirmWithinMs?: number
}

export interface CommandResult<A extends Action = Action> {
  hash: string
  reply: Reply
  /** The reply's RESULT, checked against the action's result schema (null for commands that change state). */
  result: ResultOf<A>
  /** Notifications naming this command, in arrival order. */
  notifications: NotificationEvent[]
}

export interface SubscribeOptions {
  types?: EventType[]
  filter?: EventFilter
  /** Events after this seq first (from the node's journal). */
  sinceSeq?: number
  /** The last N matching events first (when sinceSeq is not given). */
  last?: number
  /** Events stamped at or after this time (ms since the epoch) first. */
  sinceTime?: number
  /** The journal `sinceSeq` counts in (JOURNAL_ID of an earlier subscription): if the node's is another, it says so with a `reset` gap and replays all it has. */
  journalId?: string
  signal?: AbortSignal
  /** Called once the node accepted the subscription, before any item is yielded: its seq when it started, where the replay starts, its journal. */
  onStarted?: (result: SubscribeResult) => void
  /** Called, in stream order, each time the node says its history replay is over (R1_LIVE; again after a resume). */
  onLive?: (position: number) => void
}

/** What a subscription yields: node events in seq order, and gaps where the node lost some. */
export type SubscriptionItem = NodeEvent | GapEvent

/** Accepted changes a session sends again when frames are lost (see `remember`). */
const CONFIRMING = 64
/**
 * A command is sent again for at most this long after it was signed: past the node's clock-skew window
 * (5 minutes by default) its TIME would be refused, not answered again.
 */
const SEND_AGAIN_WITHIN_MS = 4 * 60_000
/** How long closing a broker session waits for its R1_UNSUBSCRIBE to reach the broker. */
const UNSUBSCRIBE_WAIT_MS = 2000
/** Seqs of the command notifications a session heard lately: one sent again with its answer is heard once. */
const HEARD_CONFIRMATIONS = 1024
/**
 * Through a broker, probe periods between keepalive probes while a command waits for its answer from a
 * node that keeps waiting sessions (KEEPS_WAITING_SESSIONS).
 */
const WAITING_PROBE_PERIODS = 3

interface Pending {
  hash: string
  action: Action
  /** The signed command as sent: sent again, unchanged, when its answer may have been lost on a broker. */
  text: string
  tracker?: ConfirmationTracker
  reply?: Reply
  notifications: NotificationEvent[]
  resolve: (result: CommandResult<Action>) => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
  /** When it was signed, and how long its caller waits for its confirmations after the answer. */
  signedAt: number
  confirmWithinMs: number
}

interface ActiveSubscription {
  request: Subscribe
  /** EE_HASH of the R1_SUBSCRIBE in force: a rejection naming it ends the subscription. */
  hash?: string
  /** Set while resuming after lost frames ('' until the resume's hash is known): items are dropped until its reply. */
  resyncHash?: string
  matcher: EventMatcher
  lastSeq: number
  /** The node journal lastSeq counts in (from the node's reply). */
  journalId?: string
  queue: Array<SubscriptionItem | LiveMarker>
  wake?: () => void
  error?: Error
  done: boolean
}

const HIGH_QUEUE = 10_000
const LOW_QUEUE = 1_000

/**
 * Each bundle's chunks in base64, while the bundle's bytes are in use: the same bundle uploaded to a
 * fleet is encoded once, and held once while its uploads are in flight (not once per node).
 */
const chunkTexts = new WeakMap<Uint8Array, {hash: string; texts: string[]}>()

export function bundleChunkBase64(bytes: Uint8Array, hash: string, index: number): string {
  let known = chunkTexts.get(bytes)
  if (known?.hash !== hash) chunkTexts.set(bytes, (known = {hash, texts: []}))
  return (known.texts[index] ??= Buffer.from(bytes.subarray(index * BUNDLE_CHUNK_BYTES, (index + 1) * BUNDLE_CHUNK_BYTES)).toString('base64'))
}

function unreachable(message: string, hint?: string, cause?: unknown): R1Error {
  return new R1Error(message, ExitCode.UNREACHABLE, {code: 'NODE_UNREACHABLE', hint: hint ?? 'Check the URL and that the node is running (r1 node start).', cause})
}

export class Session {
  readonly url: string
  private nodeAddress: string
  /** SESSION_ID of commands (a new one per connection through a broker: the node keys its sessions there by it). */
  private sessionIdValue = randomUUID()
  private hello?: Hello
  /** Our clock (ms) when the hello arrived. */
  private helloAt = 0
  private readonly dialer: LinkDialer
  private link?: FrameLink
  private readonly pending = new Map<string, Pending>()
  /** Accepted changes whose confirmations may still come (`remember`), by EE_HASH. */
  private readonly confirming = new Map<string, {text: string; until: number}>()
  private readonly heardConfirmations = new Set<number>()
  private readonly listeners = new Set<(event: NodeEvent) => void>()
  private subscription?: ActiveSubscription
  /** Whether an R1_SUBSCRIBE went out on this session (so the node may be streaming to it). */
  private subscribed = false
  private closed = false
  private reconnecting?: Promise<void>
  private pingTimer?: NodeJS.Timeout
  /** When the node was last heard from (any frame, or a pong). */
  private heardAt = 0
  /** When a command last went out (through a broker, any message keeps the node's session alive). */
  private sentAt = 0
  /** When the last keepalive probe went out, and the first one since the node was last heard. */
  private probedAt = 0
  private unansweredSince = 0
  /** How the last link closed (`1006 no answer …`), named when a command finds no link. */
  private lastClose?: string
  private paused = false
  /** True while reconnect() itself re-subscribes (its command must not wait for the reconnect). */
  private resubscribing = false
  private readonly lostListeners = new Set<(error: R1Error) => void>()
  private lostTimer?: NodeJS.Timeout
  /** Not opened yet: the next command opens the session as its greeting (`greetWithFirstCommand`). */
  private greets = false
  /** The greeting's open: later commands go out once the node's hello checked out. */
  private opening?: Promise<void>

  private constructor(private readonly options: SessionOptions) {
    this.url = options.url
    this.nodeAddress = options.nodeAddress === undefined ? '' : normalizeAddress(options.nodeAddress)
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000
    if (options.broker) {
      if (!this.nodeAddress) throw new R1Error('A session through a broker needs the node address', ExitCode.USAGE, {code: 'ADDRESS_REQUIRED', hint: 'Give the target its `address` (0xai_…).'})
      // the first dial keeps the id made here (a greeting command is signed with it before the dial); each redial gets a new one
      let dialed = false
      const newSessionId = () => (dialed ? (this.sessionIdValue = randomUUID()) : ((dialed = true), this.sessionIdValue))
      this.dialer = brokerDialer(options.broker, this.nodeAddress, options.identity, {connectTimeoutMs, newSessionId})
    } else this.dialer = webSocketDialer(options.url, {connectTimeoutMs, ca: options.ca, insecure: options.insecure})
  }

  get sessionId(): string {
    return this.sessionIdValue
  }

  /** Commands travel encrypted to the node's key (all but the public ones through a broker). */
  private encrypts(action: Action, asked: boolean): boolean {
    return asked || (this.dialer.shared && !PUBLIC_ACTIONS.has(action))
  }

  /** The node's verified address (the one expected, or, when none was, the one that signed the hello). */
  get address(): string {
    return this.nodeAddress
  }

  /**
   * Called once when the connection is gone for good: closed by the node or the network and not
   * re-established within `lostAfterMs` (a subscription's reconnect keeps trying after that).
   * Waits for confirmations listen here: a node that died will never confirm.
   */
  onLost(listener: (error: R1Error) => void): () => void {
    this.lostListeners.add(listener)
    return () => this.lostListeners.delete(listener)
  }

  private lost(error: R1Error): void {
    clearTimeout(this.lostTimer)
    this.lostTimer = undefined
    for (const listener of [...this.lostListeners]) listener(error)
  }

  /** Connects and checks the node's signed hello; R1Error exit 7 when unreachable, the wrong node, or too slow. */
  static async connect(options: SessionOptions): Promise<Session> {
    const session = new Session(options)
    if (options.broker && options.greetWithFirstCommand) session.greets = true
    else await session.open()
    return session
  }

  /** The node's alias (from its hello). */
  get alias(): string {
    return this.hello?.EE_ALIAS ?? ''
  }

  /** The node's last EE_MESSAGE_SEQ when this session (re)connected. */
  get nodeLastSeq(): number {
    return this.hello?.LAST_SEQ ?? 0
  }

  get nodeVersion(): string | null {
    return this.hello?.VERSION ?? null
  }

  /** What the node does beyond the protocol's base (its hello's FEATURES; none before the hello). */
  get nodeFeatures(): readonly string[] {
    return this.hello?.FEATURES ?? []
  }

  /** The node's clock minus ours (ms), from its hello's EE_TIMESTAMP; late by the hello's transit time. NaN when unreadable. */
  get nodeClockOffsetMs(): number {
    return this.hello ? Date.parse(this.hello.EE_TIMESTAMP) - this.helloAt : Number.NaN
  }

  get connected(): boolean {
    return this.link?.open ?? false
  }

  /** Opens the link and checks the node's hello; through a broker, `greeting` (a signed command) is the probe that asks for it. */
  private open(greeting?: string): Promise<void> {
    const {url, connectTimeoutMs = 10_000} = this.options
    return new Promise<void>((resolve, reject) => {
      let settled = false
      let link: FrameLink | undefined
      let timer: NodeJS.Timeout | undefined
      /** A frame came without the hello (the one with it lost on the broker), and the greeting went again. */
      let helloMissed = false
      const fail = (error: R1Error) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        link?.terminate()
        reject(error)
      }
      const arm = () => {
        clearTimeout(timer)
        timer = setTimeout(() => {
          if (!this.options.broker) return fail(unreachable(`Timed out after ${connectTimeoutMs} ms connecting to ${url}`))
          const losses = link?.losses
          const why = `${helloMissed ? 'its frames came, but never the one with its hello' : 'no heartbeat and no reply'}${losses ? ` (${losses})` : ''}`
          fail(
            unreachable(
              `Timed out after ${connectTimeoutMs} ms waiting for the node ${this.nodeAddress} on the broker ${url}: ${why}`,
              `Check that the node is running with --broker on this broker (and the same topic root).${losses ? ' The broker has also been losing messages: give it no queue limit (Mosquitto: max_queued_messages 0; see "Brokers" in the README).' : ''}`,
            ),
          )
        }, connectTimeoutMs)
      }
      // Through a broker the wait for the node starts once the broker is reached (the link is created):
      // until then the broker connection's own wait, as long, says what is wrong (refused, no route, bad password).
      if (!this.options.broker) arm()
      const onHello = (text: string) => {
        const signed = decodeSigned(text)
        if (signed.ok && signed.sender !== this.nodeAddress) {
          if (this.nodeAddress !== '') {
            // A node that proves another identity answered: the wrong node (or a re-keyed one), not a network problem.
            fail(
              new R1Error(`Identity mismatch at ${url}: expected the node ${this.nodeAddress}, got ${signed.sender}`, ExitCode.REJECTED, {
                code: 'IDENTITY_MISMATCH',
                hint: `If that node was re-keyed on purpose, pin its new address (\`r1 node info --node ${url}\` prints it); otherwise check the URL: another node answers there.`,
                details: {url, expected: this.nodeAddress, got: signed.sender},
              }),
            )
            return
          }
          this.nodeAddress = signed.sender
        }
        const frame = decodeNodeFrame(text, this.nodeAddress, signed.ok ? {verified: signed, wireTexts: this.options.wireTexts} : {}) // its signature checked once
        const hello = frame.ok ? frame.items.find((i): i is Hello => i.EE_EVENT_TYPE === 'R1_HELLO') : undefined
        if (!hello) {
          // through a broker, the frame with the hello may have been lost and this be a later one: asked for again
          if (frame.ok && link?.greetAgain) {
            helloMissed = true
            link.greetAgain()
            return
          }
          fail(
            new R1Error(`The node at ${url} sent no valid signed hello: ${frame.ok ? 'no R1_HELLO' : frame.reason}`, ExitCode.UNREACHABLE, {
              code: 'NODE_ADDRESS_MISMATCH',
              hint: 'Is this an r1 node? Check the URL (ws:// or wss://, host and port).',
            }),
          )
          return
        }
        if (settled) return
        // closed while its greeting was on its way: nobody uses this link
        if (this.closed) return fail(unreachable('The session is closed'))
        settled = true
        clearTimeout(timer)
        this.hello = hello
        this.helloAt = Date.now()
        this.attach(link!)
        resolve()
        // what came with the hello (the greeting's answer) is routed once the session is open
        if (frame.ok) for (const item of frame.items) if (item !== hello) this.route(item)
      }
      const handlers = {
        created: (created: FrameLink) => {
          link = created
          if (this.options.broker && !settled) arm()
        },
        frame: (text: string) => (settled ? this.onFrame(text) : onHello(text)),
        closed: (code: number, reason: string) => (settled ? this.onClose(link!, code, reason) : fail(unreachable(`${url} closed the connection (${code}${reason ? ` ${reason}` : ''})`))),
        alive: () => (this.heardAt = Date.now()),
        lost: () => this.onFramesLost(),
        resend: () => this.resendUnanswered(),
      }
      // the greeting is sent once, as the first probe; later probes (keepalive) are R1_PINGs
      const probe = (probing: FrameLink) => {
        if (greeting === undefined) return this.probe(probing)
        const text = greeting
        greeting = undefined
        return probing.send(text)
      }
      this.dialer.dial(handlers, probe).then(
        (dialed) => {
          link = dialed
          if (settled && this.link !== dialed) dialed.terminate()
        },
        (error: Error) => fail(error instanceof R1Error ? error : connectionError(url, error)),
      )
    })
  }

  /** Whether a command sent on this session has no answer yet from a node that keeps the session meanwhile. */
  private waitsOnKeepingNode(): boolean {
    if (!this.nodeFeatures.includes(FEATURE_KEEPS_WAITING_SESSIONS)) return false
    for (const pending of this.pending.values()) if (!pending.reply) return true
    return false
  }

  /** R1_PING on a link (a broker link's greeting and keepalive): public, never encrypted, answered with an empty reply. */
  private async probe(link: FrameLink): Promise<void> {
    const {text} = encodeCommand({ACTION: 'R1_PING', PAYLOAD: null, EE_DEST: this.nodeAddress, INITIATOR_ID: this.options.initiatorId ?? 'r1-cli', SESSION_ID: this.sessionId, TIME: formatTime()}, this.options.identity)
    await link.send(text)
  }

  private attach(link: FrameLink): void {
    this.link = link
    this.heardAt = Date.now()
    clearInterval(this.pingTimer)
    const interval = this.options.pingIntervalMs ?? (this.options.broker ? 5000 : 15_000)
    // silent for two probe periods is gone; through a broker, silent for the connect timeout at least:
    // a busy broker or fleet is slow, not gone (the probes still keep the node's session alive)
    const patience = Math.max(2 * interval, this.options.broker ? (this.options.connectTimeoutMs ?? 10_000) : 0)
    this.pingTimer = setInterval(() => {
      const now = Date.now()
      const waiting = this.dialer.shared && this.waitsOnKeepingNode()
      // A node carrying out our command is silent meanwhile, and it is probed seldom: it is gone once a probe
      // went unanswered for as long as a silent node would be (each command sent meanwhile puts the next probe
      // off; a node that died under a stream of commands is found by their timeouts).
      const silentSince = waiting ? (this.unansweredSince > this.heardAt ? this.unansweredSince : now) : this.heardAt
      if (now - silentSince >= patience) {
        link.terminate()
        return
      }
      if (this.dialer.shared) {
        // Through a broker a probe is a signed command, which the node reads in order behind what was sent before:
        // none while commands go out and frames come back. While a command waits for its answer from a node that
        // keeps waiting sessions, only one every few periods: the node holds the session while it carries the
        // command out, a probe cannot overtake a command it has not read yet, and what such a probe still does
        // is show an answer the broker lost (the frame answering it arrives past a gap).
        if (waiting) {
          // half a period of slack: a tick that fires a little early does not push the probe a whole period later
          if (now - Math.max(this.sentAt, this.probedAt) < (WAITING_PROBE_PERIODS - 0.5) * interval) return
        } else if (now - this.heardAt < interval && now - this.sentAt < interval) return
      }
      if (this.unansweredSince <= this.heardAt) this.unansweredSince = now
      this.probedAt = now
      link.ping()
    }, interval)
    this.pingTimer.unref()
  }

  /**
   * The link lost frames (a broker dropped some): a subscription resumes from its last seq, and
   * what arrives of the old stream until the node answers is dropped (it would skip the lost events).
   */
  private onFramesLost(): void {
    this.resendUnanswered()
    const sub = this.subscription
    if (!sub || sub.done || sub.resyncHash !== undefined || this.paused) return
    this.resumeFromJournal(sub)
  }

  /** Sends again every command still waiting for its answer or confirmations; returns whether there was one. */
  private resendUnanswered(): boolean {
    // A lost frame may have held a command's answer or its confirmations: the same signed command again makes the
    // node send them again (it does not run twice); what was not lost arrives twice, and the copy changes nothing.
    const now = Date.now()
    for (const [hash, {until}] of this.confirming) if (until < now) this.confirming.delete(hash)
    const again = new Map<string, string>()
    for (const p of this.pending.values()) if (!p.reply || now - p.signedAt < SEND_AGAIN_WITHIN_MS) again.set(p.hash, p.text)
    for (const [hash, {text}] of this.confirming) again.set(hash, text)
    for (const [hash, text] of again) void this.sendText(text, hash).catch(() => undefined)
    return again.size > 0
  }

  /**
   * A reader slower than the node, through a broker: there is no socket to stop reading, so the node
   * is asked to stop the stream, and what still arrives of it is dropped; `resumeFromJournal` picks
   * it up from the last seq delivered once the reader caught up.
   */
  private holdBack(sub: ActiveSubscription): void {
    sub.resyncHash ??= ''
    void this.post('R1_UNSUBSCRIBE', null).catch(() => undefined)
  }

  /** Resubscribes from the last seq delivered; the old stream's items are dropped until the node's reply. */
  private resumeFromJournal(sub: ActiveSubscription): void {
    if (sub.done) return
    sub.resyncHash = ''
    void this.resubscribe(sub).catch((error: Error) => {
      this.options.onWarning?.(`resuming the subscription failed: ${error.message}`)
      this.link?.terminate() // the reconnect resumes it
    })
  }

  private async resubscribe(sub: ActiveSubscription): Promise<void> {
    const resumed = await this.send('R1_SUBSCRIBE', {...sub.request, SINCE_SEQ: Math.max(0, sub.lastSeq), JOURNAL_ID: sub.journalId, LAST: undefined, SINCE_TIME: undefined}, {onHash: (hash) => (sub.resyncHash = hash)})
    sub.hash = resumed.hash
    // another journal than the one asked for comes with a reset gap, which updates journalId
    sub.journalId ??= resumed.result.JOURNAL_ID
  }

  private onClose(link: FrameLink, code: number, reason: string): void {
    if (link !== this.link) return
    clearInterval(this.pingTimer)
    this.lastClose = `${code}${reason ? ` ${reason}` : ''}`
    const why = `connection to ${this.url} closed (${this.lastClose})`
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer)
      pending.reject(unreachable(`${pending.action} ${pending.hash.slice(0, 12)}…: ${why} before it was confirmed; it may or may not have been applied`, 'Check with `r1 status`, then retry.'))
    }
    this.pending.clear()
    // a new connection is a new session on the node, which keeps no answers of this one (and may number anew)
    this.confirming.clear()
    this.heardConfirmations.clear()
    if (this.closed) return
    const gone = unreachable(`${why}: the node went away`, 'Check that the node is running (`r1 status`), then retry.')
    if (this.subscription && !this.subscription.done) {
      void this.reconnect()
      this.lostTimer ??= setTimeout(() => !this.connected && !this.closed && this.lost(gone), this.options.lostAfterMs ?? 3000)
      this.lostTimer.unref?.()
    } else {
      this.lost(gone)
    }
  }

  /** Reconnects with back-off until it works or the session is closed; then resumes the subscription. */
  private reconnect(): Promise<void> {
    this.reconnecting ??= (async () => {
      let delay = this.options.reconnect?.initialDelayMs ?? 200
      const max = this.options.reconnect?.maxDelayMs ?? 10_000
      while (!this.closed) {
        await new Promise((r) => setTimeout(r, delay * (0.75 + Math.random() * 0.5)))
        if (this.closed) return
        try {
          await this.open()
          const sub = this.subscription
          if (sub && !sub.done) {
            this.resubscribing = true
            try {
              await this.resubscribe(sub)
            } finally {
              this.resubscribing = false
            }
          }
          clearTimeout(this.lostTimer)
          this.lostTimer = undefined
          return
        } catch (error) {
          // The wrong node at this URL will not become the right one, nor will a key it does not allow: stop.
          const code = (error as R1Error).code
          if ((code === 'NODE_ADDRESS_MISMATCH' || code === 'IDENTITY_MISMATCH' || code === 'REJECTED_NOT_ALLOWED') && this.subscription) {
            this.failSubscription(error as Error)
            return
          }
          delay = Math.min(max, delay * 2)
        }
      }
    })().finally(() => (this.reconnecting = undefined))
    return this.reconnecting
  }

  private onFrame(text: string): void {
    const frame = decodeNodeFrame(text, this.address, {wireTexts: this.options.wireTexts})
    if (!frame.ok) {
      this.options.onWarning?.(`dropped a frame from ${this.url}: ${frame.reason}`)
      return
    }
    for (const item of frame.items) this.route(item)
  }

  private route(item: FrameItem): void {
    switch (item.EE_EVENT_TYPE) {
      case 'R1_HELLO':
        this.hello = item
        return
      case 'R1_REPLY': {
        // the node answered a resume after lost frames: its new stream starts here
        if (this.subscription?.resyncHash === item.COMMAND_HASH) this.subscription.resyncHash = undefined
        const pending = this.pending.get(item.COMMAND_HASH)
        if (pending) {
          pending.reply = item
          if (CONFIRMED_ACTIONS.has(pending.action)) this.remember(pending)
          this.settle(pending)
        }
        return
      }
      case 'R1_GAP':
        this.deliver(item)
        return
      case 'R1_LIVE': {
        const sub = this.subscription
        // a marker of a stream being dropped (resuming) would skip what the resume brings
        if (!sub || sub.done || sub.resyncHash !== undefined) return
        // Everything up to POSITION was examined by the node: a resume need not rescan it.
        sub.lastSeq = Math.max(sub.lastSeq, item.POSITION)
        sub.queue.push(item)
        sub.wake?.()
        return
      }
    }
    if (item.EE_EVENT_TYPE === 'NOTIFICATION' && (item as {EE_MESSAGE_SEQ?: unknown}).EE_MESSAGE_SEQ === undefined) {
      const rejection = item as Rejection
      const pending = rejection.COMMAND_HASH ? this.pending.get(rejection.COMMAND_HASH) : undefined
      const rejected = (action: string) => new R1Error(`${action} rejected by ${this.alias || this.address}: ${rejection.NOTIFICATION}`, ExitCode.REJECTED, {code: `REJECTED_${rejection.REASON}`, details: rejection, hint: hintFor(rejection)})
      // an accepted command sent again after lost frames, which the node could not answer again (it keeps only
      // the last answers, and its clock window moved on): the command stands, nothing to say
      const hash = rejection.COMMAND_HASH
      if (hash && (pending?.reply || this.confirming.has(hash))) return
      if (pending) this.fail(pending, rejected(pending.action))
      // the node ended the subscription (e.g. this key left its allow-list)
      else if (rejection.COMMAND_HASH && rejection.COMMAND_HASH === this.subscription?.hash) this.failSubscription(rejected('R1_SUBSCRIBE'))
      else this.options.onWarning?.(rejection.NOTIFICATION)
      return
    }
    const event = item as NodeEvent
    // a command's notification the node sent again (the command was sent again after lost frames) is heard once;
    // a subscription still gets it in its order (deliver drops what it had)
    if (!(event.EE_EVENT_TYPE === 'NOTIFICATION' && event.COMMAND_HASH && this.heardBefore(event.EE_MESSAGE_SEQ))) {
      for (const listener of this.listeners) listener(event)
      if (event.EE_EVENT_TYPE === 'NOTIFICATION' && event.COMMAND_HASH) {
        const pending = this.pending.get(event.COMMAND_HASH)
        if (pending) this.notice(pending, event)
      }
    }
    this.deliver(event)
  }

  private deliver(item: SubscriptionItem): void {
    const sub = this.subscription
    if (!sub || sub.done || sub.resyncHash !== undefined) return
    if (item.EE_EVENT_TYPE === 'R1_GAP') {
      // a reset: the node's numbering went back, and the stream goes on after TO_SEQ in the journal it names
      if (item.REASON === 'reset') sub.journalId = item.JOURNAL_ID
      else if (item.TO_SEQ <= sub.lastSeq) return
      sub.lastSeq = item.TO_SEQ
    } else {
      // Direct confirmations outside the filter, and anything seen before a reconnect, are not for the subscriber.
      if (item.EE_MESSAGE_SEQ <= sub.lastSeq || !sub.matcher(item)) return
      sub.lastSeq = item.EE_MESSAGE_SEQ
    }
    sub.queue.push(item)
    if (sub.queue.length > HIGH_QUEUE && !this.paused) {
      this.paused = true
      if (this.dialer.shared) this.holdBack(sub)
      else this.link?.pause() // TCP back-pressure: the node falls back to its journal
    }
    sub.wake?.()
  }

  private notice(pending: Pending, event: NotificationEvent): void {
    pending.notifications.push(event)
    const verdict = pending.tracker?.observe(event)
    if (verdict?.state === 'rejected' || verdict?.state === 'failed') {
      this.fail(pending, new R1Error(`${pending.action} failed on ${this.alias || this.address}: ${verdict.reason}`, ExitCode.REJECTED, {code: 'COMMAND_FAILED', details: event}))
      return
    }
    this.settle(pending)
  }

  /** Whether a command's notification with this seq was heard already (the node sends them again with a command sent again). */
  private heardBefore(seq: number): boolean {
    if (this.heardConfirmations.has(seq)) return true
    this.heardConfirmations.add(seq)
    if (this.heardConfirmations.size > HEARD_CONFIRMATIONS) this.heardConfirmations.delete(this.heardConfirmations.values().next().value!)
    return false
  }

  /**
   * An accepted change whose confirmations may still be on their way to a caller that waits for them (a
   * deploy): sent again if frames are lost within its time, at most CONFIRMING of the most recent.
   */
  private remember(pending: Pending): void {
    this.confirming.delete(pending.hash)
    this.confirming.set(pending.hash, {text: pending.text, until: Math.min(Date.now() + pending.confirmWithinMs, pending.signedAt + SEND_AGAIN_WITHIN_MS)})
    if (this.confirming.size > CONFIRMING) this.confirming.delete(this.confirming.keys().next().value!)
  }

  private settle(pending: Pending): void {
    if (!pending.reply || (pending.tracker && pending.tracker.current().state !== 'confirmed') || !this.pending.has(pending.hash)) return
    const parsed = parseResult(pending.action, pending.reply.RESULT)
    if (!parsed.ok) {
      this.fail(
        pending,
        new R1Error(`${this.alias || this.address} answered ${pending.action} with a malformed result (${parsed.detail})`, ExitCode.FAILURE, {
          code: 'BAD_NODE_RESULT',
          hint: 'Is the node running a compatible r1 version? Compare `r1 --version` with `r1 status`.',
        }),
      )
      return
    }
    this.pending.delete(pending.hash)
    clearTimeout(pending.timer)
    pending.resolve({hash: pending.hash, reply: pending.reply, result: parsed.result, notifications: pending.notifications})
  }

  private fail(pending: Pending, error: Error): void {
    if (!this.pending.delete(pending.hash)) return
    clearTimeout(pending.timer)
    pending.reject(error)
  }

  /** Every node event this session receives (subscribed or confirming its commands); returns the unsubscribe function. */
  onEvent(listener: (event: NodeEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Signs and sends a command without waiting; returns its EE_HASH. */
  async post<A extends Action>(action: A, payload: PayloadOf<A>): Promise<string> {
    const encoded = await this.encodeFor(action, payload)
    await this.transmit(encoded.text)
    return encoded.hash
  }

  /**
   * Sends a command and resolves once the node accepted it (R1_REPLY) and every expected confirmation
   * arrived. Rejects with R1Error: exit 4 on a rejection (-5000, with the node's reason) or a failure
   * notification, 5 on timeout, 7 when the connection is lost.
   */
  async send<A extends Action>(action: A, payload: PayloadOf<A>, options: SendOptions = {}): Promise<CommandResult<A>> {
    const tracker = options.expect && new ConfirmationTracker(options.expect)
    const timeoutMs = options.timeoutMs ?? 30_000
    let registered: Pending | undefined
    const result = new Promise<CommandResult<A>>((resolve, reject) => {
      // settle() resolves with the RESULT parsed by this action's schema
      const settled = resolve as (result: CommandResult<Action>) => void
      registered = {hash: '', text: '', action, tracker, notifications: [], resolve: settled, reject, timer: undefined as unknown as NodeJS.Timeout, signedAt: 0, confirmWithinMs: options.confirmWithinMs ?? timeoutMs}
    })
    const pending = registered!
    // The connection may drop (and reject this) while the frame is still on its way (a broker's PUBACK):
    // handled (`over` below) before the caller gets `result`, so that is not an unhandled rejection.
    // Register under the hash before the frame leaves, so no fast confirmation is missed.
    const encoded = await this.encodeFor(action, payload, options.encrypted)
    if (action === 'R1_SUBSCRIBE') this.subscribed = true
    pending.hash = encoded.hash
    pending.text = encoded.text
    pending.signedAt = Date.now()
    tracker?.setCommandHash(encoded.hash)
    options.onHash?.(encoded.hash)
    pending.timer = setTimeout(() => {
      const verdict = tracker?.current()
      const waiting = verdict?.state === 'pending' ? verdict.waitingFor : []
      this.fail(
        pending,
        new R1Error(`${action} ${pending.hash.slice(0, 12)}… not confirmed by ${this.alias || this.address} within ${timeoutMs} ms${pending.reply ? ` (accepted; still waiting for ${waiting.join(', ')})` : ''}`, ExitCode.TIMEOUT, {
          code: 'CONFIRMATION_TIMEOUT',
          hint: 'Check `r1 status` on the node, or allow more time.',
          details: {notifications: pending.notifications},
        }),
      )
    }, timeoutMs)
    this.pending.set(pending.hash, pending)
    const onAbort = () => this.fail(pending, new R1Error(`${action} interrupted`, ExitCode.INTERRUPTED, {code: 'INTERRUPTED'}))
    options.signal?.addEventListener('abort', onAbort, {once: true})
    // Until the frame is out, or the command settled first: a connection that dropped meanwhile may never
    // acknowledge the frame (a broker client that was closed leaves its publish unanswered).
    const over = result.then(
      () => undefined,
      () => undefined,
    )
    try {
      await Promise.race([this.transmit(encoded.text, encoded.hash), over])
    } catch (error) {
      this.fail(pending, error as Error)
    }
    return result.finally(() => options.signal?.removeEventListener('abort', onAbort))
  }

  private async encodeFor(action: Action, payload: unknown, encrypted = false): Promise<{hash: string; text: string}> {
    if (this.closed) throw unreachable('The session is closed')
    if (this.reconnecting && !this.resubscribing) await this.reconnecting
    await signingTurn()
    if (this.closed) throw unreachable('The session is closed')
    try {
      return (this.encrypts(action, encrypted) ? encodeEncryptedCommand : encodeCommand)(
        {ACTION: action, PAYLOAD: payload, EE_DEST: this.address, INITIATOR_ID: this.options.initiatorId ?? 'r1-cli', SESSION_ID: this.sessionId, TIME: formatTime()},
        this.options.identity,
      )
    } catch (error) {
      throw new R1Error((error as Error).message, ExitCode.FAILURE, {code: 'INVALID_COMMAND'})
    }
  }

  /** Sends a signed command (`hash`: one whose answer is awaited); the first one of a session that greets with it opens the session. */
  private transmit(text: string, hash?: string): Promise<void> {
    if (this.greets) {
      this.greets = false
      this.sentAt = Date.now()
      this.opening = this.open(text)
      return this.opening
    }
    return this.opening ? this.opening.then(() => this.sendText(text, hash)) : this.sendText(text, hash)
  }

  /** Sends on the link; one held for a reconnection goes out then only while this session still awaits its answer (`hash`). */
  private sendText(text: string, hash?: string): Promise<void> {
    const link = this.link
    if (!link || (!link.open && !link.resuming)) {
      const why = this.lastClose ? `: the last connection closed with ${this.lastClose}` : link?.down ? `: ${link.down}` : ''
      return Promise.reject(unreachable(`Not connected to ${this.url}${why}`))
    }
    this.sentAt = Date.now()
    return link.send(text, () => !this.closed && (hash === undefined || this.pending.has(hash) || this.confirming.has(hash)))
  }

  /** Sends a query and resolves with its RESULT (checked against the action's result schema). */
  async request<A extends Action>(action: A, payload: PayloadOf<A>, options: Omit<SendOptions, 'expect'> = {}): Promise<ResultOf<A>> {
    return (await this.send(action, payload, options)).result
  }

  /** FULL_HEARTBEAT: the node's heartbeat now (allowed for any key; a key it does not allow gets the public one). */
  heartbeat(options: Omit<SendOptions, 'expect'> = {}): Promise<HeartbeatResult> {
    return this.request('FULL_HEARTBEAT', null, options)
  }

  /** R1_STATE's RESULT (PROTOCOL.md §4.9). */
  state(query: string | StateQuery = {}, options: Omit<SendOptions, 'expect'> = {}): Promise<StateResult> {
    const {name, heartbeat, bundles} = typeof query === 'string' ? {name: query} : query
    const payload = {...(name === undefined ? {} : {NAME: name}), ...(heartbeat ? {HEARTBEAT: true as const} : {}), ...(bundles ? {BUNDLES: bundles} : {})}
    return this.request('R1_STATE', Object.keys(payload).length > 0 ? payload : null, options)
  }

  /** The hashes among `hashes` the node does not hold. */
  async missingBundles(hashes: string[], options: Omit<SendOptions, 'expect'> = {}): Promise<string[]> {
    if (hashes.length === 0) return []
    const missing: string[] = []
    for (let i = 0; i < hashes.length; i += 1000) {
      const result = await this.request('R1_BUNDLE_HAS', {HASHES: hashes.slice(i, i + 1000)}, options)
      missing.push(...result.MISSING)
    }
    return missing
  }

  /** Uploads a bundle in chunks (R1_BUNDLE_PUT); resolves once the node stored it (hash checked there). */
  async putBundle(hash: string, bytes: Uint8Array, options: Omit<SendOptions, 'expect'> & {onProgress?: (sent: number, total: number) => void} = {}): Promise<void> {
    const count = Math.max(1, Math.ceil(bytes.length / BUNDLE_CHUNK_BYTES))
    for (let index = 0; index < count; index++) {
      const result = await this.request('R1_BUNDLE_PUT', {HASH: hash, SIZE: bytes.length, INDEX: index, COUNT: count, DATA: bundleChunkBase64(bytes, hash, index)}, options)
      options.onProgress?.(Math.min(bytes.length, (index + 1) * BUNDLE_CHUNK_BYTES), bytes.length)
      if (result.STORED) return
    }
    throw new R1Error(`The node did not store bundle ${hash.slice(0, 12)}… after all ${count} chunks`, ExitCode.FAILURE, {code: 'BUNDLE_NOT_STORED'})
  }

  /**
   * Subscribes (one subscription per session) and yields events in seq order: history first
   * (`sinceSeq` / `last`), then live. Survives disconnects: reconnects with back-off and resumes
   * after the last seq yielded, so nothing is lost or repeated. Ends on `close()` or the signal.
   */
  async *subscribe(options: SubscribeOptions = {}): AsyncGenerator<SubscriptionItem> {
    const filter: EventFilter | undefined = options.types || options.filter ? {...options.filter, ...(options.types ? {TYPES: options.types} : {})} : undefined
    const request: Subscribe = {
      ...(filter ? {FILTER: filter} : {}),
      ...(options.sinceSeq !== undefined ? {SINCE_SEQ: options.sinceSeq} : {}),
      ...(options.sinceSeq === undefined && options.last !== undefined ? {LAST: options.last} : {}),
      ...(options.sinceTime !== undefined ? {SINCE_TIME: new Date(options.sinceTime).toISOString()} : {}),
      ...(options.sinceSeq !== undefined && options.journalId !== undefined ? {JOURNAL_ID: options.journalId} : {}),
    }
    const sub: ActiveSubscription = {request: {...request, LAST: undefined}, matcher: compileFilter(filter), lastSeq: options.sinceSeq ?? -1, queue: [], done: false}
    if (this.subscription && !this.subscription.done) this.subscription.done = true
    this.subscription = sub
    const subscribed = await this.send('R1_SUBSCRIBE', request)
    const started = subscribed.result
    sub.hash = subscribed.hash
    sub.journalId = options.journalId ?? started.JOURNAL_ID
    options.onStarted?.(started)
    // Live-only subscriptions start at the node's current seq; history ones at what the node replays from.
    if (sub.lastSeq < 0) sub.lastSeq = options.last === undefined && options.sinceTime === undefined ? started.LAST_SEQ : started.FROM_SEQ
    const onAbort = () => this.endSubscription(sub)
    options.signal?.addEventListener('abort', onAbort, {once: true})
    try {
      for (;;) {
        if (sub.queue.length > 0) {
          const item = sub.queue.shift()!
          if (this.paused && sub.queue.length < LOW_QUEUE) {
            this.paused = false
            if (this.dialer.shared) this.resumeFromJournal(sub)
            else this.link?.resume()
          }
          if (item.EE_EVENT_TYPE === 'R1_LIVE') {
            options.onLive?.(item.POSITION)
            continue
          }
          yield item
          continue
        }
        if (sub.error) throw sub.error
        if (sub.done || this.closed) return
        await new Promise<void>((resolve) => (sub.wake = resolve))
        sub.wake = undefined
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      if (this.subscription === sub) {
        sub.done = true
        this.subscription = undefined
        // a subscription the node ended (sub.error) needs no unsubscribe
        if (this.connected && !this.closed && !sub.error) void this.post('R1_UNSUBSCRIBE', null).catch(() => undefined)
      }
    }
  }

  private endSubscription(sub: ActiveSubscription): void {
    sub.done = true
    sub.wake?.()
  }

  private failSubscription(error: Error): void {
    const sub = this.subscription
    if (!sub) return
    sub.error = error
    sub.wake?.()
  }

  /** Closes the connection; pending commands fail with exit 7, a subscription ends. */
  async close(): Promise<void> {
    if (this.closed) return
    // Through a broker no socket closes on the node's side: stop its streams now rather than when it drops the
    // idle session (a session that never subscribed has none: the node forgets it when the probes stop).
    if (this.dialer.shared && this.connected && this.subscribed) {
      // not for longer than a moment: the broker may be going away, and the node forgets an idle session anyway
      let timer: NodeJS.Timeout | undefined
      const moment = new Promise<void>((resolve) => (timer = setTimeout(resolve, UNSUBSCRIBE_WAIT_MS)))
      await Promise.race([this.post('R1_UNSUBSCRIBE', null).catch(() => undefined), moment])
      clearTimeout(timer)
    }
    this.closed = true
    clearInterval(this.pingTimer)
    clearTimeout(this.lostTimer)
    if (this.subscription) this.endSubscription(this.subscription)
    await this.link?.close()
  }

  /** Test hook: drops the connection as a network failure would (the session reconnects if subscribed). */
  dropConnection(): void {
    this.link?.terminate()
  }
}

/** What to do about a rejection, by its reason (the node's own words are in the message). */
function hintFor(rejection: Rejection): string | undefined {
  switch (rejection.REASON) {
    case 'NOT_ALLOWED':
      return 'Ask the node operator to run `r1 node allow <your address>` (yours: `r1 keys show`).'
    case 'TIME_SKEW':
      return "Fix this machine's clock (or the node's): commands carry a timestamp."
    case 'WRONG_DEST':
      return 'The target address does not match the node at that URL (`r1 node info --node <url>` prints its address).'
    case 'THROTTLED':
      return 'Too many commands at once; retry more slowly.'
    case 'REPLAY':
      return 'The node has already seen this exact command; send it again (a new command gets a new timestamp).'
    case 'BAD_SIGNATURE':
      return 'The command did not verify on the node: check your key file (`r1 keys show`).'
    case 'SHUTTING_DOWN':
      return 'The node is stopping; retry once it is back.'
    case 'BAD_ENCRYPTION':
      return "The node could not open the encrypted command: check that the target's address in config.yaml is this node's (`r1 node info --node <url>`)."
    case 'ENCRYPTION_REQUIRED':
      return 'Secrets travel only encrypted: send them with `r1 deploy`.'
    case 'UNKNOWN_ACTION':
      return 'The node runs another r1 version: compare `r1 --version` with `r1 status`.'
    case 'INVALID_PAYLOAD':
    case 'INVALID_MESSAGE':
    case 'BAD_JSON':
      return 'The node could not use what was sent (the reason is above); `r1 validate` checks config.yaml.'
    case 'EXECUTION_FAILED':
      if (/\bversion\b/i.test(rejection.NOTIFICATION)) return '`r1 pipelines ls` shows the versions each node keeps (pick one with `r1 rollback <name> --to <version>`).'
      if (/no pipeline|unknown pipeline|not found/i.test(rejection.NOTIFICATION)) return '`r1 pipelines ls` shows the pipelines on each node.'
      return 'The node could not carry the command out (the reason is above); `r1 status` shows its state.'
    default:
      return undefined
  }
}

/** Convenience: connect, run `fn`, always close. */
export async function withSession<T>(options: SessionOptions, fn: (session: Session) => Promise<T>): Promise<T> {
  const session = await Session.connect(options)
  try {
    return await fn(session)
  } finally {
    await session.close()
  }
}
