// Each broker r1 tests against carries a QoS 1 round trip of a real mqtt.js client: the embedded one over
// mqtt://, mqtts://, ws:// and wss:// (with a certificate the test makes), Mosquitto and nats-server
// (its MQTT listener) when installed.
import {once} from 'node:events'
import {readFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {startMosquitto, startNatsServer} from '../../bench/servers.js'
import {MAX_BROKER_MESSAGE_BYTES} from '../../src/transport/mqtt.js'
import {selfSignedCert, tempRoot} from '../deploy/nodes.js'
import {mqttClient, qos1RoundTrip, skipWithout, startEmbeddedBroker, type TestBroker} from './helpers.js'

const LONG_CLIENT_ID = `r1-${'0xai_AtAmjZvjc7TDO_lwlOSxrhQghM9ZN8GLyeTqwa-__U81'}-session`

describe('the embedded broker', () => {
  const root = tempRoot('r1-broker-')
  let plain: TestBroker
  let secure: TestBroker
  let ca: Buffer

  beforeAll(async () => {
    const cert = await selfSignedCert(root.dir)
    ca = readFileSync(cert.cert)
    plain = await startEmbeddedBroker({wsPort: 0})
    secure = await startEmbeddedBroker({wsPort: 0, tls: cert})
  })
  afterAll(async () => {
    await Promise.all([plain?.stop(), secure?.stop()])
    root.dispose()
  })

  it('listens on loopback with free ports and the four URL schemes', () => {
    expect(plain.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/)
    expect(plain.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/)
    expect(secure.url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/)
    expect(secure.wsUrl).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/)
  })

  it('carries a QoS 1 message over mqtt:// with a client id longer than 23 characters', async () => {
    expect(await qos1RoundTrip(plain.url, 'naeural/ctrl', 'over tcp', {clientId: LONG_CLIENT_ID})).toEqual({received: 'over tcp', qos: 1})
  })

  it('carries a QoS 1 message over ws://', async () => {
    expect(await qos1RoundTrip(plain.wsUrl!, 'naeural/notif', 'over ws')).toEqual({received: 'over ws', qos: 1})
  })

  it('carries a QoS 1 message over mqtts:// and wss:// to a client that trusts the certificate', async () => {
    expect(await qos1RoundTrip(secure.url, 'naeural/payloads', 'over tls', {ca})).toEqual({received: 'over tls', qos: 1})
    expect(await qos1RoundTrip(secure.wsUrl!, 'naeural/payloads', 'over wss', {ca})).toEqual({received: 'over wss', qos: 1})
  })

  it('refuses a TLS client that does not trust the certificate', async () => {
    await expect(mqttClient(secure.url)).rejects.toThrow(/self[- ]signed|certificate/i)
  })

  it('closes a connection as soon as a packet header declares more than r1 ever sends, before any login, and carries the largest r1 packet over mqtt://', async () => {
    const socket = connect(Number(new URL(plain.url).port), '127.0.0.1')
    await once(socket, 'connect')
    socket.on('error', () => undefined)
    const closed = new Promise((resolve) => socket.once('close', resolve))
    // a CONNECT (0x10) whose remaining length (MQTT's variable-length integer) says 200 MiB, then its body streamed
    socket.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]))
    const chunk = Buffer.alloc(1024 * 1024, 0x61)
    const budget = 32 * chunk.length
    let sent = 0
    while (!socket.destroyed && sent < budget) {
      await new Promise<void>((resolve) => socket.write(chunk, () => resolve()))
      sent += chunk.length
    }
    // the broker closed it long before the 32 MiB streamed (unbounded, it would buffer them all)
    expect(sent).toBeLessThan(budget)
    await closed
    const big = 'x'.repeat(MAX_BROKER_MESSAGE_BYTES - 1024)
    expect((await qos1RoundTrip(plain.url, 'naeural/payloads', big)).received).toHaveLength(big.length)
  })

  it('keeps no retained message: a client that subscribes later hears only what is published after', async () => {
    const [publisher, subscriber] = [await mqttClient(plain.url), await mqttClient(plain.url)]
    try {
      const topic = 'naeural/0xai_retained/config'
      await publisher.publishAsync(topic, 'retained', {qos: 1, retain: true})
      const heard: string[] = []
      const live = new Promise<void>((resolve) =>
        subscriber.on('message', (_topic, payload) => {
          heard.push(payload.toString())
          if (payload.toString() === 'live') resolve()
        }),
      )
      await subscriber.subscribeAsync(topic, {qos: 1})
      await publisher.publishAsync(topic, 'live', {qos: 1})
      await live
      expect(heard).toEqual(['live'])
    } finally {
      await Promise.all([publisher.endAsync(), subscriber.endAsync()])
    }
  })

  it('refuses a kept (clean: false) session, whose QoS 1 queue would grow without bound while its client is away', async () => {
    await expect(mqttClient(plain.url, {clean: false, clientId: 'r1-kept-session', connectTimeout: 3000})).rejects.toThrow()
    const clean = await mqttClient(plain.url, {clientId: 'r1-clean-session'})
    await clean.endAsync()
  })

  it('carries a message of the largest size r1 sends through a broker over ws://', async () => {
    const big = 'x'.repeat(MAX_BROKER_MESSAGE_BYTES - 1024)
    expect((await qos1RoundTrip(plain.wsUrl!, 'naeural/payloads', big)).received).toHaveLength(big.length)
  })

  it('restarts on the same ports, dropping its clients', async () => {
    const client = await mqttClient(plain.url)
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    await plain.restart()
    await closed
    expect(await qos1RoundTrip(plain.url, 'naeural/ctrl', 'after restart')).toEqual({received: 'after restart', qos: 1})
    expect(await qos1RoundTrip(plain.wsUrl!, 'naeural/ctrl', 'ws after restart')).toEqual({received: 'ws after restart', qos: 1})
  })

  it('refuses a second listener on a port in use with a clear error', async () => {
    const port = Number(new URL(plain.url).port)
    await expect(startEmbeddedBroker({port})).rejects.toThrow(`Cannot listen on 127.0.0.1:${port}: EADDRINUSE`)
  })

  it('refuses missing TLS files with a clear error', async () => {
    await expect(startEmbeddedBroker({tls: {cert: join(root.dir, 'none.pem'), key: join(root.dir, 'none.key')}})).rejects.toThrow(/Cannot read the TLS certificate .*none\.pem: ENOENT/)
  })
})

