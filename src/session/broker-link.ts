import type {MqttClient} from 'mqtt'
import {ExitCode, R1Error, exitCodeOf} from '../errors.js'
import {frameRoute, openFrame} from '../protocol/broker-frames.js'
import type {Identity} from '../protocol/identity.js'
import {type Topics, topics} from '../protocol/topics.js'
import {type BrokerConfig, brokerClientId, dialBroker, MAX_BROKER_MESSAGE_BYTES, publish, topicRoot, waitConnected} from '../transport/mqtt.js'
import type {FrameLink, LinkDialer, LinkHandlers} from './link.js'

/**
 * The client side of the broker transport: one MQTT connection per broker and identity in this
 * process (a `BrokerHub`), shared by every session to a node on it and by discovery. A session's
 * frames arrive on the client's targeted topic sealed to it (broker-frames.ts); the hub routes them
 * by node and SESSION_ID, and the link opens them, drops QoS 1 duplicates, and reports a missing
 * frame (`lost`) or a node that started the session afresh (a new R1_HELLO: `closed`, so the session
 * reconnects and resumes).
 */

/**
 * The waits between sends again after a reconnection (BrokerLink.sendAgain): a node reconnects with its own
 * back-off, and what reaches the broker before the node subscribed again goes nowhere.
 */
const SEND_AGAIN_WAITS_MS = [1000, 2000, 4000, 8000, 16_000]
/** mqtt.js's error for a publish taken out of its store (BrokerHub.takeBackUnacknowledged). */
const TAKEN_BACK = 'Message removed'
/** How long after a reconnection what is sent is sent again while unanswered (the waits above). */
const SEND_AGAIN_WINDOW_MS = SEND_AGAIN_WAITS_MS.reduce((a, b) => a + b)
/** How long after the last frame found missing a connection still takes its broker for one that loses frames (BrokerHub.noteLoss). */
const LOSS_MEMORY_MS = 60_000

export class BrokerHub {
  private static readonly hubs = new Map<string, BrokerHub>()
  /**
   * A broker that could not be reached, by hub key, until when: the sessions that come next (a fleet's
   * later targets) are told at once instead of each waiting out a connect timeout of its own. Not once a
   * hub for it is connected again (forgotten then).
   */
  private static readonly unreachable = new Map<string, {until: number; error: unknown}>()
  readonly topics: Topics
  private client?: MqttClient
  private readonly links = new Map<string, BrokerLink>()
  private readonly heartbeatListeners = new Set<(text: string) => void>()
  private refs = 0
  private ready?: Promise<void>
  /** The one wait for the connection of the sessions dialling, and of those sending while it reconnects. */
  private readonly waits: {dialling?: Promise<void>; resuming?: Promise<void>} = {}
  /** Why and when the connection last dropped (reported to commands refused meanwhile); cleared on reconnection. */
  private drop?: {at: number; reason: string}
  /** The last error mqtt.js reported since the connection was made: the reason of a drop that follows it. */
  private lastError?: string
  private connectedBefore = false
  /** When the connection came back after its last drop (0: never dropped). */
  private backAt = 0
  /**
   * What the sessions sent again as the connection came back, until the end of that turn, and those sends: a command
   * that waited for the connection (sent while it was down) and was sent again so is not sent a second time when its
   * wait ends, and gets that send's outcome.
   */
  private sentOnReconnection?: Map<string, Promise<void>>
  /**
   * Frames of their nodes that sessions on this connection found missing: how many, since when, and when last. A run
   * of them ends once none was found for LOSS_MEMORY_MS.
   */
  private losses = {since: 0, at: 0, count: 0}
  private connectTimeoutMs = 10_000

  private constructor(
    private readonly key: string,
    readonly config: BrokerConfig,
    readonly identity: Identity,
  ) {
    this.topics = topics(topicRoot(config))
  }

