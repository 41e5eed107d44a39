import {mkdtemp, readdir, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {canonicalJson} from '../../src/protocol/canonical.js'
import type {Identity} from '../../src/protocol/identity.js'
import {COMMAND_LIMITS, assertCommandLimits, commandLimitProblem} from '../../src/protocol/limits.js'
import {formatTime} from '../../src/protocol/messages.js'
import {signCanonical} from '../../src/protocol/wire.js'
import {startLocalNode, type LocalNode} from '../../src/runtime/index.js'
import {RawClient, rejectionFor} from '../server/raw-client.js'
import {execPipeline, startTestNode, type TestNode} from '../server/helpers.js'
import {FAST, meta} from './helpers.js'

/** `{A: {A: … {A: 1}}}` `depth` objects deep, built without recursion. */
function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {A: 1}
  for (let i = 1; i < depth; i++) value = {A: value}
  return value
}

/**
 * A signed UPDATE_CONFIG frame whose PAYLOAD has `deepKey` (sorting first) set to `deepText`, JSON built as
 * text: as an attacker would, since no recursive serializer (ours included) can write it.
 */
function deepFrame(identity: Identity, nodeAddress: string, pipeline: Record<string, unknown>, deepKey: string, deepText: string): {text: string; hash: string} {
  const payload = canonicalJson(pipeline)
  const payloadText = `{"${deepKey}":${deepText},${payload.slice(1)}`
  const envelope = canonicalJson({ACTION: 'UPDATE_CONFIG', EE_DEST: nodeAddress, INITIATOR_ID: 'attacker', PAYLOAD: 'HOLE', SESSION_ID: 'attacker', SIGN_CANON_V: 'v2', TIME: formatTime()})
  return signCanonical(envelope.replace('"PAYLOAD":"HOLE"', `"PAYLOAD":${payloadText}`), identity)
}

const pipelineWith = (name: string, extra: Record<string, unknown> = {}) => ({...execPipeline(name, 'exec-1', 5), ...extra})
const instanceUpdate = (name: string) => ({NAME: name, SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'exec-1', INSTANCE_CONFIG: {PROCESS_DELAY: 1}})

