// A broker that restarts with messages on their way, in process (aedes, closed and started again on the same
// port; it forgets everything it held, as Mosquitto without persistence does). Found with 1,000 simulated nodes:
// a deploy whose greeting (the session's first command, which asks the node for its hello) went down with the
// broker waited out its timeout, though the node and the client were both back within a second. Now the
// client sends again, once connected again, what has no answer: the greeting, which the node answers with its
// hello whether it had it or not, or a command of an open session, which it runs once; again while the node may
// not be back on the broker yet. What a session sends while its client reconnects waits for the connection. A
// greeting unanswered halfway through the session's wait is sent once more (a client that connected to a broker
// just restarted cannot tell). Last, the same first frame lost without a restart (a broker over its queue limit
// drops a message): a hello that went alone, or with a refusal, or a greeting's answers lost again and again on
// a client that has seen the broker lose frames.
import {once} from 'node:events'
import {type AddressInfo, createServer, type Server} from 'node:net'
import {Aedes} from 'aedes'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {frameRoute, openFrame} from '../../src/protocol/broker-frames.js'
import {NotificationCode} from '../../src/protocol/codes.js'
import {generateIdentity, type Identity} from '../../src/protocol/identity.js'
import {Session} from '../../src/session/index.js'
import {until} from '../runtime/helpers.js'
import {execPipeline, startTestNode, type TestNode} from '../server/helpers.js'

/** What the broker does to the next message of a kind: lose it (after acknowledging it) and then restart. */
type Loss = 'to-node' | 'to-client'

