import {connect as mqttConnect} from 'mqtt'
import {afterAll, beforeAll, describe, expect, it, vi} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {FEATURE_KEEPS_WAITING_SESSIONS, formatTime} from '../../src/protocol/messages.js'
import type {PipelineConfig} from '../../src/protocol/pipeline.js'
import {encodeCommand} from '../../src/protocol/wire.js'
import {LoopWatch} from '../../src/runtime/server.js'
import {Session} from '../../src/session/index.js'
import {nodeOnEmbeddedBroker} from '../broker/helpers.js'
import {until} from '../runtime/helpers.js'

// A node whose input backs up (a flood on its config topic, or more work than its CPU has) reads its peers'
// messages late. While it is that busy, it must not take their silence for absence: at 10,000 simulated nodes
// on two cores, sessions were forgotten mid-deploy and each failed as `1012` (started afresh).
describe('LoopWatch: was the event loop saturated since the last look', () => {
  it('yes after a busy stretch, no after an idle one, and each look starts a new period', async () => {
    const watch = new LoopWatch()
    const busyUntil = Date.now() + 300
    while (Date.now() < busyUntil); // busy
    expect(watch.saturated()).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(watch.saturated()).toBe(false)
    const halfUntil = Date.now() + 150
    while (Date.now() < halfUntil); // busy half the period
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(watch.saturated()).toBe(false)
  })
})

describe('a node too busy to read its input', () => {
  const FLOOD = 10_000
  // liveness judged every 200 ms: a session unheard for two periods is forgotten
  const fixture = nodeOnEmbeddedBroker({pingIntervalMs: 200})

  const open = (pingIntervalMs: number) => Session.connect({url: fixture.broker.url, broker: {url: fixture.broker.url}, nodeAddress: fixture.test.node.address, identity: fixture.test.client, connectTimeoutMs: 20_000, pingIntervalMs})

  it('keeps a working session through a flood of signed probes from a stranger, and forgets the silent ones after', {timeout: 120_000}, async () => {
    const talker = await open(100) // probes every 100 ms: never silent for two of the node's periods
    const quiet = await open(60_000) // says nothing after its first command
    try {
      await Promise.all([talker.state(), quiet.state()])
      const front = fixture.test.node.broker!
      const before = front.stats.received
      // which housekeeping ticks found the node saturated (and so judged nobody)
      const looks = vi.spyOn(LoopWatch.prototype, 'saturated')
      // the backlog: validly signed probes of a stranger, each checked (its signature) and answered by the node
      const stranger = generateIdentity()
      const flood = mqttConnect(fixture.broker.url, {protocolVersion: 4, clientId: 'flooder'})
      await new Promise<void>((resolve) => flood.once('connect', () => resolve()))
      const text = encodeCommand({ACTION: 'R1_PING', PAYLOAD: null, EE_DEST: fixture.test.node.address, INITIATOR_ID: 'flood', SESSION_ID: 'flood', TIME: formatTime()}, stranger).text
      for (let i = 0; i < FLOOD; i++) flood.publish(`naeural/${fixture.test.node.address}/config`, text, {qos: 0})
      await until(() => front.stats.received - before >= FLOOD || undefined, 100_000, 'the node through the backlog')
      flood.end(true)
      const busyTicks = looks.mock.results.filter((r) => r.value === true).length
      looks.mockRestore()
      // the talker's session is the one it had (a new hello would have ended it as 1012, started afresh)
      expect((await talker.state()).ADDRESS).toBe(fixture.test.node.address)
      expect(busyTicks).toBeGreaterThan(0) // housekeeping found the node saturated at least once meanwhile, and the talker was kept
      // once the node can listen again, the quiet session is forgotten as before (the stranger's too)
      await until(() => front.connectionCount === 1 || undefined, 10_000, 'the silent sessions forgotten')
      expect((await talker.state()).ADDRESS).toBe(fixture.test.node.address)
    } finally {
      await talker.close()
      await quiet.close()
    }
  })
})

