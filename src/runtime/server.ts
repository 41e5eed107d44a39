import {createServer as createHttpServer, type IncomingMessage, type Server as HttpServer} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import type {AddressInfo} from 'node:net'
import {WebSocket, WebSocketServer, type RawData} from 'ws'
import {R1Error} from '../errors.js'
import {canonicalJson, signingCanonical} from '../protocol/canonical.js'
import {NotificationCode, NotificationType} from '../protocol/codes.js'
import type {NodeEvent} from '../protocol/events.js'
import {compileFilter, gapEvent, liveMarker, type EventFilter, type EventMatcher, type GapEvent} from '../protocol/filter.js'
import type {Identity} from '../protocol/identity.js'
import {
  type Action,
  BUNDLE_CHUNK_BYTES,
  type BundlePut,
  type Hello,
  MAX_FRAME_BYTES,
  parseTime,
  PUBLIC_ACTIONS,
  type Rejection,
  type RejectionReason,
  type Reply,
  SUBPROTOCOL,
  type Subscribe,
} from '../protocol/messages.js'
import {decodeCommand, encodeBatch, signCanonical} from '../protocol/wire.js'
import type {CommandMeta, NodeCore} from './contract.js'
import {AllowList} from './server-allowlist.js'

/**
 * The node's WebSocket front (DESIGN.md §5, PROTOCOL.md): authenticates every command, then hands
 * it to the NodeCore; signs what goes out per frame, batching while a socket is busy; serves
 * subscriptions from the journal, then live.
 */

/** What the server needs from the event journal (src/runtime/journal.ts implements it). */
export interface EventHistory {
  /** The journal's id: seqs count in it (a wiped data dir starts a new one, and numbering restarts). */
  id?: string
  lastSeq(): number
  /** Puts buffered events on disk before they go on the wire (Journal.flushQuietly). */
  flush?(): void
  cursor(options: {sinceSeq?: number; last?: number; sinceTime?: number; filter?: EventFilter}): Promise<HistoryCursor>
}
export interface HistoryCursor {
  position: number
  readonly caughtUp: boolean
  /** Entries with their canonical JSON in UTF-8 (signed as is). */
  next(max?: number): Promise<Array<{entry: {EE_EVENT_TYPE: string; EE_MESSAGE_SEQ?: number} & Record<string, unknown>; json: Buffer}>>
}

/**
 * What the server asks of the core beyond NodeCore for r1's query actions (LocalNode has these);
 * without them R1_STATE / R1_BUNDLE_* are refused with EXECUTION_FAILED.
 */
export interface NodeQueries {
  state?(): Array<{
    name: string
    version: number
    archived: boolean
    config: Record<string, unknown>
    instances: Array<{signature: string; instanceId: string; status: string; lastError: string | null; pid?: number; counters?: Record<string, unknown>}>
  }>
  versions?(name: string): Array<{version: number; appliedAt: string; config?: unknown}>
  hasBundle?(hash: string): boolean
  putBundle?(hash: string, bytes: Uint8Array): Promise<void>
}

export interface RateLimit {
  /** Commands a connection may send at once. */
  burst: number
  /** Sustained commands per second. */
  perSecond: number
  /** Refused frames within 10 s after which the connection is closed (1008). */
  closeAfter: number
}

export interface NodeServerOptions {
  core: NodeCore
  identity: Identity
  /** The allow-list (file in the data dir); commands other than FULL_HEARTBEAT need an address on it. */
  allowList: AllowList
  history?: EventHistory
  host?: string
  /** 0 picks a free port. */
  port?: number
  /** PEM cert and key: the server speaks wss://. */
  tls?: {cert: string | Buffer; key: string | Buffer}
  /** Allowed |TIME - now| for commands (default 5 min). */
  skewMs?: number
  rateLimit?: Partial<RateLimit>
  /** ws ping period (default 15 s); a connection missing two pongs is terminated. */
  pingIntervalMs?: number
  /** Socket backlog above which a connection's frames wait (and batch). */
  highWaterBytes?: number
  /** Node software version reported by R1_STATE. */
  version?: string
  /** Open connections above which new ones are refused with HTTP 503 (default 1024). */
  maxConnections?: number
  /** Queued subscription items above which the node stops buffering and catches up from the journal. */
  maxQueuedEvents?: number
  log?: (line: string) => void
}

