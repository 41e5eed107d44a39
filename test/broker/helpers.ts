// MQTT brokers for tests: r1's embedded one (aedes) in this process, restartable on the same ports;
// Debian's Mosquitto and nats-server come from bench/servers.js (child processes). A suite that needs a
// missing binary skips with the reason printed: describe.skipIf(skipWithout('mosquitto')).
import mqtt, {type IClientOptions, type MqttClient} from 'mqtt'
import {afterAll, beforeAll} from 'vitest'
import {serverMissing} from '../../bench/servers.js'
import {type BrokerOptions, startBroker} from '../../src/broker/broker.js'
import type {StartNodeServerOptions} from '../../src/runtime/serve.js'
import {until} from '../runtime/helpers.js'
import {startTestNode, type TestNode} from '../server/helpers.js'

export interface TestBroker {
  /** mqtt:// (or mqtts://) URL of its MQTT listener. */
  url: string
  /** ws:// (or wss://) URL when a WebSocket listener was asked for. */
  wsUrl?: string
  /** Stops it: every client is dropped. */
  stop(): Promise<void>
  /** Stops it and starts it again on the same ports, dropping every client. */
  restart(): Promise<void>
}

/** r1's embedded broker (src/broker) in this process, on 127.0.0.1 and free ports. */
export async function startEmbeddedBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  let broker = await startBroker(options)
  const samePorts = {port: Number(new URL(broker.url).port), ...(broker.wsUrl ? {wsPort: Number(new URL(broker.wsUrl).port)} : {})}
  return {
    url: broker.url,
    ...(broker.wsUrl ? {wsUrl: broker.wsUrl} : {}),
    stop: () => broker.close(),
    async restart() {
      await broker.close()
      broker = await startBroker({...options, ...samePorts})
    },
  }
}

const printed = new Set<string>()

/**
 * Why the tests that need `binary` cannot run (it is not installed), printed once; undefined when they
 * can. For `describe.skipIf(skipWithout('mosquitto'))`.
 */
export function skipWithout(binary: 'mosquitto' | 'nats-server'): string | undefined {
  const reason = serverMissing(binary)
  if (reason && !printed.has(binary)) {
    printed.add(binary)
    process.stderr.write(`skipped, the tests that need ${binary}: ${reason}\n`)
  }
  return reason
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

/**
 * An embedded broker and one test node on it (no WebSocket listener; `node` adds to its options), started
 * before the suite's tests and stopped after them; read `broker` and `test` inside the tests.
 */
export function nodeOnEmbeddedBroker(node: Partial<StartNodeServerOptions> = {}): {readonly broker: TestBroker; readonly test: TestNode} {
  const fixture = {} as {broker: TestBroker; test: TestNode}
  beforeAll(async () => {
    fixture.broker = await startEmbeddedBroker()
    fixture.test = await startTestNode({broker: {url: fixture.broker.url}, listen: false, ...node})
    await until(() => fixture.test.node.broker?.connected, 10_000, 'the node on the broker')
  })
  afterAll(async () => {
    await fixture.test?.dispose()
    await fixture.broker?.stop()
  })
  return fixture
}