// A command the node takes long to carry out (here: replacing an instance stuck in a loop, which cannot
// answer the node's question before its update) is a session waiting for its answer, not a silent one. The
// node keeps it (hello FEATURES: KEEPS_WAITING_SESSIONS), so the client need not probe often meanwhile:
// through a broker each probe is a signed command the node reads and answers, and at thousands of nodes the
// probes of sessions waiting on a busy fleet were much of its work.
describe('a node carrying out a long command', () => {
  // liveness judged every 1.5 s: a session unheard through a whole period is forgotten
  const fixture = nodeOnEmbeddedBroker({pingIntervalMs: 1500})
  const seen: Array<{topic: string; text: string}> = []
  let sniffer: ReturnType<typeof mqttConnect>

  beforeAll(async () => {
    sniffer = mqttConnect(fixture.broker.url, {protocolVersion: 4, clientId: 'sniffer'})
    await new Promise<void>((resolve) => sniffer.once('connect', () => resolve()))
    await sniffer.subscribeAsync(`naeural/${fixture.test.node.address}/config`)
    sniffer.on('message', (topic, payload) => seen.push({topic, text: payload.toString()}))
  })

  afterAll(() => {
    sniffer?.end(true)
  })

  /** One instance whose code never returns: it cannot answer the question before an update (the node waits 5 s for it). */
  const stuck = (name: string): PipelineConfig => ({
    NAME: name,
    TYPE: 'Void',
    PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'loop', PROCESS_DELAY: 0.05, SHUTDOWN_TIMEOUT: 1, CODE: 'while (true) {}'}]}],
  })

  it('keeps a session whose command is still running, and that session probes once every few periods meanwhile', async () => {
    // Probes every second while idle, so the node hears it in each of its periods. While a command waits, one
    // every 2.5 to 3 s: longer than the node's period (a node that judged the session by its silence alone
    // would forget it mid-wait), and than the session's own patience (2 s: gone when silent that long), which
    // now runs from a probe left unanswered.
    const session = await Session.connect({url: fixture.broker.url, broker: {url: fixture.broker.url}, nodeAddress: fixture.test.node.address, identity: fixture.test.client, connectTimeoutMs: 2000, pingIntervalMs: 1000})
    try {
      expect(session.nodeFeatures).toContain(FEATURE_KEEPS_WAITING_SESSIONS)
      await session.send('UPDATE_CONFIG', stuck('stuck'), {timeoutMs: 10_000})
      await until(() => fixture.test.node.core.instance('stuck', 'CUSTOM_EXEC_01', 'loop')?.status === 'running' || undefined, 10_000, 'the stuck instance running')
      const sessionId = session.sessionId
      const pings = () => seen.filter((m) => m.text.includes('"ACTION":"R1_PING"') && m.text.includes(sessionId)).length
      const before = pings()
      const started = Date.now()
      // the replacement waits on the stuck instance for 5 s: more than three of the node's periods
      await session.send('UPDATE_CONFIG', {...stuck('stuck'), PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'loop', CODE: 'return {n: 1}'}]}]}, {timeoutMs: 30_000})
      const waited = Date.now() - started
      expect(waited).toBeGreaterThan(4000)
      // answered on the session that sent it: neither side gave up on it (the node starting it afresh closes it as 1012)
      expect(session.sessionId).toBe(sessionId)
      // one probe every two and a half periods at most (a late one arriving late counts: one more), not one each period
      expect(pings() - before).toBeLessThan(waited / 2500 + 1)
    } finally {
      await session.close()
    }
  })

})

describe('a node after its answer', () => {
  const period = 3000
  const fixture = nodeOnEmbeddedBroker({pingIntervalMs: period})

  it('gives the session two periods to be heard from again (it may get the answer late)', async () => {
    // Three silent sessions (no probe in a minute), each asking once and again one and a half periods after
    // the answer. Their answers fall a third of a period apart, so for one of them the node's next tick comes
    // less than half a period after the answer: a node that judged from that tick would forget it.
    const sessions: Session[] = []
    try {
      await Promise.all(
        [0, 1, 2].map(async (i) => {
          await new Promise((resolve) => setTimeout(resolve, (i * period) / 3))
          const session = await Session.connect({url: fixture.broker.url, broker: {url: fixture.broker.url}, nodeAddress: fixture.test.node.address, identity: fixture.test.client, connectTimeoutMs: 5000, pingIntervalMs: 60_000})
          sessions.push(session)
          const id = session.sessionId
          await session.state()
          await new Promise((resolve) => setTimeout(resolve, period * 1.5))
          expect((await session.state()).ADDRESS).toBe(fixture.test.node.address)
          // answered on the session it opened: not forgotten and started afresh (that closes it as 1012)
          expect(session.sessionId).toBe(id)
        }),
      )
    } finally {
      await Promise.all(sessions.map((session) => session.close()))
    }
  })
})
