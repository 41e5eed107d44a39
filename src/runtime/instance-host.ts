/**
 * The child process that hosts one plugin instance (ARCHITECTURE.md §4 isolation). Forked by the
 * supervisor; talks to it only over the IPC channel; dies when the parent does.
 */
import {pathToFileURL} from 'node:url'
import {Worker} from 'node:worker_threads'
import {PLUGIN_HOOKS, isPlugin, type Plugin, type PluginDefinition} from '../plugin/define.js'
import {PluginRunner, describeError, type LogLevel, type RunnerEvent} from '../plugin/runner.js'
import {serviceUrlsFromEnv} from '../services/env.js'
import type {ChildMessage, InstanceSpec, ParentMessage} from './ipc.js'
import {Outbox} from './outbox.js'

/** What built-ins may ask of their host. */
export interface HostApi {
  /** Reports a process group the instance started, so it is killed with the instance in every case. */
  trackGroup(pid: number): void
  untrackGroup(pid: number): void
  /** The app the instance runs exited with a failure (restarting after `restartInMs`, or not at all): the supervisor reports it. */
  appCrashed(error: string, restartInMs: number | undefined): void
  appUp(): void
  /** A line the instance read (its app's output) as its log line, stamped with `time` (epoch ms), when it was read; `cut`: characters cut from it. */
  log(level: LogLevel, text: string, time: number, cut?: number): void
  baseEnv: Record<string, string>
  restartBackoff: {baseMs: number; capMs: number}
}

/** One IPC write; false when the channel is backed up. Without a parent the message is dropped. */
function write(message: ChildMessage, done: () => void): boolean {
  if (!process.connected) {
    done()
    return true
  }
  return process.send!(message, undefined, {}, () => done())
}

const outbox = new Outbox({write})

/** Queued with the rest of this event-loop turn's messages (one IPC write per batch). */
function send(message: ChildMessage): void {
  outbox.post(message)
}

/** Written at once, after what is queued: the parent needs it now (or the host exits next). */
function sendNow(message: ChildMessage, then?: () => void): void {
  outbox.postNow(message, then)
}

/**
 * A worker thread that kills this process (and its groups) when the parent dies: the IPC
 * `disconnect` event cannot fire while plugin code blocks the main event loop.
 */
function startOrphanWatchdog(): Worker {
  const worker = new Worker(
    `const {parentPort} = require('node:worker_threads')
const parent = process.ppid
const groups = new Set()
parentPort.on('message', (m) => { if (m.active) groups.add(m.pid); else groups.delete(m.pid) })
setInterval(() => {
  if (process.ppid === parent) return
  for (const pid of groups) { try { process.kill(-pid, 'SIGKILL') } catch {} }
  try { process.kill(-process.pid, 'SIGKILL') } catch {}
  process.kill(process.pid, 'SIGKILL')
}, 250)`,
    {eval: true},
  )
  worker.unref()
  return worker
}

async function loadPlugin(spec: InstanceSpec, host: HostApi): Promise<Plugin<any> | PluginDefinition<any>> {
  if (spec.builtin) {
    const {createBuiltin} = await import('./builtins/index.js')
    return await createBuiltin(spec.builtin, host)
  }
  if (!spec.bundlePath) throw new Error(`No bundle and no built-in for signature ${spec.signature}`)
  const module = (await import(pathToFileURL(spec.bundlePath).href)) as {default?: unknown}
  const plugin = module.default
  if (isPlugin(plugin)) return plugin
  if (plugin && typeof plugin === 'object' && PLUGIN_HOOKS.some((hook) => typeof (plugin as Record<string, unknown>)[hook] === 'function')) {
    return plugin as PluginDefinition<any>
  }
  throw new Error(`The bundle for ${spec.signature} has no plugin as its default export: export default definePlugin({...})`)
}

/** Largest payload (JSON bytes) an instance may emit: one event must fit in a 1 MiB WebSocket frame. */
export const MAX_PAYLOAD_BYTES = 900 * 1024

