import {createHash} from 'node:crypto'
import {createRequire} from 'node:module'
import type {Duplex} from 'node:stream'
import type {IClientOptions, MqttClient} from 'mqtt'
import {ExitCode, R1Error} from '../errors.js'
import {MAX_FRAME_BYTES} from '../protocol/messages.js'
import {DEFAULT_TOPIC_ROOT} from '../protocol/topics.js'

/**
 * One MQTT connection to a broker, as nodes and clients both dial out (mqtt://, mqtts://, ws://,
 * wss://): MQTT 3.1.1 (aedes speaks nothing newer), QoS 1 for what must arrive, reconnection with
 * back-off (200 ms doubling to 10 s), and the message handler attached before the connection opens
 * (a resumed session delivers right after CONNACK).
 */

export interface BrokerConfig {
  url: string
  user?: string
  password?: string
  /** Trusted CA certificate(s) in PEM for mqtts:// and wss://. */
  ca?: string | Buffer
  /** Topic root (default `naeural`). */
  root?: string
}

export const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:'] as const

/** Checks a broker URL; a usage error (exit 2) naming `where` otherwise. */
export function checkBrokerUrl(url: string, where: string): URL {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw brokerUsage(`${where}: "${url}" is not a URL.`)
  }
  if (!(BROKER_PROTOCOLS as readonly string[]).includes(parsed.protocol)) throw brokerUsage(`${where}: "${url}" must use mqtt://, mqtts://, ws:// or wss://.`)
  if (parsed.username || parsed.password) throw brokerUsage(`${where}: put the broker's user and password in their own settings, not in the URL (it is shown in output).`)
  return parsed
}

function brokerUsage(message: string): R1Error {
  return new R1Error(message, ExitCode.USAGE, {code: 'BAD_BROKER', hint: 'A broker URL looks like mqtt://broker.example:1883, mqtts://broker.example:8883 or wss://broker.example/mqtt.'})
}

/**
 * A client id within MQTT 3.1.1's 23 characters (brokers such as aedes refuse longer ones by
 * default): `r1` + a role letter + 20 base64url characters of a hash of `seed`.
 */
export function brokerClientId(role: 'n' | 'c', seed: string): string {
  return `r1${role}${createHash('sha256').update(seed).digest('base64url').slice(0, 20)}`
}

export interface DialOptions {
  clientId: string
  /** Receives every message (attached before connecting). */
  onMessage(topic: string, payload: Buffer): void
  /** Called on every (re)connection, after the subscriptions are back. */
  onConnect?(): void
  onOffline?(error?: Error): void
  connectTimeoutMs?: number
  /** Keep trying after the broker refused the connection (a node: its broker may be restarting, or its credentials fixed); a client gives up at once. */
  retryRefused?: boolean
  /** MQTT keepalive, seconds (default 30; tests shrink it). */
  keepaliveSeconds?: number
}

/**
 * mqtt.js, loaded when the first broker is dialled, through require: its CommonJS build loads in about
 * half the time an ESM import takes (no translation of each of its modules), on the way to a command's
 * first message and a node's first connection.
 */
function loadMqtt(): typeof import('mqtt') {
  return createRequire(import.meta.url)('mqtt') as typeof import('mqtt')
}

/** Connects (in the background; `waitConnected` waits for it); mqtt.js resubscribes after each reconnection. */
export async function dialBroker(config: BrokerConfig, options: DialOptions): Promise<MqttClient> {
  const {connect} = loadMqtt()
  const clientOptions: IClientOptions = {
    clientId: options.clientId,
    protocolVersion: 4,
    clean: true,
    keepalive: options.keepaliveSeconds ?? 30,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    reconnectPeriod: INITIAL_RECONNECT_MS,
    manualConnect: true,
    resubscribe: true,
    reconnectOnConnackError: options.retryRefused ?? false,
    ...(config.user !== undefined ? {username: config.user} : {}),
    ...(config.password !== undefined ? {password: config.password} : {}),
    ...(config.ca ? {ca: config.ca} : {}),
  }
  const client = connect(config.url, clientOptions)
  // mqtt.js reads a whole packet before it is handed over, so its size is checked as its header arrives
  const internals = client as unknown as {streamBuilder: (client: MqttClient) => Duplex}
  const build = internals.streamBuilder
  internals.streamBuilder = (c) => guardPacketSize(build(c), MAX_BROKER_PACKET_BYTES)
  client.on('message', (topic, payload) => options.onMessage(topic, payload))
  // mqtt.js counts only acknowledgements and PINGRESP as signs of life: behind a backlog of messages (a
  // thousand nodes answering at once) the PINGRESP comes late, and it would drop a connection that is
  // delivering all the while. A QoS 1 message is one too, and the PUBACK it gets keeps the broker's side alive.
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'publish' && packet.qos > 0) client.reschedulePing(true)
  })
  client.on('connect', () => {
    client.options.reconnectPeriod = INITIAL_RECONNECT_MS
    options.onConnect?.()
  })
  client.on('close', () => {
    // back-off: 200 ms doubling to 10 s, reset on the next CONNACK
    client.options.reconnectPeriod = Math.min(MAX_RECONNECT_MS, (client.options.reconnectPeriod ?? INITIAL_RECONNECT_MS) * 2)
    options.onOffline?.()
  })
  client.on('error', (error) => options.onOffline?.(error))
  client.connect()
  return client
}

