// Real node processes on fixed ports (so a restart keeps its URL), a TCP proxy that can drop or stall
// connections, `r1 logs` as a child process, and a driver session that deploys event-emitting pipelines.
import {type ChildProcess, spawn} from 'node:child_process'
import {createServer, type Server, Socket} from 'node:net'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import type {NodeEvent} from '../../src/protocol/events.js'
import type {GapEvent} from '../../src/protocol/filter.js'
import {cliKeyPath, type Identity, requireIdentity} from '../../src/protocol/identity.js'
import {Journal} from '../../src/runtime/journal.js'
import {allowAddress} from '../../src/runtime/server-allowlist.js'
import {Session} from '../../src/session/index.js'
import {expect} from 'vitest'
import {freePort} from '../../bench/servers.js'
import {bin, cliIdentity, r1, repoRoot} from '../deploy/nodes.js'

export interface NodeProc {
  url: string
  address: string
  alias: string
  dataDir: string
  port: number
  child: ChildProcess
  /** SIGTERM, waits for exit (SIGKILL after 10 s). */
  stop(): Promise<void>
  /** kill -9, waits for exit. */
  kill9(): Promise<void>
}

/** `r1 node start --json` on a fixed port; `allow` goes on its allow-list first. */
export async function spawnNode(options: {dataDir: string; port: number; alias: string; allow: string[]}): Promise<NodeProc> {
  for (const address of options.allow) await allowAddress(options.dataDir, address, 'test-cli')
  const args = [bin, 'node', 'start', '--json', '--host', '127.0.0.1', '--port', String(options.port), '--data-dir', options.dataDir, '--alias', options.alias, '--cstore-port', '0', '--r1fs-port', '0']
  const child = spawn(process.execPath, args, {cwd: repoRoot, env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr!.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const info = await new Promise<{address: string; url: string; alias: string}>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`r1 node start printed nothing in 30 s: ${stderr}`)), 30_000)
    const lines = createInterface({input: child.stdout!})
    lines.on('line', (line) => {
      if (!line.trim().startsWith('{')) return
      clearTimeout(timer)
      resolve(JSON.parse(line))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`r1 node start exited ${code}: ${stderr}`))
    })
  })
  const gone = () => child.exitCode !== null || child.signalCode !== null
  return {
    ...info,
    dataDir: options.dataDir,
    port: options.port,
    child,
    async stop() {
      if (gone()) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
    async kill9() {
      if (gone()) return
      child.kill('SIGKILL')
      await exited
    },
  }
}

/** Forwards 127.0.0.1:port → target port; can cut every connection, or stall them silently (a dead network). */
export class TcpProxy {
  readonly connections = new Set<{client: Socket; upstream: Socket}>()
  accepted = 0
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const holder: {proxy?: TcpProxy} = {}
    const server = createServer((client) => {
      const proxy = holder.proxy!
      proxy.accepted++
      const upstream = new Socket()
      upstream.connect(targetPort, '127.0.0.1')
      const pair = {client, upstream}
      proxy.connections.add(pair)
      client.pipe(upstream)
      upstream.pipe(client)
      const end = () => {
        proxy.connections.delete(pair)
        client.destroy()
        upstream.destroy()
      }
      client.on('error', end).on('close', end)
      upstream.on('error', end).on('close', end)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    holder.proxy = new TcpProxy(server, (server.address() as {port: number}).port)
    return holder.proxy
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`
  }

  /** A network failure: every current connection is reset. */
  dropAll(): void {
    for (const {client, upstream} of this.connections) {
      client.resetAndDestroy()
      upstream.destroy()
    }
  }

  /** A silent network: current connections stay open but carry nothing more (only keepalive can tell). */
  stallAll(): number {
    let stalled = 0
    for (const {client, upstream} of this.connections) {
      client.unpipe(upstream)
      upstream.unpipe(client)
      client.pause()
      upstream.pause()
      stalled++
    }
    return stalled
  }

  async close(): Promise<void> {
    this.dropAll()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

export type LogLine = (NodeEvent | GapEvent) & {R1_TARGET: string}

/** `r1 logs …` as a child process; collects NDJSON stdout lines and stderr. */
export class LogsProc {
  readonly lines: LogLine[] = []
  readonly raw: string[] = []
  stderr = ''
  readonly exited: Promise<number | null>
  private waiters: Array<() => void> = []

  constructor(
    args: string[],
    env: Record<string, string>,
    readonly child = spawn(process.execPath, [bin, 'logs', ...args], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1', ...env}, stdio: ['ignore', 'pipe', 'pipe']}),
  ) {
    createInterface({input: child.stdout!}).on('line', (line) => {
      this.raw.push(line)
      try {
        this.lines.push(JSON.parse(line))
      } catch {
        // pretty output: kept in raw
      }
      this.wake()
    })
    child.stderr!.on('data', (chunk) => {
      this.stderr += chunk
      this.wake()
    })
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
    void this.exited.then(() => this.wake())
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  /** Waits until `predicate` holds (checked on every line and stderr chunk); fails after `timeoutMs`. */
  async until(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate()) {
      if (this.child.exitCode !== null) throw new Error(`r1 logs exited (${this.child.exitCode}) while waiting for ${what}; stderr: ${this.stderr}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; ${this.lines.length} lines; stderr: ${this.stderr}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500))
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Ctrl-C; resolves with the exit code. */
  async interrupt(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGINT')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }

  seqs(target?: string): number[] {
    return this.lines.filter((l) => l.EE_EVENT_TYPE !== 'R1_GAP' && (target === undefined || l.R1_TARGET === target)).map((l) => (l as NodeEvent).EE_MESSAGE_SEQ)
  }
}

/** The CLI key (R1_CONFIG_DIR in `env`) as an Identity, for the test's own driver session. */
export function cliKeyIdentity(env: Record<string, string>): Promise<Identity> {
  return requireIdentity(cliKeyPath(env))
}

/** Deploys a CUSTOM_EXEC_01 pipeline that emits a payload every `delay` seconds. */
export async function deployEmitter(node: {url: string; address: string}, identity: Identity, name = 'ticks', delay = 0.02): Promise<void> {
  const session = await Session.connect({url: node.url, nodeAddress: node.address, identity})
  try {
    await session.send(
      'UPDATE_CONFIG',
      {NAME: name, TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: `${name}-1`, PROCESS_DELAY: delay, CODE: 'return {TICK: Date.now()}'}]}]},
      {expect: [{code: 1}], timeoutMs: 30_000},
    )
  } finally {
    await session.close()
  }
}

