import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {NotificationCode} from '../../src/protocol/codes.js'
import {HeartbeatEventSchema, NodeEventSchema} from '../../src/protocol/events.js'
import {bundleEntry, startLocalNode, type LocalNode} from '../../src/runtime/index.js'
import {Events, FAST, FIXTURES, descendants, faultyNode, faultyPipeline, isAlive, meta, until} from './helpers.js'

let node: LocalNode | undefined
let dataDir: string

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'r1-node-test-'))
})

afterEach(async () => {
  await node?.stop()
  node = undefined
  await rm(dataDir, {recursive: true, force: true})
})

const pidOf = (events: Events, instanceId: string) => Number(events.payloads(instanceId).at(-1)?.PID)

describe('node core: events', () => {
  it('sequences events from startSeq with the Ratio1 envelope, and heartbeats on request', async () => {
    const started = await faultyNode({startSeq: 41, alias: 'edge-1', address: '0xai_edge'})
    node = started.node
    const m = meta()
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}]), m)
    await started.events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    await node.execute('FULL_HEARTBEAT', {}, meta())
    const heartbeat = await started.events.waitFor((e) => e.EE_EVENT_TYPE === 'HEARTBEAT')
    const all = started.events.all
    expect(all[0].EE_MESSAGE_SEQ).toBe(42)
    all.forEach((event, index) => {
      expect(event.EE_MESSAGE_SEQ).toBe(42 + index)
      expect(NodeEventSchema.safeParse(event).success).toBe(true)
    })
    expect(node.lastSeq()).toBe(all.at(-1)!.EE_MESSAGE_SEQ)
    expect(started.events.notifications({code: NotificationCode.PIPELINE_OK})[0]).toMatchObject({COMMAND_HASH: m.hash, EE_PAYLOAD_PATH: ['edge-1', 'p', null, null]})
    expect(started.events.payloads('a')[0].EE_PAYLOAD_PATH).toEqual(['edge-1', 'p', 'FAULTY', 'a'])
    const hb = HeartbeatEventSchema.parse(heartbeat)
    expect(hb).toMatchObject({EE_ADDR: '0xai_edge', EE_ALIAS: 'edge-1', PIPELINES: ['p']})
    expect(hb.TOTAL_DISK).toBeGreaterThan(0)
    expect(hb.ACTIVE_PLUGINS).toMatchObject([{STREAM_ID: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'a', STATUS: 'running', RESTARTS: 0}])
    expect(hb.ACTIVE_PLUGINS[0].TOTAL_PAYLOAD_COUNT).toBeGreaterThan(0)
  })

  it('emits heartbeats on its timer', async () => {
    node = await startLocalNode({heartbeatIntervalMs: 100})
    const events = new Events(node)
    await events.waitUntil(() => events.all.filter((e) => e.EE_EVENT_TYPE === 'HEARTBEAT').length >= 2, 10_000, 'two heartbeats')
  })
})

