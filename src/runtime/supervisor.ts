import {fork, type ChildProcess} from 'node:child_process'
import type {Readable} from 'node:stream'
import type {InstanceStatus} from '../protocol/codes.js'
import {NotificationCode, NotificationType} from '../protocol/codes.js'
import type {CommandResult, RunnerEvent, UpdateDecision} from '../plugin/runner.js'
import {childEntry} from './child-entry.js'
import {isoNow as iso} from './clock.js'
import {copyFiles, createInstanceDirs, groupRss, hostExecArgv, instanceUser, killGroup, memoryCapMb, removeInstanceDirs, removeInstanceDirsNow, stageBundle, type InstanceDirs, type RunAs} from './containment.js'
import type {ChildMessage, InstanceSpec, ParentMessage} from './ipc.js'
import {splitLines} from './log-limit.js'
import {formatBytes} from '../ui/bytes.js'

/** Timings of a supervisor; tests shrink them, the defaults are ARCHITECTURE.md §4's. */
export interface SupervisorOptions {
  /** First restart delay after a crash; doubles per consecutive crash. */
  restartBaseMs: number
  /** Restart delay cap. */
  restartCapMs: number
  /** Running this long without a crash resets the back-off. */
  stableMs: number
  /** Consecutive crashes after which the status is `error` (it keeps retrying at the capped delay). */
  crashLoopThreshold: number
  /** Stop: time between the polite `stop` and SIGKILL. */
  graceMs: number
  /** Parent → child ping period. */
  pingIntervalMs: number
  /** No pong for this long means the child's event loop is blocked (an infinite loop): kill and restart. */
  unresponsiveMs: number
  /** A `process` call running longer than this is a hang: kill and restart. */
  processTimeoutMs: number
  /** A child that has not answered its first ping within this is killed (slow disks and busy machines start slowly). */
  startTimeoutMs: number
  /** Back-off of the process loop after exceptions in `process` (inside the child). */
  exceptionBackoff: {baseMs: number; capMs: number}
  /** The whole environment of the instance's child process. */
  env: Record<string, string>
  /** Working directory of the instance's child process (read-only to it); default: the instance's own run dir. */
  cwd?: string
  /**
   * The user instance processes run as: a name or `uid[:gid]`; false keeps this process's user.
   * Default: `nobody` when this process runs as root, else this process's user.
   */
  runAs?: string | false
  /** Run JS instance hosts under Node's permission model (file access: r1's code, the run dir, `cwd` read-only). Default true. */
  contained?: boolean
  /** The node's data dir: never granted to an instance, even when `cwd` contains it. */
  dataDir?: string
  /** Memory cap (MiB) of instances whose config has no MAX_MEMORY_MB; default none. */
  maxMemoryMb?: number
  /**
   * The config the instance process gets, from the one the node keeps (its secret references replaced by
   * their values); called at every start, restart and reconfiguration. Default: the config as it is.
   */
  resolveConfig?: (config: Record<string, unknown>) => Record<string, unknown>
  /** The instance host module and its node flags (tests pick the built one); default: childEntry('instance-host'). */
  hostEntry?: {modulePath: string; execArgv: string[]}
  /**
   * Starts the instance in place of its own folders and a contained fork of the instance host, given its
   * spec (config resolved, restart back-off; the bundle where the node keeps it). The fleet bench passes an
   * in-process stub that confirms at once.
   */
  launch?: (spec: InstanceSpec) => ChildProcess
}

export const defaultSupervisorOptions: SupervisorOptions = {
  restartBaseMs: 1000,
  restartCapMs: 60_000,
  stableMs: 60_000,
  crashLoopThreshold: 3,
  graceMs: 5000,
  pingIntervalMs: 1000,
  unresponsiveMs: 10_000,
  processTimeoutMs: 60_000,
  startTimeoutMs: 60_000,
  exceptionBackoff: {baseMs: 1000, capMs: 60_000},
  env: {},
}

export type SupervisorEvent =
  | RunnerEvent
  | {kind: 'status'; status: InstanceStatus; previous: InstanceStatus; error?: string}
  /** A `process` call ended (ok or with an exception). */
  | {kind: 'iteration'; iteration: number; ok: boolean; error?: string}
  /** The child died or was killed (or the app a PROCESS_APP_RUNNER hosts exited); it restarts after `restartInMs`. */
  | {kind: 'crash'; error: string; restartInMs: number; restarts: number}
  /** A new instance process started. */
  | {kind: 'spawned'; pid: number}

