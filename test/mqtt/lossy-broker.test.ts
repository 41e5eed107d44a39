// A broker that misbehaves, in process (aedes with hooks):
// - it loses a frame on its way to the client, as Mosquitto does past its queue limit: the answer to a
//   command. The client sees the gap in the node's frame numbers (at its next probe at the latest), sends
//   the same signed command again, and the node answers it again without running it twice;
// - it loses the frame that carries a change's confirmation (PLUGIN_CONFIG_OK), after its answer came: the
//   client sends the command again when it sees the gap, and the node sends the answer and the confirmations
//   it gave so far again, so a deploy is confirmed instead of timing out;
// - it holds a command's acknowledgement while the session gives up on the node: the command fails as
//   unreachable (exit 7), not as a crash of the CLI (found with 10,000 simulated nodes).
import {once} from 'node:events'
import {type AddressInfo, createServer, type Server} from 'node:net'
import {Aedes} from 'aedes'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {sessionConnector} from '../../src/deploy/link.js'
import {sendAndConfirm} from '../../src/fleet/engine.js'
import {frameRoute, openFrame} from '../../src/protocol/broker-frames.js'
import {NotificationCode} from '../../src/protocol/codes.js'
import {decodeNodeFrame} from '../../src/protocol/wire.js'
import {Session} from '../../src/session/index.js'
import {until} from '../runtime/helpers.js'
import {execPipeline, startTestNode, type TestNode} from '../server/helpers.js'

describe('a broker that loses or holds messages', () => {
  let aedes: Aedes
  let server: Server
  let url: string
  let test: TestNode
  /** Set when a command (not a probe) passes to the node: the next frame to the client is dropped. */
  let dropNext = false
  let armed = false
  const dropped: string[] = []
  /** While set, what clients publish on config topics is acknowledged only this much later. */
  let holdCommandsMs = 0
  /** While set, the first frame to the client that carries a PLUGIN_CONFIG_OK is dropped (opened with the client's key). */
  let dropConfirmation = false
  const carriesConfirmation = (text: string) => {
    const route = frameRoute(text)
    if (!route || route.sender !== test.node.address) return false
    const frame = decodeNodeFrame(openFrame(route.data, route.sender, test.client).frame, test.node.address)
    return frame.ok && frame.items.some((item) => item.EE_EVENT_TYPE === 'NOTIFICATION' && 'NOTIFICATION_CODE' in item && item.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK)
  }

  beforeAll(async () => {
    aedes = await Aedes.createBroker({
      authorizePublish(_client, packet, done) {
        if (holdCommandsMs > 0 && packet.topic.endsWith('/config')) setTimeout(() => done(null), holdCommandsMs)
        else done(null)
      },
      authorizeForward(_client, packet) {
        const topic = packet.topic
        if (dropConfirmation && topic.endsWith('/payloads') && carriesConfirmation(packet.payload.toString())) {
          dropConfirmation = false
          dropped.push(topic)
          return null
        }
        if (armed && topic.endsWith('/config') && !packet.payload.toString().includes('"ACTION":"R1_PING"')) dropNext = true
        else if (dropNext && topic.endsWith('/payloads')) {
          dropNext = false
          armed = false
          dropped.push(topic)
          return null
        }
        return packet
      },
    })
    server = createServer((socket) => aedes.handle(socket))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
    test = await startTestNode({broker: {url}, listen: false})
    await until(() => test.node.broker?.connected, 10_000, 'the node on the broker')
  })

  afterAll(async () => {
    await test?.dispose()
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    server?.close()
  })

  // probes every second: the frame after the lost one shows the gap
  const connect = () => Session.connect({url, broker: {url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000, pingIntervalMs: 1000})

  it('a read whose answer was lost is answered when asked again', async () => {
    const session = await connect()
    try {
      armed = true
      const state = await session.state({}, {timeoutMs: 15_000})
      expect(state.ADDRESS).toBe(test.node.address)
      expect(dropped).toHaveLength(1)
    } finally {
      await session.close()
    }
  })

  it('a change whose answer was lost is confirmed, and applied once', async () => {
    const session = await connect()
    try {
      armed = true
      const {hash} = await session.send('UPDATE_CONFIG', execPipeline('lossy'), {timeoutMs: 15_000})
      expect(dropped).toHaveLength(2)
      const state = await session.state()
      expect(state.PIPELINES.map((p) => [p.NAME, p.R1_VERSION])).toEqual([['lossy', 1]])
      expect(state.VERSIONS.lossy).toHaveLength(1)
      expect(hash).toMatch(/^[0-9a-f]{64}$/)
    } finally {
      await session.close()
    }
  })

  it('a change whose confirmation was lost after its answer is confirmed, and applied once', async () => {
    const session = await connect()
    try {
      dropped.length = 0
      dropConfirmation = true
      const confirmations = [
        {code: NotificationCode.PIPELINE_OK, pipeline: 'lossy-confirm'},
        {code: NotificationCode.PLUGIN_CONFIG_OK, pipeline: 'lossy-confirm', signature: 'CUSTOM_EXEC_01', instance: 'exec-1'},
      ]
      // what listeners hear: each notification once, though the node sends the ones before the loss again
      const heard: number[] = []
      session.onEvent((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PIPELINE_OK && e.EE_PAYLOAD_PATH[1] === 'lossy-confirm' && heard.push(e.EE_MESSAGE_SEQ))
      const {notifications} = await session.send('UPDATE_CONFIG', execPipeline('lossy-confirm'), {timeoutMs: 20_000, expect: confirmations})
      expect(dropped).toHaveLength(1)
      expect(notifications.some((n) => n.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK)).toBe(true)
      const state = await session.state() // answered after what was sent again
      expect(state.VERSIONS['lossy-confirm']).toHaveLength(1)
      expect(heard).toHaveLength(1)
    } finally {
      dropConfirmation = false
      await session.close()
    }
  })

  it("a deploy's command whose confirmation was lost is confirmed (the fleet engine's wait, over the deploy's link)", async () => {
    const connectTarget = sessionConnector(test.client, {connectTimeoutMs: 5000})
    const link = await connectTarget({name: 'lossy', url, broker: {url}, address: test.node.address})
    try {
      dropped.length = 0
      dropConfirmation = true
      const command = {action: 'UPDATE_CONFIG' as const, payload: execPipeline('lossy-deploy'), expect: {pipeline: 'lossy-deploy', pipelineCode: NotificationCode.PIPELINE_OK, instances: [{signature: 'CUSTOM_EXEC_01', instanceId: 'exec-1'}]}}
      const {verdict} = await sendAndConfirm(link, [command], 30_000)
      expect(verdict.state).toBe('confirmed')
      expect(dropped).toHaveLength(1)
      expect((await link.state()).VERSIONS['lossy-deploy']).toHaveLength(1)
    } finally {
      dropConfirmation = false
      await link.close()
    }
  })

  it('a command whose acknowledgement the broker holds while the session gives up is unreachable (exit 7), not a crash', async () => {
    // with every message to the node held 8 s, the session gives the node up after its 2 s connect timeout
    const session = await Session.connect({url, broker: {url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 2000, pingIntervalMs: 100})
    holdCommandsMs = 8000
    try {
      await expect(session.state({}, {timeoutMs: 10_000})).rejects.toMatchObject({exitCode: 7, code: 'NODE_UNREACHABLE'})
    } finally {
      holdCommandsMs = 0
      await session.close()
    }
  })
})