  /** The hub for this broker and identity (connected within `connectTimeoutMs`, else exit 7); `release` it when done. */
  static async acquire(config: BrokerConfig, identity: Identity, connectTimeoutMs: number): Promise<BrokerHub> {
    const key = `${config.url}|${topicRoot(config)}|${config.user ?? ''}|${identity.address}`
    const failed = BrokerHub.unreachable.get(key)
    if (failed && failed.until > Date.now() && !BrokerHub.hubs.get(key)?.connected) throw failed.error
    BrokerHub.unreachable.delete(key)
    let hub = BrokerHub.hubs.get(key)
    if (!hub) {
      hub = new BrokerHub(key, config, identity)
      BrokerHub.hubs.set(key, hub)
    }
    hub.refs++
    try {
      await hub.connect(connectTimeoutMs)
    } catch (error) {
      hub.release()
      // remembered for as long again: a broker back by then is tried afresh
      if (exitCodeOf(error) === ExitCode.UNREACHABLE) BrokerHub.unreachable.set(key, {until: Date.now() + connectTimeoutMs, error})
      throw error
    }
    return hub
  }

  private connect(timeoutMs: number): Promise<void> {
    this.connectTimeoutMs = timeoutMs
    this.ready ??= (async () => {
      const targeted = this.topics.targeted(this.identity.address)
      this.client = await dialBroker(this.config, {
        clientId: brokerClientId('c', `${this.identity.address}|${process.pid}|${Date.now()}|${Math.random()}`),
        onMessage: (topic, payload) => this.receive(topic, payload),
        connectTimeoutMs: timeoutMs,
        onConnect: () => {
          BrokerHub.unreachable.delete(this.key)
          this.drop = undefined
          this.lastError = undefined
          // connected again: what was on its way may have been lost with the broker (one that restarted forgets it)
          if (this.connectedBefore) {
            this.backAt = Date.now()
            const sent = (this.sentOnReconnection = new Map())
            for (const link of this.links.values()) link.sendAgain(true)
            // the waits for the connection end within this turn (their listener comes after this one)
            setImmediate(() => this.sentOnReconnection === sent && (this.sentOnReconnection = undefined))
          }
          this.connectedBefore = true
        },
        // an error (keepalive timeout, reset, …) comes before the close it causes; some errors close nothing
        onOffline: (error) => {
          if (error) this.lastError = error.message
          else {
            this.drop ??= {at: Date.now(), reason: this.lastError ?? 'closed by the broker or the network'}
            this.takeBackUnacknowledged()
          }
        },
      })
      this.client.subscribe(targeted, {qos: 1})
    })()
    return this.ready.then(() => (this.client!.connected ? undefined : this.whenConnected('dialling', timeoutMs)))
  }

  /** One wait (two listeners on the client) for every session dialling, or sending while it reconnects, not one each. */
  private whenConnected(why: 'dialling' | 'resuming', timeoutMs: number): Promise<void> {
    return (this.waits[why] ??= waitConnected(this.client!, this.config.url, timeoutMs).finally(() => (this.waits[why] = undefined)))
  }

  get connected(): boolean {
    return this.client?.connected ?? false
  }

  /** Dropped less than a connect timeout ago: the client is reconnecting by itself, and what is sent meanwhile waits for it. */
  get resuming(): boolean {
    return !this.connected && this.drop !== undefined && Date.now() - this.drop.at < this.connectTimeoutMs
  }

  /** Connected again after a drop, recently enough that a node may not be back on the broker yet. */
  get recentlyBack(): boolean {
    return this.backAt > 0 && Date.now() - this.backAt < SEND_AGAIN_WINDOW_MS
  }

  /** A session found `count` frames of its node missing (lost by the broker on their way here). */
  noteLoss(count: number): void {
    const now = Date.now()
    this.losses = now - this.losses.at > LOSS_MEMORY_MS ? {since: now, at: now, count} : {...this.losses, at: now, count: this.losses.count + count}
  }

  /** The frames found missing in the current run (the last one less than LOSS_MEMORY_MS ago), and since when; undefined when none. */
  get recentLosses(): {count: number; since: number} | undefined {
    return Date.now() - this.losses.at <= LOSS_MEMORY_MS ? this.losses : undefined
  }