describe('node core: UPDATE_CONFIG diffs instances', () => {
  it('keeps unchanged instances, reconfigures live, restarts on a new bundle, removes dropped ones', async () => {
    const started = await faultyNode()
    node = started.node
    const {events} = started
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'same'}, {INSTANCE_ID: 'tuned'}, {INSTANCE_ID: 'dropped'}]), meta())
    await events.waitUntil(() => ['same', 'tuned', 'dropped'].every((id) => events.payloads(id).length > 0), 20_000, 'payloads of all three')
    const before = {same: pidOf(events, 'same'), tuned: pidOf(events, 'tuned'), dropped: pidOf(events, 'dropped')}

    const update = meta()
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'same'}, {INSTANCE_ID: 'tuned', FAULT_AT: 1000}, {INSTANCE_ID: 'added'}]), update)
    expect(events.notifications({code: NotificationCode.PIPELINE_OK, hash: update.hash})[0].NOTIFICATION).toMatch(/1 added, 1 reconfigured, 0 restarted, 1 removed/)
    // the reconfigured instance confirms with PLUGIN_CONFIG_OK naming the command, from the same process
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === update.hash && e.EE_PAYLOAD_PATH[3] === 'tuned')
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EE_PAYLOAD_PATH[3] === 'added')
    expect(pidOf(events, 'tuned')).toBe(before.tuned)
    expect(pidOf(events, 'same')).toBe(before.same)
    await until(() => !isAlive(before.dropped), 10_000, 'the dropped instance to exit')
    expect(node.state()[0].instances.map((i) => i.instanceId).sort()).toEqual(['added', 'same', 'tuned'])

    // a new bundle (different code → different hash) restarts only the instances of that signature
    const project = await mkdtemp(join(tmpdir(), 'r1-bundle-'))
    try {
      const source = await readFile(join(FIXTURES, 'faulty', 'src', 'faulty.ts'), 'utf8')
      await writeFile(join(project, 'faulty.ts'), source + '\nexport const VERSION = 2\n')
      const next = await bundleEntry('faulty.ts', {projectDir: project})
      expect(next.hash).not.toBe(started.hash)
      await node.putBundle(next.hash, next.bytes)
      const count = events.payloads('same').length
      await node.execute('UPDATE_CONFIG', faultyPipeline(next.hash, [{INSTANCE_ID: 'same'}, {INSTANCE_ID: 'tuned', FAULT_AT: 1000}, {INSTANCE_ID: 'added'}]), meta())
      await events.waitUntil(() => events.payloads('same').length > count && pidOf(events, 'same') !== before.same, 20_000, 'a new process for "same"')
      expect(node.state()[0].instances.find((i) => i.instanceId === 'same')!.counters.payloads).toBeGreaterThan(count) // counters survive the restart
    } finally {
      await rm(project, {recursive: true, force: true})
    }
  })

  it('a reconfigured instance processes at once, so its PLUGIN_CONFIG_OK does not wait out PROCESS_DELAY', async () => {
    const started = await faultyNode()
    node = started.node
    const {events} = started
    // an hour between iterations: without the wake-up, the confirmation would come an hour later
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'slow', PROCESS_DELAY: 3600}]), meta())
    await events.waitUntil(() => events.payloads('slow').length === 1, 20_000, 'the first iteration')
    const update = meta()
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'slow', PROCESS_DELAY: 3600, FAULT_AT: 1000}]), update)
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === update.hash, 20_000, 'PLUGIN_CONFIG_OK of the reconfigured instance')
    expect(events.payloads('slow')).toHaveLength(2)
  })

  it('the same config sent again (two deploys racing) confirms each command, before and after the first is confirmed, in the same process', async () => {
    const started = await faultyNode()
    node = started.node
    const {events} = started
    const confirmed = (hash: string) => events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === hash && e.EE_PAYLOAD_PATH[3] === 'a', 20_000, `PLUGIN_CONFIG_OK for ${hash.slice(0, 8)}`)
    const [first, racing, later] = [meta(), meta(), meta()]
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}]), first)
    // sent while the instance is still starting: it hears the first config's confirmation when that comes
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}]), racing)
    expect(events.notifications({code: NotificationCode.PIPELINE_OK, hash: racing.hash})[0].NOTIFICATION).toMatch(/0 added, 0 reconfigured, 0 restarted, 0 removed/)
    await Promise.all([confirmed(first.hash), confirmed(racing.hash)])
    const pid = pidOf(events, 'a')
    // sent once it runs: confirmed at once
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}]), later)
    await confirmed(later.hash)
    await events.waitUntil(() => events.payloads('a').length > 1, 20_000, 'a second payload')
    expect(pidOf(events, 'a')).toBe(pid)
    expect(events.notifications({code: NotificationCode.PLUGIN_CONFIG_OK}).filter((e) => e.COMMAND_HASH === first.hash)).toHaveLength(1)
  })

  it('a config changed while the instance starts reaches it once ready; the same config sent again is confirmed by the process that runs it, never by an older one', async () => {
    const started = await faultyNode()
    node = started.node
    const {events} = started
    const confirmation = (hash: string) => events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === hash && (e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK || e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_FAILED), 20_000, `the answer to ${hash.slice(0, 8)}`)
    const [x, y, again] = [meta(), meta(), meta()]
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a', MODE: 'ok'}]), x)
    // while it starts with X: Y, then Y again
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a', MODE: 'throw', FAULT_AT: 1000}]), y)
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a', MODE: 'throw', FAULT_AT: 1000}]), again)
    expect((await confirmation(y.hash)).NOTIFICATION_CODE).toBe(NotificationCode.PLUGIN_CONFIG_OK)
    expect((await confirmation(again.hash)).NOTIFICATION_CODE).toBe(NotificationCode.PLUGIN_CONFIG_OK)
    // confirmed only once Y runs: a payload with MODE throw came before the confirmation of the repeat
    const all = events.all
    const firstY = all.findIndex((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.MODE === 'throw')
    const repeat = all.findIndex((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === again.hash)
    expect(firstY).toBeGreaterThanOrEqual(0)
    expect(firstY).toBeLessThan(repeat)
  })

  it('after a restart, the config the node restored is confirmed when sent again; a refused or superseded repeat is answered with the reason', async () => {
    const first = await faultyNode({dataDir})
    const config = faultyPipeline(first.hash, [{INSTANCE_ID: 'a'}])
    const applied = meta()
    await first.node.execute('UPDATE_CONFIG', config, applied)
    await first.events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === applied.hash)
    await first.node.stop()
    const second = await faultyNode({dataDir})
    node = second.node
    const {events} = second
    const answer = (hash: string) => events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === hash && (e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK || e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_FAILED), 20_000, `the answer to ${hash.slice(0, 8)}`)
    const again = meta()
    await node.execute('UPDATE_CONFIG', config, again)
    expect((await answer(again.hash)).NOTIFICATION_CODE).toBe(NotificationCode.PLUGIN_CONFIG_OK)

    // a config the plugin refuses (its config hook throws), sent twice: both are told it was not taken
    const refused = faultyPipeline(second.hash, [{INSTANCE_ID: 'a', FAULT_AT: -1}])
    const [no, noAgain] = [meta(), meta()]
    await node.execute('UPDATE_CONFIG', refused, no)
    await node.execute('UPDATE_CONFIG', refused, noAgain)
    expect((await answer(no.hash)).NOTIFICATION_CODE).toBe(NotificationCode.PLUGIN_CONFIG_FAILED)
    expect((await answer(noAgain.hash)).NOTIFICATION_CODE).toBe(NotificationCode.PLUGIN_CONFIG_FAILED)
    // what runs is still the first config: sent again, it is confirmed
    const back = meta()
    await node.execute('UPDATE_CONFIG', config, back)
    expect((await answer(back.hash)).NOTIFICATION_CODE).toBe(NotificationCode.PLUGIN_CONFIG_OK)
  })

  it('rejects what it cannot apply and changes nothing', async () => {
    const started = await faultyNode()
    node = started.node
    // @ts-expect-error: the core checks a payload itself too (an in-process caller has no server in front)
    await expect(node.execute('UPDATE_CONFIG', {NAME: 'x'}, meta())).rejects.toThrow(/Not a pipeline config: TYPE/)
    await expect(node.execute('UPDATE_CONFIG', {NAME: 'x', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'NOPE', INSTANCES: [{INSTANCE_ID: 'a'}]}]}, meta())).rejects.toThrow(/NOPE is not built in and R1_BUNDLES names no bundle/)
    await expect(node.execute('UPDATE_CONFIG', faultyPipeline('0'.repeat(64), [{INSTANCE_ID: 'a'}]), meta())).rejects.toThrow(/bundle 000000000000… for FAULTY is not on this node/)
    await expect(node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}, {INSTANCE_ID: 'a'}]), meta())).rejects.toThrow(/appears twice/)
    await expect(node.execute('DELETE_CONFIG', 'ghost', meta())).rejects.toThrow(/No pipeline ghost/)
    // @ts-expect-error: not an action
    await expect(node.execute('FLY', {}, meta())).rejects.toSatisfy((e) => e instanceof R1Error && e.code === 'UNKNOWN_ACTION')
    await expect(node.putBundle('a'.repeat(64), new Uint8Array([1, 2]))).rejects.toThrow(/does not match its hash/)
    expect(node.state()).toEqual([])
    expect(started.events.all).toEqual([])
  })
})

