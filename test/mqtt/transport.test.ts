import {connect as mqttConnect, type MqttClient} from 'mqtt'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {decodePublicHeartbeat, openFrame} from '../../src/protocol/broker-frames.js'
import {NotificationCode} from '../../src/protocol/codes.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {decodeNodeFrame, decodeSigned} from '../../src/protocol/wire.js'
import {Session} from '../../src/session/index.js'
import {startEmbeddedBroker, type TestBroker} from '../broker/helpers.js'
import {until} from '../runtime/helpers.js'
import {execPipeline, startTestNode, type TestNode} from '../server/helpers.js'

describe('a node served through an MQTT broker (the embedded broker, in process)', () => {
  let broker: TestBroker
  let test: TestNode
  let sniffer: MqttClient
  const seen: Array<{topic: string; text: string}> = []

  beforeAll(async () => {
    broker = await startEmbeddedBroker()
    sniffer = mqttConnect(broker.url, {protocolVersion: 4, clientId: 'sniffer'})
    sniffer.on('message', (topic, payload) => seen.push({topic, text: payload.toString()}))
    await new Promise<void>((resolve) => sniffer.once('connect', () => resolve()))
    await new Promise((resolve) => sniffer.subscribe('naeural/#', {qos: 0}, resolve))
    test = await startTestNode({broker: {url: broker.url}, heartbeatIntervalMs: 300, tags: {site: 'lab', role: 'camera'}, listen: true})
    await until(() => test.node.broker?.connected, 10_000, 'the node on the broker')
  })

  afterAll(async () => {
    sniffer?.end(true)
    await test?.dispose()
    await broker?.stop()
  })

  const connect = () => Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000})

  it('publishes its signed public heartbeat, with its tags, clear on <root>/ctrl', async () => {
    const text = await until(() => seen.find((m) => m.topic === 'naeural/ctrl')?.text, 10_000, 'a heartbeat on ctrl')
    const signed = decodeSigned(text)
    expect(signed.ok && signed.sender).toBe(test.node.address)
    expect(decodePublicHeartbeat(text)).toMatchObject({EE_EVENT_TYPE: 'HEARTBEAT', EE_ADDR: test.node.address, R1_PUBLIC: true, R1_TAGS: {site: 'lab', role: 'camera'}, PIPELINES: []})
    // tampered: no longer a heartbeat of anyone
    expect(decodePublicHeartbeat(text.replace('"lab"', '"lab2"'))).toBeUndefined()
  })

  it('runs the protocol over the broker: hello, state, a confirmed deploy, a subscription; nothing private in clear', async () => {
    const session = await connect()
    try {
      expect(session.alias).toBe(test.node.alias)
      const state = await session.state()
      expect(state.ADDRESS).toBe(test.node.address)
      const payloads: number[] = []
      const stream = (async () => {
        for await (const item of session.subscribe({types: ['PAYLOAD']})) {
          if (item.EE_EVENT_TYPE === 'PAYLOAD') payloads.push(item.EE_MESSAGE_SEQ)
          if (payloads.length >= 3) return
        }
      })()
      const deployed = await session.send('UPDATE_CONFIG', execPipeline('mqtt-a'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'mqtt-a'}], timeoutMs: 20_000})
      expect(deployed.notifications.some((n) => n.NOTIFICATION_CODE === NotificationCode.PIPELINE_OK)).toBe(true)
      await stream
      expect(payloads).toEqual([...payloads].sort((a, b) => a - b))
      expect((await session.state()).PIPELINES.map((p) => p.NAME)).toContain('mqtt-a')
    } finally {
      await session.close()
    }
    const targeted = seen.filter((m) => m.topic === `naeural/${test.client.address}/payloads`)
    const commands = seen.filter((m) => m.topic === `naeural/${test.node.address}/config`)
    expect(targeted.length).toBeGreaterThan(0)
    expect(commands.length).toBeGreaterThan(0)
    for (const m of targeted) {
      expect(JSON.parse(m.text)).toMatchObject({EE_IS_ENCRYPTED: true, EE_SENDER: test.node.address, EE_DEST: test.client.address})
      expect(m.text).not.toMatch(/PIPELINE_OK|EXEC_RESULT|mqtt-a|R1_HELLO/)
    }
    // commands are encrypted but for the public probe
    for (const m of commands) {
      const command = JSON.parse(m.text)
      if (command.ACTION !== 'R1_PING') expect(command).toMatchObject({EE_IS_ENCRYPTED: true})
      expect(m.text).not.toContain('mqtt-a')
    }
    expect(seen.some((m) => m.topic === 'naeural/payloads' || m.topic === 'naeural/notif')).toBe(false)
  })

  it('serves WebSocket sessions at the same time; its full heartbeat carries the tags there too', async () => {
    const direct = await test.connect()
    expect(direct.url.startsWith('ws://')).toBe(true)
    expect(await direct.heartbeat()).toMatchObject({R1_TAGS: {site: 'lab', role: 'camera'}})
    expect(test.node.server.connectionCount).toBeGreaterThanOrEqual(1)
  })

  it('a node not on the broker is unreachable (exit 7) after the connect timeout', async () => {
    const stranger = generateIdentity()
    const started = Date.now()
    await expect(Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: stranger.address, identity: test.client, connectTimeoutMs: 800})).rejects.toMatchObject({exitCode: 7})
    expect(Date.now() - started).toBeGreaterThanOrEqual(700)
  })

  it('a session that greets with its first command: one message out, the hello and the answer back in one frame; no R1_PING', async () => {
    const session = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000, greetWithFirstCommand: true})
    try {
      const state = await session.state({heartbeat: true})
      expect(state.ADDRESS).toBe(test.node.address)
      expect(state.HEARTBEAT?.EE_ADDR).toBe(test.node.address)
      expect(session.alias).toBe(test.node.alias)
      const mine = (m: {text: string}) => JSON.parse(m.text).SESSION_ID === session.sessionId
      const commands = await until(() => {
        const sent = seen.filter((m) => m.topic === `naeural/${test.node.address}/config` && mine(m))
        return sent.length > 0 ? sent : undefined
      }, 5000, 'the greeting on the config topic')
      expect(commands).toHaveLength(1)
      expect(JSON.parse(commands[0]!.text)).toMatchObject({EE_IS_ENCRYPTED: true}) // R1_STATE, not the public R1_PING
      const frames = await until(() => {
        const got = seen.filter((m) => m.topic === `naeural/${test.client.address}/payloads` && mine(m))
        return got.length > 0 ? got : undefined
      }, 5000, 'the answer on the targeted topic')
      const first = openFrame(JSON.parse(frames[0]!.text).EE_ENCRYPTED_DATA, test.node.address, test.client)
      expect(first.frameSeq).toBe(1)
      const items = decodeNodeFrame(first.frame, test.node.address)
      expect(items.ok && items.items.map((i) => i.EE_EVENT_TYPE)).toEqual(['R1_HELLO', 'R1_REPLY'])
      // later commands go out as usual on the open session
      expect((await session.heartbeat()).EE_ADDR).toBe(test.node.address)
    } finally {
      await session.close()
    }
    // a node that is not on the broker: connecting costs nothing, and the first command is unreachable (7)
    const stranger = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: generateIdentity().address, identity: test.client, connectTimeoutMs: 800, greetWithFirstCommand: true})
    await expect(stranger.state()).rejects.toMatchObject({exitCode: 7, code: 'NODE_UNREACHABLE'})
    await expect(stranger.heartbeat()).rejects.toMatchObject({exitCode: 7})
    await stranger.close()
    // closed while its greeting is on its way: the command fails as unreachable at once, nothing hangs
    const leaving = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000, greetWithFirstCommand: true})
    const pending = leaving.state()
    await leaving.close()
    await expect(pending).rejects.toMatchObject({exitCode: 7})
    expect(leaving.connected).toBe(false)
  })

  it('keepalive: no R1_PING while commands go out and frames come back; probes once the session is idle', async () => {
    const session = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000, pingIntervalMs: 800})
    const pings = () => seen.filter((m) => m.topic === `naeural/${test.node.address}/config` && JSON.parse(m.text).SESSION_ID === session.sessionId && JSON.parse(m.text).ACTION === 'R1_PING').length
    try {
      await until(() => pings() === 1 || undefined, 5000, 'the opening R1_PING') // this session opens with one
      const busyUntil = Date.now() + 2500
      while (Date.now() < busyUntil) {
        await session.heartbeat()
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      expect(pings()).toBe(1)
      await until(() => pings() >= 2 || undefined, 5000, 'a probe once idle')
      expect((await session.heartbeat()).EE_ADDR).toBe(test.node.address) // still alive
    } finally {
      await session.close()
    }
  })

  it('a key the node does not allow gets only the public heartbeat', async () => {
    const session = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: generateIdentity(), connectTimeoutMs: 5000})
    try {
      expect(await session.heartbeat()).toMatchObject({R1_PUBLIC: true, R1_TAGS: {site: 'lab', role: 'camera'}})
      await expect(session.state()).rejects.toMatchObject({exitCode: 4, code: 'REJECTED_NOT_ALLOWED'})
    } finally {
      await session.close()
    }
  })
})