const DEFAULT_RATE: RateLimit = {burst: 200, perSecond: 100, closeAfter: 5000}
const MAX_BATCH_BYTES = 768 * 1024
const COMMAND_OWNER_TTL_MS = 10 * 60_000
const HASH_IN_TEXT = /"EE_HASH"\s*:\s*"([0-9a-f]{64})"/

interface OutItem {
  object: Record<string, unknown>
  /** Its canonical JSON in UTF-8. */
  json: Buffer
  /** Part of the subscription stream (dropped and re-read from the journal when the reader is slow). */
  sub: boolean
}

interface Subscription {
  /** Who subscribed, and the EE_HASH of the R1_SUBSCRIBE (named when the node ends it). */
  sender: string
  hash: string
  matcher: EventMatcher
  filter: EventFilter | undefined
  /** Last seq enqueued for this subscription. */
  position: number
  mode: 'live' | 'history'
  cursor?: HistoryCursor
  /** Increments on every (re)subscribe so a stale history pump stops. */
  generation: number
}

export class NodeServer {
  readonly address: string
  private http?: HttpServer
  private wss?: WebSocketServer
  private readonly connections = new Set<Connection>()
  /** EE_HASH → the connection that sent it, so its confirmations reach it without a subscription. */
  readonly commandOwners = new Map<string, {connection: Connection; expires: number}>()
  /** EE_HASH → expiry of commands seen (replay protection for the skew window). */
  private readonly seen = new Map<string, number>()
  private unsubscribe?: () => void
  private housekeeping?: NodeJS.Timeout
  private closing = false
  readonly skewMs: number
  readonly rate: RateLimit
  readonly highWater: number
  readonly maxQueued: number
  private urlValue = ''
  private readonly uploads = new Map<string, {size: number; count: number; chunks: Array<Buffer | undefined>; received: number; bytes: number; expires: number}>()
  private readonly startedAt = Date.now()

  constructor(readonly options: NodeServerOptions) {
    this.address = options.identity.address
    this.skewMs = options.skewMs ?? 5 * 60_000
    this.rate = {...DEFAULT_RATE, ...options.rateLimit}
    this.highWater = options.highWaterBytes ?? 256 * 1024
    this.maxQueued = options.maxQueuedEvents ?? 5000
  }

  get url(): string {
    return this.urlValue
  }

  get core(): NodeCore {
    return this.options.core
  }

  get connectionCount(): number {
    return this.connections.size
  }

  /** Back-pressure figures: the largest per-connection outgoing queue seen, and fallbacks to the journal. */
  readonly stats = {maxQueueLength: 0, fallbacks: 0, framesSent: 0, batchesSent: 0}

