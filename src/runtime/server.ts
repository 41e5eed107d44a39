import {mkdtemp} from 'node:fs/promises'
import {createServer as createHttpServer, type IncomingMessage, type Server as HttpServer} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import type {AddressInfo, Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {WebSocket, WebSocketServer, type RawData} from 'ws'
import {R1Error} from '../errors.js'
import {type NodeEvent, isFailureNotification} from '../protocol/events.js'
import type {EventFilter} from '../protocol/filter.js'
import type {Identity} from '../protocol/identity.js'
import {MAX_FRAME_BYTES, type StateResult, SUBPROTOCOL} from '../protocol/messages.js'
import {ConnectionSlots, ipKey, PendingSockets, type SlotLimits} from './admission.js'
import {Connection, type FrameTransport} from './connection.js'
import type {NodeCore} from './contract.js'
import {bundleHas, type NodeQueries, PublicHeartbeatCache, stateResult} from './node-info.js'
import {ReplayCache} from './replay-cache.js'
import {AllowList} from './server-allowlist.js'
import {ServiceActions} from './service-actions.js'
import {BundleUploads, type UploadLimits} from './uploads.js'

/**
 * Housekeeping periods in a row in which a saturated node judges nobody's liveness: then it judges anyway,
 * so a flood that keeps it busy cannot keep dead sessions (and their slots) for good.
 */
const MAX_UNJUDGED_TICKS = 4

/** Whether this thread's event loop was saturated (busy 90 % of the time or more) since the last look. */
export class LoopWatch {
  private last = performance.eventLoopUtilization()

  saturated(): boolean {
    const now = performance.eventLoopUtilization()
    const busy = performance.eventLoopUtilization(now, this.last).utilization
    this.last = now
    return busy >= 0.9
  }
}

export type {NodeQueries} from './node-info.js'

/**
 * The node's front (PROTOCOL.md): listens for WebSockets, gives out connection slots (admission.ts),
 * and moves frames for each Connection (connection.ts: admission, execution, subscription, batching);
 * the broker front (mqtt-front.ts) opens its client sessions here too (`admit`, `open`, `closed`).
 * It owns what connections share: the replay cache (replay-cache.ts), bundle reassembly
 * (uploads.ts), the public heartbeat (node-info.ts) and which connection sent which command.
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
  /**
   * The node's data dir: the replay cache (`replay.log`, so a command is accepted once across
   * restarts) and the upload spool (`uploads/`, emptied at start) live there. Without it the replay
   * cache is in memory only and the spool is a temp dir.
   */
  dataDir?: string
  /** Listen for WebSocket sessions (default true); a node reached only through a broker (mqtt-front.ts) does not. */
  listen?: boolean
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
  /** Open connections at most (default 1024); beyond, when no unauthenticated one can be evicted, the upgrade gets HTTP 503. */
  maxConnections?: number
  /** Slots only connections of allow-listed senders may hold (default maxConnections / 8). */
  reservedConnections?: number
  /**
   * Unauthenticated connections per remote IP (IPv6: per /64; default 32); a new one evicts that IP's
   * oldest. Sockets not yet upgraded to a WebSocket count separately, against the same per-IP number.
   */
  maxConnectionsPerIp?: number
  /** TCP/TLS sockets not yet upgraded to a WebSocket, in all (default 1024); a new one beyond drops the oldest. */
  maxPendingConnections?: number
  /**
   * A connection that has not sent an admitted command from an allow-listed sender by then is
   * terminated (default 10 s). A socket gets as long to finish its TLS handshake and its HTTP upgrade request.
   */
  authGraceMs?: number
  /** Hashes remembered per allow-listed sender within the skew window (default 10,000); beyond, THROTTLED. */
  replayPerSender?: number
  /** Bundle uploads in progress per sender and their idle expiry (default 4, 60 s). */
  uploads?: Partial<UploadLimits>
  /** Strangers' FULL_HEARTBEAT per connection (default 5 at once, 1/s). */
  publicHeartbeatRate?: {burst: number; perSecond: number}
  /** Queued subscription items above which the node stops buffering and catches up from the journal. */
  maxQueuedEvents?: number
  /** The clock (ms) for skew, replay expiry, upload expiry and rates; tests move it. */
  now?: () => number
  log?: (line: string) => void
}

