import type {MqttClient} from 'mqtt'
import {signingCanonical} from '../protocol/canonical.js'
import type {Identity} from '../protocol/identity.js'
import {sealFrame} from '../protocol/broker-frames.js'
import {MAX_FRAME_BYTES} from '../protocol/messages.js'
import {type Topics, topics} from '../protocol/topics.js'
import {decodeSigned, signCanonical} from '../protocol/wire.js'
import {type BrokerConfig, brokerClientId, dialBroker, topicRoot, waitConnected} from '../transport/mqtt.js'
import type {Connection, FrameTransport} from './connection.js'
import type {NodeServer} from './server.js'
import {escapeControl} from '../ui/escape.js'

/**
 * The node's front on an MQTT broker (PROTOCOL.md, "Over an MQTT broker"): the node dials out, reads
 * its own config topic, and gives each client session (sender address + SESSION_ID) a virtual
 * connection in the same NodeServer as WebSocket ones: same slots, admission, execution,
 * subscriptions and batching. What a connection sends goes, sealed to the client
 * (broker-frames.ts), to the client's targeted topic with QoS 1; the bytes not yet acknowledged by
 * the broker are the connection's in-flight window (above the server's high-water mark it batches
 * and its history pump waits). The public heartbeat goes out clear on `<root>/ctrl` every heartbeat
 * period. Nothing else is published: payloads and notifications reach only subscribed clients,
 * encrypted, never the shared topics.
 */

export interface MqttFrontOptions {
  server: NodeServer
  identity: Identity
  broker: BrokerConfig
  /** Public heartbeat period on `<root>/ctrl` (default 10 s). */
  heartbeatIntervalMs?: number
  /** How long `start` waits for the first connection before going on in the background (default 3 s). */
  connectTimeoutMs?: number
  log(line: string): void
}

interface VirtualLink {
  connection: Connection
  transport: BrokerTransport
}

export class MqttFront {
  readonly topics: Topics
  private client?: MqttClient
  private readonly links = new Map<string, VirtualLink>()
  private heartbeatTimer?: NodeJS.Timeout
  private closing = false
  private wasConnected = false
  private lastProblem?: string
  /** Messages dropped before admission (oversized, unsigned, forged, no session id) and virtual connections refused for lack of slots. */
  readonly stats = {received: 0, dropped: 0, refusedConnections: 0, published: 0}

  constructor(private readonly options: MqttFrontOptions) {
    this.topics = topics(topicRoot(options.broker))
  }

  get connected(): boolean {
    return this.client?.connected ?? false
  }

  get connectionCount(): number {
    return this.links.size
  }