describe('node core: instance commands and updates', () => {
  it('delivers INSTANCE_COMMAND once and confirms it, or answers with the negative', async () => {
    const started = await faultyNode()
    node = started.node
    const {events} = started
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}]), meta())
    // sent at once: the command waits until the instance is ready
    const ok = meta()
    await node.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'a', INSTANCE_CONFIG: {INSTANCE_COMMAND: {COMMAND: 'HELLO', PARAMS: {X: 1}}}}, ok)
    const confirmed = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === ok.hash)
    expect(confirmed).toMatchObject({NOTIFICATION_CODE: NotificationCode.PLUGIN_INSTANCE_COMMAND_OK, INFO: {COMMAND: 'HELLO', RESULT: {NAME: 'HELLO', PARAMS: {X: 1}}}})
    const fail = meta()
    await node.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'a', INSTANCE_CONFIG: {INSTANCE_COMMAND: 'FAIL'}}, fail)
    const failed = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === fail.hash)
    expect(failed).toMatchObject({NOTIFICATION_CODE: NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED, NOTIFICATION: 'Instance command "FAIL" failed: Error: command failed on purpose'})
    const crash = meta()
    await node.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'a', INSTANCE_CONFIG: {INSTANCE_COMMAND: 'CRASH'}}, crash)
    const crashed = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === crash.hash)
    expect(crashed).toMatchObject({NOTIFICATION_CODE: NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED})
    expect(String(crashed.NOTIFICATION)).toMatch(/crashed while running the command/)
    // each command was answered exactly once
    for (const m of [ok, fail, crash]) expect(events.notifications({hash: m.hash})).toHaveLength(1)
    // a command is not config: it is not stored in the desired state
    expect(JSON.stringify(node.state()[0].config)).not.toMatch(/INSTANCE_COMMAND/)
    // a command for an instance that crashes before it is ready is answered negatively, not left waiting
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}, {INSTANCE_ID: 'doomed', MODE: 'init-throw'}]), meta())
    const waiting = meta()
    await node.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'doomed', INSTANCE_CONFIG: {INSTANCE_COMMAND: 'PID'}}, waiting)
    const refused = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === waiting.hash)
    expect(refused.NOTIFICATION_CODE).toBe(NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED)
    expect(String(refused.NOTIFICATION)).toMatch(/crashed before it could run the command \(init failed: Error: init refuses to start\)/)
    await expect(node.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'zz', INSTANCE_CONFIG: {INSTANCE_COMMAND: 'X'}}, meta())).rejects.toThrow(/No instance FAULTY\/zz/)
  })

  it('applies BATCH_UPDATE_PIPELINE_INSTANCE whole, and a rejected config keeps the previous one', async () => {
    const started = await faultyNode()
    node = started.node
    const {events} = started
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}, {INSTANCE_ID: 'b'}]), meta())
    await events.waitUntil(() => events.payloads('a').length > 0 && events.payloads('b').length > 0, 20_000, 'both running')
    const pidA = pidOf(events, 'a')
    await expect(
      node.execute('BATCH_UPDATE_PIPELINE_INSTANCE', [{NAME: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'a', INSTANCE_CONFIG: {FAULT_AT: 5}}, {NAME: 'nope', SIGNATURE: 'FAULTY', INSTANCE_ID: 'b', INSTANCE_CONFIG: {}}], meta()),
    ).rejects.toThrow(/No pipeline nope/)
    expect(node.state()[0].config.PLUGINS[0].INSTANCES[0].FAULT_AT).toBeUndefined() // nothing applied
    const batch = meta()
    await node.execute('BATCH_UPDATE_PIPELINE_INSTANCE', [{NAME: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'a', INSTANCE_CONFIG: {FAULT_AT: 5}}, {NAME: 'p', SIGNATURE: 'FAULTY', INSTANCE_ID: 'b', INSTANCE_CONFIG: {FAULT_AT: -1}}], batch)
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === batch.hash && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.EE_PAYLOAD_PATH[3] === 'a')
    const rejected = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === batch.hash && e.EE_PAYLOAD_PATH[3] === 'b')
    expect(rejected).toMatchObject({NOTIFICATION_CODE: NotificationCode.PLUGIN_CONFIG_FAILED, NOTIFICATION: 'Config rejected by the plugin: Error: FAULT_AT must be >= 0'})
    expect(pidOf(events, 'a')).toBe(pidA) // live, no restart
    // the instance goes on with its previous config (the plugin's own default for FAULT_AT)
    await until(() => node!.instance('p', 'FAULTY', 'b')!.spec.config.FAULT_AT === undefined, 10_000, 'the previous config back')
  })

  it('feeds pipeline input to ctx.inputs with PIPELINE_COMMAND; ALLOW_EMPTY_INPUTS false waits for it', async () => {
    const node1 = await startLocalNode({heartbeatIntervalMs: 0, supervisor: FAST})
    node = node1
    const events = new Events(node1)
    await node1.execute('UPDATE_CONFIG', {NAME: 'in', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'x', ALLOW_EMPTY_INPUTS: false, PROCESS_DELAY: 0.05, CODE: 'return plugin.inputs'}]}]}, meta())
    await until(() => node1.instance('in', 'CUSTOM_EXEC_01', 'x')?.status === 'running', 20_000, 'running')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(events.payloads('x')).toEqual([]) // no input, no process
    await node1.execute('PIPELINE_COMMAND', {NAME: 'in', PIPELINE_COMMAND: {INPUT: {V: 7}}}, meta())
    const payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    expect(payload.EXEC_RESULT).toEqual([{V: 7}])
  })
})

