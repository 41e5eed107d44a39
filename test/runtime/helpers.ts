import {mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach} from 'vitest'
import {bundleEntry, startLocalNode, type LocalNode, type LocalNodeOptions} from '../../src/runtime/index.js'
import type {LogEvent, NodeEvent, NotificationEvent, PayloadEvent} from '../../src/protocol/events.js'
import type {PipelineConfig} from '../../src/protocol/pipeline.js'

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'projects')

/** Short timings so crashes, hangs and restarts happen within a test; assertions never depend on them. */
export const FAST: LocalNodeOptions['supervisor'] = {
  restartBaseMs: 50,
  restartCapMs: 400,
  stableMs: 60_000,
  crashLoopThreshold: 3,
  graceMs: 1000,
  pingIntervalMs: 100,
  unresponsiveMs: 3000,
  processTimeoutMs: 1500,
  exceptionBackoff: {baseMs: 50, capMs: 200},
}

let hashCounter = 0
export const meta = () => ({hash: `cmd-${++hashCounter}`, sender: '0xai_test'})

/** Collects every event of a node and waits for the ones a test expects. */
export class Events {
  readonly all: NodeEvent[] = []
  private waiters: Array<() => void> = []
  constructor(node: LocalNode) {
    node.onEvent((event) => {
      this.all.push(event)
      for (const waiter of this.waiters.splice(0)) waiter()
    })
  }

  payloads(instanceId?: string): PayloadEvent[] {
    return this.all.filter((e): e is PayloadEvent => e.EE_EVENT_TYPE === 'PAYLOAD' && (instanceId === undefined || e.EE_PAYLOAD_PATH[3] === instanceId))
  }

  logs(instanceId?: string): LogEvent[] {
    return this.all.filter((e): e is LogEvent => e.EE_EVENT_TYPE === 'LOG' && (instanceId === undefined || e.EE_PAYLOAD_PATH[3] === instanceId))
  }

  notifications(filter: {code?: number; instanceId?: string; hash?: string} = {}): NotificationEvent[] {
    return this.all.filter(
      (e): e is NotificationEvent =>
        e.EE_EVENT_TYPE === 'NOTIFICATION' &&
        (filter.code === undefined || e.NOTIFICATION_CODE === filter.code) &&
        (filter.instanceId === undefined || e.EE_PAYLOAD_PATH[3] === filter.instanceId) &&
        (filter.hash === undefined || e.COMMAND_HASH === filter.hash),
    )
  }

  /** Resolves with the first event (from the start) matching; rejects after `timeoutMs`. */
  async waitFor<T extends NodeEvent = NodeEvent>(predicate: (event: NodeEvent) => boolean, timeoutMs = 20_000, what = 'an event'): Promise<T> {
    return this.waitUntil(() => this.all.find(predicate) as T | undefined, timeoutMs, what)
  }

  async waitUntil<T>(check: () => T | undefined | false, timeoutMs = 20_000, what = 'a condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const value = check()
      if (value) return value
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events so far:\n${this.all.map((e) => JSON.stringify(e).slice(0, 300)).join('\n')}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }
}

/** A maker of temp folders for one test file (`const temp = tempDirs()`, then `temp('r1-x-')`), each removed after its test. */
export function tempDirs(): (prefix: string) => string {
  const made: string[] = []
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, {recursive: true, force: true})
  })
  return (prefix) => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    made.push(dir)
    return dir
  }
}

/** Polls `check` until it returns a truthy value. */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, what = 'a condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** True while the process exists and is not a zombie (a dead child not yet reaped by its new parent). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Every descendant of `pid`, from the process table. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirProc()) {
    const list = children.get(entry.ppid) ?? []
    list.push(entry.pid)
    children.set(entry.ppid, list)
  }
  const out: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child)
      queue.push(child)
    }
  }
  return out
}

function readdirProc(): Array<{pid: number; ppid: number}> {
  const out: Array<{pid: number; ppid: number}> = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] === 'Z') continue
      out.push({pid: Number(name), ppid: Number(fields[1])})
    } catch {
      // exited while we read
    }
  }
  return out
}

/** A node whose pipeline uses the FAULTY plugin of test/fixtures/projects/faulty. */
export async function faultyNode(options: LocalNodeOptions = {}): Promise<{node: LocalNode; events: Events; hash: string}> {
  const node = await startLocalNode({heartbeatIntervalMs: 0, supervisor: FAST, ...options})
  const events = new Events(node)
  const bundle = await bundleEntry('src/faulty.ts', {projectDir: join(FIXTURES, 'faulty')})
  await node.putBundle(bundle.hash, bundle.bytes)
  return {node, events, hash: bundle.hash}
}

export function faultyPipeline(hash: string, instances: Array<Record<string, unknown>>, name = 'p'): PipelineConfig {
  return {
    NAME: name,
    TYPE: 'Void',
    R1_BUNDLES: {FAULTY: hash},
    PLUGINS: [{SIGNATURE: 'FAULTY', INSTANCES: instances.map((i) => ({PROCESS_DELAY: 0.1, SHUTDOWN_TIMEOUT: 1, ...i})) as unknown as PipelineConfig['PLUGINS'][number]['INSTANCES']}],
  }
}
