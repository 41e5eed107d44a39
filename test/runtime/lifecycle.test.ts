// The node's lifecycle actions: who and why kept with each version (old records still load), R1_RESTART.
import {chown, mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {startLocalNode, type LocalNode} from '../../src/runtime/index.js'
import {PIPELINES_DIR, pipelineFileName} from '../../src/runtime/state-store.js'
import {stateResult} from '../../src/runtime/node-info.js'
import {execPipeline} from '../server/helpers.js'
import {FAST, isAlive, meta, until} from './helpers.js'

let dataDir: string
let node: LocalNode | undefined

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'r1-lifecycle-'))
})

afterEach(async () => {
  await node?.stop()
  node = undefined
  await rm(dataDir, {recursive: true, force: true})
})

const start = () => startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST})

describe('versions record who made them and why', () => {
  it('UPDATE_CONFIG and instance updates keep the sender and R1_MESSAGE with the version, never in the config, across a restart', async () => {
    node = await start()
    await node.execute('UPDATE_CONFIG', {...execPipeline('p'), R1_MESSAGE: 'first'}, {hash: 'h1', sender: '0xai_alice'})
    await node.execute('BATCH_UPDATE_PIPELINE_INSTANCE', [{NAME: 'p', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'exec-1', INSTANCE_CONFIG: {PROCESS_DELAY: 0.3}, R1_MESSAGE: 'slower'}], {hash: 'h2', sender: '0xai_bob'})
    await node.execute('ARCHIVE_CONFIG', 'p', meta())
    await node.execute('R1_ROLLBACK', {NAME: 'p'}, {hash: 'h3', sender: '0xai_carol'})
    expect(node.state()[0]!.config).not.toHaveProperty('R1_MESSAGE')
    await node.stop()

    node = await start()
    const versions = node.versions('p').map(({version, sender, message, restoredFrom}) => ({version, sender, message, restoredFrom}))
    expect(versions).toEqual([
      {version: 1, sender: '0xai_alice', message: 'first', restoredFrom: undefined},
      {version: 2, sender: '0xai_bob', message: 'slower', restoredFrom: undefined},
      {version: 3, sender: '0xai_carol', message: undefined, restoredFrom: 2},
    ])
    const state = stateResult(node as unknown as Parameters<typeof stateResult>[0], {version: null, uptimeSeconds: 0}) as {VERSIONS: Record<string, unknown[]>; PIPELINES: Array<Record<string, unknown>>}
    expect(state.VERSIONS.p![0]).toEqual({VERSION: 1, TIME: expect.any(String), SENDER: '0xai_alice', MESSAGE: 'first'})
    expect(state.PIPELINES[0]).not.toHaveProperty('R1_MESSAGE')
  })

  it('a pipeline file written before versions had a sender still loads', async () => {
    const version = {version: 4, config: execPipeline('old'), appliedAt: '2026-01-01T00:00:00.000Z'}
    await mkdir(join(dataDir, PIPELINES_DIR), {recursive: true})
    await writeFile(join(dataDir, PIPELINES_DIR, pipelineFileName('old')), JSON.stringify({format: 'r1-node-pipeline', version: 1, name: 'old', archived: true, current: version, history: [version]}))
    node = await start()
    expect(node.versions('old')).toEqual([version])
    await node.execute('R1_ROLLBACK', {NAME: 'old'}, {hash: 'h4', sender: '0xai_dave'})
    expect(node.versions('old').map((v) => [v.version, v.sender ?? null])).toEqual([
      [4, null],
      [5, '0xai_dave'],
    ])
  })
})

