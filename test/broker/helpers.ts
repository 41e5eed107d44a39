// MQTT brokers for tests: r1's embedded one (aedes) always; Debian's Mosquitto and nats-server (its
// MQTT listener) as real child processes on free loopback ports when their binaries are installed.
// A suite that needs a missing binary skips with the reason printed: describe.skipIf(brokerMissing('mosquitto')).
import {type ChildProcess, spawn} from 'node:child_process'
import {accessSync, constants, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {tmpdir, userInfo} from 'node:os'
import {delimiter, join} from 'node:path'
import mqtt, {type IClientOptions, type MqttClient} from 'mqtt'
import {type BrokerOptions, startBroker} from '../../src/broker/broker.js'
import {freePort} from '../logs/helpers.js'

export interface TestBroker {
  kind: 'aedes' | 'mosquitto' | 'nats'
  /** mqtt:// (or mqtts://) URL of its MQTT listener. */
  url: string
  /** ws:// (or wss://) URL when a WebSocket listener was asked for. */
  wsUrl?: string
  /** Stops it: every client is dropped (for a child process: SIGKILL). */
  stop(): Promise<void>
  /** Stops it and starts it again on the same ports, with no memory of clients or sessions. */
  restart(): Promise<void>
}

/** r1's embedded broker (src/broker) in this process, on 127.0.0.1 and free ports. */
export async function startEmbeddedBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  let broker = await startBroker(options)
  const samePorts = {port: Number(new URL(broker.url).port), ...(broker.wsUrl ? {wsPort: Number(new URL(broker.wsUrl).port)} : {})}
  return {
    kind: 'aedes',
    url: broker.url,
    ...(broker.wsUrl ? {wsUrl: broker.wsUrl} : {}),
    stop: () => broker.close(),
    async restart() {
      await broker.close()
      broker = await startBroker({...options, ...samePorts})
    },
  }
}

const BINARIES = {mosquitto: 'mosquitto', nats: 'nats-server'} as const
const printed = new Set<string>()

/** The path of an installed binary (PATH, then the sbin folders Debian puts daemons in), or undefined. */
function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, name), constants.X_OK)
      return join(dir, name)
    } catch {
      // not in this folder
    }
  }
  return undefined
}

/**
 * Why the tests of this broker cannot run (its binary is not installed), printed once; undefined when
 * it can. For `describe.skipIf(brokerMissing('nats'))`.
 */
export function brokerMissing(kind: keyof typeof BINARIES): string | undefined {
  if (findBinary(BINARIES[kind])) return undefined
  const reason = `${BINARIES[kind]} is not installed (apt-get install ${BINARIES[kind]}): its broker tests are skipped`
  if (!printed.has(kind)) process.stderr.write(`skipped: ${reason}\n`)
  printed.add(kind)
  return reason
}

/**
 * Debian's Mosquitto with a temp config on a free port: no persistence, no queue limit
 * (`max_queued_messages 0`, so QoS 1 traffic to a slow subscriber is never dropped), a bounded in-flight
 * window; killed on stop. Undefined (reason printed) when the binary is absent.
 */