const DEFAULT_RATE: RateLimit = {burst: 200, perSecond: 100, closeAfter: 5000}

export class NodeServer {
  readonly address: string
  private http?: HttpServer
  private wss?: WebSocketServer
  private readonly connections = new Set<Connection>()
  readonly slots: ConnectionSlots<Connection>
  /** Sockets before their WebSocket upgrade (counted from the TCP accept). */
  readonly pending: PendingSockets<Socket>
  /** `address|port` → the accepted TCP socket, to find it again from the upgrade request (a TLS socket wraps it). */
  private readonly pendingByPeer = new Map<string, Socket>()
  /** EE_HASH → the connection that sent it, so its confirmations reach it without a subscription. */
  readonly commandOwners = new Map<string, {connection: Connection; expires: number}>()
  /**
   * Pipeline → the connections whose sender applied its config (DEPLOY_ACTIONS) → that sender and until
   * when: the failures of its instances (an exception, a crash: they answer no command) reach them too,
   * without a subscription, while the sender stays allowed.
   */
  readonly pipelineCommanders = new Map<string, Map<Connection, PipelineCommander>>()
  private replayCache?: ReplayCache
  private bundleUploads?: BundleUploads
  private serviceActions?: ServiceActions
  private publicHeartbeat?: PublicHeartbeatCache
  private unsubscribe?: () => void
  private housekeeping?: NodeJS.Timeout
  /** The event loop since the last housekeeping tick, and how many ticks in a row it was too busy to judge liveness. */
  private loop = new LoopWatch()
  private unjudgedTicks = 0
  private closing = false
  readonly skewMs: number
  readonly rate: RateLimit
  readonly highWater: number
  readonly maxQueued: number
  readonly authGraceMs: number
  readonly now: () => number
  private urlValue = ''
  private readonly startedAt: number