describe.skipIf(skipWithout('mosquitto'))('Mosquitto (Debian, started by the test)', () => {
  let broker: TestBroker
  beforeAll(async () => {
    broker = await startMosquitto({wsPort: true})
  })
  afterAll(async () => broker?.stop())

  it('carries a QoS 1 message over mqtt:// and ws://', async () => {
    expect(await qos1RoundTrip(broker.url, 'naeural/ctrl', 'mosquitto tcp', {clientId: LONG_CLIENT_ID})).toEqual({received: 'mosquitto tcp', qos: 1})
    expect(await qos1RoundTrip(broker.wsUrl!, 'naeural/ctrl', 'mosquitto ws')).toEqual({received: 'mosquitto ws', qos: 1})
  })

  it('restarts on the same ports', async () => {
    await broker.restart()
    expect(await qos1RoundTrip(broker.url, 'naeural/ctrl', 'after restart')).toEqual({received: 'after restart', qos: 1})
  })
})

describe.skipIf(skipWithout('nats-server'))("nats-server's MQTT listener (started by the test, JetStream on)", () => {
  let nats: Awaited<ReturnType<typeof startNatsServer>>
  let url: string
  beforeAll(async () => {
    nats = await startNatsServer({mqtt: true})
    url = nats.mqttUrl!
  })
  afterAll(async () => nats?.stop())

  it('carries a QoS 1 message over mqtt://', async () => {
    expect(await qos1RoundTrip(url, 'naeural/ctrl', 'nats mqtt', {clientId: LONG_CLIENT_ID})).toEqual({received: 'nats mqtt', qos: 1})
  })

  it('restarts on the same ports', async () => {
    await nats.restart()
    expect(await qos1RoundTrip(url, 'naeural/ctrl', 'after restart')).toEqual({received: 'after restart', qos: 1})
  })
})
