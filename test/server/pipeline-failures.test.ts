// The failures of a pipeline's instances (they answer no command) reach the sessions that commanded
// that pipeline without a subscription, as the hello's FEATURES says; nobody else hears them, and
// nothing that is not a failure is pushed this way.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import type {NodeEvent} from '../../src/protocol/events.js'
import {FEATURE_PIPELINE_FAILURES} from '../../src/protocol/messages.js'
import type {PipelineConfig} from '../../src/protocol/pipeline.js'
import type {Session} from '../../src/session/index.js'
import {allowAddress, disallowAddress} from '../../src/runtime/server-allowlist.js'
import {execPipeline, startTestNode, type TestNode} from './helpers.js'

let t: TestNode
let commander: Session
let bystander: Session
const heard = new Map<Session, NodeEvent[]>()

const exploding = (name: string): PipelineConfig => ({
  NAME: name,
  TYPE: 'Void',
  PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'bad', PROCESS_DELAY: 0.1, CODE: "throw new Error('sensor exploded')"}]}],
})

async function until(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

beforeAll(async () => {
  t = await startTestNode()
  commander = await t.connect()
  bystander = await t.connect()
  for (const s of [commander, bystander]) {
    heard.set(s, [])
    s.onEvent((event) => heard.get(s)!.push(event))
  }
})
afterAll(async () => t?.dispose())

const failuresIn = (s: Session, pipeline: string) =>
  heard.get(s)!.filter((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.EE_PAYLOAD_PATH[1] === pipeline && e.COMMAND_HASH === undefined)

describe('failures of a commanded pipeline, without a subscription', () => {
  it('the hello offers the feature', () => {
    expect(commander.nodeFeatures).toContain(FEATURE_PIPELINE_FAILURES)
  })

  it("the session that deployed a pipeline hears its instance's exception; another session does not", async () => {
    const sent = await commander.send('UPDATE_CONFIG', exploding('boom'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'boom'}]})
    expect(sent.reply.ACTION).toBe('UPDATE_CONFIG')
    await until(() => failuresIn(commander, 'boom').some((n) => String(n.NOTIFICATION).includes('sensor exploded')), 'the exception at the commander')
    // the bystander is connected and allowed, but neither subscribed nor commanded this pipeline
    await bystander.state()
    expect(failuresIn(bystander, 'boom')).toEqual([])
    expect(heard.get(commander)!.every((e) => e.EE_EVENT_TYPE === 'NOTIFICATION')).toBe(true) // no heartbeats, payloads or logs pushed
  })

  it('a healthy pipeline pushes nothing beyond its confirmations', async () => {
    await commander.send('UPDATE_CONFIG', execPipeline('calm', 'exec-1', 0.05), {expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, pipeline: 'calm', instance: 'exec-1'}]})
    await new Promise((r) => setTimeout(r, 500)) // some ten iterations, each a payload
    expect(heard.get(commander)!.filter((e) => e.EE_PAYLOAD_PATH[1] === 'calm' && e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === undefined)).toEqual([])
    expect(heard.get(commander)!.some((e) => e.EE_EVENT_TYPE === 'PAYLOAD')).toBe(false)
  })

  it('an instance command (r1 command) does not make its sender hear the pipeline\'s failures', async () => {
    const other = await t.connect()
    const heardByOther: NodeEvent[] = []
    other.onEvent((event) => heardByOther.push(event))
    await commander.send('UPDATE_CONFIG', exploding('boom2'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'boom2'}]})
    await other.send('UPDATE_PIPELINE_INSTANCE', {NAME: 'boom2', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'bad', INSTANCE_CONFIG: {PROCESS_DELAY: 0.1}})
    // the instance fails again and again (about once a second): at least once after the other's command
    await until(() => failuresIn(commander, 'boom2').length >= 2, 'two failures at the commander')
    expect(heardByOther.filter((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === undefined)).toEqual([])
    await other.close()
  })

  it('a session that closed is forgotten: the failures that follow go nowhere', async () => {
    const brief = await t.connect()
    await brief.send('UPDATE_CONFIG', exploding('again'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'again'}]})
    await brief.close()
    await until(() => (t.node.server.pipelineCommanders.get('again')?.size ?? 0) === 0, 'the closed session forgotten')
    expect(failuresIn(bystander, 'again')).toEqual([])
  })

  it('a sender taken off the allow-list hears no more of them', async () => {
    const seenByNode: NodeEvent[] = []
    const off = t.node.core.onEvent((event) => event.EE_EVENT_TYPE === 'NOTIFICATION' && event.EE_PAYLOAD_PATH[1] === 'boom3' && event.NOTIFICATION_TYPE === 'EXCEPTION' && seenByNode.push(event))
    await commander.send('UPDATE_CONFIG', exploding('boom3'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'boom3'}]})
    await disallowAddress(t.dataDir, t.client.address)
    try {
      await until(() => seenByNode.length >= 2, 'the instance to fail twice')
      expect(failuresIn(commander, 'boom3')).toEqual([])
    } finally {
      off()
      await allowAddress(t.dataDir, t.client.address)
    }
  })
})