  /** Listens; resolves with the URL (`ws://host:port` or `wss://…`, the real port when 0 was asked). */
  async start(): Promise<string> {
    const {tls, host = '127.0.0.1', port = 0} = this.options
    const http = tls ? createHttpsServer({cert: tls.cert, key: tls.key}) : createHttpServer()
    http.on('request', (_req, res) => {
      res.writeHead(426, {'content-type': 'text/plain'}).end(`This is an r1 node (${this.address}); connect with a WebSocket, subprotocol ${SUBPROTOCOL}.\n`)
    })
    const wss = new WebSocketServer({
      server: http,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
      verifyClient: (info: {req: IncomingMessage}, done: (ok: boolean, code?: number, message?: string) => void) => {
        const offered = String(info.req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
        if (this.closing) done(false, 503, 'node shutting down')
        else if (this.connections.size >= (this.options.maxConnections ?? 1024)) done(false, 503, 'too many connections to this node; retry later')
        else if (offered.includes(SUBPROTOCOL)) done(true)
        else done(false, 400, `subprotocol ${SUBPROTOCOL} required`)
      },
    })
    wss.on('connection', (ws) => {
      const connection = new Connection(this, ws)
      this.connections.add(connection)
      ws.once('close', () => {
        this.connections.delete(connection)
        connection.dispose()
      })
    })
    wss.on('error', (error) => this.log(`websocket server error: ${error.message}`))
    this.http = http
    this.wss = wss
    this.unsubscribe = this.options.core.onEvent((event, json) => this.dispatchEvent(event, json))
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject)
      http.listen(port, host, () => {
        http.off('error', reject)
        resolve()
      })
    })
    const actual = http.address() as AddressInfo
    const shownHost = actual.family === 'IPv6' ? `[${actual.address}]` : actual.address
    this.urlValue = `${tls ? 'wss' : 'ws'}://${shownHost}:${actual.port}`
    const interval = this.options.pingIntervalMs ?? 15_000
    this.housekeeping = setInterval(() => this.tick(), Math.min(interval, 60_000))
    this.housekeeping.unref()
    return this.urlValue
  }

  /** Stops accepting, closes every connection with 1001; does not stop the core (serve.ts does). */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.unsubscribe?.()
    if (this.housekeeping) clearInterval(this.housekeeping)
    for (const connection of this.connections) connection.close(1001, 'node shutting down')
    const deadline = Date.now() + 2000
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    for (const connection of this.connections) connection.terminate()
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()))
    await new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()))
    this.http?.closeAllConnections?.()
  }

  get isClosing(): boolean {
    return this.closing
  }

  log(line: string): void {
    this.options.log?.(line)
  }

  /** Replay check: true when the hash is new (and records it until TIME + skew has passed). */
  remember(hash: string, timeMs: number): boolean | 'full' {
    if (this.seen.has(hash)) return false
    // Bounded memory: beyond this many commands within one skew window the node is saturated anyway.
    if (this.seen.size >= 1_000_000) return 'full'
    this.seen.set(hash, Math.max(timeMs, Date.now()) + this.skewMs + 1000)
    return true
  }

  get queries(): NodeQueries {
    return this.options.core as NodeCore & NodeQueries
  }

  /** R1_STATE's RESULT (PROTOCOL.md §4.9). */
  stateResult(name?: string): Record<string, unknown> {
    const queries = this.queries
    if (!queries.state) throw new R1Error('This node core cannot report its state', 1)
    const pipelines = queries.state().filter((p) => name === undefined || p.name === name)
    return {
      ADDRESS: this.address,
      ALIAS: this.core.alias,
      VERSION: this.options.version ?? null,
      UPTIME: (Date.now() - this.startedAt) / 1000,
      LAST_SEQ: this.core.lastSeq(),
      PIPELINES: pipelines.filter((p) => !p.archived).map((p) => ({...p.config, R1_VERSION: p.version})),
      ARCHIVED: pipelines.filter((p) => p.archived).map((p) => ({...p.config, R1_VERSION: p.version})),
      INSTANCES: pipelines.flatMap((p) =>
        p.instances.map((i) => ({
          PIPELINE: p.name,
          SIGNATURE: i.signature,
          INSTANCE_ID: i.instanceId,
          STATUS: i.status,
          LAST_ERROR: i.lastError,
          ...(i.pid ? {PID: i.pid} : {}),
          ...(i.counters ? {COUNTERS: i.counters} : {}),
        })),
      ),
      VERSIONS: Object.fromEntries(pipelines.map((p) => [p.name, (queries.versions?.(p.name) ?? []).map((v) => ({VERSION: v.version, TIME: v.appliedAt}))])),
    }
  }

  /** R1_BUNDLE_HAS's RESULT. */
  bundleHas(hashes: string[]): {HAVE: string[]; MISSING: string[]} {
    const has = this.queries.hasBundle
    if (!has) throw new R1Error('This node core does not store bundles', 1)
    const unique = [...new Set(hashes)]
    return {HAVE: unique.filter((h) => has.call(this.queries, h)), MISSING: unique.filter((h) => !has.call(this.queries, h))}
  }

  /** One R1_BUNDLE_PUT chunk; the bundle is stored (hash-checked by the core) once every chunk is in. */
  async bundlePut(chunk: BundlePut): Promise<{HASH: string; RECEIVED: number; COUNT: number; STORED: boolean}> {
    const queries = this.queries
    if (!queries.hasBundle || !queries.putBundle) throw new R1Error('This node core does not store bundles', 1)
    if (queries.hasBundle(chunk.HASH)) return {HASH: chunk.HASH, RECEIVED: chunk.COUNT, COUNT: chunk.COUNT, STORED: true}
    let upload = this.uploads.get(chunk.HASH)
    if (upload && (upload.size !== chunk.SIZE || upload.count !== chunk.COUNT)) {
      this.uploads.delete(chunk.HASH)
      upload = undefined
    }
    if (!upload) {
      if (this.uploads.size >= 16) throw new R1Error('Too many bundle uploads in progress on this node; retry shortly', 1)
      upload = {size: chunk.SIZE, count: chunk.COUNT, chunks: new Array(chunk.COUNT), received: 0, bytes: 0, expires: 0}
      this.uploads.set(chunk.HASH, upload)
    }
    upload.expires = Date.now() + 10 * 60_000
    const data = Buffer.from(chunk.DATA, 'base64')
    if (data.length > BUNDLE_CHUNK_BYTES) throw new R1Error(`Chunk ${chunk.INDEX} holds ${data.length} bytes; at most ${BUNDLE_CHUNK_BYTES} per chunk`, 1)
    const previous = upload.chunks[chunk.INDEX]
    if (!previous) upload.received++
    upload.bytes += data.length - (previous?.length ?? 0)
    upload.chunks[chunk.INDEX] = data
    if (upload.bytes > upload.size) {
      this.uploads.delete(chunk.HASH)
      throw new R1Error(`Bundle ${chunk.HASH.slice(0, 12)}… chunks exceed its SIZE ${upload.size}; upload discarded`, 1)
    }
    if (upload.received < upload.count) return {HASH: chunk.HASH, RECEIVED: upload.received, COUNT: upload.count, STORED: false}
    this.uploads.delete(chunk.HASH)
    const bytes = Buffer.concat(upload.chunks as Buffer[])
    if (bytes.length !== upload.size) throw new R1Error(`Bundle ${chunk.HASH.slice(0, 12)}… has ${bytes.length} bytes, SIZE says ${upload.size}; upload discarded`, 1)
    await queries.putBundle(chunk.HASH, new Uint8Array(bytes))
    return {HASH: chunk.HASH, RECEIVED: upload.count, COUNT: upload.count, STORED: true}
  }

  private tick(): void {
    const now = Date.now()
    for (const [hash, upload] of this.uploads) if (upload.expires < now) this.uploads.delete(hash)
    for (const [hash, expires] of this.seen) if (expires < now) this.seen.delete(hash)
    for (const [hash, owner] of this.commandOwners) if (owner.expires < now) this.commandOwners.delete(hash)
    for (const connection of this.connections) {
      connection.checkAlive()
      connection.checkSubscriber()
    }
  }

  private dispatchEvent(event: NodeEvent, json: Buffer): void {
    const hash = event.EE_EVENT_TYPE === 'NOTIFICATION' ? event.COMMAND_HASH : undefined
    const owner = hash ? this.commandOwners.get(hash)?.connection : undefined
    for (const connection of this.connections) {
      const delivered = connection.offerLive(event, json)
      if (connection === owner && !delivered) connection.enqueue(event, json)
    }
  }
}

