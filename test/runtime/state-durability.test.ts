import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtemp, readFile, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {allowAddress} from '../../src/runtime/server-allowlist.js'
import {Session} from '../../src/session/index.js'
import {startLocalNode, type LocalNode} from '../../src/runtime/index.js'
import {pipelineFileName} from '../../src/runtime/state-store.js'
import {execPipeline} from '../server/helpers.js'
import {FAST, isAlive, meta as commandMeta, until} from './helpers.js'

const CHILD = join(import.meta.dirname, 'state-child.ts')
const NODE_START = join(import.meta.dirname, 'node-start-child.ts')

interface ChildPipeline {
  name: string
  version: number
  archived: boolean
  config: Record<string, unknown>
  pids: Array<number | null>
}
type Reply = {id: number; ok: boolean; result?: unknown; error?: {message: string; code?: string}}

/** A node core in a child process (optionally under a file-size limit: writes past it fail with EFBIG). */
class NodeChild {
  private readonly waiting = new Map<number, (reply: Reply) => void>()
  private nextId = 0
  readonly ready: Promise<void>

  private constructor(readonly proc: ChildProcess) {
    let markReady: () => void
    this.ready = new Promise((resolve) => (markReady = resolve))
    void (async () => {
      for await (const line of createInterface({input: proc.stdout!})) {
        const message = JSON.parse(line) as Reply & {ready?: boolean}
        if (message.ready) markReady!()
        else this.waiting.get(message.id)?.(message)
      }
    })()
  }

  /** `fileLimitKiB`: the child's RLIMIT_FSIZE (bash `ulimit -f`, in KiB); Node ignores SIGXFSZ, so writes fail with EFBIG. */
  static async start(dataDir: string, fileLimitKiB?: number): Promise<NodeChild> {
    const args = ['--import', 'tsx', CHILD, dataDir]
    const proc =
      fileLimitKiB === undefined
        ? spawn(process.execPath, args, {stdio: ['pipe', 'pipe', 'inherit']})
        : spawn('bash', ['-c', `ulimit -f ${fileLimitKiB}; exec "$0" "$@"`, process.execPath, ...args], {stdio: ['pipe', 'pipe', 'inherit']})
    children.push(proc)
    const child = new NodeChild(proc)
    await child.ready
    return child
  }

  request(body: Record<string, unknown>): Promise<Reply> {
    const id = ++this.nextId
    return new Promise((resolve) => {
      this.waiting.set(id, resolve)
      this.proc.stdin!.write(JSON.stringify({id, ...body}) + '\n')
    })
  }

  execute(action: string, payload: unknown): Promise<Reply> {
    return this.request({action, payload})
  }

  async state(): Promise<ChildPipeline[]> {
    return (await this.request({query: 'state'})).result as ChildPipeline[]
  }

  /** State once every active instance has a process. */
  async runningState(): Promise<ChildPipeline[]> {
    return until(async () => {
      const state = await this.state()
      return state.every((p) => p.archived || p.pids.every((pid) => pid !== null)) && state
    }, 20_000, 'instances to run')
  }

  async stop(): Promise<void> {
    await this.request({query: 'stop'})
    await new Promise((resolve) => (this.proc.exitCode === null ? this.proc.once('exit', resolve) : resolve(null)))
  }
}

const children: ChildProcess[] = []
let dataDir: string
let node: LocalNode | undefined

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'r1-state-test-'))
})
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await node?.stop()
  node = undefined
  await rm(dataDir, {recursive: true, force: true})
})

const summary = (state: ChildPipeline[]) => state.map((p) => ({name: p.name, version: p.version, archived: p.archived, config: p.config}))

