import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {Session} from '../../src/session/index.js'
import {execPipeline, startTestNode, type TestNode} from './helpers.js'

let t: TestNode
let session: Session
beforeAll(async () => {
  t = await startTestNode()
  session = await t.connect()
})
afterAll(async () => t?.dispose())

describe('node server: every command over a real session', () => {
  it('hello: the session knows the node', () => {
    expect(session.address).toBe(t.node.address)
    expect(session.alias).toBe(t.node.alias)
    expect(t.node.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/)
  })

  it('UPDATE_CONFIG is confirmed with PIPELINE_OK and PLUGIN_CONFIG_OK', async () => {
    const result = await session.send('UPDATE_CONFIG', execPipeline('p1'), {
      expect: [
        {code: NotificationCode.PIPELINE_OK, pipeline: 'p1'},
        {code: NotificationCode.PLUGIN_CONFIG_OK, pipeline: 'p1', instance: 'exec-1'},
      ],
    })
    expect(result.reply.ACTION).toBe('UPDATE_CONFIG')
    expect(result.notifications.every((n) => n.COMMAND_HASH === result.hash)).toBe(true)
  })

  it('R1_STATE lists the pipeline and its running instance', async () => {
    const state = await session.state()
    expect(state.ADDRESS).toBe(t.node.address)
    expect(state.PIPELINES.map((p) => p.NAME)).toContain('p1')
    expect(state.INSTANCES.find((i) => i.INSTANCE_ID === 'exec-1')).toMatchObject({PIPELINE: 'p1', SIGNATURE: 'CUSTOM_EXEC_01'})
  })

  it('R1_STATE with HEARTBEAT and BUNDLES also carries a fresh heartbeat and the bundles the node lacks; without them, neither', async () => {
    const {createHash} = await import('node:crypto')
    const bytes = Buffer.from('export default {}')
    const held = createHash('sha256').update(bytes).digest('hex')
    await session.putBundle(held, bytes)
    const missing = 'e'.repeat(64)
    const state = await session.state({heartbeat: true, bundles: [held, missing]})
    expect(state.PIPELINES.map((p) => p.NAME)).toContain('p1')
    expect(state.HEARTBEAT).toMatchObject({EE_EVENT_TYPE: 'HEARTBEAT', EE_ADDR: t.node.address, PIPELINES: expect.arrayContaining(['p1'])})
    expect(state.MISSING_BUNDLES).toEqual([missing])
    const plain = await session.state()
    expect('HEARTBEAT' in plain || 'MISSING_BUNDLES' in plain).toBe(false)
  })

  it('UPDATE_PIPELINE_INSTANCE and a one-shot INSTANCE_COMMAND', async () => {
    await session.send('UPDATE_PIPELINE_INSTANCE', {NAME: 'p1', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'exec-1', INSTANCE_CONFIG: {PROCESS_DELAY: 0.3}}, {
      expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, instance: 'exec-1'}],
    })
    const batch = await session.send('BATCH_UPDATE_PIPELINE_INSTANCE', [{NAME: 'p1', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'exec-1', INSTANCE_CONFIG: {PROCESS_DELAY: 0.25}}], {
      expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, instance: 'exec-1'}],
    })
    expect(batch.reply.ACTION).toBe('BATCH_UPDATE_PIPELINE_INSTANCE')
    const command = await session.send('UPDATE_PIPELINE_INSTANCE', {NAME: 'p1', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'exec-1', INSTANCE_CONFIG: {INSTANCE_COMMAND: 'PING'}}, {timeoutMs: 20_000})
    expect(command.reply.COMMAND_HASH).toBe(command.hash)
  })

  it('PIPELINE_COMMAND is answered', async () => {
    const result = await session.send('PIPELINE_COMMAND', {NAME: 'p1', PIPELINE_COMMAND: 'NOOP'}).catch((e) => e)
    // Either accepted or refused by the core with a reason; never silence.
    expect(result.reply?.COMMAND_HASH ?? result.exitCode).toBeDefined()
  })

  it('FULL_HEARTBEAT from a key that is not allow-listed: the public one, nothing of what runs', async () => {
    const stranger = await t.connect({identity: generateIdentity()})
    const heartbeat = await stranger.heartbeat()
    expect(heartbeat).toMatchObject({EE_EVENT_TYPE: 'HEARTBEAT', EE_ADDR: t.node.address, R1_PUBLIC: true})
    expect(heartbeat.PIPELINES).toEqual([])
    const full = await session.heartbeat()
    expect(full.PIPELINES).toContain('p1')
  })

  it('bundles: R1_BUNDLE_HAS, chunked R1_BUNDLE_PUT with the hash checked', async () => {
    const {createHash} = await import('node:crypto')
    const bytes = Buffer.alloc(1_300_000, 7) // three chunks
    const hash = createHash('sha256').update(bytes).digest('hex')
    expect(await session.missingBundles([hash])).toEqual([hash])
    await session.putBundle(hash, bytes)
    expect(await session.missingBundles([hash])).toEqual([])
    const wrong = 'f'.repeat(64)
    await expect(session.putBundle(wrong, Buffer.from('not that'))).rejects.toMatchObject({exitCode: 4})
    expect(await session.missingBundles([wrong])).toEqual([wrong])
  })

  it('ARCHIVE_CONFIG, R1_ROLLBACK, DELETE_CONFIG', async () => {
    await session.send('UPDATE_CONFIG', execPipeline('p2', 'x'), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'p2'}]})
    await session.send('ARCHIVE_CONFIG', 'p2', {expect: [{code: NotificationCode.PIPELINE_ARCHIVE_OK, pipeline: 'p2'}]})
    let state = await session.state()
    expect(state.PIPELINES.map((p) => p.NAME)).not.toContain('p2')
    expect(state.ARCHIVED.map((p) => p.NAME)).toContain('p2')
    await session.send('R1_ROLLBACK', {NAME: 'p2'}, {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'p2'}]})
    state = await session.state()
    expect(state.PIPELINES.map((p) => p.NAME)).toContain('p2')
    await session.send('DELETE_CONFIG', 'p2', {expect: [{code: NotificationCode.PIPELINE_DELETE_OK, pipeline: 'p2'}]})
    state = await session.state()
    expect([...state.PIPELINES, ...state.ARCHIVED].map((p) => p.NAME)).not.toContain('p2')
  })

  it('a command the core cannot apply is rejected with its reason (exit 4)', async () => {
    const error = await session.send('DELETE_CONFIG', 'no-such-pipeline', {expect: [{code: NotificationCode.PIPELINE_DELETE_OK}]}).catch((e) => e)
    expect(error).toMatchObject({exitCode: 4})
    expect(String(error.message)).toMatch(/no-such-pipeline/)
  })
})