export async function startMosquitto(options: {wsPort?: boolean; passwordFile?: string; aclFile?: string} = {}): Promise<TestBroker | undefined> {
  const binary = findBinary(BINARIES.mosquitto)
  if (!binary || brokerMissing('mosquitto')) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'r1-mosquitto-'))
  const port = await freePort()
  const wsPort = options.wsPort ? await freePort() : undefined
  const config = [
    'per_listener_settings false',
    // Run as root, Mosquitto would switch to its own user and could not read the test's temp files.
    `user ${userInfo().username}`,
    `listener ${port} 127.0.0.1`,
    ...(wsPort ? [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'] : []),
    'persistence false',
    'max_queued_messages 0',
    'max_queued_bytes 0',
    'max_inflight_messages 100',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    ...(options.passwordFile ? ['allow_anonymous false', `password_file ${options.passwordFile}`] : ['allow_anonymous true']),
    ...(options.aclFile ? [`acl_file ${options.aclFile}`] : []),
  ]
  writeFileSync(join(dir, 'mosquitto.conf'), config.join('\n') + '\n')
  return served('mosquitto', binary, ['-c', join(dir, 'mosquitto.conf')], dir, port, {url: `mqtt://127.0.0.1:${port}`, ...(wsPort ? {wsUrl: `ws://127.0.0.1:${wsPort}`} : {})})
}

/**
 * nats-server with JetStream (its MQTT support needs it, and a server name) and its MQTT listener, on
 * free ports, its store in a temp dir; killed on stop. Undefined (reason printed) when the binary is absent.
 */
export async function startNatsMqtt(): Promise<(TestBroker & {natsUrl: string}) | undefined> {
  const binary = findBinary(BINARIES.nats)
  if (!binary || brokerMissing('nats')) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'r1-nats-'))
  const [natsPort, mqttPort] = [await freePort(), await freePort()]
  const config = [
    'server_name: r1-test',
    `listen: "127.0.0.1:${natsPort}"`,
    `jetstream {\n  store_dir: "${join(dir, 'jetstream')}"\n  max_memory_store: 64MB\n  max_file_store: 256MB\n}`,
    `mqtt {\n  listen: "127.0.0.1:${mqttPort}"\n}`,
  ]
  writeFileSync(join(dir, 'nats.conf'), config.join('\n') + '\n')
  const broker = await served('nats', binary, ['-c', join(dir, 'nats.conf')], dir, mqttPort, {url: `mqtt://127.0.0.1:${mqttPort}`})
  return {...broker, natsUrl: `nats://127.0.0.1:${natsPort}`}
}

/**
 * Runs `binary args` until stopped, restartable on the same ports; resolves once it accepts TCP on
 * `port`. A child that exits first fails with its stderr.
 */
async function served(kind: TestBroker['kind'], binary: string, args: string[], dir: string, port: number, urls: {url: string; wsUrl?: string}): Promise<TestBroker> {
  let child: ChildProcess
  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGKILL')
    await exited
  }
  const start = async (): Promise<void> => {
    child = spawn(binary, args, {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr!.on('data', (chunk) => (stderr += chunk))
    const deadline = Date.now() + 15_000
    while (!(await accepts(port))) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await kill()
        throw new Error(`${kind} did not start on port ${port}: ${stderr.trim() || `exit ${child.exitCode ?? child.signalCode}`}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const stop = async (): Promise<void> => {
    await kill()
    rmSync(dir, {recursive: true, force: true})
  }
  try {
    await start()
  } catch (error) {
    rmSync(dir, {recursive: true, force: true})
    throw error
  }
  return {
    kind,
    ...urls,
    stop,
    async restart() {
      await kill()
      await start()
    },
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** An mqtt.js client connected to `url` (MQTT 3.1.1, no reconnect: a refusal is an error). */
export async function mqttClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, {protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...options})
}

/** Publishes `message` with QoS 1 on `topic` from one client and resolves with what another subscribed client receives (a clientId is suffixed -sub and -pub). */
export async function qos1RoundTrip(url: string, topic: string, message: string, options: IClientOptions = {}): Promise<{received: string; qos: number}> {
  const id = (role: string): IClientOptions => (options.clientId ? {clientId: `${options.clientId}-${role}`} : {})
  const [subscriber, publisher] = [await mqttClient(url, {...options, ...id('sub')}), await mqttClient(url, {...options, ...id('pub')})]
  try {
    const received = new Promise<{received: string; qos: number}>((resolve) => subscriber.on('message', (_topic, payload, packet) => resolve({received: payload.toString(), qos: packet.qos})))
    await subscriber.subscribeAsync(topic, {qos: 1})
    await publisher.publishAsync(topic, message, {qos: 1})
    return await received
  } finally {
    await Promise.all([subscriber.endAsync(), publisher.endAsync()])
  }
}