describe('a broker that restarts, or loses one message, with messages on their way', () => {
  let aedes: Aedes
  let server: Server
  let port: number
  let url: string
  let test: TestNode
  let lose: Loss | undefined
  /** How many messages of that kind it loses in a row. */
  let loseTimes = 1
  const lost: string[] = []
  /** What a lost message to this test's client held: the node's signed frame, opened. */
  const lostFrames: string[] = []
  /** Commands (not probes) the broker forwarded to the node, and when. */
  let forwardedToNode = 0
  const forwardedAt: number[] = []
  /** The next message to a client after a loss goes twice (a QoS 1 copy). */
  let copyAfterLoss = false
  /** The SESSION_ID of each lost message to a client; messages of `spareSession` are never lost. */
  const lostSessions: string[] = []
  let spareSession: string | undefined
  /** Until when the restarted broker refuses the node (a node that reconnects later than the client). */
  let refuseNodeUntil = 0
  /** Clients wait to be let in until the node is connected (what they send then reaches it). */
  let clientsAfterNode = false
  /** Commands to the node are held unacknowledged (and never forwarded) while set. */
  let holdCommands = false
  /** The node subscribed to its commands on this broker (since its last start). */
  let nodeSubscribed = false

  const listen = async (at: number) => {
    aedes = await Aedes.createBroker({
      authenticate(client, _user, _password, done) {
        if (client.id.startsWith('r1n') && Date.now() < refuseNodeUntil) done(Object.assign(new Error('not yet'), {returnCode: 3}), false)
        else if (client.id.startsWith('r1c') && clientsAfterNode) {
          const wait = setInterval(() => nodeSubscribed && (clearInterval(wait), done(null, true)), 20)
        } else done(null, true)
      },
      authorizePublish(_client, packet, done) {
        if (!(holdCommands && packet.topic.endsWith('/config') && !packet.payload.toString().includes('"ACTION":"R1_PING"'))) done(null)
      },
      authorizeForward(_client, packet) {
        const text = packet.payload.toString()
        const toNode = packet.topic.endsWith('/config') && !text.includes('"ACTION":"R1_PING"')
        const route = /^naeural\/[^/]+\/payloads$/.test(packet.topic) ? frameRoute(text) : undefined // any client's targeted topic
        const toClient = route !== undefined && route.sessionId !== spareSession
        if ((lose === 'to-node' && toNode) || (lose === 'to-client' && toClient)) {
          lost.push(packet.topic)
          if (packet.topic === `naeural/${test.client.address}/payloads`) lostFrames.push(openFrame(route!.data, test.node.address, test.client).frame)
          if (route) lostSessions.push(route.sessionId)
          if (--loseTimes <= 0) lose = undefined
          return null
        }
        if (toNode) {
          forwardedToNode++
          forwardedAt.push(Date.now())
        }
        if (toClient && copyAfterLoss && lost.length > 0) {
          copyAfterLoss = false
          const copy = {cmd: 'publish' as const, topic: packet.topic, payload: packet.payload, qos: 1 as const, retain: false, dup: false}
          setImmediate(() => aedes.publish(copy, () => undefined))
        }
        return packet
      },
    })
    nodeSubscribed = false
    aedes.on('subscribe', (_subscriptions, client) => {
      if (client?.id.startsWith('r1n')) nodeSubscribed = true
    })
    server = createServer((socket) => aedes.handle(socket))
    server.listen(at, '127.0.0.1')
    await once(server, 'listening')
    return (server.address() as AddressInfo).port
  }

  /** Stops the broker, closing every connection (what it held is gone). */
  const stop = async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** Waits for the loss, then stops the broker and starts it again on the same port. */
  const restartAfterLoss = async () => {
    await until(() => lost.length > 0, 10_000, 'the lost message')
    await stop()
    await listen(port)
  }

  beforeAll(async () => {
    port = await listen(0)
    url = `mqtt://127.0.0.1:${port}`
    test = await startTestNode({broker: {url}, listen: false})
    await until(() => test.node.broker?.connected, 10_000, 'the node on the broker')
  })

  afterEach(async () => {
    lose = undefined
    loseTimes = 1
    lost.length = 0
    lostFrames.length = 0
    lostSessions.length = 0
    spareSession = undefined
    forwardedToNode = 0
    forwardedAt.length = 0
    copyAfterLoss = false
    refuseNodeUntil = 0
    clientsAfterNode = false
    holdCommands = false
    // every test leaves the node connected
    await until(() => test.node.broker?.connected, 20_000, 'the node back on the broker')
  })

  afterAll(async () => {
    await test?.dispose()
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    server?.close()
  })

  // the session would give the node up after 10 s without its hello: the restart takes a second or two
  const connect = (connectTimeoutMs = 10_000, identity = test.client) => Session.connect({url, broker: {url}, nodeAddress: test.node.address, identity, connectTimeoutMs, greetWithFirstCommand: true})

  /** `body` with a session, closed after it. */
  const withSession = async (body: (session: Session) => Promise<void>, connectTimeoutMs?: number, identity?: Identity) => {
    const session = await connect(connectTimeoutMs, identity)
    try {
      await body(session)
    } finally {
      await session.close()
    }
  }

  it('a greeting lost on its way to the node is sent again, and the session opens', () =>
    withSession(async (session) => {
      lose = 'to-node'
      const state = session.state({}, {timeoutMs: 30_000})
      await restartAfterLoss()
      expect((await state).ADDRESS).toBe(test.node.address)
      expect(lost).toHaveLength(1)
    }))

  it("a greeting whose answer (with the node's hello) was lost is answered again with the hello", () =>
    withSession(async (session) => {
      lose = 'to-client'
      const state = session.state({}, {timeoutMs: 30_000})
      await restartAfterLoss()
      expect((await state).ADDRESS).toBe(test.node.address)
      expect(session.alias).toBe(test.node.alias)
    }))

  it('a greeting sent again before the node is back on the broker is sent again until it is', () =>
    withSession(async (session) => {
      lose = 'to-node'
      // the restarted broker refuses the node for 2.5 s: the client is back first, and what it sends at once goes nowhere
      refuseNodeUntil = Number.POSITIVE_INFINITY
      const state = session.state({}, {timeoutMs: 30_000})
      await restartAfterLoss()
      refuseNodeUntil = Date.now() + 2500
      expect((await state).ADDRESS).toBe(test.node.address)
    }))

  it("an open session's change lost on its way to the node is sent again, confirmed, and applied once", () =>
    withSession(async (session) => {
      await session.state()
      lose = 'to-node'
      const sent = session.send('UPDATE_CONFIG', execPipeline('restart-change'), {
        timeoutMs: 30_000,
        expect: [
          {code: NotificationCode.PIPELINE_OK, pipeline: 'restart-change'},
          {code: NotificationCode.PLUGIN_CONFIG_OK, pipeline: 'restart-change', signature: 'CUSTOM_EXEC_01', instance: 'exec-1'},
        ],
      })
      await restartAfterLoss()
      const {notifications} = await sent
      expect(notifications.some((n) => n.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK)).toBe(true)
      const state = await session.state()
      expect(state.VERSIONS['restart-change']).toHaveLength(1)
    }))

  it('a command sent while the broker is away waits for the client to reconnect, and is sent once and answered', () =>
    withSession(async (session) => {
      await session.state()
      await stop()
      await until(() => !session.connected, 10_000, 'the client to see its connection close')
      const state = session.state({}, {timeoutMs: 30_000})
      state.catch(() => undefined) // awaited below
      await new Promise((resolve) => setTimeout(resolve, 800))
      forwardedAt.length = 0
      clientsAfterNode = true // what the client sends once back reaches the node
      await listen(port)
      expect((await state).ADDRESS).toBe(test.node.address)
      // sent once as the client came back: by its round of sending again what is unanswered, not a second time by the
      // wait it was in (a node slower than a second to answer gets it again from the next round, a second later)
      expect(forwardedAt.length).toBeGreaterThanOrEqual(1)
      expect(forwardedAt.slice(1).every((at, i) => at - forwardedAt[i]! >= 500)).toBe(true)
    }))

  it('a session opened after the client is back but before the node is opens once the node is back', async () => {
    await withSession(async (first) => {
      await first.state()
      refuseNodeUntil = Number.POSITIVE_INFINITY
      await stop()
      await listen(port)
      // the client (its connection shared by both sessions) is back; the node is refused for 2.5 s more
      await until(() => first.connected && !test.node.broker?.connected, 10_000, 'the client back without the node')
      refuseNodeUntil = Date.now() + 2500
      await withSession(async (second) => expect((await second.state({}, {timeoutMs: 30_000})).ADDRESS).toBe(test.node.address))
    })
  })

  it('a change its caller gave up on while the client reconnects is not sent once it is back', () =>
    withSession(async (session) => {
      await session.state()
      await stop()
      await until(() => !session.connected, 10_000, 'the client to see its connection close')
      await expect(session.send('UPDATE_CONFIG', execPipeline('given-up'), {timeoutMs: 300})).rejects.toMatchObject({exitCode: 5})
      clientsAfterNode = true // what the client would send once back reaches the node
      await listen(port)
      await until(() => session.connected, 10_000, 'the client back')
      // answered after what the client sent once back, and after its first round of sending again
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const state = await session.state({}, {timeoutMs: 30_000})
      expect(state.PIPELINES.map((p) => p.NAME)).not.toContain('given-up')
    }))

  it('a client that first connects after a restart, before the node is back, sends its greeting once more halfway through its wait', async () => {
    refuseNodeUntil = Number.POSITIVE_INFINITY
    await stop()
    await listen(port)
    await until(() => !test.node.broker?.connected, 10_000, 'the node refused')
    refuseNodeUntil = Date.now() + 2500
    // no session of this client is open: its connection is new, and sees no restart; it waits 20 s for the node,
    // and sends its greeting once more at 10 s, the node back by then
    await withSession(async (session) => expect((await session.state({}, {timeoutMs: 30_000})).ADDRESS).toBe(test.node.address), 20_000)
  })

  it('a change the broker had not acknowledged when it went away, its caller gone by the time it is back, is not sent', () =>
    withSession(async (session) => {
      await session.state()
      holdCommands = true
      const sent = session.send('UPDATE_CONFIG', execPipeline('unacknowledged'), {timeoutMs: 1500})
      sent.catch(() => undefined) // awaited below
      await new Promise((resolve) => setTimeout(resolve, 300)) // on its way, held by the broker
      await stop()
      await expect(sent).rejects.toMatchObject({exitCode: 5})
      holdCommands = false
      clientsAfterNode = true
      await listen(port)
      await until(() => session.connected, 10_000, 'the client back')
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const state = await session.state({}, {timeoutMs: 30_000})
      expect(state.PIPELINES.map((p) => p.NAME)).not.toContain('unacknowledged')
    }))

  // Lost without a restart: a broker over its queue limit drops one message
  it("a first frame holding only the node's hello, lost, is asked for again when the answer's frame comes without it", () =>
    withSession(async (session) => {
      lose = 'to-client' // the hello goes out alone: the change's answer is not ready at once
      copyAfterLoss = true // and the frame after it comes twice
      const {notifications} = await session.send('UPDATE_CONFIG', execPipeline('hello-lost'), {
        timeoutMs: 30_000,
        expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, pipeline: 'hello-lost', signature: 'CUSTOM_EXEC_01', instance: 'exec-1'}],
      })
      expect(lostFrames).toHaveLength(1)
      expect(lostFrames[0]).toContain('"R1_HELLO"')
      expect(lostFrames[0]).not.toContain('"R1_REPLY"')
      expect(notifications.some((n) => n.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK)).toBe(true)
      expect(session.alias).toBe(test.node.alias)
      // past the schedule's first two rounds: the greeting went twice (the second at the hello-less frame), however
      // many hello-less frames came, and not again once the hello came
      await new Promise((resolve) => setTimeout(resolve, 3500))
      expect(forwardedToNode).toBe(2)
      expect((await session.state()).VERSIONS['hello-lost']).toHaveLength(1)
    }))

  it('a refused greeting whose answer was lost is refused again with the hello, and the client reads why', () =>
    withSession(
      async (session) => {
        lose = 'to-client'
        // a key the node does not allow: its R1_STATE is refused, with the hello, in one frame, which is lost
        await expect(session.state({}, {timeoutMs: 30_000})).rejects.toMatchObject({exitCode: 4, code: 'REJECTED_NOT_ALLOWED'})
        expect(lost).toHaveLength(1)
      },
      4000,
      generateIdentity(),
    ))

  it('on a client that has seen no frame lost, a greeting unanswered is sent once more halfway through its wait, not at three quarters, and a timeout names no loss', () =>
    withSession(async (session) => {
      lose = 'to-node' // every greeting is lost on its way: no frame comes, so no gap is ever seen
      loseTimes = 10
      const error = await session.state({}, {timeoutMs: 30_000}).catch((caught: unknown) => caught)
      expect(error).toMatchObject({exitCode: 7, message: expect.stringMatching(/no heartbeat and no reply$/)})
      expect((error as {hint?: string}).hint).not.toMatch(/losing messages/)
      expect(lost).toHaveLength(2) // the greeting, and its copy halfway
    }, 4000, generateIdentity())) // a key of its own: a connection of its own, whatever earlier tests saw

  it('on a client whose broker has been losing frames, a greeting still unanswered is sent once more at three quarters of its wait, and a timeout says frames were lost', () =>
    // a first session's hello is lost: this client's connection now knows that the broker loses frames
    withSession(async (first) => {
      lose = 'to-client'
      await first.send('UPDATE_CONFIG', execPipeline('losing'), {timeoutMs: 30_000, expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'losing'}]})
      spareSession = lostSessions[0] // from now on, only the next sessions' messages are lost
      // a second session's greeting is answered twice into the void: at once, and when sent again halfway (2 s)
      lose = 'to-client'
      loseTimes = 2
      await withSession(async (second) => expect((await second.state({}, {timeoutMs: 30_000})).ADDRESS).toBe(test.node.address), 4000)
      expect(lost).toHaveLength(3)
      // a third one's answers are all lost: it gives up after its wait, and says what the broker did
      lose = 'to-client'
      loseTimes = 10
      await withSession(async (third) => {
        const error = await third.state({}, {timeoutMs: 30_000}).catch((caught: unknown) => caught)
        // the frames it found missing: the first session's hello, and the second one's two answers
        expect(error).toMatchObject({exitCode: 7, message: expect.stringMatching(/no heartbeat and no reply \(3 frames meant for this client went missing on the broker since \S+\)$/)})
        expect((error as {hint?: string}).hint).toMatch(/Check that the node is running .* The broker has also been losing messages: give it no queue limit/)
      }, 4000)
      expect(lost.length).toBeGreaterThanOrEqual(6) // what answered the greeting, and its copies halfway and at three quarters
    }))
})