class Connection {
  private tokens: number
  private lastRefill = Date.now()
  private refusals: number[] = []
  private lastThrottleNotice = 0
  private alive = true
  private readonly queue: OutItem[] = []
  private queuedSubscriptionItems = 0
  private flushScheduled = false
  private flushTimer?: NodeJS.Timeout
  private subscription?: Subscription
  private generation = 0
  private pumping = false
  private readonly ownedHashes = new Set<string>()
  private disposed = false

  constructor(
    private readonly server: NodeServer,
    private readonly ws: WebSocket,
  ) {
    this.tokens = server.rate.burst
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary))
    ws.on('pong', () => (this.alive = true))
    ws.on('error', (error) => server.log(`connection error: ${error.message}`))
    const hello: Hello = {
      EE_EVENT_TYPE: 'R1_HELLO',
      EE_PAYLOAD_PATH: [server.core.alias, null, null, null],
      EE_TIMESTAMP: new Date().toISOString(),
      EE_ADDR: server.address,
      EE_ALIAS: server.core.alias,
      LAST_SEQ: server.core.lastSeq(),
      VERSION: server.options.version ?? null,
      PROTOCOL: SUBPROTOCOL,
    }
    this.enqueue(hello)
  }

  checkAlive(): void {
    if (!this.alive) {
      this.ws.terminate()
      return
    }
    this.alive = false
    try {
      this.ws.ping()
    } catch {
      // The socket is already closing.
    }
  }

  /** Ends the subscription of a sender taken off the allow-list since it subscribed (checked every housekeeping tick). */
  checkSubscriber(): void {
    const sub = this.subscription
    if (!sub || this.server.options.allowList.has(sub.sender)) return
    this.subscription = undefined
    this.generation++
    this.dropQueuedSubscriptionItems()
    this.reject('NOT_ALLOWED', `${sub.sender} was removed from this node's allow-list: its subscription ended`, sub.hash, 'R1_SUBSCRIBE')
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason)
  }

  terminate(): void {
    this.ws.terminate()
  }

  dispose(): void {
    this.disposed = true
    this.queue.length = 0
    this.subscription = undefined
    if (this.flushTimer) clearTimeout(this.flushTimer)
    for (const hash of this.ownedHashes) {
      if (this.server.commandOwners.get(hash)?.connection === this) this.server.commandOwners.delete(hash)
    }
  }

  // ---- incoming ----

  private takeToken(): boolean {
    const now = Date.now()
    const {burst, perSecond} = this.server.rate
    this.tokens = Math.min(burst, this.tokens + ((now - this.lastRefill) / 1000) * perSecond)
    this.lastRefill = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** Counts a refused frame; closes the connection (1008) when it keeps flooding. */
  private strike(): boolean {
    const now = Date.now()
    this.refusals.push(now)
    if (this.refusals.length > this.server.rate.closeAfter) {
      this.refusals = this.refusals.filter((t) => now - t < 10_000)
      if (this.refusals.length > this.server.rate.closeAfter) {
        this.server.log('closing a connection that keeps flooding')
        this.close(1008, 'flooding: too many refused frames')
        return false
      }
    }
    return true
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.disposed) return
    const text = isBinary ? '' : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8')
    if (!this.takeToken()) {
      if (!this.strike()) return
      const now = Date.now()
      if (now - this.lastThrottleNotice >= 100) {
        this.lastThrottleNotice = now
        const perSecond = this.server.rate.perSecond
        this.reject('THROTTLED', `too many commands on this connection (over ${perSecond}/s); slow down and resend`, HASH_IN_TEXT.exec(text.slice(0, 4096))?.[1] ?? null, null)
      }
      return
    }
    if (isBinary) {
      this.strike()
      this.reject('BAD_JSON', 'binary frames are not accepted; send JSON text frames', null, null)
      return
    }
    void this.handleCommand(text).catch((error) => {
      this.server.log(`command handling failed: ${(error as Error).stack ?? error}`)
    })
  }

  private async handleCommand(text: string): Promise<void> {
    const server = this.server
    const decoded = decodeCommand(text)
    if (!decoded.ok) {
      this.strike()
      this.reject(decoded.reason, decoded.detail, decoded.hash, decoded.action)
      return
    }
    const {command, action, payload, hash, sender} = decoded
    if (command.EE_DEST !== server.address) {
      this.reject('WRONG_DEST', `EE_DEST ${command.EE_DEST.slice(0, 60)} is not this node (${server.address})`, hash, action)
      return
    }
    const timeMs = parseTime(command.TIME)
    if (!(Math.abs(timeMs - Date.now()) <= server.skewMs)) {
      this.reject('TIME_SKEW', `TIME ${command.TIME} is more than ${Math.round(server.skewMs / 1000)} s from the node's clock (${new Date().toISOString()}); check the client's clock`, hash, action)
      return
    }
    const fresh = server.remember(hash, timeMs)
    if (fresh === 'full') {
      this.reject('THROTTLED', 'the node is saturated with commands; retry shortly', hash, action)
      return
    }
    if (!fresh) {
      this.reject('REPLAY', `command ${hash} was already received; sign a new one`, hash, action)
      return
    }
    if (!PUBLIC_ACTIONS.has(action) && !server.options.allowList.has(sender)) {
      this.reject('NOT_ALLOWED', `${sender} is not on this node's allow-list; on the node run: r1 node allow ${sender}`, hash, action)
      return
    }
    if (server.isClosing) {
      this.reject('SHUTTING_DOWN', 'the node is shutting down', hash, action)
      return
    }
    await this.execute(action, payload, {hash, sender, initiator: command.INITIATOR_ID, sessionId: command.SESSION_ID})
  }

  private async execute(action: Action, payload: unknown, meta: CommandMeta): Promise<void> {
    const core = this.server.core
    switch (action) {
      case 'FULL_HEARTBEAT':
        this.reply(meta.hash, action, core.heartbeat())
        return
      case 'R1_SUBSCRIBE':
        await this.subscribe(payload as Subscribe, meta)
        return
      case 'R1_STATE':
        return this.answer(meta.hash, action, () => this.server.stateResult((payload as {NAME?: string} | null | undefined)?.NAME))
      case 'R1_BUNDLE_HAS':
        return this.answer(meta.hash, action, () => this.server.bundleHas((payload as {HASHES: string[]}).HASHES))
      case 'R1_BUNDLE_PUT':
        return this.answer(meta.hash, action, () => this.server.bundlePut(payload as BundlePut))
      case 'R1_UNSUBSCRIBE':
        this.subscription = undefined
        this.generation++
        this.dropQueuedSubscriptionItems()
        this.reply(meta.hash, action, null)
        return
    }
    this.ownedHashes.add(meta.hash)
    this.server.commandOwners.set(meta.hash, {connection: this, expires: Date.now() + COMMAND_OWNER_TTL_MS})
    let result: unknown
    try {
      // The contract types execute() as void; query actions (R1_STATE, R1_BUNDLE_*) resolve with their RESULT.
      result = (await (core.execute as (a: string, p: unknown, m: CommandMeta) => Promise<unknown>)(action, payload, meta)) ?? null
    } catch (error) {
      const message = error instanceof R1Error || error instanceof Error ? error.message : String(error)
      this.reject('EXECUTION_FAILED', message, meta.hash, action)
      return
    }
    this.reply(meta.hash, action, result)
  }

  private async answer(hash: string, action: Action, compute: () => unknown): Promise<void> {
    let result: unknown
    try {
      result = await compute()
    } catch (error) {
      this.reject('EXECUTION_FAILED', error instanceof Error ? error.message : String(error), hash, action)
      return
    }
    this.reply(hash, action, result)
  }

  // ---- subscriptions ----

  private async subscribe(request: Subscribe, {hash, sender}: CommandMeta): Promise<void> {
    const filter: EventFilter | undefined = request.TYPES || request.FILTER ? {...request.FILTER, ...(request.TYPES ? {TYPES: request.TYPES} : {})} : undefined
    const generation = ++this.generation
    this.dropQueuedSubscriptionItems()
    const history = this.server.options.history
    const lastSeq = this.server.core.lastSeq()
    // A resume whose seqs this journal does not have: another journal (data dir wiped or replaced), so
    // from its start; or this one gone back (restored from a backup, a power loss), so from its end.
    let resetTo: number | undefined
    if (request.SINCE_SEQ !== undefined && request.JOURNAL_ID !== undefined && history?.id !== undefined) {
      if (request.JOURNAL_ID !== history.id) resetTo = 0
      else if (request.SINCE_SEQ > lastSeq) resetTo = lastSeq
    }
    const sinceSeq = resetTo ?? request.SINCE_SEQ
    const wantsHistory = sinceSeq !== undefined || (request.LAST !== undefined && request.LAST > 0) || request.SINCE_TIME !== undefined
    const subscription: Subscription = {sender, hash, matcher: compileFilter(filter), filter, position: lastSeq, mode: 'live', generation}
    if (wantsHistory && history) {
      subscription.cursor = await history.cursor({
        sinceSeq,
        last: sinceSeq === undefined ? request.LAST : undefined,
        sinceTime: request.SINCE_TIME === undefined ? undefined : Date.parse(request.SINCE_TIME),
        filter,
      })
      if (generation !== this.generation) return
      subscription.position = subscription.cursor.position
      subscription.mode = 'history'
    }
    this.subscription = subscription
    this.reply(hash, 'R1_SUBSCRIBE', {LAST_SEQ: lastSeq, FROM_SEQ: subscription.position, ...(history?.id ? {JOURNAL_ID: history.id} : {})})
    if (resetTo !== undefined) this.enqueueGap(request.SINCE_SEQ! + 1, resetTo, 'reset', history?.id)
    if (wantsHistory && !history && request.SINCE_SEQ !== undefined && request.SINCE_SEQ < lastSeq) {
      this.enqueueGap(request.SINCE_SEQ + 1, lastSeq)
    }
    if (subscription.mode === 'history') void this.pump()
    else this.enqueueLiveMarker(subscription.position)
  }

  /** Tells the subscriber that history is over (r1 logs without --follow stops there). */
  private enqueueLiveMarker(position: number): void {
    this.enqueue(liveMarker(this.server.core.alias, position), undefined, true)
  }

  /** Offers a live event; true when it was queued for this connection's subscription. */
  offerLive(event: NodeEvent, json: Buffer): boolean {
    const sub = this.subscription
    if (!sub || this.disposed) return false
    if (sub.mode === 'history') return sub.matcher(event) // the pump will read it from the journal
    if (event.EE_MESSAGE_SEQ <= sub.position) return sub.matcher(event)
    sub.position = event.EE_MESSAGE_SEQ
    if (!sub.matcher(event)) return false
    if (this.queuedSubscriptionItems >= this.server.maxQueued) {
      this.fallBehind()
      return true
    }
    this.enqueue(event, json, true)
    return true
  }

  /** A slow reader: forget what is queued and resume from the journal once its socket drains. */
  private fallBehind(): void {
    const sub = this.subscription!
    const history = this.server.options.history
    this.server.stats.fallbacks++
    const firstDropped = this.dropQueuedSubscriptionItems(true)
    const resumeAfter = firstDropped === undefined ? sub.position : firstDropped - 1
    if (!history) {
      this.enqueueGap(resumeAfter + 1, sub.position)
      return
    }
    sub.mode = 'history'
    sub.cursor = undefined
    sub.position = resumeAfter
    void this.pump()
  }

  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      for (;;) {
        const sub = this.subscription
        if (!sub || sub.mode !== 'history' || this.disposed) return
        if (this.queuedSubscriptionItems > 500 || this.ws.bufferedAmount > this.server.highWater) {
          await new Promise((r) => setTimeout(r, 10))
          continue
        }
        const history = this.server.options.history!
        sub.cursor ??= await history.cursor({sinceSeq: sub.position, filter: sub.filter})
        const page = await sub.cursor.next(500)
        if (this.disposed) return
        if (sub !== this.subscription) continue // resubscribed meanwhile: this pump serves the new one
        for (const {entry, json} of page) {
          this.enqueue(entry, json, true)
          if (typeof entry.EE_MESSAGE_SEQ === 'number') sub.position = entry.EE_MESSAGE_SEQ
        }
        sub.position = Math.max(sub.position, sub.cursor.position)
        // Caught up with the core (the journal appends before the core emits): live from here.
        if (sub.cursor.caughtUp && sub.position >= this.server.core.lastSeq()) {
          sub.mode = 'live'
          sub.cursor = undefined
          this.enqueueLiveMarker(sub.position)
          return
        }
        if (page.length === 0) await new Promise((r) => setTimeout(r, 5))
      }
    } catch (error) {
      this.server.log(`history read failed: ${(error as Error).message}`)
    } finally {
      this.pumping = false
    }
  }

  private enqueueGap(fromSeq: number, toSeq: number, reason: GapEvent['REASON'] = 'retention', journalId?: string): void {
    this.enqueue({...gapEvent(fromSeq, toSeq, reason), ...(journalId ? {JOURNAL_ID: journalId} : {}), EE_PAYLOAD_PATH: [this.server.core.alias, null, null, null]}, undefined, true)
  }

  // ---- outgoing ----

  private reply(hash: string, action: Action, result: unknown): void {
    const reply: Reply = {
      EE_EVENT_TYPE: 'R1_REPLY',
      EE_PAYLOAD_PATH: [this.server.core.alias, null, null, null],
      EE_TIMESTAMP: new Date().toISOString(),
      COMMAND_HASH: hash,
      ACTION: action,
      RESULT: result === undefined ? null : result,
    }
    this.enqueue(reply)
  }

  private reject(reason: RejectionReason, detail: string, hash: string | null, action: string | null): void {
    const rejection: Rejection = {
      EE_EVENT_TYPE: 'NOTIFICATION',
      EE_PAYLOAD_PATH: [this.server.core.alias, null, null, null],
      EE_TIMESTAMP: new Date().toISOString(),
      NOTIFICATION_TYPE: NotificationType.EXCEPTION,
      NOTIFICATION_CODE: NotificationCode.COMM_RECEIVED_BAD_COMMAND,
      NOTIFICATION: `Command rejected (${reason}): ${detail}`,
      REASON: reason,
      COMMAND_HASH: hash,
      ACTION: action,
    }
    this.enqueue(rejection)
  }

  /** Queues a frame item; `json` is its canonical JSON in UTF-8 when already made. */
  enqueue(object: object, json: Buffer = Buffer.from(canonicalJson(object)), subscriptionItem = false): void {
    if (this.disposed) return
    this.queue.push({object: object as Record<string, unknown>, json, sub: subscriptionItem})
    if (this.queue.length > this.server.stats.maxQueueLength) this.server.stats.maxQueueLength = this.queue.length
    if (subscriptionItem) this.queuedSubscriptionItems++
    this.scheduleFlush()
  }

  /**
   * Removes queued subscription items; returns the first dropped seq. A slow reader's fallback to the
   * journal (`forFallback`) keeps a reset gap: the journal could not make it again.
   */
  private dropQueuedSubscriptionItems(forFallback = false): number | undefined {
    let first: number | undefined
    let kept = 0
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const item = this.queue[i]!
      if (!item.sub) continue
      const gap = item.object.EE_EVENT_TYPE === 'R1_GAP' ? item.object.REASON : undefined
      if (forFallback && gap === 'reset') {
        kept++
        continue
      }
      // a dropped retention/missing gap is found again when the journal is read from its FROM_SEQ
      const seq = gap === undefined ? item.object.EE_MESSAGE_SEQ : gap === 'reset' ? undefined : item.object.FROM_SEQ
      if (typeof seq === 'number') first = seq
      this.queue.splice(i, 1)
    }
    this.queuedSubscriptionItems = kept
    return first
  }

  private scheduleFlush(delayMs = 0): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    const run = () => {
      this.flushScheduled = false
      this.flushTimer = undefined
      this.flush()
    }
    if (delayMs > 0) this.flushTimer = setTimeout(run, delayMs)
    else setImmediate(run)
  }

  private flush(): void {
    if (this.disposed || this.queue.length === 0) return
    if (this.ws.readyState !== WebSocket.OPEN) return
    // Socket busy: let items accumulate and go out as one signed batch.
    if (this.ws.bufferedAmount > this.server.highWater) {
      this.scheduleFlush(5)
      return
    }
    const identity = this.server.options.identity
    let frame: string | Buffer
    let taken = 1
    const first = this.queue[0]!
    if (this.queue.length === 1 || first.json.length > MAX_BATCH_BYTES) {
      frame = signCanonical(signingCanonical(first.object), identity).text
    } else {
      let bytes = first.json.length
      while (taken < this.queue.length && bytes + this.queue[taken]!.json.length < MAX_BATCH_BYTES) bytes += this.queue[taken++]!.json.length + 1
      frame = taken === 1 ? signCanonical(signingCanonical(first.object), identity).text : encodeBatch(this.queue.slice(0, taken).map((i) => i.json), identity).frame
    }
    this.server.options.history?.flush?.()
    const sent = this.queue.splice(0, taken)
    for (const item of sent) if (item.sub) this.queuedSubscriptionItems--
    this.server.stats.framesSent++
    if (taken > 1) this.server.stats.batchesSent++
    this.ws.send(frame, {binary: false}, (error) => {
      if (error) this.server.log(`send failed: ${error.message}`)
    })
    if (this.queue.length > 0) this.scheduleFlush()
    if (this.subscription?.mode === 'history' && this.queuedSubscriptionItems < 100) void this.pump()
  }
}