describe('node state on a full disk: durable before applied, nothing changes when the write fails', () => {
  it('UPDATE_CONFIG, ARCHIVE_CONFIG, UPDATE_PIPELINE_INSTANCE and R1_ROLLBACK that cannot be stored fail, leave the running pipeline as it was, and a restart agrees', async () => {
    // set up without a limit: a small pipeline, one with 20 KiB of config, and one to delete
    let child = await NodeChild.start(dataDir)
    expect(await child.execute('UPDATE_CONFIG', execPipeline('small', 'exec-1', 5))).toMatchObject({ok: true})
    expect(await child.execute('UPDATE_CONFIG', {...execPipeline('big', 'exec-1', 5), PAD: 'b'.repeat(20 * 1024)})).toMatchObject({ok: true})
    expect(await child.execute('UPDATE_CONFIG', {...execPipeline('big', 'exec-1', 5), PAD: 'c'.repeat(20 * 1024)})).toMatchObject({ok: true})
    expect(await child.execute('UPDATE_CONFIG', execPipeline('gone', 'exec-1', 5))).toMatchObject({ok: true})
    await child.stop()

    // a data dir where no file may pass 16 KiB: what a full disk does to every write that needs room
    child = await NodeChild.start(dataDir, 16)
    const before = await child.runningState()
    const pids = Object.fromEntries(before.map((p) => [p.name, p.pids[0]]))

    const update = await child.execute('UPDATE_CONFIG', {...execPipeline('small', 'exec-1', 5), PAD: 'x'.repeat(40 * 1024)})
    expect(update).toMatchObject({ok: false, error: {code: 'STATE_DISK_FULL', message: expect.stringMatching(/EFBIG.*nothing was changed/)}})
    const archive = await child.execute('ARCHIVE_CONFIG', 'big')
    expect(archive).toMatchObject({ok: false, error: {code: 'STATE_DISK_FULL'}})
    const instance = await child.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'big', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'exec-1', INSTANCE_CONFIG: {PROCESS_DELAY: 6}})
    expect(instance).toMatchObject({ok: false, error: {code: 'STATE_DISK_FULL'}})
    const rollback = await child.execute('R1_ROLLBACK', {NAME: 'big'})
    expect(rollback).toMatchObject({ok: false, error: {code: 'STATE_DISK_FULL'}})
    // a delete needs no room: it is stored (one file removed) and done, whatever the size of the rest
    expect(await child.execute('DELETE_CONFIG', 'gone')).toMatchObject({ok: true})

    const after = await child.state()
    const expected = summary(before).filter((p) => p.name !== 'gone')
    expect(summary(after)).toEqual(expected)
    for (const p of after) expect(p.pids[0], `pipeline ${p.name} kept its process`).toBe(pids[p.name])
    expect(isAlive(pids.small!)).toBe(true)
    await child.stop()

    // after a restart the node has exactly the state it acknowledged
    child = await NodeChild.start(dataDir)
    expect(summary(await child.runningState())).toEqual(expected)
    await child.stop()
  })
})

/** `r1 node start --json` in a child (optionally under a file-size limit); resolves once it listens. */
async function startServerChild(fileLimitKiB?: number): Promise<{proc: ChildProcess; url: string; address: string}> {
  const args = ['--import', 'tsx', NODE_START, '--port', '0', '--data-dir', dataDir, '--json']
  const proc =
    fileLimitKiB === undefined
      ? spawn(process.execPath, args, {stdio: ['ignore', 'pipe', 'inherit']})
      : spawn('bash', ['-c', `ulimit -f ${fileLimitKiB}; exec "$0" "$@"`, process.execPath, ...args], {stdio: ['ignore', 'pipe', 'inherit']})
  children.push(proc)
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({input: proc.stdout!}).once('line', resolve)
    proc.once('exit', (code) => reject(new Error(`r1 node start exited ${code}`)))
  })
  return {proc, ...(JSON.parse(first) as {url: string; address: string})}
}

async function stopServerChild(proc: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => (proc.exitCode === null ? proc.once('exit', resolve) : resolve(null)))
  proc.kill('SIGTERM')
  await exited
}

describe('node server on a full disk', () => {
  it('answers EXECUTION_FAILED for an UPDATE_CONFIG it cannot store, keeps the running instance, and a restart agrees', async () => {
    const client = generateIdentity()
    await allowAddress(dataDir, client.address, 'test')
    let server = await startServerChild(16)
    let session = await Session.connect({url: server.url, nodeAddress: server.address, identity: client})
    try {
      await session.send('UPDATE_CONFIG', execPipeline('small', 'exec-1', 5))
      const running = await until(async () => (await session.state()).INSTANCES.find((i) => i.PID !== undefined), 20_000, 'the instance to run')
      const error = await session.send('UPDATE_CONFIG', {...execPipeline('small', 'exec-1', 5), PAD: 'x'.repeat(40 * 1024)}).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toMatch(/EXECUTION_FAILED.*EFBIG.*nothing was changed/)
      const state = await session.state()
      expect(state.PIPELINES).toEqual([expect.objectContaining({NAME: 'small', R1_VERSION: 1})])
      expect(state.PIPELINES[0]).not.toHaveProperty('PAD')
      expect(state.INSTANCES.map((i) => i.PID)).toEqual([running.PID])
    } finally {
      await session.close()
      await stopServerChild(server.proc)
    }

    server = await startServerChild()
    session = await Session.connect({url: server.url, nodeAddress: server.address, identity: client})
    try {
      const state = await session.state()
      expect(state.PIPELINES).toEqual([expect.objectContaining({NAME: 'small', R1_VERSION: 1})])
      expect(state.PIPELINES[0]).not.toHaveProperty('PAD')
    } finally {
      await session.close()
      await stopServerChild(server.proc)
    }
  })
})