describe('node core: archive, rollback, delete', () => {
  it('archives (stops, keeps for rollback), rolls back to a kept version, deletes', async () => {
    const started = await faultyNode({dataDir})
    node = started.node
    const {events} = started
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a', R: 1}]), meta())
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a', R: 2}]), meta())
    expect(node.versions('p').map((v) => v.version)).toEqual([1, 2])
    const rollback = meta()
    await node.execute('R1_ROLLBACK', {NAME: 'p'}, rollback)
    expect(events.notifications({hash: rollback.hash})[0]).toMatchObject({NOTIFICATION_CODE: NotificationCode.PIPELINE_OK, INFO: {VERSION: 3, ROLLBACK_TO: 1}})
    expect(node.state()[0].config.PLUGINS[0].INSTANCES[0].R).toBe(1)
    await node.execute('R1_ROLLBACK', {NAME: 'p', VERSION: 2}, meta())
    expect(node.state()[0].config.PLUGINS[0].INSTANCES[0].R).toBe(2)
    await expect(node.execute('R1_ROLLBACK', {NAME: 'p', VERSION: 99}, meta())).rejects.toThrow(/No version 99 of pipeline p/)

    await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    const pid = pidOf(events, 'a')
    const archive = meta()
    await node.execute('ARCHIVE_CONFIG', 'p', archive)
    expect(events.notifications({hash: archive.hash})[0].NOTIFICATION_CODE).toBe(NotificationCode.PIPELINE_ARCHIVE_OK)
    await until(() => !isAlive(pid), 10_000, 'archived instance to stop')
    expect(node.state()).toMatchObject([{name: 'p', archived: true, instances: []}])
    await node.execute('R1_ROLLBACK', {NAME: 'p'}, meta()) // back from the archive
    expect(node.state()).toMatchObject([{name: 'p', archived: false}])
    for (let i = 0; i < 5; i++) await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a', R: 10 + i}]), meta())
    expect(node.versions('p')).toHaveLength(5) // the last five
    const remove = meta()
    await node.execute('DELETE_CONFIG', 'p', remove)
    expect(events.notifications({hash: remove.hash})[0].NOTIFICATION_CODE).toBe(NotificationCode.PIPELINE_DELETE_OK)
    expect(node.state()).toEqual([])
  })
})