describe('R1_RESTART', () => {
  it('restarts every instance, or one, in a new process; counts it; confirms by PIPELINE_OK naming them', async () => {
    node = await start()
    const pipeline = execPipeline('p')
    ;(pipeline.PLUGINS as Array<{INSTANCES: unknown[]}>)[0]!.INSTANCES.push({INSTANCE_ID: 'exec-2', PROCESS_DELAY: 0.2, CODE: 'return {n: 2}'})
    await node.execute('UPDATE_CONFIG', pipeline, meta())
    const pids = () => node!.state()[0]!.instances.map((i) => i.pid)
    const before = await until(() => (pids().every((p) => p !== undefined) ? (pids() as number[]) : undefined))
    const notes: unknown[] = []
    node.onEvent((e) => void (e.EE_EVENT_TYPE === 'NOTIFICATION' && notes.push(e)))

    await node.execute('R1_RESTART', {NAME: 'p', INSTANCE_ID: 'exec-2'}, {hash: 'r1', sender: '0xai_x'})
    const afterOne = await until(() => (pids().every((p) => p !== undefined) ? (pids() as number[]) : undefined))
    expect(afterOne[0]).toBe(before[0])
    expect(afterOne[1]).not.toBe(before[1])
    await until(() => !isAlive(before[1]!), 20_000, 'the old process to be gone')
    expect(notes).toContainEqual(expect.objectContaining({NOTIFICATION_CODE: 1, COMMAND_HASH: 'r1', EE_PAYLOAD_PATH: ['local', 'p', null, null], INFO: {RESTARTED: ['CUSTOM_EXEC_01/exec-2']}}))
    expect(node.state()[0]!.instances.map((i) => i.counters.restarts)).toEqual([0, 1])

    await node.execute('R1_RESTART', {NAME: 'p'}, {hash: 'r2', sender: '0xai_x'})
    const afterAll = await until(() => (pids().every((p) => p !== undefined) ? (pids() as number[]) : undefined))
    expect(afterAll[0]).not.toBe(before[0])
    expect(afterAll[1]).not.toBe(afterOne[1])
    expect(node.state()[0]!.instances.map((i) => i.counters.restarts)).toEqual([1, 2])
    expect(node.versions('p')).toHaveLength(1) // a restart is not a new version

    await expect(node.execute('R1_RESTART', {NAME: 'p', INSTANCE_ID: 'nobody'}, meta())).rejects.toThrow(/No instance nobody/)
    await expect(node.execute('R1_RESTART', {NAME: 'missing'}, meta())).rejects.toThrow(/No pipeline missing/)
    await node.execute('ARCHIVE_CONFIG', 'p', meta())
    await expect(node.execute('R1_RESTART', {NAME: 'p'}, meta())).rejects.toThrow(/is stopped/)
  })
})

describe("an instance's folders", () => {
  /** The run dir and code dir of the instance with this pid, from its command line (the permission flags name them). */
  const foldersOf = async (pid: number) => {
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    const folders = args.flatMap((arg) => /^--allow-fs-(?:read|write)=(.*\/r1-(?:instance|code)-[^/]+)$/.exec(arg)?.[1] ?? [])
    return [...new Set(folders)].sort()
  }
  const running = async () => (await until(() => node!.state()[0]?.instances[0]?.status === 'running' && node!.state()[0]!.instances[0]!.pid, 20_000, 'the instance running')) as number
  const exists = (path: string) => stat(path).then(() => true, () => false)

  it.skipIf(process.platform !== 'linux')('are removed, the files it wrote included, once the command that stops it answers, and when the node stops', async () => {
    node = await start()
    await node.execute('UPDATE_CONFIG', execPipeline('p'), meta())
    const first = await foldersOf(await running())
    expect(first).toHaveLength(2)
    const run = first.find((path) => path.includes('/r1-instance-'))!
    // what a plugin leaves in its work dir: a tree of files, owned by the instance's user as its own would be
    const {uid, gid} = await stat(run)
    for (let i = 0; i < 20; i++) {
      await mkdir(join(run, `d${i}`))
      for (let j = 0; j < 20; j++) await writeFile(join(run, `d${i}`, `f${j}`), 'x')
      for (const name of ['', ...Array.from({length: 20}, (_, j) => `f${j}`)]) await chown(join(run, `d${i}`, name), uid, gid)
    }
    await node.execute('DELETE_CONFIG', 'p', meta())
    for (const path of first) expect(await exists(path)).toBe(false)

    await node.execute('UPDATE_CONFIG', execPipeline('q'), meta())
    const second = await foldersOf(await running())
    expect(second).toHaveLength(2)
    await node.stop()
    node = undefined
    for (const path of second) expect(await exists(path)).toBe(false)
  })
})