const INITIAL_RECONNECT_MS = 200
const MAX_RECONNECT_MS = 10_000

/** Resolves once connected; an R1Error exit 7 after `timeoutMs` (the client keeps trying unless closed). */
export function waitConnected(client: MqttClient, url: string, timeoutMs: number): Promise<void> {
  if (client.connected) return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    let lastError: Error | undefined
    const onError = (error: Error) => {
      lastError = error
      // the broker answered and said no (bad user or password, not authorized): waiting longer will not help
      if (/connection refused/i.test(error.message)) {
        done()
        reject(brokerUnreachable(url, timeoutMs, error))
      }
    }
    const done = () => {
      clearTimeout(timer)
      client.off('connect', onConnect)
      client.off('error', onError)
      client.off('end', onEnd)
    }
    const onConnect = () => {
      done()
      resolve()
    }
    // ended by its owner (a hub no session holds any more): nothing to wait for
    const onEnd = () => {
      done()
      reject(brokerUnreachable(url, timeoutMs, lastError))
    }
    const timer = setTimeout(() => {
      done()
      reject(brokerUnreachable(url, timeoutMs, lastError))
    }, timeoutMs)
    client.on('connect', onConnect)
    client.on('error', onError)
    client.on('end', onEnd)
  })
}

export function brokerUnreachable(url: string, timeoutMs: number, cause?: Error): R1Error {
  const auth = cause && /not authori[sz]ed|bad user ?name or password/i.test(cause.message)
  const refused = cause && /connection refused/i.test(cause.message)
  return new R1Error(refused ? `The broker ${url} refused the connection: ${cause.message}` : `Cannot connect to the broker ${url} within ${timeoutMs} ms${cause ? `: ${cause.message}` : ''}`, ExitCode.UNREACHABLE, {
    code: 'BROKER_UNREACHABLE',
    hint: auth ? "Check the broker user and password (a target's broker `user` and `password_file`, or --broker-user/--broker-password-file)." : 'Check the broker URL and that the broker is running.',
    cause,
  })
}

/** Publishes with QoS 1; resolves once the broker acknowledged it. */
export function publish(client: MqttClient, topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> {
  return new Promise((resolve, reject) => client.publish(topic, payload, {qos}, (error) => (error ? reject(error) : resolve())))
}

/** Frames larger than this are refused on arrival (a sealed frame is at most about twice a frame). */
export const MAX_BROKER_MESSAGE_BYTES = 2 * MAX_FRAME_BYTES
/** An MQTT packet carries one (sealed) frame plus its topic and header: a larger one closes the connection. */
export const MAX_BROKER_PACKET_BYTES = MAX_BROKER_MESSAGE_BYTES + 64 * 1024

/**
 * Destroys `stream` (an MQTT connection's bytes from the broker) as soon as a packet's fixed header
 * declares more than `max` bytes, or a malformed length: what mqtt.js would otherwise buffer whole (up to
 * 256 MiB) before anyone could look at its size. The error carries a code, so the client reports it and
 * reconnects. Returns the stream, watched.
 */
export function guardPacketSize<S extends Duplex>(stream: S, max: number): S {
  let skip = 0 // body bytes of the current packet still to pass
  let lengthBytes = -1 // -1: the next byte is a packet type; else how many length bytes were read
  let length = 0
  const refuse = (message: string) => stream.destroy(Object.assign(new Error(message), {code: 'R1_PACKET_TOO_LARGE'}))
  stream.on('data', (chunk: Buffer) => {
    let i = 0
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i)
        skip -= n
        i += n
      } else if (lengthBytes < 0) {
        lengthBytes = 0
        length = 0
        i++
      } else {
        const byte = chunk[i++]!
        length += (byte & 0x7f) * 128 ** lengthBytes++
        if (byte & 0x80) {
          if (lengthBytes === 4) return refuse('an MQTT packet with a malformed length arrived')
          continue
        }
        if (length > max) return refuse(`an MQTT packet of ${length} bytes arrived, over the ${max}-byte limit`)
        skip = length
        lengthBytes = -1
      }
    }
  })
  return stream
}

export const topicRoot = (config: BrokerConfig) => config.root ?? DEFAULT_TOPIC_ROOT