describe('node core: persistence', () => {
  it('restores pipelines and restarts instances from its data dir; bundles stored by hash', async () => {
    const started = await faultyNode({dataDir})
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}], 'kept'), meta())
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'b'}], 'shelved'), meta())
    await node.execute('ARCHIVE_CONFIG', 'shelved', meta())
    expect(node.hasBundle(started.hash)).toBe(true)
    await node.stop()

    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, startSeq: 100})
    const events = new Events(node)
    expect(node.hasBundle(started.hash)).toBe(true)
    expect(node.state().map((p) => [p.name, p.archived])).toEqual([
      ['kept', false],
      ['shelved', true],
    ])
    const payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    expect(payload.EE_PAYLOAD_PATH).toEqual(['local', 'kept', 'FAULTY', 'a'])
    expect(payload.EE_MESSAGE_SEQ).toBeGreaterThan(100)
  })

  it('refuses a corrupt state file with a clear error and leaves it untouched', async () => {
    const file = join(dataDir, 'state.json')
    await writeFile(file, '{"format": "r1-node-state", "version": 1, "pipel')
    await expect(startLocalNode({dataDir})).rejects.toThrow(/node state .*state\.json is corrupt \(not JSON/)
    await writeFile(file, JSON.stringify({format: 'something-else'}))
    const error = await startLocalNode({dataDir}).catch((e: R1Error) => e)
    expect(error).toBeInstanceOf(R1Error)
    expect((error as R1Error).hint).toMatch(/mv .*state\.json/)
    expect(await readFile(file, 'utf8')).toBe(JSON.stringify({format: 'something-else'}))
  })
})