/** Queues an event for the parent; a payload that is not JSON, or too big for the wire, becomes an ABNORMAL notification (the plugin keeps running). */
function sendEvent(event: RunnerEvent): void {
  if (event.kind !== 'payload') {
    outbox.post({t: 'event', event})
    return
  }
  let json: string
  try {
    json = JSON.stringify(event.data)
  } catch (error) {
    outbox.post({t: 'event', event: {kind: 'notification', type: 'ABNORMAL FUNCTIONING', message: `Payload dropped: not JSON (${(error as Error).message})`}})
    return
  }
  // UTF-16 length ≤ UTF-8 bytes ≤ 3 × it: count bytes only when it matters
  const size = json.length * 3 <= MAX_PAYLOAD_BYTES ? json.length : Buffer.byteLength(json)
  if (size <= MAX_PAYLOAD_BYTES) {
    outbox.post({t: 'payload', data: event.data}, size)
    return
  }
  outbox.post({t: 'event', event: {kind: 'notification', type: 'ABNORMAL FUNCTIONING', message: `Payload dropped: ${size} bytes of JSON, over the ${MAX_PAYLOAD_BYTES} byte limit`, info: {KEYS: Object.keys(event.data).slice(0, 20)}}})
}

function delayMsOf(config: Record<string, unknown>): number {
  const delay = Number(config.PROCESS_DELAY ?? 1)
  return Number.isFinite(delay) && delay > 0 ? delay * 1000 : 0
}

class InstanceHost {
  private runner!: PluginRunner<any>
  private spec!: InstanceSpec
  private stopping = false
  private readonly inputs: unknown[] = []
  private chain: Promise<unknown> = Promise.resolve()
  private kick: (() => void) | undefined
  private failures = 0
  /** A new config was taken: the next process runs at once (its PLUGIN_CONFIG_OK is what a deploy waits for), not after PROCESS_DELAY. */
  private reconfigured = false
  private readonly watchdog = startOrphanWatchdog()

  /** Hooks never overlap: process, command, config and close run one at a time, in arrival order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn)
    this.chain = next.catch(() => undefined)
    return next
  }

  private wake(): void {
    const kick = this.kick
    this.kick = undefined
    kick?.()
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined
      function done() {
        if (timer) clearTimeout(timer)
        resolve()
      }
      this.kick = done
    })
  }

  async handle(message: ParentMessage): Promise<void> {
    switch (message.t) {
      case 'start':
        await this.start(message.spec)
        break
      case 'ack':
        outbox.ack(message.batches)
        break
      case 'ping':
        // straight to the channel: liveness is not queued behind a batch
        write({t: 'pong', n: message.n}, () => undefined)
        break
      case 'input':
        this.inputs.push(message.data)
        this.wake()
        break
      case 'config': {
        const result = await this.serial(() => this.runner.reconfigure(message.config, message.hash))
        send({t: 'configDone', ...result})
        this.failures = 0
        if (result.ok) this.reconfigured = true
        this.wake()
        break
      }
      case 'beforeUpdate': {
        const decision = await this.serial(() => this.runner.beforeUpdate(message.config))
        sendNow({t: 'updateDecision', id: message.id, decision})
        break
      }
      case 'command': {
        const result = await this.serial(() => this.runner.command(message.name, message.params, message.hash))
        send({t: 'commandDone', id: message.id, ok: result.ok, ...(result.error ? {error: result.error} : {})})
        break
      }
      case 'stop':
        await this.stop()
        break
    }
  }

  private async start(spec: InstanceSpec): Promise<void> {
    this.spec = spec
    const host: HostApi = {
      trackGroup: (pid) => {
        this.groups.add(pid)
        this.watchdog.postMessage({pid, active: true})
        sendNow({t: 'group', pid, active: true})
      },
      untrackGroup: (pid) => {
        this.groups.delete(pid)
        this.watchdog.postMessage({pid, active: false})
        sendNow({t: 'group', pid, active: false})
      },
      appCrashed: (error, restartInMs) => sendNow({t: 'appCrash', error, ...(restartInMs === undefined ? {} : {restartInMs})}),
      appUp: () => sendNow({t: 'appUp'}),
      log: (level, text, time, cut) => sendEvent({kind: 'log', level, text, time, ...(cut ? {cut} : {})}),
      baseEnv: spec.baseEnv,
      restartBackoff: spec.restartBackoff ?? {baseMs: 1000, capMs: 30_000},
    }
    let plugin: Plugin<any> | PluginDefinition<any>
    try {
      plugin = await loadPlugin(spec, host)
    } catch (error) {
      sendNow({t: 'failed', stage: 'load', error: describeError(error)}, () => process.exit(1))
      return
    }
    this.runner = new PluginRunner(plugin, {
      config: spec.config,
      instanceId: spec.instanceId,
      pipeline: spec.pipeline,
      signature: spec.signature,
      node: spec.node,
      announceConfig: spec.announceConfig,
      configHash: spec.configHash,
      onEvent: sendEvent,
      services: () => serviceUrlsFromEnv(process.env),
    })
    const init = await this.serial(() => this.runner.init())
    if (!init.ok) {
      sendNow({t: 'failed', stage: 'init', error: init.error ?? 'init failed'}, () => process.exit(1))
      return
    }
    sendNow({t: 'ready'})
    if (this.runner.hasHealth) this.watchHealth()
    void this.loop()
  }

  /** Asks the plugin's `health` hook every HEALTH_INTERVAL seconds (default 10), between its other hooks. */
  private watchHealth(): void {
    const seconds = Number((this.runner.currentConfig as Record<string, unknown>).HEALTH_INTERVAL ?? 10)
    const timer = setTimeout(
      async () => {
        if (this.stopping) return
        await this.serial(() => this.runner.health())
        this.watchHealth()
      },
      Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 10_000,
    )
    timer.unref()
  }