  /** ` since <time> (<why>)` while the connection is down after a drop; '' otherwise. */
  dropped(): string {
    return this.drop ? ` since ${new Date(this.drop.at).toISOString()} (${this.drop.reason})` : ''
  }

  release(): void {
    if (--this.refs > 0) return
    BrokerHub.hubs.delete(this.key)
    this.client?.end(true)
  }

  /**
   * Publishes a command to a node's config topic (QoS 1). While the client reconnects after a drop, it waits for the
   * connection (within a connect timeout of the drop), and publishes then only if `wanted` still; otherwise it is
   * refused at once, so that nothing is delivered behind the caller's back later. So is one the broker had not
   * acknowledged when the connection dropped (taken back then).
   */
  async command(nodeAddress: string, text: string, wanted: () => boolean = () => true): Promise<void> {
    if (this.resuming) {
      await this.whenConnected('resuming', this.drop!.at + this.connectTimeoutMs - Date.now()).catch(() => undefined)
      if (!wanted()) return
      // sent again as the connection came back: that send's outcome is this one's
      const sent = this.sentOnReconnection?.get(text)
      if (sent) return sent
    }
    if (!this.client?.connected) throw new R1Error(`Not connected to the broker ${this.config.url}${this.dropped()}`, ExitCode.UNREACHABLE, {code: 'BROKER_UNREACHABLE', hint: 'Check that the broker is running; the client reconnects by itself.'})
    const sending = this.publishCommand(this.client, nodeAddress, text, wanted)
    this.sentOnReconnection?.set(text, sending)
    return sending
  }

  private async publishCommand(client: MqttClient, nodeAddress: string, text: string, wanted: () => boolean): Promise<void> {
    try {
      await publish(client, this.topics.config(nodeAddress), text)
    } catch (error) {
      if ((error as Error).message !== TAKEN_BACK) throw error
      return this.command(nodeAddress, text, wanted)
    }
  }

  /**
   * mqtt.js sends the publishes the broker had not acknowledged again when it reconnects, whoever still waits for
   * them (a caller may have timed out meanwhile): taken back at the drop, each fails with TAKEN_BACK, and its
   * command waits for the connection as one sent while reconnecting does.
   */
  private takeBackUnacknowledged(): void {
    const client = this.client
    if (!client) return
    for (const [id, entry] of Object.entries(client.outgoing)) if (!entry.volatile) client.removeOutgoingMessage(Number(id))
  }

  /** Every public heartbeat text heard on `<root>/ctrl` from now on; returns the function that stops listening. */
  async onHeartbeat(listener: (text: string) => void): Promise<() => void> {
    if (this.heartbeatListeners.size === 0) await new Promise<void>((resolve, reject) => this.client!.subscribe(this.topics.ctrl, {qos: 0}, (error) => (error ? reject(error) : resolve())))
    this.heartbeatListeners.add(listener)
    return () => {
      this.heartbeatListeners.delete(listener)
      if (this.heartbeatListeners.size === 0 && this.client?.connected) this.client.unsubscribe(this.topics.ctrl)
    }
  }

  register(link: BrokerLink): void {
    this.links.set(`${link.nodeAddress}|${link.sessionId}`, link)
  }

  unregister(link: BrokerLink): void {
    const key = `${link.nodeAddress}|${link.sessionId}`
    if (this.links.get(key) === link) this.links.delete(key)
  }

  private receive(topic: string, payload: Buffer): void {
    if (payload.length > MAX_BROKER_MESSAGE_BYTES) return
    const text = payload.toString('utf8')
    if (topic === this.topics.ctrl) {
      for (const listener of this.heartbeatListeners) listener(text)
      return
    }
    const route = frameRoute(text)
    if (!route) return
    this.links.get(`${route.sender}|${route.sessionId}`)?.receive(route.data)
  }
}