describe('node core: statuses', () => {
  it('DISABLED instances are stopped, FORCED_PAUSE ones paused; both come back live', async () => {
    const started = await faultyNode()
    node = started.node
    const {events} = started
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'off', DISABLED: true}, {INSTANCE_ID: 'held', FORCED_PAUSE: true}]), meta())
    const held = node.instance('p', 'FAULTY', 'held')!
    await until(() => held.status === 'paused', 20_000, 'paused')
    expect(node.instance('p', 'FAULTY', 'off')!.status).toBe('stopped')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(events.payloads()).toEqual([]) // neither processes
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'off'}, {INSTANCE_ID: 'held'}]), meta())
    await events.waitUntil(() => events.payloads('off').length > 0 && events.payloads('held').length > 0, 20_000, 'both processing')
    expect(held.status).toBe('running')
    expect(held.counters.restarts).toBe(0) // un-paused live, same process
  })

  it('stopping during a restart back-off cancels the restart', async () => {
    const started = await faultyNode({supervisor: {...FAST, restartBaseMs: 60_000, restartCapMs: 60_000}})
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'x', MODE: 'exit'}]), meta())
    const instance = node.instance('p', 'FAULTY', 'x')!
    await until(() => instance.status === 'restarting', 20_000, 'restarting')
    expect(instance.pid).toBeUndefined()
    await node.execute('DELETE_CONFIG', 'p', meta())
    expect(instance.status).toBe('stopped')
    expect(instance.pid).toBeUndefined()
  })
})

describe('node core: stop', () => {
  it('a normal stop ends every instance process and every app it started', async () => {
    const started = await faultyNode()
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}, {INSTANCE_ID: 'b'}]), meta())
    await node.execute('UPDATE_CONFIG', {NAME: 'apps', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'PROCESS_APP_RUNNER', INSTANCES: [{INSTANCE_ID: 'sleeper', COMMAND: 'sleep 300', PROCESS_DELAY: 0.1}]}]}, meta())
    const app = await started.events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && typeof e.PID === 'number' && e.EE_PAYLOAD_PATH[3] === 'sleeper')
    await started.events.waitUntil(() => started.events.payloads('a').length > 0 && started.events.payloads('b').length > 0, 20_000, 'both plugins running')
    const pids = [Number(app.PID), ...node.state().flatMap((p) => p.instances.map((i) => i.pid!))]
    expect(pids).toHaveLength(4)
    expect(pids.every((pid) => descendants(process.pid).includes(pid))).toBe(true)
    await node.stop()
    node = undefined
    await until(() => pids.every((pid) => !isAlive(pid)), 10_000, 'every process to end')
  })
})

describe('node core: plugin log drops', () => {
  it('a deleted instance reports the lines it had dropped, with the exact count, and leaves no log limit behind', async () => {
    // a flush timer far off: only the instance stopping can report the count in time
    node = await startLocalNode({heartbeatIntervalMs: 0, supervisor: FAST, logRate: {burst: 5, perSecond: 0.01}, logFlushMs: 600_000})
    const events = new Events(node)
    // the payload follows the 51 lines on the same IPC channel: once it is in, so are they
    const code = "if (!plugin.obj_cache.done) { plugin.obj_cache.done = true; for (let i = 0; i < 51; i++) plugin.log.info('line ' + i); return {DONE: true} } return null"
    await node.execute('UPDATE_CONFIG', {NAME: 'drops', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'd', PROCESS_DELAY: 0.05, CODE: code}]}]}, meta())
    const limits = (node as unknown as {logLimits: {size: number}}).logLimits
    await events.waitUntil(() => events.payloads('d').length > 0, 20_000, 'the payload after the lines')
    // 5 kept, the rest dropped and not reported yet
    expect(events.logs('d')).toHaveLength(5)
    expect(events.notifications({code: NotificationCode.PLUGIN_LOG_DROPPED})).toEqual([])
    expect(limits.size).toBe(1)
    await node.execute('DELETE_CONFIG', 'drops', meta())
    const drops = events.notifications({code: NotificationCode.PLUGIN_LOG_DROPPED})
    expect(drops.map((n) => n.INFO)).toEqual([{DROPPED: 46}])
    expect(drops[0].EE_PAYLOAD_PATH).toEqual([node.alias, 'drops', 'CUSTOM_EXEC_01', 'd'])
    expect(limits.size).toBe(0)
  })
})