  private async loop(): Promise<void> {
    let lastStart = -Infinity
    while (!this.stopping) {
      const config = this.runner.currentConfig as Record<string, unknown>
      if (config.FORCED_PAUSE === true || (config.ALLOW_EMPTY_INPUTS === false && this.inputs.length === 0)) {
        await this.sleep(Infinity)
        continue
      }
      const {baseMs, capMs} = this.spec.exceptionBackoff
      const wait = this.failures > 0 ? Math.max(delayMsOf(config), Math.min(baseMs * 2 ** (this.failures - 1), capMs)) : delayMsOf(config)
      const now = Date.now()
      const due = this.reconfigured ? now : lastStart + wait
      if (now < due) {
        await this.sleep(due - now)
        continue
      }
      // back-pressure: while the parent has not taken what was sent, do not make more
      if (outbox.blocked) {
        await outbox.drained()
        continue
      }
      lastStart = now
      this.reconfigured = false
      const batch = this.inputs.splice(0)
      const result = await this.serial(async () => {
        if (this.stopping) return undefined
        const iteration = (this.runner.ctx.iteration as number) + 1
        // at once: the parent times the call from here (a hang that blocks the loop could never send it later)
        sendNow({t: 'busy', iteration})
        const outcome = await this.runner.process(batch)
        send({t: 'idle', iteration, ok: outcome.ok, ...(outcome.error ? {error: outcome.error} : {})})
        return outcome
      })
      if (result) this.failures = result.ok ? 0 : this.failures + 1
      // let IPC messages (pings, commands) in between back-to-back iterations
      if (wait === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  }

  private readonly groups = new Set<number>()

  /** Close without a parent to tell (`close` hooks still run: an app runner ends its process group). */
  async stopQuietly(): Promise<void> {
    this.stopping = true
    this.runner?.signalStop()
    this.wake()
    if (this.runner) await Promise.race([this.serial(() => this.runner.close()), new Promise((resolve) => setTimeout(resolve, 1500))])
  }

  /** Last resort: kill what the instance started, then this process. */
  abandon(): never {
    for (const pid of this.groups) {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    try {
      // this host leads its own group: whatever else is in it goes too
      process.kill(-process.pid, 'SIGKILL')
    } catch {
      // not a group leader (run without the supervisor)
    }
    process.exit(1)
  }

  private async stop(): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    this.runner?.signalStop()
    this.wake()
    if (this.runner) await this.serial(() => this.runner.close())
    sendNow({t: 'closed'}, () => process.exit(0))
  }
}

const host = new InstanceHost()
// The parent is gone: nobody will ever stop this instance, so close it now, bounded in time.
process.on('disconnect', () => {
  setTimeout(() => host.abandon(), 2000).unref()
  void host.stopQuietly().then(() => process.exit(0))
})
// process.exit() in plugin code: what it emitted in this turn still goes out (the writes are synchronous when the pipe has room)
process.on('exit', () => outbox.flushAll())
// Ctrl-C in a terminal signals the whole foreground group: the parent decides when this instance stops.
process.on('SIGINT', () => undefined)
process.on('message', (message: ParentMessage) => {
  host.handle(message).catch((error) => sendNow({t: 'failed', stage: 'crash', error: describeError(error)}, () => process.exit(1)))
})
process.on('uncaughtException', (error) => {
  sendNow({t: 'failed', stage: 'crash', error: `Uncaught ${describeError(error)}`}, () => process.exit(1))
})
process.on('unhandledRejection', (error) => {
  sendNow({t: 'failed', stage: 'crash', error: `Unhandled rejection: ${describeError(error)}`}, () => process.exit(1))
})