  constructor(readonly options: NodeServerOptions) {
    this.address = options.identity.address
    this.skewMs = options.skewMs ?? 5 * 60_000
    this.rate = {...DEFAULT_RATE, ...options.rateLimit}
    this.highWater = options.highWaterBytes ?? 256 * 1024
    this.maxQueued = options.maxQueuedEvents ?? 5000
    this.authGraceMs = options.authGraceMs ?? 10_000
    this.now = options.now ?? Date.now
    this.startedAt = this.now()
    const max = options.maxConnections ?? 1024
    const perIp = options.maxConnectionsPerIp ?? 32
    this.slots = new ConnectionSlots<Connection>({max, reserved: options.reservedConnections ?? Math.floor(max / 8), perIp} satisfies SlotLimits)
    this.pending = new PendingSockets<Socket>({perIp, max: options.maxPendingConnections ?? 1024})
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

  /** The replay cache (open once started). */
  get replay(): ReplayCache {
    if (!this.replayCache) throw new Error('NodeServer not started')
    return this.replayCache
  }

  /** The CStore and R1FS actions (open once started). */
  get services(): ServiceActions {
    if (!this.serviceActions) throw new Error('NodeServer not started')
    return this.serviceActions
  }

  /** Bundle reassembly (open once started). */
  get uploads(): BundleUploads {
    if (!this.bundleUploads) throw new Error('NodeServer not started')
    return this.bundleUploads
  }

  /** Back-pressure figures: the largest per-connection outgoing queue seen, and fallbacks to the journal. */
  readonly stats = {maxQueueLength: 0, fallbacks: 0, framesSent: 0, batchesSent: 0, evicted: 0, droppedPending: 0}

  /** Listens; resolves with the URL (`ws://host:port` or `wss://…`, the real port when 0 was asked). */
  async start(): Promise<string> {
    const {tls, host = '127.0.0.1', port = 0, dataDir} = this.options
    try {
      this.replayCache = await ReplayCache.open({path: dataDir ? join(dataDir, 'replay.log') : undefined, perSender: this.options.replayPerSender, now: this.now})
      const spool = dataDir ? join(dataDir, 'uploads') : await mkdtemp(join(tmpdir(), 'r1-uploads-'))
      this.bundleUploads = await BundleUploads.open(spool, this.bundleStore(), this.options.uploads, this.now)
      this.serviceActions = await ServiceActions.open(dataDir ? join(dataDir, 'r1fs-uploads') : await mkdtemp(join(tmpdir(), 'r1-r1fs-uploads-')), () => this.queries.services, this.options.uploads, this.now)
    } catch (error) {
      await this.replayCache?.close()
      throw new R1Error(`Cannot open the replay cache or the upload spools in ${dataDir ?? tmpdir()}: ${(error as Error).message}`, 1, {
        code: 'DATA_DIR',
        hint: 'The node needs a writable --data-dir.',
      })
    }
    this.publicHeartbeat = new PublicHeartbeatCache({address: this.address, alias: this.core.alias, version: this.options.version ?? null, startedAt: this.startedAt, tags: this.core.tags}, this.now)
    this.unsubscribe = this.options.core.onEvent((event, json) => this.dispatchEvent(event, json))
    const interval = this.options.pingIntervalMs ?? 15_000
    this.loop = new LoopWatch() // the first period starts now, after start-up's own work
    this.housekeeping = setInterval(() => this.tick(), Math.min(interval, 60_000))
    this.housekeeping.unref()
    if (this.options.listen === false) return this.urlValue
    // A stranger's socket gets the auth grace to finish its TLS handshake and its upgrade request
    // (Node's defaults: 120 s and 60 s, checked every 30 s).
    const grace = Math.max(1, Math.ceil(this.authGraceMs))
    const timeouts = {headersTimeout: grace, requestTimeout: grace, connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(grace / 4)))}
    const http = tls ? createHttpsServer({cert: tls.cert, key: tls.key, handshakeTimeout: grace, ...timeouts}) : createHttpServer(timeouts)
    // Counted from the TCP accept (before TLS), not only at the upgrade: partial headers hold a place too.
    http.on('connection', (socket: Socket) => this.acceptSocket(socket))
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
        if (this.closing) return done(false, 503, 'node shutting down')
        if (!offered.includes(SUBPROTOCOL)) return done(false, 400, `subprotocol ${SUBPROTOCOL} required`)
        const room = this.admit(remoteIp(info.req))
        if (!room.ok) return done(false, 503, room.detail)
        done(true)
      },
    })
    wss.on('connection', (ws, req) => {
      this.upgraded(req.socket)
      const connection = this.open(webSocketTransport(ws, (error) => this.log(`send failed: ${error.message}`)), remoteIp(req))
      ws.on('message', (data, isBinary) => connection.receive(isBinary ? undefined : textOf(data)))
      ws.on('pong', () => connection.pong())
      ws.on('error', (error) => this.log(`connection error: ${error.message}`))
      ws.once('close', () => this.closed(connection))
    })
    wss.on('error', (error) => this.log(`websocket server error: ${error.message}`))
    this.http = http
    this.wss = wss
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
    return this.urlValue
  }

  /**
   * A connection over `transport` (a WebSocket, or a client's virtual connection on a broker), counted
   * against the slots under `peer` (a remote IP, or a sender address); `closed` releases it. Call
   * `admit(peer)` first to make room.
   */
  open(transport: FrameTransport, peer: string): Connection {
    const connection = new Connection(this, transport)
    this.connections.add(connection)
    this.slots.add(connection, peer)
    return connection
  }

  /** Whether a new connection from `peer` may open; evicts unauthenticated ones to make room (the newcomer is refused only when every slot is held by allow-listed senders). */
  admit(peer: string): {ok: true} | {ok: false; detail: string} {
    if (this.closing) return {ok: false, detail: 'node shutting down'}
    const room = this.slots.admit(peer)
    if (!room.ok) return room
    for (const connection of room.evict) this.evict(connection)
    return {ok: true}
  }

  /** The connection's link is gone: its slot is freed, its subscription ends. */
  closed(connection: Connection): void {
    if (!this.connections.delete(connection)) return
    this.slots.remove(connection)
    connection.dispose()
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
    for (const socket of this.pendingByPeer.values()) socket.destroy()
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()))
    await new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()))
    this.http?.closeAllConnections?.()
    await this.replayCache?.close()
    await this.bundleUploads?.close()
    await this.serviceActions?.close()
  }

  get isClosing(): boolean {
    return this.closing
  }

  log(line: string): void {
    this.options.log?.(line)
  }

  get queries(): NodeQueries {
    return this.options.core as NodeCore & NodeQueries
  }

  /** R1_STATE's RESULT (PROTOCOL.md §4.9). */
  stateResult(name?: string): StateResult {
    return stateResult(this.options.core as NodeCore & NodeQueries, {version: this.options.version ?? null, uptimeSeconds: (this.now() - this.startedAt) / 1000}, name)
  }

  /** R1_BUNDLE_HAS's RESULT. */
  bundleHas(hashes: string[]): {HAVE: string[]; MISSING: string[]} {
    return bundleHas(this.queries, hashes)
  }

  /** The heartbeat a sender not on the allow-list gets (cached, never journaled). */
  publicHeartbeatResult(): unknown {
    return this.publicHeartbeat!.get()
  }

  /** Forgets what has expired: replay hashes past their window, idle uploads, stale command owners. */
  expire(): void {
    const now = this.now()
    this.replayCache?.expire()
    this.bundleUploads?.expire()
    this.serviceActions?.expire()
    for (const [hash, owner] of this.commandOwners) if (owner.expires < now) this.commandOwners.delete(hash)
    for (const [pipeline, commanders] of this.pipelineCommanders) {
      for (const [connection, commander] of commanders) if (!this.hearsFailures(commander, now)) commanders.delete(connection)
      if (commanders.size === 0) this.pipelineCommanders.delete(pipeline)
    }
  }

  private bundleStore(): {hasBundle(hash: string): boolean; putBundle(hash: string, bytes: Uint8Array): Promise<void>} {
    const queries = this.queries
    const missing = () => new R1Error('This node core does not store bundles', 1)
    return {
      hasBundle: (hash) => {
        if (!queries.hasBundle) throw missing()
        return queries.hasBundle(hash)
      },
      putBundle: (hash, bytes) => (queries.putBundle ? queries.putBundle(hash, bytes) : Promise.reject(missing())),
    }
  }

  /** Makes room for a newcomer: an unauthenticated connection is terminated (a 1013 close frame first, try again later). */
  private evict(connection: Connection): void {
    this.slots.remove(connection)
    this.stats.evicted++
    connection.terminate(1013, 'evicted: this node is at its connection limit for unauthenticated connections')
  }

  /** A TCP socket accepted: counted until its upgrade; the oldest of its address (or of all) dropped beyond the limits. */
  private acceptSocket(socket: Socket): void {
    const peer = peerKey(socket)
    if (this.closing || !peer) {
      socket.destroy()
      return
    }
    for (const dropped of this.pending.add(socket, ipKey(socket.remoteAddress))) {
      this.stats.droppedPending++
      dropped.destroy()
    }
    this.pendingByPeer.set(peer, socket)
    socket.once('close', () => {
      this.pending.release(socket)
      if (this.pendingByPeer.get(peer) === socket) this.pendingByPeer.delete(peer)
    })
  }

  /** Its upgrade went through: ConnectionSlots and the auth grace count it from here. */
  private upgraded(socket: Socket): void {
    const peer = peerKey(socket)
    const raw = peer ? this.pendingByPeer.get(peer) : undefined
    if (!raw) return
    this.pendingByPeer.delete(peer!)
    this.pending.release(raw)
  }

  private tick(): void {
    this.expire()
    // A node whose event loop was saturated since the last tick may not have read what its peers sent (a
    // backlog of messages ahead of theirs): it cannot tell a silent peer from an unheard one, so liveness is
    // judged after a period it had time to listen in, or after MAX_UNJUDGED_TICKS busy ones in a row.
    const judge = !this.loop.saturated() || this.unjudgedTicks >= MAX_UNJUDGED_TICKS
    this.unjudgedTicks = judge ? 0 : this.unjudgedTicks + 1
    for (const connection of this.connections) {
      if (judge) connection.checkAlive()
      connection.checkSubscriber()
    }
  }

  /** `connection`'s sender applied the configs of `pipelines` (DEPLOY_ACTIONS): it hears their failures from now on, for `ttlMs`. */
  commanded(connection: Connection, pipelines: readonly string[], sender: string, ttlMs: number): void {
    const commander = {sender, expires: this.now() + ttlMs}
    for (const name of pipelines) {
      const commanders = this.pipelineCommanders.get(name) ?? new Map<Connection, PipelineCommander>()
      this.pipelineCommanders.set(name, commanders.set(connection, commander))
    }
  }

  /** A connection that is gone hears nothing more. */
  forgetCommander(connection: Connection): void {
    for (const commanders of this.pipelineCommanders.values()) commanders.delete(connection)
  }

  /** Whether a pipeline's commander still hears its failures: within its time, its sender still allowed. */
  private hearsFailures(commander: PipelineCommander | undefined, now: number): boolean {
    return commander !== undefined && commander.expires >= now && this.options.allowList.has(commander.sender)
  }

  private dispatchEvent(event: NodeEvent, json: Buffer): void {
    const notification = event.EE_EVENT_TYPE === 'NOTIFICATION' ? event : undefined
    const hash = notification?.COMMAND_HASH
    const owner = hash ? this.commandOwners.get(hash)?.connection : undefined
    const pipeline = notification && !hash && isFailureNotification(notification) ? notification.EE_PAYLOAD_PATH[1] : null
    const commanders = pipeline === null ? undefined : this.pipelineCommanders.get(pipeline)
    const now = this.now()
    for (const connection of this.connections) {
      const delivered = connection.offerLive(event, json)
      if (delivered) continue
      if (connection === owner) connection.confirm(hash!, event, json)
      else if (this.hearsFailures(commanders?.get(connection), now)) connection.enqueue(event, json)
    }
  }
}