describe('command limits (pure)', () => {
  const long = 'p'.repeat(COMMAND_LIMITS.maxNameLength + 1)
  const max = 'p'.repeat(COMMAND_LIMITS.maxNameLength)

  it('apply one NAME rule to every action that names a pipeline', () => {
    const payloads: Array<[string, (name: string) => unknown]> = [
      ['UPDATE_CONFIG', (n) => pipelineWith(n)],
      ['DELETE_CONFIG', (n) => n],
      ['DELETE_CONFIG', (n) => ({NAME: n})],
      ['ARCHIVE_CONFIG', (n) => n],
      ['R1_ROLLBACK', (n) => ({NAME: n})],
      ['R1_RESTART', (n) => ({NAME: n})],
      ['PIPELINE_COMMAND', (n) => ({NAME: n, PIPELINE_COMMAND: {INPUT: 1}})],
      ['UPDATE_PIPELINE_INSTANCE', (n) => instanceUpdate(n)],
      ['BATCH_UPDATE_PIPELINE_INSTANCE', (n) => [instanceUpdate('ok'), instanceUpdate(n)]],
      ['R1_STATE', (n) => ({NAME: n})],
    ]
    for (const [action, payload] of payloads) {
      expect(commandLimitProblem(action, payload(max)), `${action} with ${max.length} chars`).toBeUndefined()
      expect(commandLimitProblem(action, payload(long)), `${action} with ${long.length} chars`).toMatchObject({code: 'LIMIT_EXCEEDED', message: expect.stringMatching(/NAME .* 201 characters long; at most 200/)})
      expect(commandLimitProblem(action, payload('a b')), `${action} with a space`).toMatchObject({code: 'BAD_PAYLOAD'})
    }
  })

  it('check INSTANCE_ID and SIGNATURE the same way (what config.yaml allows passes)', () => {
    expect(commandLimitProblem('UPDATE_CONFIG', {NAME: 'sensor-watch.v2', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'TEMP_MONITOR', INSTANCES: [{INSTANCE_ID: 'monitor-1_a.b'}]}]})).toBeUndefined()
    expect(commandLimitProblem('UPDATE_CONFIG', {NAME: 'p', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'temp_monitor', INSTANCES: []}]})).toMatchObject({code: 'BAD_PAYLOAD', message: expect.stringMatching(/SIGNATURE "temp_monitor" must be UPPER_SNAKE/)})
    expect(commandLimitProblem('UPDATE_CONFIG', {NAME: 'p', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'X', INSTANCES: [{INSTANCE_ID: '../x'}]}]})).toMatchObject({code: 'BAD_PAYLOAD'})
    expect(commandLimitProblem('UPDATE_PIPELINE_INSTANCE', {...instanceUpdate('p'), INSTANCE_ID: 'i'.repeat(201)})).toMatchObject({code: 'LIMIT_EXCEEDED'})
  })

  it('bound nesting depth without recursion, and canonical size', () => {
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {DEEP: nested(COMMAND_LIMITS.maxDepth - 1)}))).toBeUndefined()
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {DEEP: nested(COMMAND_LIMITS.maxDepth)}))).toMatchObject({code: 'LIMIT_EXCEEDED', message: expect.stringMatching(/nested deeper than 32/)})
    // far deeper than the stack could recurse
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {DEEP: nested(1_000_000)}))).toMatchObject({code: 'LIMIT_EXCEEDED'})
    expect(commandLimitProblem('PIPELINE_COMMAND', {NAME: 'p', PIPELINE_COMMAND: {INPUT: nested(100_000)}})).toMatchObject({code: 'LIMIT_EXCEEDED'})
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {PAD: 'x'.repeat(250 * 1024)}))).toBeUndefined()
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {PAD: 'x'.repeat(257 * 1024)}))).toMatchObject({code: 'LIMIT_EXCEEDED', message: expect.stringMatching(/larger than 256 KiB/)})
    // escapes count: 100 KiB of quotes is 200 KiB of JSON, 140 KiB is more than 256 KiB
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {PAD: '"'.repeat(140 * 1024)}))).toMatchObject({code: 'LIMIT_EXCEEDED'})
    // a control character counts six bytes (\u0001); escapes after a long plain run count as well
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {PAD: '\u0001'.repeat(50 * 1024)}))).toMatchObject({code: 'LIMIT_EXCEEDED'})
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {PAD: 'x'.repeat(200 * 1024) + '\\'.repeat(30 * 1024)}))).toMatchObject({code: 'LIMIT_EXCEEDED'})
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {PAD: 'x'.repeat(200 * 1024) + '\\'.repeat(20 * 1024)}))).toBeUndefined()
    expect(commandLimitProblem('UPDATE_CONFIG', pipelineWith('p', {WIDE: new Array(COMMAND_LIMITS.maxNodes + 1).fill(0)}))).toMatchObject({code: 'LIMIT_EXCEEDED'})
  })

  it('throw a REJECTED R1Error with the code', () => {
    const error = (() => {
      try {
        assertCommandLimits('DELETE_CONFIG', 'x'.repeat(300))
      } catch (e) {
        return e as R1Error
      }
    })()
    expect(error).toBeInstanceOf(R1Error)
    expect(error).toMatchObject({exitCode: 4, code: 'LIMIT_EXCEEDED'})
  })
})