/** Every seq in a stopped node's journal, in order. */
export async function journalSeqs(dataDir: string): Promise<{seqs: number[]; gaps: GapEvent[]}> {
  const journal = await Journal.open(join(dataDir, 'journal'), {onWarning: () => undefined})
  const seqs: number[] = []
  const gaps: GapEvent[] = []
  try {
    for await (const entry of journal.read()) {
      if (entry.EE_EVENT_TYPE === 'R1_GAP') gaps.push(entry)
      else seqs.push(entry.EE_MESSAGE_SEQ)
    }
  } finally {
    await journal.close()
  }
  return {seqs, gaps}
}

/** Applies pipeline `name` with one instance `<name>-1` of `signature` and waits for its PLUGIN_CONFIG_OK. */
export async function deployOne(node: {url: string; address: string}, identity: Identity, name: string, signature: string, config: Record<string, unknown>): Promise<void> {
  const session = await Session.connect({url: node.url, nodeAddress: node.address, identity})
  try {
    await session.send('UPDATE_CONFIG', {NAME: name, TYPE: 'Void', PLUGINS: [{SIGNATURE: signature, INSTANCES: [{INSTANCE_ID: `${name}-1`, ...config}]}]}, {
      expect: [{code: 100, instance: `${name}-1`}],
      timeoutMs: 30_000,
    })
  } finally {
    await session.close()
  }
}

/** `r1 logs --json --since 1h …` of one node with the built CLI, parsed (it must exit 0). */
export async function logsJson<T = LogLine>(node: {url: string; address: string}, env: Record<string, string>, args: string[]): Promise<T[]> {
  const run = await r1(['logs', '--node', node.url, '--address', node.address, '--json', '--since', '1h', ...args], {env})
  expect(run.exitCode, run.stderr).toBe(0)
  return run.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T)
}

/** Polls `r1 logs --json --since 1h …` until `done` holds for what it returns (30 s). */
export async function pollLogs<T = LogLine>(node: {url: string; address: string}, env: Record<string, string>, args: string[], done: (lines: T[]) => boolean, what: string): Promise<T[]> {
  let lines: T[] = []
  for (let i = 0; i < 150; i++) {
    lines = await logsJson<T>(node, env, args)
    if (done(lines)) return lines
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(lines).slice(0, 2000)}`)
}

/** A file's node: `r1 node start` (alias edge-a, a free port) in `dir`, allowing a CLI key made there; its env and identity. */
export async function startLogsNode(dir: string): Promise<{env: Record<string, string>; identity: Identity; node: NodeProc}> {
  const cli = await cliIdentity(dir)
  const identity = await cliKeyIdentity(cli.env)
  const node = await spawnNode({dataDir: join(dir, 'node'), port: await freePort(), alias: 'edge-a', allow: [cli.address]})
  return {env: cli.env, identity, node}
}