export interface InstanceCounters {
  iterations: number
  payloads: number
  restarts: number
  initTime: string | null
  execTime: string | null
  lastPayloadTime: string | null
  lastConfigTime: string | null
  lastErrorTime: string | null
  lastError: string | null
}

interface PendingCommand {
  id: number
  name: string
  params: unknown
  hash?: string
  resolve: (result: CommandResult) => void
}

/** One instance: its child process, status, restarts with back-off, hang detection, stop with a grace period. */
export class InstanceSupervisor {
  private statusValue: InstanceStatus = 'stopped'
  readonly counters: InstanceCounters = {iterations: 0, payloads: 0, restarts: 0, initTime: null, execTime: null, lastPayloadTime: null, lastConfigTime: null, lastErrorTime: null, lastError: null}
  private child: ChildProcess | undefined
  private ready = false
  private wanted = false
  /** Its work dir is being prepared: commands queue as for a starting process. */
  private awaitingStart = false
  private consecutiveCrashes = 0
  private failure: string | undefined
  private busySince: number | undefined
  /** undefined until the child answers its first ping: start-up is timed separately. */
  private lastPong: number | undefined
  private spawnedAt = 0
  private pingCounter = 0
  private pingTimer: NodeJS.Timeout | undefined
  private restartTimer: NodeJS.Timeout | undefined
  private stableTimer: NodeJS.Timeout | undefined
  private readonly groups = new Set<number>()
  private commandCounter = 0
  /** `beforeUpdate` questions awaiting the child's answer, by id. */
  private readonly decisions = new Map<number, (decision: UpdateDecision) => void>()
  private readonly queued: PendingCommand[] = []
  private readonly inFlight = new Map<number, PendingCommand>()
  private readonly inputs: unknown[] = []
  private previousConfig: Record<string, unknown> | undefined
  /** A process runs its current config: that config's PLUGIN_CONFIG_OK was sent (or none was asked for). */
  private configConfirmed = false
  /** What configConfirmed was before a live reconfigure the plugin may still refuse. */
  private previousConfirmed = false
  /** Commands that sent the current config again, unchanged, waiting for it to be confirmed. */
  private unchangedBy: string[] = []
  /** A config taken while the process was starting: sent to it once it is ready. */
  private configPending = false
  private exited: Promise<void> = Promise.resolve()
  /** Batches handled since the last `ack`. */
  private unacked = 0
  /** The instance's private dir (bundle copy, its writes), for the supervisor's life. */
  private dirs: InstanceDirs | undefined
  /** The removal of the last instance folders, while it runs. */
  private removing?: Promise<void>
  private user: RunAs | undefined | null = null
  private memoryCap: number | undefined

  constructor(
    private specValue: InstanceSpec,
    private readonly options: SupervisorOptions,
    private readonly sink: (event: SupervisorEvent) => void,
  ) {}

  get status(): InstanceStatus {
    return this.statusValue
  }

  get spec(): InstanceSpec {
    return this.specValue
  }

  /** PID of the instance's child process while it runs (tests check the process table with it). */
  get pid(): number | undefined {
    return this.child?.pid
  }

  start(): void {
    if (this.wanted) return
    this.awaitingStart = false
    this.wanted = true
    this.consecutiveCrashes = 0
    this.counters.lastConfigTime = iso()
    this.spawn()
  }

  /** An instance that cannot be started as configured (unknown signature, missing bundle). */
  markInvalid(error: string): void {
    this.counters.lastError = error
    this.counters.lastErrorTime = iso()
    this.setStatus('invalid_config', error)
  }

  /** Its work dir is being made ready (files unpacked, setup running): `starting` until `start`. */
  preparing(): void {
    this.awaitingStart = true
    this.setStatus('starting')
  }

  /** An instance that could not be made ready to start (its setup failed): `error`, with why. */
  fail(error: string): void {
    this.awaitingStart = false
    for (const pending of this.queued.splice(0)) this.failCommand(pending, `instance ${this.specValue.instanceId} could not start: ${error}`)
    this.counters.lastError = error
    this.counters.lastErrorTime = iso()
    this.setStatus('error', error)
  }