class BrokerLink implements FrameLink {
  private lastFrame = 0
  /** The last frame set aside for want of the hello (greetAgain): not lost, though the hello's frame comes after a gap. */
  private setAsideUpTo = 0
  private firstFrameData?: string
  /** The first command sent, which opens the session on the node (asking for its hello). */
  private greeting?: string
  private againTimer?: NodeJS.Timeout
  /** Sends the greeting once more halfway through the wait for the node's first frame, and at three quarters on a lossy broker (see send). */
  private greetingTimer?: NodeJS.Timeout
  /** True while sendAgain sends (what it sends does not start another round). */
  private resending = false
  /** The sends again run for a hello lost on its way (greetAgain): they end once a frame is taken with it. */
  private againForHello = false
  private ended = false

  constructor(
    private readonly hub: BrokerHub,
    readonly nodeAddress: string,
    readonly sessionId: string,
    private readonly handlers: LinkHandlers,
    private readonly probe: (link: FrameLink) => Promise<void>,
    /** How long the session waits for the node's first frame (its connect timeout). */
    private readonly nodeWaitMs: number,
  ) {}

  get open(): boolean {
    return !this.ended && this.hub.connected
  }

  get resuming(): boolean {
    return !this.ended && this.hub.resuming
  }

  get down(): string | undefined {
    return this.hub.connected ? undefined : `no connection to the broker${this.hub.dropped()}`
  }

  get losses(): string | undefined {
    const losses = this.hub.recentLosses
    if (!losses) return undefined
    return `${losses.count} frame${losses.count === 1 ? '' : 's'} meant for this client went missing on the broker since ${new Date(losses.since).toISOString()}`
  }

  receive(data: string): void {
    if (this.ended) return
    let opened: {frameSeq: number; frame: string}
    try {
      opened = openFrame(data, this.nodeAddress, this.hub.identity)
    } catch {
      return // not sealed by this node to this client: someone else's noise
    }
    const {frameSeq, frame} = opened
    // (the first frame seen may be a later one that carried the hello again, frame 1 having been lost)
    if (frameSeq === 1 && this.lastFrame > 0 && data !== this.firstFrameData) {
      // the node opened this session afresh (it restarted, or forgot an idle session): start over
      this.end(1012, 'the node started this session afresh')
      return
    }
    if (frameSeq <= this.lastFrame) return // a QoS 1 duplicate
    if (frameSeq === 1) this.firstFrameData = data
    clearTimeout(this.greetingTimer)
    const missing = frameSeq > this.lastFrame + 1
    // lost by the broker: never seen, not even set aside before the hello
    const lost = frameSeq - Math.max(this.lastFrame, this.setAsideUpTo) - 1
    if (lost > 0) this.hub.noteLoss(lost)
    this.lastFrame = frameSeq
    this.handlers.alive()
    // first: the stream items of this frame come after the lost ones, and must not be taken as next
    if (missing) this.handlers.lost()
    this.handlers.frame(frame)
  }

  send(text: string, wanted: () => boolean = () => true): Promise<void> {
    if (this.ended) return Promise.reject(new R1Error(`The session with ${this.nodeAddress} on ${this.hub.config.url} is closed`, ExitCode.UNREACHABLE, {code: 'NODE_UNREACHABLE'}))
    if (this.greeting === undefined) {
      this.greeting = text
      // Unanswered halfway through the session's wait for its node: sent once more. It or its answer may have been
      // lost (a broker over its queue limit), or it reached the broker before the node (a broker restarted just
      // before this client connected, the node not back yet): nothing here tells those from a slow node. Then, on a
      // connection whose broker has been losing frames, once more at three quarters.
      const greetAt = (share: number, then?: () => void) => {
        this.greetingTimer = setTimeout(() => {
          if (this.lastFrame > 0 || this.ended) return
          this.hub.command(this.nodeAddress, text, () => !this.ended).catch(() => undefined)
          then?.()
        }, this.nodeWaitMs * share)
        this.greetingTimer.unref()
      }
      greetAt(1 / 2, () => this.hub.recentLosses && greetAt(1 / 4))
    }
    // soon after a reconnection the node may not be back yet: sent again while unanswered
    if (!this.resending && this.againTimer === undefined && this.hub.recentlyBack) this.sendAgain(false)
    return this.hub.command(this.nodeAddress, text, () => !this.ended && wanted())
  }

