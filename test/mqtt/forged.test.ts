// Hostile input on a node's config topic: whatever any broker client publishes there is refused and
// changes nothing; the node keeps serving its allow-listed client.
import {connect as mqttConnect, type MqttClient} from 'mqtt'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {frameRoute, openFrame} from '../../src/protocol/broker-frames.js'
import {NotificationCode} from '../../src/protocol/codes.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {formatTime} from '../../src/protocol/messages.js'
import {decodeNodeFrame, encodeEncryptedCommand} from '../../src/protocol/wire.js'
import {Session} from '../../src/session/index.js'
import {startEmbeddedBroker, type TestBroker} from '../broker/helpers.js'
import {until} from '../runtime/helpers.js'
import {execPipeline, startTestNode, type TestNode} from '../server/helpers.js'

describe('forged and malformed messages on a node’s config topic', () => {
  let broker: TestBroker
  let test: TestNode
  let other: TestNode
  let raw: MqttClient
  let session: Session
  const configTopic = () => `naeural/${test.node.address}/config`
  const commands: string[] = []
  const stranger = generateIdentity()
  /** Rejections the node sealed to the attacker-side identities, by SESSION_ID (opened with their keys). */
  const rejections: Array<{session: string; reason: string}> = []
  /** The COMMAND_HASH of every R1_REPLY sealed to the client. */
  const replies: string[] = []

  beforeAll(async () => {
    broker = await startEmbeddedBroker()
    test = await startTestNode({broker: {url: broker.url}, listen: false})
    other = await startTestNode({broker: {url: broker.url}, listen: false})
    await until(() => test.node.broker?.connected && other.node.broker?.connected, 10_000, 'the nodes on the broker')
    raw = mqttConnect(broker.url, {protocolVersion: 4, clientId: 'attacker'})
    raw.on('message', (topic, payload) => {
      const text = payload.toString()
      if (topic === configTopic()) commands.push(text)
      const route = frameRoute(text)
      if (!route || route.sender !== test.node.address) return
      for (const identity of [test.client, stranger]) {
        if (!topic.includes(identity.address)) continue
        const frame = decodeNodeFrame(openFrame(route.data, route.sender, identity).frame, test.node.address)
        for (const item of frame.ok ? frame.items : []) {
          if ('REASON' in item) rejections.push({session: route.sessionId, reason: String(item.REASON)})
          if (item.EE_EVENT_TYPE === 'R1_REPLY') replies.push(item.COMMAND_HASH)
        }
      }
    })
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()))
    await new Promise((resolve) => raw.subscribe([configTopic(), 'naeural/+/payloads'], {qos: 1}, resolve))
    session = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000})
  })

  afterAll(async () => {
    await session?.close()
    raw?.end(true)
    await test?.dispose()
    await other?.dispose()
    await broker?.stop()
  })

  const publish = (text: string | Buffer, topic = configTopic()) => new Promise<void>((resolve, reject) => raw.publish(topic, text, {qos: 1}, (error) => (error ? reject(error) : resolve())))
  const pipelines = async () => (await session.state()).PIPELINES.map((p) => p.NAME).sort()

  it('drops garbage, unsigned, tampered and oversized messages, answering nobody', async () => {
    const before = test.node.broker!.stats.dropped
    await publish('not json at all')
    await publish(JSON.stringify({ACTION: 'UPDATE_CONFIG', PAYLOAD: execPipeline('forged')}))
    const signed = encodeEncryptedCommand({ACTION: 'UPDATE_CONFIG', PAYLOAD: execPipeline('forged'), EE_DEST: test.node.address, INITIATOR_ID: 'x', SESSION_ID: 's', TIME: formatTime()}, test.client)
    await publish(signed.text.replace(/"EE_ENCRYPTED_DATA":"./, (m) => m.slice(0, -1) + (m.endsWith('A') ? 'B' : 'A')))
    await publish(Buffer.alloc(2 * 1024 * 1024, 0x7b))
    await until(() => test.node.broker!.stats.dropped >= before + 4, 10_000, 'four drops')
    expect(test.node.broker!.connectionCount).toBe(1) // only the real session
    expect(await pipelines()).toEqual([])
  })

  it('runs a replayed command no second time, and refuses one for another node, one from a key not on the allow-list and a stale one', async () => {
    await session.send('UPDATE_CONFIG', execPipeline('real'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'real'}], timeoutMs: 20_000})
    const original = await until(() => commands.find((c) => c.includes(session.sessionId) && c.includes('EE_IS_ENCRYPTED') && c.length > 600), 10_000, 'the sniffed UPDATE_CONFIG')
    await session.send('DELETE_CONFIG', 'real', {expect: [{code: NotificationCode.PIPELINE_DELETE_OK, pipeline: 'real'}], timeoutMs: 20_000})
    expect(await pipelines()).toEqual([])
    // the replay runs nothing: the node sends the original session its answer again (a client that lost it
    // sends the same command again), sealed to that client
    const originalHash = JSON.parse(original).EE_HASH as string
    expect(replies.filter((h) => h === originalHash)).toHaveLength(1)
    await publish(original)
    // signed by the allowed client, but for the other node
    const elsewhere = encodeEncryptedCommand({ACTION: 'UPDATE_CONFIG', PAYLOAD: execPipeline('elsewhere'), EE_DEST: other.node.address, INITIATOR_ID: 'x', SESSION_ID: 'forged-dest', TIME: formatTime()}, test.client)
    await publish(elsewhere.text)
    // a stranger's key
    const strangers = encodeEncryptedCommand({ACTION: 'UPDATE_CONFIG', PAYLOAD: execPipeline('stranger'), EE_DEST: test.node.address, INITIATOR_ID: 'x', SESSION_ID: 'stranger', TIME: formatTime()}, stranger)
    await publish(strangers.text)
    // a command from long ago (outside the time window), as a broker that held it would deliver it
    const stale = encodeEncryptedCommand({ACTION: 'UPDATE_CONFIG', PAYLOAD: execPipeline('stale'), EE_DEST: test.node.address, INITIATOR_ID: 'x', SESSION_ID: 'stale', TIME: formatTime(new Date(Date.now() - 3_600_000))}, test.client)
    await publish(stale.text)
    await until(() => new Set(rejections.map((r) => r.session)).size >= 3 && replies.filter((h) => h === originalHash).length >= 2, 10_000, 'three rejections and the answer again').catch(() => undefined)
    expect(Object.fromEntries(rejections.map((r) => [r.session, r.reason]))).toEqual({'forged-dest': 'WRONG_DEST', stranger: 'NOT_ALLOWED', stale: 'TIME_SKEW'})
    expect(replies.filter((h) => h === originalHash)).toHaveLength(2)
    expect(await pipelines()).toEqual([])
    const toOther = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: other.node.address, identity: other.client, connectTimeoutMs: 5000})
    expect((await toOther.state()).PIPELINES).toEqual([]) // the other node: untouched, serving
    await toOther.close()
  })
})