  /**
   * A command (`hash`) sent this instance the config it already has: it hears PLUGIN_CONFIG_OK once a
   * process runs that config (at once when one does), or PLUGIN_CONFIG_FAILED when none will (the instance
   * is in error, invalid or stopped, the plugin refused the config, a newer one replaced it first). Two
   * deploys of one config racing to a node are both answered; neither waits for a change not needed.
   */
  configUnchanged(hash: string): void {
    if (this.configConfirmed) return this.answerUnchanged([hash])
    const cannot = this.cannotConfirm()
    if (cannot) this.answerUnchanged([hash], cannot)
    else this.unchangedBy.push(hash)
  }

  /** Why the current config will not be confirmed as things stand, or undefined while it may be. */
  private cannotConfirm(): string | undefined {
    if (this.statusValue === 'error' || this.statusValue === 'invalid_config') return `the instance is ${this.statusValue}${this.counters.lastError ? `: ${this.counters.lastError}` : ''}`
    if (!this.wanted && !this.awaitingStart) return `the instance is not running (${this.statusValue})`
    return undefined
  }

  /** Answers the commands waiting on the current config (all of them by default): confirmed, or not with why. */
  private answerUnchanged(hashes: string[] = this.unchangedBy.splice(0), failure?: string): void {
    for (const hash of hashes) {
      if (failure) this.sink({kind: 'notification', type: NotificationType.ABNORMAL, code: NotificationCode.PLUGIN_CONFIG_FAILED, message: `Plugin config not confirmed: ${failure}`, commandHash: hash})
      else this.sink({kind: 'notification', type: NotificationType.NORMAL, code: NotificationCode.PLUGIN_CONFIG_OK, message: 'Plugin config unchanged (running with it)', commandHash: hash})
    }
  }

  /** Live reconfiguration: the `config` hook runs in the child (once it is ready, when it is starting); no restart. */
  reconfigure(config: Record<string, unknown>, hash?: string): void {
    this.answerUnchanged(undefined, 'a newer config replaced it before it was confirmed')
    this.previousConfig = this.specValue.config
    this.previousConfirmed = this.configConfirmed
    this.specValue = {...this.specValue, config, announceConfig: true, configHash: hash}
    this.configConfirmed = false
    this.counters.lastConfigTime = iso()
    if (this.ready) this.sendConfig()
    else this.configPending = this.child !== undefined
  }

  /** The current config to the running child (its `config` hook), secrets resolved. */
  private sendConfig(): void {
    const {config, configHash} = this.specValue
    this.send({t: 'config', config: this.options.resolveConfig?.(config) ?? config, hash: configHash})
  }

  /**
   * Asks the plugin's `beforeUpdate` hook about `next` (null: removal). An instance that is not running,
   * or does not answer within `timeoutMs`, lets the update go ahead.
   */
  beforeUpdate(next: Record<string, unknown> | null, timeoutMs = 5000): Promise<UpdateDecision> {
    if (!this.ready || !this.child?.connected) return Promise.resolve({action: 'ok'})
    const id = ++this.commandCounter
    return new Promise((resolve) => {
      const timer = setTimeout(() => answer({action: 'ok'}), timeoutMs)
      const answer = (decision: UpdateDecision) => {
        clearTimeout(timer)
        this.decisions.delete(id)
        resolve(decision)
      }
      this.decisions.set(id, answer)
      this.send({t: 'beforeUpdate', id, config: next && (this.options.resolveConfig?.(next) ?? next)})
    })
  }

  /** Delivered once: queued until the instance is ready; a crash while it runs answers it negatively. */
  command(name: string, params: unknown, hash?: string): Promise<CommandResult> {
    return new Promise((resolve) => {
      const pending: PendingCommand = {id: ++this.commandCounter, name, params, hash, resolve}
      if (!this.wanted && !this.awaitingStart) {
        this.failCommand(pending, `instance ${this.specValue.instanceId} is not running (status ${this.statusValue})`)
        return
      }
      if (this.ready) this.deliver(pending)
      else this.queued.push(pending)
    })
  }