  /** Dials the broker and subscribes to this node's config topic; waits for the first connection at most `connectTimeoutMs` (default 3 s), then keeps trying in the background. */
  async start(): Promise<void> {
    const {broker, identity, log} = this.options
    const config = this.topics.config(identity.address)
    const client = await dialBroker(broker, {
      clientId: brokerClientId('n', identity.address),
      onMessage: (topic, payload) => topic === config && this.receive(payload),
      onConnect: () => {
        log(`${this.wasConnected ? 'reconnected' : 'connected'} to the broker ${broker.url}`)
        this.wasConnected = true
        this.lastProblem = undefined
        client.subscribe(config, {qos: 1}, (error) => {
          if (error) log(`cannot subscribe to ${config}: ${error.message}`)
          else this.publishHeartbeat()
        })
      },
      onOffline: (error) => {
        // once per kind of trouble, not on every retry
        if (!error || error.message === this.lastProblem) return
        this.lastProblem = error.message
        log(`broker ${broker.url}: ${error.message}; retrying with back-off`)
      },
      connectTimeoutMs: this.options.connectTimeoutMs,
      retryRefused: true,
    })
    this.client = client
    const period = this.options.heartbeatIntervalMs ?? 10_000
    if (period > 0) {
      this.heartbeatTimer = setInterval(() => this.publishHeartbeat(), period)
      this.heartbeatTimer.unref()
    }
    await waitConnected(client, broker.url, this.options.connectTimeoutMs ?? 3000).catch(() => undefined) // the node serves on; it connects when the broker is there
  }

  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    clearInterval(this.heartbeatTimer)
    for (const link of [...this.links.values()]) link.transport.terminate()
    await new Promise<void>((resolve) => (this.client ? this.client.end(false, {}, () => resolve()) : resolve()))
  }

  /** The signed public heartbeat, clear on `<root>/ctrl` (QoS 0: the next one replaces a lost one). */
  private publishHeartbeat(): void {
    const client = this.client
    if (!client?.connected || this.closing) return
    const text = signCanonical(signingCanonical(this.options.server.publicHeartbeatResult() as Record<string, unknown>), this.options.identity).text
    client.publish(this.topics.ctrl, text, {qos: 0})
    this.stats.published++
  }

  /**
   * One message on the config topic. Only a frame signed by its EE_SENDER gets a connection (and so an
   * answer, on that sender's topic): anything else has nobody to answer to and is dropped and counted.
   */
  private receive(payload: Buffer): void {
    this.stats.received++
    if (this.closing) return
    if (payload.length > MAX_FRAME_BYTES) return this.drop(`a ${payload.length}-byte message (over ${MAX_FRAME_BYTES})`)
    const text = payload.toString('utf8')
    const signed = decodeSigned(text)
    if (!signed.ok) return this.drop(`a message that does not verify (${signed.reason}: ${signed.detail.slice(0, 120)})`)
    const sessionId = signed.message.SESSION_ID
    if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > 200) return this.drop(`a message from ${signed.sender} without a SESSION_ID`)
    const key = `${signed.sender}|${sessionId}`
    let link = this.links.get(key)
    if (!link) {
      const room = this.options.server.admit(signed.sender)
      if (!room.ok) {
        this.stats.refusedConnections++
        this.options.log(`refused a broker session of ${signed.sender}: ${room.detail}`)
        return
      }
      const transport = new BrokerTransport(this, signed.sender, sessionId, () => this.forget(key))
      link = {transport, connection: this.options.server.open(transport, signed.sender)}
      transport.connection = link.connection
      this.links.set(key, link)
    }
    link.connection.pong()
    link.connection.receive(text, signed)
  }

  private drop(what: string): void {
    this.stats.dropped++
    if (this.stats.dropped <= 10 || this.stats.dropped % 1000 === 0) this.options.log(`dropped ${escapeControl(what)} on ${this.topics.config(this.options.identity.address)} (${this.stats.dropped} so far)`)
  }

  private forget(key: string): void {
    const link = this.links.get(key)
    if (!link) return
    this.links.delete(key)
    this.options.server.closed(link.connection)
  }

  /** Publishes a frame sealed to a client session on the client's topic (QoS 1; mqtt.js holds it while the broker is away); returns its size, and `done` runs once the broker acknowledged it. */
  send(client: string, sessionId: string, frame: string | Buffer, frameSeq: number, done: (error?: Error) => void): number {
    const sealed = sealFrame(frame, frameSeq, {client, sessionId}, this.options.identity)
    this.stats.published++
    setImmediate(() => this.client!.publish(this.topics.targeted(client), sealed, {qos: 1}, (error) => done(error ?? undefined)))
    return Buffer.byteLength(sealed)
  }

  log(line: string): void {
    this.options.log(line)
  }
}

/**
 * A client session's virtual connection on the broker. Frames are numbered (R1_FRAME_SEQ) so the
 * client sees a frame the broker dropped; there is no socket to close: the client learns that the
 * node forgot its session from a new R1_HELLO, or from its probes going unanswered.
 */
class BrokerTransport implements FrameTransport {
  connection?: Connection
  /** A broker past its queue limit drops frames: the client sends a command again when it missed its answer. */
  readonly lossy = true
  private frameSeq = 0
  private inFlight = 0
  private ended = false

  constructor(
    private readonly front: MqttFront,
    private readonly client: string,
    private readonly sessionId: string,
    private readonly onEnd: () => void,
  ) {}

  /** Open until the node forgets the session: while the broker is away, mqtt.js holds QoS 1 publishes (they count as in flight). */
  get open(): boolean {
    return !this.ended
  }

  get bufferedAmount(): number {
    return this.inFlight
  }

  send(frame: string | Buffer): void {
    if (this.ended) return
    const bytes = this.front.send(this.client, this.sessionId, frame, ++this.frameSeq, (error) => {
      this.inFlight -= bytes
      if (error) this.front.log(`publish to ${this.client} failed: ${error.message}`)
    })
    this.inFlight += bytes
  }

  close(): void {
    this.terminate()
  }

  terminate(): void {
    if (this.ended) return
    this.ended = true
    this.onEnd()
  }

  /** The client probes (R1_PING); every message from it counts as alive. */
  ping(): void {}
}