/** A connection that applied a pipeline's config: its sender, and until when it hears the pipeline's failures. */
interface PipelineCommander {
  sender: string
  expires: number
}

/** The remote IP as connections are counted per address (IPv6 by /64). */
function remoteIp(req: IncomingMessage): string {
  return ipKey(req.socket.remoteAddress)
}

function peerKey(socket: Socket): string | undefined {
  return socket.remoteAddress && socket.remotePort !== undefined ? `${socket.remoteAddress}|${socket.remotePort}` : undefined
}

function textOf(data: RawData): string {
  return Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8')
}

/** The WebSocket as a connection's transport. */
function webSocketTransport(ws: WebSocket, onSendError: (error: Error) => void): FrameTransport {
  return {
    get open() {
      return ws.readyState === WebSocket.OPEN
    },
    get bufferedAmount() {
      return ws.bufferedAmount
    },
    send(frame) {
      ws.send(frame, {binary: false}, (error) => error && onSendError(error))
    },
    close(code, reason) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code, reason)
    },
    terminate(code, reason) {
      if (code !== undefined && ws.readyState === WebSocket.OPEN) ws.close(code, reason)
      ws.terminate()
    },
    ping() {
      try {
        ws.ping()
      } catch {
        // The socket is already closing.
      }
    },
  }
}