  /** Pipeline input for `ctx.inputs`. */
  input(data: unknown): void {
    if (this.ready) this.send({t: 'input', data})
    else this.inputs.push(data)
  }

  /** Polite stop (`ctx.signal` aborted, `close` called), SIGKILL after the grace period. */
  async stop(): Promise<void> {
    this.wanted = false
    this.awaitingStart = false
    if (this.restartTimer) clearTimeout(this.restartTimer)
    this.restartTimer = undefined
    for (const pending of this.queued.splice(0)) this.failCommand(pending, 'instance stopped before the command could run')
    const child = this.child
    if (!child) {
      if (this.statusValue !== 'invalid_config') this.setStatus('stopped')
      await this.cleanUp()
      return
    }
    const exited = this.exited
    this.send({t: 'stop'})
    const timer = setTimeout(() => this.killChild(), this.options.graceMs)
    await exited
    clearTimeout(timer)
    await this.cleanUp()
  }

  private async cleanUp(): Promise<void> {
    const dirs = this.dirs
    if (!this.child && dirs) {
      this.dirs = undefined
      // until they are gone, a process exiting meanwhile removes them on its way out
      const removal = removeInstanceDirs(dirs).then(() => void liveDirs.delete(dirs))
      this.removing = removal
      removal.finally(() => this.removing === removal && (this.removing = undefined)).catch(() => undefined)
    }
    // a second stop() meanwhile returns once they are gone too
    await this.removing
  }

  /** Stops, then starts with a new spec (a new bundle): counters stay, the back-off resets. */
  async replace(spec: InstanceSpec): Promise<void> {
    await this.stop()
    this.specValue = spec
    this.start()
  }

  /** In a crash loop the status stays `error` until the instance has run for the stable period. */
  private get crashLooping(): boolean {
    return this.consecutiveCrashes >= this.options.crashLoopThreshold
  }

  /** The spec the instance starts with: its config as the process gets it, the restart back-off. */
  private startSpec(): InstanceSpec {
    const config = this.options.resolveConfig?.(this.specValue.config) ?? this.specValue.config
    return {...this.specValue, config, restartBackoff: {baseMs: this.options.restartBaseMs, capMs: this.options.restartCapMs}}
  }