  /**
   * The hello-less frame seen is set aside (the session takes none before the hello): the greeting again, now and
   * after each of SEND_AGAIN_WAITS_MS until a frame comes with the hello. More hello-less frames (the rest of what
   * answered the greeting, or QoS 1 copies) wait for that schedule; they do not send the greeting again each.
   */
  greetAgain(): void {
    if (this.ended) return
    this.setAsideUpTo = Math.max(this.setAsideUpTo, this.lastFrame)
    this.lastFrame = 0
    if (this.againTimer === undefined) this.sendAgain(true, true)
  }

  /**
   * What this session sent may have been lost with the broker (the hub is connected again after a drop, `now`), or
   * may reach the broker before the node is back on it. Before the node's first frame, the greeting again (the node
   * answers it, with its hello, whether it had it or not); after, what the session still awaits an answer to (a
   * frame the node sent meanwhile and the broker lost shows as a gap in the next one). The node runs nothing twice.
   * Then again after each of SEND_AGAIN_WAITS_MS while something still waits; `forHello`: only until a frame comes with
   * the hello (greetAgain).
   */
  sendAgain(now: boolean, forHello = false): void {
    clearTimeout(this.againTimer)
    this.againTimer = undefined
    this.againForHello = forHello
    let round = 0
    const again = () => {
      this.againTimer = undefined
      // a frame was taken since greetAgain (a hello-less one would have set lastFrame back to 0): the hello came
      if (this.ended || (this.againForHello && this.lastFrame > 0)) {
        this.againForHello = false
        return
      }
      let waiting = this.greeting !== undefined
      this.resending = true
      try {
        if (this.lastFrame > 0) waiting = this.handlers.resend()
        else if (waiting) this.hub.command(this.nodeAddress, this.greeting!, () => !this.ended).catch(() => undefined)
      } finally {
        this.resending = false
      }
      next(waiting)
    }
    const next = (waiting: boolean) => {
      const wait = SEND_AGAIN_WAITS_MS[round++]
      if (!waiting || wait === undefined || this.ended) return
      this.againTimer = setTimeout(again, wait)
      this.againTimer.unref()
    }
    if (now) again()
    else next(true)
  }

  ping(): void {
    this.probe(this).catch(() => undefined) // unanswered probes end the link (the session's keepalive)
  }

  // Over a broker there is no socket to hold back: the node's in-flight window bounds what it sends.
  pause(): void {}
  resume(): void {}

  async close(): Promise<void> {
    this.end()
  }

  terminate(): void {
    // unanswered because this client lost the broker, not because the node went silent: say so
    this.end(1006, this.hub.connected ? 'no answer from the node on the broker' : `no connection to the broker${this.hub.dropped()}`)
  }

  private end(code?: number, reason?: string): void {
    if (this.ended) return
    this.ended = true
    clearTimeout(this.againTimer)
    clearTimeout(this.greetingTimer)
    this.hub.unregister(this)
    this.hub.release()
    if (code !== undefined) this.handlers.closed(code, reason ?? '')
  }
}

/**
 * Sessions to `nodeAddress` through a broker: each dial is a new client session on the node
 * (`newSessionId` gives its SESSION_ID), which greets with its R1_HELLO once probed.
 */
export function brokerDialer(config: BrokerConfig, nodeAddress: string, identity: Identity, options: {connectTimeoutMs: number; newSessionId(): string}): LinkDialer {
  return {
    url: config.url,
    shared: true,
    dial: async (handlers, probe) => {
      const hub = await BrokerHub.acquire(config, identity, options.connectTimeoutMs)
      const link = new BrokerLink(hub, nodeAddress, options.newSessionId(), handlers, probe, options.connectTimeoutMs)
      hub.register(link)
      handlers.created(link)
      try {
        await probe(link)
      } catch (error) {
        await link.close()
        throw error
      }
      return link
    },
  }
}