describe('node state: one file per pipeline', () => {
  it('a change rewrites only the file of the pipeline it changes', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST})
    for (const name of ['a', 'b', 'c']) await node.execute('UPDATE_CONFIG', execPipeline(name, 'exec-1', 5), commandMeta())
    const dir = join(dataDir, 'pipelines')
    const files = (await readdir(dir)).sort()
    expect(files).toEqual(['a', 'b', 'c'].map(pipelineFileName).sort())
    const snapshot = async () => Object.fromEntries(await Promise.all(files.map(async (f) => [f, {ino: (await stat(join(dir, f))).ino, text: await readFile(join(dir, f), 'utf8')}])))
    const before = await snapshot()

    await node.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'b', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'exec-1', INSTANCE_CONFIG: {PROCESS_DELAY: 6}}, commandMeta())
    const after = await snapshot()
    const b = pipelineFileName('b')
    for (const file of files) {
      if (file === b) expect(after[file]!.text).not.toBe(before[file]!.text)
      else expect(after[file], `${file} untouched`).toEqual(before[file])
    }
    expect(JSON.parse(after[b]!.text)).toMatchObject({format: 'r1-node-pipeline', version: 1, name: 'b', archived: false, current: {version: 2}})
    await node.execute('DELETE_CONFIG', 'a', commandMeta())
    expect((await readdir(dir)).sort()).toEqual(['b', 'c'].map(pipelineFileName).sort())
    expect(await stat(join(dataDir, 'state.json')).catch(() => undefined)).toBeUndefined()
  })

  it('names differing only in case, or in characters a file name cannot hold, get their own files', async () => {
    expect(pipelineFileName('Temps')).not.toBe(pipelineFileName('temps'))
    expect(pipelineFileName('..')).toMatch(/^[a-z0-9_-]+\.json$/)
    expect(pipelineFileName('x'.repeat(200)).length).toBeLessThan(200)
  })

  it('migrates a state.json (r1-node-state v1) on start: pipelines, archive and kept versions', async () => {
    const v = (name: string, version: number, delay: number) => ({version, config: execPipeline(name, 'exec-1', delay), appliedAt: '2026-01-01T00:00:00.000Z'})
    const legacy = {
      format: 'r1-node-state',
      version: 1,
      pipelines: [v('live', 2, 5)],
      archived: [v('shelved', 1, 7)],
      history: {live: [v('live', 1, 4), v('live', 2, 5)], shelved: [v('shelved', 1, 7)]},
    }
    await writeFile(join(dataDir, 'state.json'), JSON.stringify(legacy, null, 1))
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST})
    expect(node.state().map((p) => [p.name, p.version, p.archived])).toEqual([
      ['live', 2, false],
      ['shelved', 1, true],
    ])
    expect(node.versions('live').map((x) => x.version)).toEqual([1, 2])
    expect((await readdir(join(dataDir, 'pipelines'))).sort()).toEqual(['live', 'shelved'].map(pipelineFileName).sort())
    expect(await readFile(join(dataDir, 'state.json.migrated'), 'utf8')).toBe(JSON.stringify(legacy, null, 1))
    await node.execute('R1_ROLLBACK', {NAME: 'live', VERSION: 1}, commandMeta())
    await node.stop()

    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST})
    expect(node.state().map((p) => [p.name, p.version, p.archived, p.config.PLUGINS[0]!.INSTANCES[0]!.PROCESS_DELAY])).toEqual([
      ['live', 3, false, 4],
      ['shelved', 1, true, 7],
    ])
  })

  it('a migrated pipeline whose name commands cannot address is kept and reported, with the way to remove it', async () => {
    const long = 'p'.repeat(201)
    const version = {version: 1, config: execPipeline(long, 'exec-1', 5), appliedAt: '2026-01-01T00:00:00.000Z'}
    await writeFile(join(dataDir, 'state.json'), JSON.stringify({format: 'r1-node-state', version: 1, pipelines: [version], archived: [], history: {[long]: [version]}}))
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, log: () => undefined})
    expect(node.state().map((p) => p.name)).toEqual([long])
    const file = join(dataDir, 'pipelines', pipelineFileName(long))
    expect(node.heartbeat().R1_WARNINGS).toEqual([expect.stringContaining(`stop the node and delete ${file}`)])
  })

  it('a corrupt pipeline file is a loud error that changes nothing', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST})
    await node.execute('UPDATE_CONFIG', execPipeline('ok', 'exec-1', 5), commandMeta())
    await node.stop()
    node = undefined
    const file = join(dataDir, 'pipelines', pipelineFileName('ok'))
    await writeFile(file, '{"format": "r1-node-pipeline", "ver')
    const error = await startLocalNode({dataDir}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(R1Error)
    expect(error).toMatchObject({code: 'STATE_CORRUPT', message: expect.stringMatching(/node state .* is corrupt \(not JSON/), hint: expect.stringContaining(`mv ${file}`)})
    expect(await readFile(file, 'utf8')).toBe('{"format": "r1-node-pipeline", "ver')
  })
})