  /** The instance's own folders and a fork of the instance host contained to them (see containment.ts), with the spec it gets. */
  private forkContained(): {child: ChildProcess; spec: InstanceSpec} {
    const entry = this.options.hostEntry ?? childEntry('instance-host')
    if (this.user === null) this.user = instanceUser(this.options.runAs)
    const user = this.user
    if (!this.dirs) {
      const fresh = createInstanceDirs(user)
      try {
        // the instance runs among its own copy of the files its plugin ships
        if (this.specValue.filesDir) copyFiles(this.specValue.filesDir, fresh)
      } catch (error) {
        removeInstanceDirsNow(fresh)
        throw error
      }
      this.dirs = fresh
      liveDirs.add(fresh)
    }
    const dirs = this.dirs
    const spec = this.startSpec()
    // the bundle lives in the node's data dir, which the instance may not read: it gets its own copy
    if (spec.bundlePath) spec.bundlePath = stageBundle(spec.bundlePath, dirs)
    const cwd = this.options.cwd ?? dirs.run
    const execArgv = hostExecArgv({entry, runDir: dirs.run, codeDir: dirs.code, cwd, dataDir: this.options.dataDir, memoryCapMb: this.memoryCap, contained: this.options.contained !== false, childProcess: spec.builtin === 'PROCESS_APP_RUNNER', user})
    // its own process group (detached): stop, crash and shutdown kill the whole group
    const child = fork(entry.modulePath, [], {execArgv, env: this.options.env, cwd, ...(user ? {uid: user.uid, gid: user.gid} : {}), detached: true, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json'})
    return {child, spec}
  }

  private spawn(): void {
    this.ready = false
    this.configPending = false // it starts with the current config
    this.unacked = 0
    this.failure = undefined
    this.busySince = undefined
    if (!this.crashLooping) this.setStatus('starting')
    this.memoryCap = memoryCapMb(this.specValue.config, this.options.maxMemoryMb)
    let launched: {child: ChildProcess; spec: InstanceSpec}
    try {
      const {launch} = this.options
      if (launch) {
        const spec = this.startSpec()
        launched = {child: launch(spec), spec}
      } else {
        launched = this.forkContained()
      }
    } catch (error) {
      // a fork that throws (e.g. EPERM taking the instance user's uid) is retried with back-off, as a failed preparation is
      this.failure = `cannot start the instance process: ${(error as Error).message}`
      this.scheduleRestart(this.failure)
      return
    }
    const {child, spec} = launched
    this.child = child
    if (child.pid) liveGroups.add(child.pid)
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        this.onExit(child, code, signal)
        resolve()
      }
      child.once('exit', done)
      child.on('error', (error) => {
        this.failure ??= `instance process error: ${error.message}`
        // a fork that failed (no such cwd, no permission) never emits exit
        if (!child.pid) done(null, null)
      })
    })
    // bounded: a line without an end (a write loop without a newline) keeps only its first MAX_LINE_CHARS
    const forward = (stream: Readable | null, level: 'info' | 'warn') => {
      if (stream) splitLines(stream, (text, cut) => {
        if (level === 'warn' && /JavaScript heap out of memory/.test(text)) this.overMemory(`the JavaScript heap reached its limit (--max-old-space-size=${this.memoryCap})`)
        this.sink({kind: 'log', level, text, ...(cut > 0 ? {cut} : {})})
      })
    }
    forward(child.stdout, 'info')
    forward(child.stderr, 'warn')
    child.on('message', (message: ChildMessage) => this.onMessage(message))
    this.lastPong = undefined
    this.spawnedAt = Date.now()
    this.pingTimer = setInterval(() => this.watch(), this.options.pingIntervalMs)
    if (child.pid) this.sink({kind: 'spawned', pid: child.pid})
    this.send({t: 'start', spec})
  }

  /** Over MAX_MEMORY_MB: a notification, then the instance is killed (a crash: it restarts with back-off). */
  private overMemory(what: string): void {
    if (this.failure?.startsWith('memory limit')) return
    this.failure = `memory limit exceeded: ${what}, MAX_MEMORY_MB ${this.memoryCap}: instance killed`
    this.sink({kind: 'notification', type: NotificationType.ABNORMAL, message: `Instance over its memory limit: ${what} (MAX_MEMORY_MB ${this.memoryCap}); killed, it restarts`, info: {MAX_MEMORY_MB: this.memoryCap}})
    this.killChild()
  }

  private watch(): void {
    const now = Date.now()
    if (this.memoryCap && this.child?.pid) {
      const rss = groupRss([this.child.pid, ...this.groups])
      if (rss > this.memoryCap * 1024 * 1024) {
        this.overMemory(`${formatBytes(rss)} resident`)
        return
      }
    }
    if (this.busySince !== undefined && now - this.busySince > this.options.processTimeoutMs) {
      const blocked = this.lastPong !== undefined && now - this.lastPong > 3 * this.options.pingIntervalMs
      this.failure = `process() did not return within ${this.options.processTimeoutMs / 1000} s (${blocked ? 'hang with the event loop blocked, e.g. an infinite loop' : 'hang'}): instance killed`
      this.killChild()
      return
    }
    if (this.lastPong === undefined) {
      if (now - this.spawnedAt > this.options.startTimeoutMs) {
        this.failure = `instance process did not start within ${this.options.startTimeoutMs / 1000} s: instance killed`
        this.killChild()
        return
      }
    } else if (now - this.lastPong > this.options.unresponsiveMs) {
      this.failure = `instance unresponsive for ${this.options.unresponsiveMs / 1000} s (event loop blocked, e.g. an infinite loop): instance killed`
      this.killChild()
      return
    }
    this.send({t: 'ping', n: ++this.pingCounter})
  }

  private killChild(): void {
    for (const pid of this.groups) killGroup(pid)
    this.groups.clear()
    if (!killGroup(this.child?.pid)) this.child?.kill('SIGKILL')
  }

  private send(message: ParentMessage): void {
    const child = this.child
    if (child?.connected) child.send(message, (error) => error && undefined)
  }

  /**
   * Acknowledges batches after this process's next event-loop turn, so the listeners' work (the
   * journal, the WebSocket subscribers) runs between batches and a flooding instance goes at the node's pace.
   */
  private ackBatch(): void {
    if (this.unacked++ > 0) return
    setImmediate(() => {
      const batches = this.unacked
      this.unacked = 0
      this.send({t: 'ack', batches})
    })
  }

  private deliver(pending: PendingCommand): void {
    this.inFlight.set(pending.id, pending)
    this.send({t: 'command', id: pending.id, name: pending.name, params: pending.params, hash: pending.hash})
  }

  private failCommand(pending: PendingCommand, error: string): void {
    this.sink({kind: 'notification', type: NotificationType.ABNORMAL, code: NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED, message: `Instance command "${pending.name}" failed: ${error}`, info: {COMMAND: pending.name}, commandHash: pending.hash})
    pending.resolve({ok: false, error})
  }

  private onMessage(message: ChildMessage): void {
    // any message proves the host's event loop turned just now: liveness is timed from it (a `process`
    // that blocks from its very first call is caught by the unresponsive timeout, not the start timeout)
    this.lastPong = Date.now()
    switch (message.t) {
      case 'batch':
        for (const item of message.messages) this.onMessage(item)
        this.ackBatch()
        break
      case 'pong':
        this.lastPong = Date.now()
        break
      case 'ready':
        this.ready = true
        if (this.configPending) {
          // reconfigured while it started: it started with the config before
          this.configPending = false
          this.sendConfig()
        } else if (!this.specValue.announceConfig && !this.configConfirmed) {
          // a config no command waits on (restored at start): running it is its confirmation
          this.configConfirmed = true
          this.answerUnchanged()
        }
        this.counters.initTime = iso()
        if (!this.crashLooping) this.setStatus(this.runningStatus)
        for (const data of this.inputs.splice(0)) this.send({t: 'input', data})
        for (const pending of this.queued.splice(0)) this.deliver(pending)
        this.armStableTimer()
        break
      case 'appCrash':
        this.onAppCrash(message.error, message.restartInMs)
        break
      case 'appUp':
        if (this.ready && !this.crashLooping && this.statusValue === 'restarting') this.setStatus(this.runningStatus)
        this.armStableTimer()
        break
      case 'payload':
        this.counters.payloads++
        this.counters.lastPayloadTime = iso()
        this.sink({kind: 'payload', data: message.data})
        break
      case 'event':
        if (message.event.kind === 'payload') {
          this.counters.payloads++
          this.counters.lastPayloadTime = iso()
        }
        // a refused command is that command's answer, not the instance's health
        if (message.event.kind === 'notification' && message.event.type === NotificationType.EXCEPTION && message.event.code !== NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED) {
          this.counters.lastError = message.event.message
          this.counters.lastErrorTime = iso()
        }
        this.sink(message.event)
        // the current config's confirmation (one for a config since replaced confirms nothing now)
        if (message.event.kind === 'notification' && message.event.code === NotificationCode.PLUGIN_CONFIG_OK && message.event.commandHash === this.specValue.configHash) {
          this.configConfirmed = true
          this.answerUnchanged()
        }
        break
      case 'busy':
        this.busySince = Date.now()
        break
      case 'idle':
        this.busySince = undefined
        this.counters.iterations = message.iteration
        this.counters.execTime = iso()
        this.sink({kind: 'iteration', iteration: message.iteration, ok: message.ok, ...(message.error ? {error: message.error} : {})})
        break
      case 'commandDone': {
        const pending = this.inFlight.get(message.id)
        this.inFlight.delete(message.id)
        pending?.resolve({ok: message.ok, ...(message.error ? {error: message.error} : {})})
        break
      }
      case 'updateDecision':
        this.decisions.get(message.id)?.(message.decision)
        break
      case 'configDone':
        if (!message.ok && this.previousConfig) {
          this.specValue = {...this.specValue, config: this.previousConfig}
          this.configConfirmed = this.previousConfirmed
          this.answerUnchanged(undefined, 'the plugin refused it')
        }
        this.previousConfig = undefined
        if (this.ready && (this.statusValue === 'running' || this.statusValue === 'paused')) this.setStatus(this.runningStatus)
        break
      case 'failed':
        this.failure = message.stage === 'load' ? `cannot load the plugin: ${message.error}` : message.stage === 'init' ? `init failed: ${message.error}` : message.error
        break
      case 'group':
        if (message.active) this.groups.add(message.pid)
        else this.groups.delete(message.pid)
        break
      case 'closed':
        break
    }
  }

  private get runningStatus(): InstanceStatus {
    return this.specValue.config.FORCED_PAUSE === true ? 'paused' : 'running'
  }

  /** Running this long without a crash ends a crash loop: the back-off resets and `error` clears. */
  private armStableTimer(): void {
    clearTimeout(this.stableTimer)
    this.stableTimer = setTimeout(() => {
      const wasLooping = this.crashLooping
      this.consecutiveCrashes = 0
      if (wasLooping && this.ready && this.statusValue === 'error') this.setStatus(this.runningStatus)
    }, this.options.stableMs)
  }

  /** The app a PROCESS_APP_RUNNER hosts exited with a failure: restarted inside the host, reported as a crash of the instance. */
  private onAppCrash(error: string, restartInMs: number | undefined): void {
    clearTimeout(this.stableTimer)
    this.counters.lastError = error
    this.counters.lastErrorTime = iso()
    if (restartInMs === undefined) {
      // its restart policy says no: the instance runs nothing any more
      this.setStatus('error', error)
      return
    }
    this.consecutiveCrashes++
    this.counters.restarts++
    this.setStatus(this.crashLooping ? 'error' : 'restarting', error)
    this.sink({kind: 'crash', error, restartInMs, restarts: this.counters.restarts})
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return
    clearInterval(this.pingTimer)
    clearTimeout(this.stableTimer)
    this.child = undefined
    this.ready = false
    this.busySince = undefined
    // what is left of the host's own group, and the groups it started (a host killed with SIGKILL cleans up nothing)
    if (child.pid) {
      killGroup(child.pid)
      liveGroups.delete(child.pid)
    }
    for (const pid of this.groups) killGroup(pid)
    this.groups.clear()
    const crashed = this.wanted
    for (const pending of this.inFlight.values()) this.failCommand(pending, crashed ? 'the instance crashed while running the command' : 'the instance stopped while running the command')
    this.inFlight.clear()
    if (!crashed) {
      this.setStatus('stopped')
      return
    }
    const heapAbort = this.memoryCap !== undefined && (signal === 'SIGABRT' || code === 134)
    const error = this.failure ?? (heapAbort ? `memory limit exceeded: aborted near MAX_MEMORY_MB ${this.memoryCap} (heap limit)` : signal ? `instance process killed by ${signal}` : `instance process exited with code ${code}`)
    this.scheduleRestart(error)
  }

  private scheduleRestart(error: string): void {
    // commands waiting for this life to become ready would otherwise wait for an instance that may never be
    for (const pending of this.queued.splice(0)) this.failCommand(pending, `the instance crashed before it could run the command (${error})`)
    this.consecutiveCrashes++
    this.counters.restarts++
    this.counters.lastError = error
    this.counters.lastErrorTime = iso()
    const delay = Math.min(this.options.restartBaseMs * 2 ** (this.consecutiveCrashes - 1), this.options.restartCapMs)
    this.setStatus(this.crashLooping ? 'error' : 'restarting', error)
    this.sink({kind: 'crash', error, restartInMs: delay, restarts: this.counters.restarts})
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined
      if (this.wanted) this.spawn()
    }, delay)
  }

  private setStatus(status: InstanceStatus, error?: string): void {
    if (status === this.statusValue) return
    const previous = this.statusValue
    this.statusValue = status
    this.sink({kind: 'status', status, previous, ...(error ? {error} : {})})
    const cannot = this.unchangedBy.length > 0 ? this.cannotConfirm() : undefined
    if (cannot) this.answerUnchanged(undefined, cannot)
  }
}

/** Process groups of live instance hosts and their run dirs: killed and removed if this process exits without stopping them. */
const liveGroups = new Set<number>()
const liveDirs = new Set<InstanceDirs>()
process.once('exit', () => {
  for (const pid of liveGroups) killGroup(pid)
  for (const dirs of liveDirs) {
    try {
      removeInstanceDirsNow(dirs)
    } catch {
      // best effort on the way out
    }
  }
})