describe('node core: limits come first, the same for every action', () => {
  let node: LocalNode | undefined
  let dataDir: string
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'r1-limits-test-'))
  })
  afterEach(async () => {
    await node?.stop()
    node = undefined
    await rm(dataDir, {recursive: true, force: true})
  })

  it('refuses a 201-character pipeline at UPDATE_CONFIG (so none can exist that DELETE_CONFIG refuses); 200 characters work both ways', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST})
    const long = 'p'.repeat(201)
    const error = await node.execute('UPDATE_CONFIG', pipelineWith(long), meta()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(R1Error)
    expect(error).toMatchObject({exitCode: 4, code: 'LIMIT_EXCEEDED'})
    expect(node.state()).toEqual([])
    await expect(node.execute('DELETE_CONFIG', long, meta())).rejects.toMatchObject({code: 'LIMIT_EXCEEDED'})

    const max = 'p'.repeat(200)
    await node.execute('UPDATE_CONFIG', pipelineWith(max), meta())
    expect(node.state().map((p) => p.name)).toEqual([max])
    await node.execute('DELETE_CONFIG', max, meta())
    expect(node.state()).toEqual([])
  })

  it('refuses a config nested beyond the bound before reading it, and changes nothing', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST})
    await expect(node.execute('UPDATE_CONFIG', pipelineWith('deep', {DEEP: nested(100_000)}), meta())).rejects.toMatchObject({code: 'LIMIT_EXCEEDED', exitCode: 4})
    await expect(node.execute('UPDATE_PIPELINE_INSTANCE', {...instanceUpdate('deep'), INSTANCE_CONFIG: {DEEP: nested(100_000)}}, meta())).rejects.toMatchObject({code: 'LIMIT_EXCEEDED'})
    expect(node.state()).toEqual([])
    expect(() => JSON.stringify(node!.state())).not.toThrow()
  })
})

describe('node server: hostile configs', () => {
  let t: TestNode
  beforeEach(async () => {
    t = await startTestNode({core: {supervisor: FAST}})
  })
  afterEach(async () => t?.dispose())

  it('a config 100,000 levels deep is refused, and R1_STATE still answers', async () => {
    const session = await t.connect()
    await session.send('UPDATE_CONFIG', execPipeline('keep', 'exec-1', 5))
    const raw = await RawClient.connect(t.node.url, t.node.address)
    const depth = 100_000
    const frame = deepFrame(t.client, t.node.address, execPipeline('deep', 'exec-1', 5), 'A_DEEP', '{"A":'.repeat(depth) + '1' + '}'.repeat(depth))
    raw.send(frame.text)
    const answer = await raw.waitFor(rejectionFor(frame.hash))
    expect(answer).toMatchObject({REASON: 'EXECUTION_FAILED', NOTIFICATION: expect.stringMatching(/nested deeper than 32 levels/)})
    raw.ws.close()
    const state = await session.state()
    expect(state.PIPELINES.map((p) => p.NAME)).toEqual(['keep'])
  })

  it('a 124 KB frame of nested config is refused and the stored state stays small', async () => {
    const session = await t.connect()
    await session.send('UPDATE_CONFIG', execPipeline('keep', 'exec-1', 5))
    const raw = await RawClient.connect(t.node.url, t.node.address)
    // ~124 KB of arrays nested 20,000 deep: pretty-printed, this grew the old state file quadratically
    const deepText = '["xxxxxxxx",'.repeat(10_000) + '1' + ']'.repeat(10_000) + ',' + '['.repeat(10_000) + ']'.repeat(10_000)
    const frame = deepFrame(t.client, t.node.address, execPipeline('nested', 'exec-1', 5), 'A_DEEP', `[${deepText}]`)
    expect(frame.text.length).toBeGreaterThan(124_000)
    raw.send(frame.text)
    const answer = await raw.waitFor(rejectionFor(frame.hash))
    expect(answer).toMatchObject({REASON: 'EXECUTION_FAILED', NOTIFICATION: expect.stringMatching(/nested deeper than 32 levels/)})
    raw.ws.close()
    const dir = join(t.dataDir, 'pipelines')
    let total = 0
    for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size
    expect(total).toBeLessThan(16 * 1024)
    expect((await session.state()).PIPELINES.map((p) => p.NAME)).toEqual(['keep'])
  })
})
