import {statfsSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {basename, join, resolve} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {applyDefaults, checkInstanceConfig, pluginSpec} from '../manifest/fields.js'
import {canonicalJson} from '../protocol/canonical.js'
import {NotificationCode, NotificationType, type HealthStatus, type InstanceStatus} from '../protocol/codes.js'
import type {ActivePlugin, HeartbeatEvent, LogLevel, NodeEvent, NotificationEvent, PayloadPath} from '../protocol/events.js'
import type {Tags} from '../protocol/tags.js'
import {assertCommandLimits, commandLimitProblem} from '../protocol/limits.js'
import type {Identity} from '../protocol/identity.js'
import {SecretsSchema, type Action, type PayloadOf} from '../protocol/messages.js'
import {PipelineConfigSchema, bundleMap, type PipelineConfig} from '../protocol/pipeline.js'
import {fromStandardBase64} from '../protocol/base64.js'
import {BundleStore, type BundleStoreOptions, sha256Hex} from './bundle-store.js'
import {isoAt} from './clock.js'
import {CpuMeter, memory} from './machine.js'
import {isBuiltin} from './builtins/index.js'
import type {CommandMeta, EventListener, NodeCore} from './contract.js'
import type {InstanceSpec} from './ipc.js'
import {DEFAULT_LOG_RATE, LogLimits, cutLine, type LogRate} from './log-limit.js'
import {ShippedFiles, defaultFilesRoot} from './workdir.js'
import {instanceUser} from './containment.js'
import {InstanceSecrets} from './instance-secrets.js'
import {SecretStore} from './secret-store.js'
import {servicesEnv, type ServiceUrls} from '../services/env.js'
import type {NodeServices} from '../services/types.js'
import {StateStore, type PipelineRecord, type PipelineVersion} from './state-store.js'
import {InstanceSupervisor, defaultSupervisorOptions, type SupervisorEvent, type SupervisorOptions} from './supervisor.js'
import {type GatedInstance, askBeforeUpdate} from './update-gate.js'

export type {PipelineVersion} from './state-store.js'

export interface LocalNodeOptions {
  /** The node's address (`0xai_…`); until identities are wired in, any string. */
  address?: string
  /** The node's key: opens the secrets instance configs refer to (without it every secret is missing). */
  identity?: Identity
  alias?: string
  /** Persistent state (desired pipelines, archive, bundles). Default: a throw-away temp dir removed on stop. */
  dataDir?: string
  /** The last EE_MESSAGE_SEQ assigned before (from the journal): the first event gets startSeq + 1. */
  startSeq?: number
  /** Heartbeat period; 0 turns the timer off (heartbeats on request only). Default 10 s. */
  heartbeatIntervalMs?: number
  /** Supervisor timings (tests shrink them). */
  supervisor?: Partial<SupervisorOptions>
  /** Environment every instance process gets (nothing else from this process): default PATH only. */
  instanceEnv?: Record<string, string>
  /** Working directory of instance processes (relative CWDs of PROCESS_APP_RUNNER resolve against it). */
  workDir?: string
  /** Versions kept per pipeline for R1_ROLLBACK. */
  historySize?: number
  /** Per-instance rate of LOG events (lines over it are dropped and counted). */
  logRate?: LogRate
  /** Dropped log lines are reported within this long when no line follows (default 1 s; tests lengthen it). */
  logFlushMs?: number
  /** Where shipped files are unpacked and set up (outside the data dir); default: the temp dir, named after the data dir. */
  filesRoot?: string
  /** Bundle disk quota and collection grace (defaults in bundle-store.ts: 512 MiB, 15 min). */
  bundles?: Pick<BundleStoreOptions, 'quotaBytes' | 'graceMs'>
  /** Problems found at start (e.g. the journal's), reported in heartbeats as R1_WARNINGS. */
  warnings?: string[]
  /** Labels (`--tag k=v`) every heartbeat carries as R1_TAGS. */
  tags?: Tags
  /** Node diagnostics (corrupt bundle removed, bundles collected, …); default: stderr. */
  log?: (line: string) => void
  /** The node's CStore and R1FS (the signed-protocol actions use them); the node does not close them. */
  services?: NodeServices
  /** Where the services' HTTP APIs listen: every instance and process app gets them in its environment. */
  serviceUrls?: ServiceUrls
}

export interface InstanceState {
  pipeline: string
  signature: string
  instanceId: string
  status: InstanceStatus
  pid?: number
  lastError: string | null
  config: Record<string, unknown>
  counters: InstanceSupervisor['counters']
}

export interface PipelineState {
  name: string
  version: number
  archived: boolean
  config: PipelineConfig
  instances: InstanceState[]
}

/** Lifecycle of one instance: status changes, finished `process` calls, crashes (not events on the wire). */
export type InstanceChange = {path: PayloadPath} & (
  | {kind: 'status'; status: InstanceStatus; previous: InstanceStatus; error?: string}
  | {kind: 'iteration'; iteration: number; ok: boolean; error?: string}
  | {kind: 'crash'; error: string; restartInMs: number; restarts: number}
)

interface ActivePipeline {
  current: PipelineVersion
  instances: Map<string, InstanceSupervisor>
}

const keyOf = (signature: string, instanceId: string) => `${signature}\u0000${instanceId}`
const iso = () => new Date().toISOString()
const packageVersion = (createRequire(import.meta.url)('../../package.json') as {version: string}).version

function rejected(message: string, code: string, hint?: string): R1Error {
  return new R1Error(message, ExitCode.REJECTED, {code, ...(hint ? {hint} : {})})
}

function pipelineNameOf(payload: unknown, action: string): string {
  const name = typeof payload === 'string' ? payload : (payload as {NAME?: unknown} | null)?.NAME
  if (typeof name !== 'string' || name === '') throw rejected(`${action} needs the pipeline name (PAYLOAD: "<name>" or {NAME})`, 'BAD_PAYLOAD')
  return name
}

/** The edge node core (ARCHITECTURE.md §4): desired pipelines, one supervisor per instance, events, heartbeats. */
export class LocalNode implements NodeCore {
  readonly address: string
  readonly alias: string
  /** CStore and R1FS, when the node serves them (undefined for a bare core, e.g. in unit tests). */
  readonly services?: NodeServices
  readonly dataDir: string
  readonly bundles: BundleStore
  private seq: number
  private readonly listeners = new Set<EventListener>()
  private readonly changeListeners = new Set<(change: InstanceChange) => void>()
  private readonly active = new Map<string, ActivePipeline>()
  private readonly archived = new Map<string, PipelineVersion>()
  private readonly history = new Map<string, PipelineVersion[]>()
  private readonly supervisorOptions: SupervisorOptions
  private heartbeatTimer: NodeJS.Timeout | undefined
  private readonly startedAt = Date.now()
  private readonly cpu = new CpuMeter()
  private chain: Promise<unknown> = Promise.resolve()
  private stopped = false
  private readonly workDir: string | undefined
  /** The files plugins ship, unpacked and set up (nodes without a shared `workDir`). */
  private readonly files: ShippedFiles | undefined
  private readonly historySize: number
  private readonly heartbeatIntervalMs: number
  private readonly logRate: LogRate
  /** Log rate limits by instance path. */
  private readonly logLimits: LogLimits<PayloadPath>
  /** Desired state on disk; undefined for a throw-away data dir. */
  private readonly store: StateStore | undefined
  private readonly warningList: string[]
  /** Labels (`--tag k=v`), in every heartbeat as R1_TAGS. */
  readonly tags: Tags
  private readonly log: (line: string) => void
  /** Each pipeline's secrets, sealed to this node (R1_SECRETS). */
  readonly secrets: SecretStore
  /** What running instances were given of them, and the redaction of what they emit. */
  private readonly instanceSecrets: InstanceSecrets
  /**
   * Instances whose bundle (code or shipped files) went missing since their last config: they could
   * not start without it, or an upload of it started them again (or came while they ran). The next
   * config command for their pipeline re-creates them even when their config is the same, so that a
   * deploy that uploads the bundle again gets their PLUGIN_CONFIG_OK.
   */
  private readonly bundleLost = new WeakSet<InstanceSupervisor>()
  /** Each instance's last answer of its plugin's `health` hook. */
  private readonly health = new WeakMap<InstanceSupervisor, {STATUS: HealthStatus; REASON?: string}>()

  private constructor(
    options: LocalNodeOptions,
    dataDir: string,
    private readonly throwAway: boolean,
  ) {
    this.address = options.identity?.address ?? options.address ?? '0xai_local'
    this.alias = options.alias ?? 'local'
    this.services = options.services
    this.dataDir = dataDir
    this.log = options.log ?? ((line) => process.stderr.write(`r1 node: ${line}\n`))
    this.bundles = new BundleStore(join(dataDir, 'bundles'), {...options.bundles, referenced: () => this.referencedBundles(), onWarning: this.log})
    this.store = throwAway ? undefined : new StateStore(dataDir)
    this.secrets = new SecretStore(throwAway ? undefined : dataDir)
    this.instanceSecrets = new InstanceSecrets(this.secrets, options.identity, this.alias)
    this.warningList = [...(options.warnings ?? [])]
    this.tags = options.tags ?? {}
    this.seq = options.startSeq ?? 0
    const env = {...(options.instanceEnv ?? (process.env.PATH ? {PATH: process.env.PATH} : {})), ...(options.serviceUrls ? servicesEnv(options.serviceUrls) : {})}
    this.supervisorOptions = {...defaultSupervisorOptions, ...options.supervisor, env, dataDir}
    this.workDir = options.workDir
    this.files = options.workDir ? undefined : new ShippedFiles(options.filesRoot ?? defaultFilesRoot(dataDir), this.bundles, env, () => instanceUser(this.supervisorOptions.runAs))
    this.historySize = options.historySize ?? 5
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000
    this.logRate = options.logRate ?? DEFAULT_LOG_RATE
    this.logLimits = new LogLimits(this.logRate, (path, dropped) => {
      this.notify(path.slice(1) as [string, string, string], NotificationCode.PLUGIN_LOG_DROPPED, `${dropped} log line(s) dropped: over ${this.logRate.perSecond} lines/s`, undefined, {DROPPED: dropped})
    }, {flushMs: options.logFlushMs})
  }

  /** Starts a node: loads persisted state (a corrupt state file is an error; nothing is overwritten) and starts every instance. */
  static async start(options: LocalNodeOptions = {}): Promise<LocalNode> {
    const dataDir = options.dataDir ? resolve(options.dataDir) : await mkdtemp(join(tmpdir(), 'r1-node-'))
    const node = new LocalNode(options, dataDir, !options.dataDir)
    await node.restore()
    if (node.heartbeatIntervalMs > 0) {
      node.heartbeatTimer = setInterval(() => {
        // a heartbeat that cannot be made this time is skipped, never the end of the node
        try {
          node.heartbeat()
        } catch (error) {
          node.log(`heartbeat skipped: ${(error as Error).message}`)
        }
      }, node.heartbeatIntervalMs)
      node.heartbeatTimer.unref()
    }
    return node
  }

  // ---- NodeCore

  lastSeq(): number {
    return this.seq
  }

  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Instance statuses, iterations and crashes as they happen (`r1 run --once`, start checks, tests). */
  onInstanceChange(listener: (change: InstanceChange) => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  execute<A extends Action>(action: A, payload: PayloadOf<A>, meta: CommandMeta): Promise<void> {
    return this.serialized(() => this.executeNow(action, payload, meta))
  }

  /** Runs `work` after every change queued before it (commands, bundle arrivals): one change at a time. */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work)
    this.chain = next.catch(() => undefined)
    return next
  }

  heartbeat(): HeartbeatEvent {
    let totalDisk = 0
    let availableDisk = 0
    try {
      const fs = statfsSync(this.dataDir)
      totalDisk = fs.blocks * fs.bsize
      availableDisk = fs.bavail * fs.bsize
    } catch {
      // a data dir on a filesystem without statfs reports 0
    }
    const activePlugins: ActivePlugin[] = []
    for (const [name, pipeline] of this.active) {
      for (const supervisor of pipeline.instances.values()) {
        const {spec, counters} = supervisor
        const delay = Number(spec.config.PROCESS_DELAY)
        activePlugins.push({
          STREAM_ID: name,
          SIGNATURE: spec.signature,
          INSTANCE_ID: spec.instanceId,
          STATUS: supervisor.status,
          FREQUENCY: delay > 0 ? 1 / delay : null,
          CURRENT_PROCESS_ITERATION: counters.iterations,
          TOTAL_PAYLOAD_COUNT: counters.payloads,
          RESTARTS: counters.restarts,
          INIT_TIMESTAMP: counters.initTime,
          EXEC_TIMESTAMP: counters.execTime,
          LAST_PAYLOAD_TIME: counters.lastPayloadTime,
          LAST_CONFIG_TIMESTAMP: counters.lastConfigTime,
          LAST_ERROR_TIME: counters.lastErrorTime,
          LAST_ERROR: this.instanceSecrets.redactText(spec, counters.lastError),
          ...(this.health.has(supervisor) ? {HEALTH: this.health.get(supervisor)} : {}),
        })
      }
    }
    const memoryNow = memory()
    return this.emit({
      EE_EVENT_TYPE: 'HEARTBEAT',
      EE_PAYLOAD_PATH: [this.alias, null, null, null],
      EE_ADDR: this.address,
      EE_ALIAS: this.alias,
      VERSION: packageVersion,
      UPTIME: (Date.now() - this.startedAt) / 1000,
      CPU_USED: this.cpu.percent(),
      MACHINE_MEMORY: memoryNow.machine,
      AVAILABLE_MEMORY: memoryNow.available,
      PROCESS_MEMORY: memoryNow.process,
      TOTAL_DISK: totalDisk,
      AVAILABLE_DISK: availableDisk,
      PIPELINES: [...this.active.keys()],
      ACTIVE_PLUGINS: activePlugins,
      ...(Object.keys(this.tags).length > 0 ? {R1_TAGS: this.tags} : {}),
      ...(this.heartbeatIntervalMs > 0 ? {R1_HEARTBEAT_INTERVAL: this.heartbeatIntervalMs / 1000} : {}),
      ...(this.warningList.length > 0 ? {R1_WARNINGS: [...this.warningList]} : {}),
    }) as HeartbeatEvent
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.heartbeatTimer)
    await this.chain
    await Promise.all([...this.supervisors()].map((s) => s.stop()))
    this.logLimits.close()
    if (this.throwAway) await rm(this.dataDir, {recursive: true, force: true})
  }

  // ---- beyond the contract: the server's bundle upload and state query, tests

  /** Whether an intact bundle is stored (a corrupt one is removed and reported missing, so a deploy uploads it again). */
  hasBundle(hash: string): boolean {
    return this.bundles.has(hash)
  }

  /**
   * Stores a bundle after checking that `bytes` hash to `hash` and fit the bundle quota (R1Error exit 4
   * otherwise). Instances left without a usable bundle (a corrupt one was removed) start again; the
   * config command that follows (a deploy sends one) re-creates every instance that loads it.
   */
  async putBundle(hash: string, bytes: Uint8Array): Promise<void> {
    // stored by this put, not by another that won the race to it (what was put twice was never missing)
    const stored = await this.bundles.put(hash, bytes)
    if (!stored || this.stopped) return
    // The instances there were when it was stored: a config queued meanwhile (another deploy carrying it
    // inline) starts its instances from the stored bundle, and they have nothing to catch up on. Taken on the
    // write's settling, before such a config (waiting on the same write) can make any: it has awaits to go.
    const before = new Set(this.supervisors())
    await this.serialized(async () => this.bundleArrived(hash, before))
  }

  /** Every instance of every running pipeline. */
  private *supervisors(): Iterable<InstanceSupervisor> {
    for (const pipeline of this.active.values()) yield* pipeline.instances.values()
  }

  /**
   * A bundle that was missing is stored again: instances that load it and could not run are re-created,
   * the others marked (only those among `before`, when given: the ones there were when it was stored).
   */
  private async bundleArrived(hash: string, before?: ReadonlySet<InstanceSupervisor>): Promise<void> {
    if (this.stopped) return
    for (const pipeline of this.active.values()) {
      for (const [key, supervisor] of pipeline.instances) {
        const {spec} = supervisor
        if (!this.usesBundle(spec, hash) || (before && !before.has(supervisor))) continue
        const stuck = (supervisor.status === 'error' || supervisor.status === 'invalid_config') && spec.config.DISABLED !== true
        if (!stuck) {
          this.bundleLost.add(supervisor) // it runs from what it loaded before; the next config reloads it
          continue
        }
        await supervisor.stop()
        // not announced: no command asked for it (the deploy's UPDATE_CONFIG re-creates it, announced)
        const revived = this.createInstance({...spec, announceConfig: false}, supervisor)
        pipeline.instances.set(key, revived)
        this.bundleLost.add(revived)
      }
    }
  }

  /** Whether the instance loads the bundle `hash` (its code or its shipped files). */
  private usesBundle(spec: InstanceSpec, hash: string): boolean {
    return spec.filesHash === hash || (spec.bundlePath !== undefined && spec.bundlePath === this.bundles.path(hash))
  }

  /** Problems found at start that an operator should see (also in heartbeats as R1_WARNINGS). */
  warnings(): string[] {
    return [...this.warningList]
  }

  /** Adds a problem to report in heartbeats (R1_WARNINGS) and through `warnings()`, and logs it. */
  addWarning(message: string): void {
    this.warningList.push(message)
    this.log(message)
  }

  /** Pipelines (active, then archived) with their instances' statuses. */
  state(): PipelineState[] {
    const out: PipelineState[] = []
    for (const [name, pipeline] of this.active) {
      out.push({
        name,
        version: pipeline.current.version,
        archived: false,
        config: pipeline.current.config,
        instances: [...pipeline.instances.values()].map((s) => ({
          pipeline: name,
          signature: s.spec.signature,
          instanceId: s.spec.instanceId,
          status: s.status,
          ...(s.pid ? {pid: s.pid} : {}),
          lastError: this.instanceSecrets.redactText(s.spec, s.counters.lastError),
          config: s.spec.config,
          counters: {...s.counters, lastError: this.instanceSecrets.redactText(s.spec, s.counters.lastError)},
        })),
      })
    }
    for (const [name, version] of this.archived) out.push({name, version: version.version, archived: true, config: version.config, instances: []})
    return out
  }

  /** Versions kept for rollback, oldest first. */
  versions(name: string): PipelineVersion[] {
    return [...(this.history.get(name) ?? [])]
  }

  /** The supervisor of one instance (tests and `r1 run --once` watch it). */
  instance(pipeline: string, signature: string, instanceId: string): InstanceSupervisor | undefined {
    return this.active.get(pipeline)?.instances.get(keyOf(signature, instanceId))
  }

  // ---- actions

  private async executeNow(action: string, payload: unknown, meta: CommandMeta): Promise<void> {
    // bounds first, the same for every action: nothing below walks an unbounded payload
    assertCommandLimits(action, payload)
    if (this.stopped) throw new R1Error('The node is stopping', ExitCode.UNREACHABLE, {code: 'NODE_STOPPING'})
    switch (action) {
      case 'UPDATE_CONFIG': {
        const {config, inline} = this.inlineBundles(payload)
        const parsed = this.parsePipeline(config, inline)
        await this.storeInline(inline)
        return this.updateConfig(parsed, meta)
      }
      case 'DELETE_CONFIG':
        return this.deleteConfig(pipelineNameOf(payload, action), meta)
      case 'ARCHIVE_CONFIG':
        return this.archiveConfig(pipelineNameOf(payload, action), meta)
      case 'UPDATE_PIPELINE_INSTANCE':
        return this.updateInstances([payload], meta)
      case 'BATCH_UPDATE_PIPELINE_INSTANCE': {
        const list = Array.isArray(payload) ? payload : (payload as {BATCH?: unknown} | null)?.BATCH
        if (!Array.isArray(list) || list.length === 0) throw rejected('BATCH_UPDATE_PIPELINE_INSTANCE needs a non-empty list of {NAME, SIGNATURE, INSTANCE_ID, INSTANCE_CONFIG}', 'BAD_PAYLOAD')
        return this.updateInstances(list, meta)
      }
      case 'PIPELINE_COMMAND':
        return this.pipelineCommand(payload, meta)
      case 'FULL_HEARTBEAT':
        this.heartbeat()
        return
      case 'R1_ROLLBACK':
        return this.rollback(payload, meta)
      case 'R1_RESTART':
        return this.restart(payload, meta)
      case 'R1_SECRETS':
        return this.storeSecrets(payload, meta)
      default:
        throw rejected(`Unknown action ${action}`, 'UNKNOWN_ACTION', 'Actions: UPDATE_CONFIG, DELETE_CONFIG, ARCHIVE_CONFIG, UPDATE_PIPELINE_INSTANCE, BATCH_UPDATE_PIPELINE_INSTANCE, PIPELINE_COMMAND, FULL_HEARTBEAT, R1_ROLLBACK, R1_RESTART')
    }
  }

  /**
   * An UPDATE_CONFIG's bundles carried inline (R1_BUNDLE_DATA: sha256 → base64), every one decoded and
   * checked against its hash and against what the config loads before anything is stored; and the config
   * without them.
   */
  private inlineBundles(payload: unknown): {config: unknown; inline: Map<string, Buffer>} {
    if (!payload || typeof payload !== 'object' || !('R1_BUNDLE_DATA' in payload)) return {config: payload, inline: new Map()}
    const {R1_BUNDLE_DATA: data, ...config} = payload as Record<string, unknown>
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw rejected('R1_BUNDLE_DATA must map bundle hashes to their base64 bytes', 'BAD_PAYLOAD')
    const loads = new Set(Object.values(bundleMap(config as PipelineConfig)))
    const inline = new Map<string, Buffer>()
    for (const [hash, text] of Object.entries(data)) {
      if (!loads.has(hash)) throw rejected(`R1_BUNDLE_DATA holds ${hash.slice(0, 12)}…, which pipeline ${String(config.NAME)} does not load; nothing stored`, 'BAD_PAYLOAD', 'Send inline only the bundles the config names in R1_BUNDLES or R1_FILES.')
      const bytes = typeof text === 'string' ? fromStandardBase64(text) : undefined
      if (!bytes) throw rejected(`R1_BUNDLE_DATA of ${hash.slice(0, 12)}… is not base64; nothing stored`, 'BAD_PAYLOAD')
      const actual = sha256Hex(bytes)
      if (actual !== hash) throw rejected(`R1_BUNDLE_DATA of ${hash.slice(0, 12)}… does not match its hash (the bytes hash to ${actual.slice(0, 12)}…); nothing stored`, 'BUNDLE_HASH_MISMATCH')
      inline.set(hash, bytes)
    }
    return {config, inline}
  }

  /** Stores a config's checked inline bundles (inside the command queue: one that arrives here is handled as an upload's would be). */
  private async storeInline(inline: ReadonlyMap<string, Buffer>): Promise<void> {
    for (const [hash, bytes] of inline) {
      if (await this.bundles.put(hash, bytes)) await this.bundleArrived(hash)
    }
  }

  /** The config, checked: its shape, its instances named once, every bundle it loads stored (or in `inline`, about to be). */
  private parsePipeline(payload: unknown, inline: ReadonlyMap<string, Buffer> = new Map()): PipelineConfig {
    const parsed = PipelineConfigSchema.safeParse(payload)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw rejected(`Not a pipeline config: ${issue.path.join('.') || '(root)'}: ${issue.message}`, 'BAD_PAYLOAD', 'UPDATE_CONFIG carries {NAME, TYPE, PLUGINS: [{SIGNATURE, INSTANCES: [{INSTANCE_ID, ...}]}]}')
    }
    const config = parsed.data
    const seen = new Set<string>()
    for (const plugin of config.PLUGINS) {
      for (const instance of plugin.INSTANCES) {
        const key = keyOf(plugin.SIGNATURE, instance.INSTANCE_ID)
        if (seen.has(key)) throw rejected(`Pipeline ${config.NAME}: instance ${plugin.SIGNATURE}/${instance.INSTANCE_ID} appears twice`, 'BAD_PAYLOAD')
        seen.add(key)
      }
      this.checkLoadable(config, plugin.SIGNATURE, inline)
    }
    return config
  }

  /** A project signature needs its bundle on this node before the config that uses it. */
  private checkLoadable(config: PipelineConfig, signature: string, inline: ReadonlyMap<string, Buffer> = new Map()): void {
    const has = (hash: string) => inline.has(hash) || this.bundles.has(hash)
    const files = (config.R1_FILES as Record<string, string> | undefined)?.[signature]
    if (files !== undefined && !has(files)) throw rejected(`Pipeline ${config.NAME}: the files of ${signature} (${String(files).slice(0, 12)}…) are not on this node`, 'BUNDLE_MISSING', 'Upload them first (R1_BUNDLE_PUT), then send the config again (r1 deploy does both).')
    if (isBuiltin(signature)) return
    const hash = (config.R1_BUNDLES as Record<string, string> | undefined)?.[signature]
    if (!hash) throw rejected(`Pipeline ${config.NAME}: signature ${signature} is not built in and R1_BUNDLES names no bundle for it`, 'UNKNOWN_SIGNATURE', 'Upload the plugin bundle and list it in R1_BUNDLES (r1 deploy does both).')
    if (!has(hash)) throw rejected(`Pipeline ${config.NAME}: bundle ${hash.slice(0, 12)}… for ${signature} is not on this node`, 'BUNDLE_MISSING', 'Upload the bundle first (R1_BUNDLE_UPLOAD), then send the config again.')
  }

  private async updateConfig(sent: PipelineConfig, meta: CommandMeta, info?: Record<string, unknown>, restoredFrom?: number): Promise<void> {
    // the message belongs to the version, not to the config: a stored config never carries it
    const {R1_MESSAGE: message, ...config} = sent
    const name = config.NAME
    const previousVersion = this.active.get(name)?.current.version ?? this.archived.get(name)?.version ?? this.history.get(name)?.at(-1)?.version ?? 0
    const version: PipelineVersion = {version: previousVersion + 1, config, appliedAt: iso(), ...provenance(meta, message), ...(restoredFrom === undefined ? {} : {restoredFrom})}
    if (restoredFrom === undefined) await this.gateUpdate(config, meta.hash)
    const before = this.recordOf(name)
    const after: PipelineRecord = {name, archived: false, current: version, history: this.withVersion(name, version)}
    await this.write([after]) // durable before anything changes; a failed write changes nothing
    let summary: string
    try {
      // a deploy's config (not a rollback) answers for the instances it leaves as they are too: a racing deploy planned them
      summary = await this.applyPipeline(version, meta.hash, true, restoredFrom === undefined)
    } catch (error) {
      await this.undo([{name, before}])
      throw error
    }
    this.archived.delete(name)
    this.history.set(name, after.history)
    this.collectBundles()
    this.notify([name, null, null], NotificationCode.PIPELINE_OK, `Pipeline ${name} v${version.version} applied (${summary})`, meta.hash, {VERSION: version.version, ...info})
  }

  /**
   * Creates, reconfigures, restarts and removes instances so that the pipeline matches `version`; with
   * `answerUnchanged`, each instance left as it is answers the command too (PLUGIN_CONFIG_OK once it runs).
   */
  private async applyPipeline(version: PipelineVersion, hash?: string, announce = true, answerUnchanged = false): Promise<string> {
    const {config} = version
    const existing = this.active.get(config.NAME)
    const instances = existing?.instances ?? new Map<string, InstanceSupervisor>()
    const wanted = new Map<string, {signature: string; config: Record<string, unknown>}>()
    for (const plugin of config.PLUGINS) {
      for (const instance of plugin.INSTANCES) wanted.set(keyOf(plugin.SIGNATURE, instance.INSTANCE_ID), {signature: plugin.SIGNATURE, config: instance})
    }
    let added = 0
    let changed = 0
    let restarted = 0
    let removed = 0
    const removals: Promise<void>[] = []
    for (const [key, supervisor] of instances) {
      if (wanted.has(key)) continue
      instances.delete(key)
      removals.push(supervisor.stop())
      removed++
    }
    await Promise.all(removals)
    for (const [key, want] of wanted) {
      const spec = this.specFor(config, want.signature, want.config, hash, announce)
      const current = instances.get(key)
      if (!current) {
        instances.set(key, this.createInstance(spec))
        added++
        continue
      }
      // new code or files, or its bundle went missing since its last config (it is loaded again, or at last)
      if (spec.bundlePath !== current.spec.bundlePath || spec.filesHash !== current.spec.filesHash || this.bundleLost.has(current)) {
        await current.stop()
        instances.set(key, this.createInstance(spec, current))
        restarted++
      } else if (JSON.stringify(spec.config) !== JSON.stringify(current.spec.config) || this.instanceSecrets.changed(current, spec)) {
        await this.reconfigureInstance(current, spec, hash)
        changed++
      } else if (hash && answerUnchanged) current.configUnchanged(hash)
    }
    this.active.set(config.NAME, {current: version, instances})
    return `${added} added, ${changed} reconfigured, ${restarted} restarted, ${removed} removed`
  }

  /**
   * Asks the running instances that `config` would change, replace or remove (their plugins'
   * `beforeUpdate`): a refusal throws (nothing changes), a deferral waits (bounded) and asks again.
   */
  private async gateUpdate(config: PipelineConfig, hash: string): Promise<void> {
    const existing = this.active.get(config.NAME)
    if (!existing) return
    const wanted = new Map(config.PLUGINS.flatMap((p) => p.INSTANCES.map((i) => [keyOf(p.SIGNATURE, i.INSTANCE_ID), {signature: p.SIGNATURE, config: i}] as const)))
    const gated: GatedInstance[] = []
    for (const [key, supervisor] of existing.instances) {
      const want = wanted.get(key)
      const {signature, instanceId} = supervisor.spec
      if (want) {
        let spec: InstanceSpec | undefined
        try {
          spec = this.specFor(config, want.signature, want.config)
        } catch {
          spec = undefined // it cannot load: applying says why
        }
        const same = spec && spec.bundlePath === supervisor.spec.bundlePath && spec.filesHash === supervisor.spec.filesHash && JSON.stringify(spec.config) === JSON.stringify(supervisor.spec.config)
        if (same || !spec) continue
      }
      const next = want ? applyDefaults(want.signature, want.config) : null
      gated.push({name: `${signature}/${instanceId}`, path: [config.NAME, signature, instanceId], next, ask: (n) => supervisor.beforeUpdate(n)})
    }
    await askBeforeUpdate(gated, (instance, seconds, reason) =>
      this.notify(instance.path, NotificationCode.PLUGIN_UPDATE_DEFERRED, `Update deferred by ${instance.name} for ${seconds} s${reason ? `: ${reason}` : ''}`, hash, {DEFER_SECONDS: seconds, ...(reason ? {REASON: reason} : {})}),
    )
  }

  private specFor(pipeline: PipelineConfig, signature: string, instance: Record<string, unknown>, hash?: string, announce = true): InstanceSpec {
    const config = applyDefaults(signature, instance)
    const bundleHash = isBuiltin(signature) ? undefined : (pipeline.R1_BUNDLES as Record<string, string> | undefined)?.[signature]
    const filesHash = (pipeline.R1_FILES as Record<string, string> | undefined)?.[signature]
    return {
      pipeline: pipeline.NAME,
      signature,
      instanceId: String(instance.INSTANCE_ID),
      config,
      ...(isBuiltin(signature) ? {builtin: signature} : {}),
      ...(bundleHash ? {bundlePath: this.bundles.path(bundleHash)} : {}),
      ...(filesHash ? {filesHash, ...(this.files ? {filesDir: this.files.pathFor(filesHash)} : {})} : {}),
      node: {address: this.address, alias: this.alias},
      announceConfig: announce,
      ...(hash ? {configHash: hash} : {}),
      exceptionBackoff: this.supervisorOptions.exceptionBackoff,
      baseEnv: this.supervisorOptions.env,
    }
  }

  /** Why an instance cannot start as configured, or undefined. */
  private invalidReason(spec: InstanceSpec): string | undefined {
    if (spec.builtin) {
      const {INSTANCE_ID: _id, ...config} = spec.config
      const problems = checkInstanceConfig(pluginSpec(spec.builtin)!, config)
      if (problems.length > 0) return problems.map((p) => `${[spec.instanceId, ...p.path].join('.')}: ${p.message}`).join('; ')
      return undefined
    }
    if (!spec.bundlePath || !this.bundles.has(basename(spec.bundlePath, '.mjs'))) return `no intact bundle for ${spec.signature} on this node (upload it again: r1 deploy)`
    return undefined
  }

  private createInstance(spec: InstanceSpec, replacing?: InstanceSupervisor): InstanceSupervisor {
    const path: PayloadPath = [this.alias, spec.pipeline, spec.signature, spec.instanceId]
    const supervisor: InstanceSupervisor = new InstanceSupervisor(spec, this.optionsFor(spec), (event) => {
      // the plugin's last health answer, for heartbeats
      if (event.kind === 'notification' && event.code === NotificationCode.PLUGIN_HEALTH) {
        const info = event.info as {HEALTH: HealthStatus; REASON?: string}
        this.health.set(supervisor, {STATUS: info.HEALTH, ...(info.REASON === undefined ? {} : {REASON: info.REASON})})
      }
      this.onInstanceEvent(path, event)
    })
    if (replacing) Object.assign(supervisor.counters, replacing.counters)
    this.instanceSecrets.remember(supervisor, spec)
    const invalid = this.invalidReason(spec)
    if (invalid) {
      supervisor.markInvalid(invalid)
      if (!spec.builtin) this.bundleLost.add(supervisor) // its bundle: the only reason a project plugin is invalid here
      this.notify(path.slice(1) as [string, string, string], NotificationCode.PLUGIN_CONFIG_FAILED, `Invalid instance config: ${invalid}`, spec.configHash, undefined, NotificationType.ABNORMAL)
    } else if (spec.config.DISABLED !== true) {
      const lacking = this.lackingSecrets(supervisor, spec)
      if (lacking) this.failForSecrets(supervisor, spec, lacking, spec.configHash)
      else this.startInstance(supervisor, path)
    }
    return supervisor
  }

  /** Starts an instance once the files its plugin ships are unpacked and set up (a failed setup leaves it in `error`). */
  private startInstance(supervisor: InstanceSupervisor, path: PayloadPath): void {
    const {spec} = supervisor
    if (!this.files || !spec.filesHash) return supervisor.start()
    supervisor.preparing()
    this.files.prepare(spec.filesHash, (level, text, cut) => this.pluginLog(path, level, text, undefined, cut)).then(
      () => {
        // removed, replaced or stopped meanwhile: nothing to start
        if (!this.stopped && supervisor.status === 'starting' && this.instance(spec.pipeline, spec.signature, spec.instanceId) === supervisor) supervisor.start()
      },
      (error: Error) => {
        supervisor.fail(error.message)
        // a files bundle that is gone (or was corrupt, and removed by this check): uploaded again by the next deploy
        if (!this.bundles.has(spec.filesHash!)) this.bundleLost.add(supervisor)
        this.notify(path.slice(1) as [string, string, string], NotificationCode.PLUGIN_CONFIG_FAILED, `Instance cannot start: ${error.message}`, spec.configHash, undefined, NotificationType.ABNORMAL)
      },
    )
  }

  private async reconfigureInstance(supervisor: InstanceSupervisor, spec: InstanceSpec, hash?: string): Promise<void> {
    const wasDisabled = supervisor.spec.config.DISABLED === true
    const disabled = spec.config.DISABLED === true
    if (disabled) {
      supervisor.reconfigure(spec.config, hash)
      await supervisor.stop()
      return
    }
    const invalid = this.invalidReason(spec)
    if (invalid) {
      const path: [string, string, string] = [spec.pipeline, spec.signature, spec.instanceId]
      this.notify(path, NotificationCode.PLUGIN_CONFIG_FAILED, `Invalid instance config: ${invalid}`, hash, undefined, NotificationType.ABNORMAL)
      return
    }
    const waiting = this.instanceSecrets.isWaiting(supervisor)
    const lacking = this.lackingSecrets(supervisor, spec)
    if (lacking) {
      await supervisor.stop()
      this.failForSecrets(supervisor, spec, lacking, hash)
      return
    }
    supervisor.reconfigure(spec.config, hash)
    if (wasDisabled || waiting || supervisor.status === 'invalid_config' || supervisor.status === 'stopped') this.startInstance(supervisor, [this.alias, spec.pipeline, spec.signature, spec.instanceId])
  }

  // ---- secrets

  /** R1_SECRETS {NAME, SECRETS}: the pipeline's sealed values, stored as received (only ever sent encrypted). */
  private async storeSecrets(payload: unknown, meta: CommandMeta): Promise<void> {
    if (meta.encrypted !== true) throw rejected('R1_SECRETS is accepted only encrypted to this node (EE_IS_ENCRYPTED)', 'ENCRYPTION_REQUIRED')
    const parsed = SecretsSchema.safeParse(payload)
    if (!parsed.success) throw rejected(`R1_SECRETS needs {NAME, SECRETS: {NAME: {SENDER, DATA}}}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, 'BAD_PAYLOAD')
    const {NAME: name, SECRETS: sealed} = parsed.data
    // durable before anything changes; a failed write changes nothing
    await this.secrets.set(name, sealed).catch((error: unknown) => {
      throw stateWriteError(error)
    })
    // running instances whose values changed get them now (a config that follows may change more)
    for (const supervisor of this.active.get(name)?.instances.values() ?? []) {
      const {spec} = supervisor
      if (supervisor.status === 'invalid_config' || !this.instanceSecrets.changed(supervisor, spec)) continue
      if (this.instanceSecrets.missing(spec).length > 0) continue
      await this.reconfigureInstance(supervisor, spec, meta.hash)
    }
    const names = Object.keys(sealed).sort()
    this.notify([name, null, null], NotificationCode.PIPELINE_OK, `Secrets of pipeline ${name} stored: ${names.join(', ') || 'none'}`, meta.hash, {SECRETS: names})
  }

  /** The secrets `spec` refers to that this node cannot open (undefined: none); records what the instance runs with. */
  private lackingSecrets(supervisor: InstanceSupervisor, spec: InstanceSpec): string[] | undefined {
    this.instanceSecrets.remember(supervisor, spec)
    const missing = this.instanceSecrets.missing(spec)
    this.instanceSecrets.setWaiting(supervisor, missing.length > 0)
    return missing.length > 0 ? missing : undefined
  }

  /** A (stopped) instance that lacks secrets: `error`, and a notification naming them, never a value. */
  private failForSecrets(supervisor: InstanceSupervisor, spec: InstanceSpec, missing: string[], hash?: string): void {
    const message = `Secret${missing.length === 1 ? '' : 's'} ${missing.join(', ')} not set on this node for pipeline ${spec.pipeline}: run \`r1 secrets set ${missing[0]} --target <this node>\`, then \`r1 deploy\``
    supervisor.fail(message)
    this.notify([spec.pipeline, spec.signature, spec.instanceId], NotificationCode.PLUGIN_CONFIG_FAILED, `Instance cannot start: ${message}`, hash, {MISSING_SECRETS: missing}, NotificationType.ABNORMAL)
  }

  private optionsFor(spec: InstanceSpec): SupervisorOptions {
    const options = {...this.supervisorOptions}
    const cap = Number(spec.config.RESTART_BACKOFF_MAX)
    if (Number.isFinite(cap) && cap > 0) options.restartCapMs = Math.min(options.restartCapMs, cap * 1000)
    const grace = Number(spec.config.SHUTDOWN_TIMEOUT)
    if (Number.isFinite(grace) && grace >= 0) options.graceMs = grace * 1000
    // a plugin whose process() legitimately runs long declares PROCESS_TIMEOUT (seconds) in its config
    const processTimeout = Number(spec.config.PROCESS_TIMEOUT)
    if (Number.isFinite(processTimeout) && processTimeout > 0) options.processTimeoutMs = processTimeout * 1000
    if (this.workDir) options.cwd = this.workDir
    options.resolveConfig = (config) => this.instanceSecrets.resolve(spec, config)
    return options
  }

  private async deleteConfig(name: string, meta: CommandMeta): Promise<void> {
    const pipeline = this.active.get(name)
    if (!pipeline && !this.archived.has(name)) {
      // secrets sent for a pipeline whose config never arrived: removing them is all there is to do
      if (!this.secrets.has(name)) throw this.unknownPipeline(name)
      await this.secrets.remove(name).catch((error: unknown) => {
        throw stateWriteError(error)
      })
      this.notify([name, null, null], NotificationCode.PIPELINE_DELETE_OK, `Secrets of pipeline ${name} deleted (it had no config)`, meta.hash)
      return
    }
    // durable before anything changes; a failed removal changes nothing
    await this.store?.remove(name).catch((error: unknown) => {
      throw stateWriteError(error)
    })
    await this.secrets.remove(name).catch((error: unknown) => this.log(`cannot remove the secrets of pipeline ${name}: ${(error as Error).message}`))
    this.active.delete(name)
    this.archived.delete(name)
    this.history.delete(name)
    if (pipeline) await Promise.all([...pipeline.instances.values()].map((s) => s.stop()))
    this.collectBundles()
    this.notify([name, null, null], NotificationCode.PIPELINE_DELETE_OK, `Pipeline ${name} deleted`, meta.hash)
  }

  private async archiveConfig(name: string, meta: CommandMeta): Promise<void> {
    const pipeline = this.active.get(name)
    if (!pipeline) throw this.unknownPipeline(name)
    await this.write([{name, archived: true, current: pipeline.current, history: this.history.get(name) ?? [pipeline.current]}])
    this.active.delete(name)
    this.archived.set(name, pipeline.current)
    await Promise.all([...pipeline.instances.values()].map((s) => s.stop()))
    this.notify([name, null, null], NotificationCode.PIPELINE_ARCHIVE_OK, `Pipeline ${name} archived (v${pipeline.current.version} kept for rollback)`, meta.hash)
  }

  private async updateInstances(items: unknown[], meta: CommandMeta): Promise<void> {
    // check every item first: a batch applies whole or not at all
    const parsed = items.map((item) => this.parseInstanceUpdate(item))
    const next = new Map<string, PipelineRecord>()
    const commands: Array<() => void> = []
    for (const update of parsed) {
      if (Object.keys(update.config).length > 0 || !update.exists) {
        const base = next.get(update.name) ?? this.recordOf(update.name)!
        const config = structuredClone(base.current.config)
        let plugin = config.PLUGINS.find((p) => p.SIGNATURE === update.signature)
        if (!plugin) {
          plugin = {SIGNATURE: update.signature, INSTANCES: []}
          config.PLUGINS.push(plugin)
        }
        const index = plugin.INSTANCES.findIndex((i) => i.INSTANCE_ID === update.instanceId)
        const merged = {...(index >= 0 ? plugin.INSTANCES[index] : {}), ...update.config, INSTANCE_ID: update.instanceId}
        if (index >= 0) plugin.INSTANCES[index] = merged
        else plugin.INSTANCES.push(merged)
        const message = parsed.find((u) => u.name === update.name && u.message !== undefined)?.message
        const version: PipelineVersion = {version: base.current.version + 1, config, appliedAt: iso(), ...provenance(meta, message)}
        next.set(update.name, {name: update.name, archived: false, current: version, history: [...base.history, version].slice(-this.historySize)})
      }
      if (update.command) {
        const {name, params} = update.command
        commands.push(() => void this.instance(update.name, update.signature, update.instanceId)?.command(name, params, meta.hash))
      }
    }
    for (const after of next.values()) await this.gateUpdate(after.current.config, meta.hash)
    const changes = [...next.values()].map((after) => ({name: after.name, before: this.recordOf(after.name), after}))
    await this.write(changes.map((c) => c.after)) // durable before anything changes; a failed write changes nothing
    try {
      for (const {after} of changes) await this.applyPipeline(after.current, meta.hash)
    } catch (error) {
      await this.undo(changes)
      throw error
    }
    for (const {name, after} of changes) this.history.set(name, after.history)
    if (changes.length > 0) this.collectBundles()
    for (const send of commands) send()
  }

  private parseInstanceUpdate(item: unknown): {name: string; signature: string; instanceId: string; exists: boolean; config: Record<string, unknown>; command?: {name: string; params: unknown}; message?: string} {
    const update = item as {NAME?: unknown; SIGNATURE?: unknown; INSTANCE_ID?: unknown; INSTANCE_CONFIG?: unknown; R1_MESSAGE?: unknown} | null
    if (!update || typeof update.NAME !== 'string' || typeof update.SIGNATURE !== 'string' || typeof update.INSTANCE_ID !== 'string') {
      throw rejected('UPDATE_PIPELINE_INSTANCE needs {NAME, SIGNATURE, INSTANCE_ID, INSTANCE_CONFIG}', 'BAD_PAYLOAD')
    }
    const instanceConfig = update.INSTANCE_CONFIG ?? {}
    if (typeof instanceConfig !== 'object' || Array.isArray(instanceConfig)) throw rejected('INSTANCE_CONFIG must be an object of UPPERCASE config keys', 'BAD_PAYLOAD')
    const pipeline = this.active.get(update.NAME)
    if (!pipeline) throw this.unknownPipeline(update.NAME)
    const config: Record<string, unknown> = {}
    let command: {name: string; params: unknown} | undefined
    for (const [key, value] of Object.entries(instanceConfig as Record<string, unknown>)) {
      if (key.toUpperCase() === 'INSTANCE_COMMAND') command = parseInstanceCommand(value)
      else config[key.toUpperCase()] = value
    }
    const exists = pipeline.instances.has(keyOf(update.SIGNATURE, update.INSTANCE_ID))
    if (!exists) this.checkLoadable(pipeline.current.config, update.SIGNATURE)
    if (!exists && command && Object.keys(config).length === 0) {
      throw rejected(`No instance ${update.SIGNATURE}/${update.INSTANCE_ID} in pipeline ${update.NAME} for the command`, 'UNKNOWN_INSTANCE', 'Check the instance id with `r1 status`.')
    }
    const message = typeof update.R1_MESSAGE === 'string' ? update.R1_MESSAGE : undefined
    return {name: update.NAME, signature: update.SIGNATURE, instanceId: update.INSTANCE_ID, exists, config, ...(command ? {command} : {}), ...(message === undefined ? {} : {message})}
  }

  /** PIPELINE_COMMAND {NAME, PIPELINE_COMMAND: {INPUT: data}} feeds `ctx.inputs` of every instance of the pipeline. */
  private async pipelineCommand(payload: unknown, meta: CommandMeta): Promise<void> {
    const name = pipelineNameOf(payload, 'PIPELINE_COMMAND')
    const pipeline = this.active.get(name)
    if (!pipeline) throw this.unknownPipeline(name)
    const command = (payload as {PIPELINE_COMMAND?: unknown}).PIPELINE_COMMAND as Record<string, unknown> | undefined
    const input = command && typeof command === 'object' ? (command.INPUT ?? command.DATA) : undefined
    if (input === undefined) throw rejected('PIPELINE_COMMAND needs {NAME, PIPELINE_COMMAND: {INPUT: <data>}}', 'BAD_PAYLOAD')
    for (const supervisor of pipeline.instances.values()) supervisor.input(input)
    this.notify([name, null, null], NotificationCode.PIPELINE_DATA_OK, `Input delivered to ${pipeline.instances.size} instance(s) of ${name}`, meta.hash)
  }

  private async rollback(payload: unknown, meta: CommandMeta): Promise<void> {
    const name = pipelineNameOf(payload, 'R1_ROLLBACK')
    const wantedVersion = (payload as {VERSION?: unknown} | null)?.VERSION
    const versions = this.history.get(name) ?? []
    if (versions.length === 0) throw this.unknownPipeline(name)
    const currentVersion = this.active.get(name)?.current.version
    let target: PipelineVersion | undefined
    if (wantedVersion === undefined || wantedVersion === null) {
      // the version before the running one; for an archived pipeline, the archived one
      target = currentVersion === undefined ? versions.at(-1) : [...versions].reverse().find((v) => v.version < currentVersion)
    } else {
      target = versions.find((v) => v.version === Number(wantedVersion) || (typeof wantedVersion === 'string' && v.config.R1_VERSION === wantedVersion))
    }
    if (!target) {
      throw rejected(`No version ${wantedVersion ?? 'before the current one'} of pipeline ${name} to roll back to`, 'UNKNOWN_VERSION', `Kept versions: ${versions.map((v) => v.version).join(', ')}`)
    }
    this.parsePipeline(target.config)
    await this.updateConfig(target.config, meta, {ROLLBACK_TO: target.version}, target.version)
  }

  /** R1_RESTART: every instance of a running pipeline, or one, stopped politely and started again in a new process. */
  private async restart(payload: unknown, meta: CommandMeta): Promise<void> {
    const name = pipelineNameOf(payload, 'R1_RESTART')
    const {INSTANCE_ID: instanceId, SIGNATURE: signature} = (payload ?? {}) as {INSTANCE_ID?: string; SIGNATURE?: string}
    const pipeline = this.active.get(name)
    if (!pipeline) {
      if (this.archived.has(name)) throw rejected(`Pipeline ${name} is stopped on node ${this.alias}: nothing to restart`, 'PIPELINE_STOPPED', `Start it instead: r1 pipelines start ${name}`)
      throw this.unknownPipeline(name)
    }
    const chosen = [...pipeline.instances.values()].filter((s) => (instanceId === undefined || s.spec.instanceId === instanceId) && (signature === undefined || s.spec.signature === signature))
    if (chosen.length === 0) {
      const ids = [...pipeline.instances.values()].map((s) => `${s.spec.signature}/${s.spec.instanceId}`)
      throw rejected(`No instance ${signature ? `${signature}/` : ''}${instanceId} in pipeline ${name}`, 'UNKNOWN_INSTANCE', `Instances there: ${ids.join(', ') || 'none'}`)
    }
    if (instanceId !== undefined && chosen.length > 1) throw rejected(`Instance ${instanceId} of pipeline ${name} exists under several signatures (${chosen.map((s) => s.spec.signature).join(', ')})`, 'AMBIGUOUS_INSTANCE', 'Name one with SIGNATURE.')
    // disabled or misconfigured instances have no process to restart
    const restartable = chosen.filter((s) => s.spec.config.DISABLED !== true && s.status !== 'invalid_config')
    await Promise.all(restartable.map((s) => s.stop()))
    for (const supervisor of restartable) {
      supervisor.counters.restarts++
      this.startInstance(supervisor, [this.alias, name, supervisor.spec.signature, supervisor.spec.instanceId])
    }
    const restarted = restartable.map((s) => `${s.spec.signature}/${s.spec.instanceId}`)
    this.notify([name, null, null], NotificationCode.PIPELINE_OK, `Pipeline ${name}: ${restarted.length} instance(s) restarted`, meta.hash, {RESTARTED: restarted})
  }

  private unknownPipeline(name: string): R1Error {
    const names = [...this.active.keys(), ...this.archived.keys()]
    return rejected(`No pipeline ${name} on node ${this.alias}`, 'UNKNOWN_PIPELINE', names.length > 0 ? `Pipelines here: ${names.join(', ')}` : 'This node runs no pipeline.')
  }

  /** The versions kept for `name` once `version` is added (the oldest beyond historySize dropped). */
  private withVersion(name: string, version: PipelineVersion): PipelineVersion[] {
    return [...(this.history.get(name) ?? []), version].slice(-this.historySize)
  }

  /** What the node keeps about `name` now (undefined: no such pipeline). */
  private recordOf(name: string): PipelineRecord | undefined {
    const active = this.active.get(name)?.current
    const current = active ?? this.archived.get(name)
    if (!current) return undefined
    return {name, archived: !active, current, history: this.history.get(name) ?? [current]}
  }

  /** Hashes of every bundle a kept version (current, archived, history) loads: what bundle collection keeps. */
  private referencedBundles(): Set<string> {
    const hashes = new Set<string>()
    const add = (version: PipelineVersion) => {
      for (const hash of Object.values(bundleMap(version.config))) if (typeof hash === 'string') hashes.add(hash)
    }
    for (const pipeline of this.active.values()) add(pipeline.current)
    for (const version of this.archived.values()) add(version)
    for (const versions of this.history.values()) versions.forEach(add)
    return hashes
  }

  private collectBundles(): void {
    try {
      this.bundles.collect()
    } catch (error) {
      this.log(`bundle collection failed: ${(error as Error).message}`)
    }
  }

  // ---- events

  /** Numbers and stamps `event` in place (the event path builds each event once) and hands it to every listener; `at`: when it happened, if earlier than now. */
  private emit(event: Omit<NodeEvent, 'EE_MESSAGE_SEQ' | 'EE_TIMESTAMP'> & Record<string, unknown>, at?: number): NodeEvent {
    const full = event as unknown as NodeEvent & Record<string, unknown>
    full.EE_MESSAGE_SEQ = ++this.seq
    full.EE_TIMESTAMP = isoAt(at)
    const json = Buffer.from(canonicalJson(full))
    for (const listener of this.listeners) {
      try {
        listener(full, json)
      } catch (error) {
        process.stderr.write(`r1 node: an event listener threw: ${(error as Error).message}\n`)
      }
    }
    return full
  }

  private notify(path: [string | null, string | null, string | null], code: number, message: string, hash?: string, info?: unknown, type: string = code < 0 ? NotificationType.ABNORMAL : NotificationType.NORMAL): NotificationEvent {
    return this.emit({
      EE_EVENT_TYPE: 'NOTIFICATION',
      EE_PAYLOAD_PATH: [this.alias, ...path],
      NOTIFICATION_TYPE: type,
      NOTIFICATION_CODE: code,
      NOTIFICATION: message,
      ...(hash ? {COMMAND_HASH: hash} : {}),
      ...(info === undefined ? {} : {INFO: info}),
    }) as NotificationEvent
  }

  /**
   * The one place a plugin's log line (ctx.log, console.*, a process app's output, a files setup) becomes a
   * LOG event: cut to MAX_LINE_CHARS (`cut`: characters already cut where it was read), within the
   * instance's log rate (what is dropped is counted, then reported: src/runtime/log-limit.ts).
   */
  private pluginLog(path: PayloadPath, level: LogLevel, text: string, at?: number, cut = 0): void {
    if (!this.logLimits.take(path.join('\u0000'), path)) return
    this.emit({EE_EVENT_TYPE: 'LOG', EE_PAYLOAD_PATH: path, LEVEL: level, MESSAGE: cutLine(text, cut)}, at)
  }

  private onInstanceEvent(path: PayloadPath, raw: SupervisorEvent): void {
    // what an instance says never carries its secrets' values: they become [redacted:NAME]
    const event = this.instanceSecrets.redactEvent(path, raw)
    if (event.kind === 'status' || event.kind === 'iteration' || event.kind === 'crash') {
      for (const listener of this.changeListeners) listener({path, ...event})
    }
    // a stopped (deleted, archived, replaced) instance: its pending log drops are reported, its limit removed
    if (event.kind === 'status' && event.status === 'stopped') this.logLimits.retire(path.join('\u0000'))
    if (this.stopped && event.kind !== 'log') return
    switch (event.kind) {
      case 'payload': {
        // the data came fresh off the IPC channel and nobody else holds it: the event is built on it
        const data = event.data as Record<string, unknown>
        data.EE_EVENT_TYPE = 'PAYLOAD'
        data.EE_PAYLOAD_PATH = path
        this.emit(data as Omit<NodeEvent, 'EE_MESSAGE_SEQ' | 'EE_TIMESTAMP'>)
        break
      }
      case 'notification':
        this.emit({
          EE_EVENT_TYPE: 'NOTIFICATION',
          EE_PAYLOAD_PATH: path,
          NOTIFICATION_TYPE: event.type,
          ...(event.code === undefined ? {} : {NOTIFICATION_CODE: event.code}),
          NOTIFICATION: event.message,
          ...(event.commandHash ? {COMMAND_HASH: event.commandHash} : {}),
          ...(event.info === undefined ? {} : {INFO: event.info}),
        })
        break
      case 'crash':
        this.emit({
          EE_EVENT_TYPE: 'NOTIFICATION',
          EE_PAYLOAD_PATH: path,
          NOTIFICATION_TYPE: NotificationType.EXCEPTION,
          NOTIFICATION_CODE: NotificationCode.PLUGIN_CRASHED,
          NOTIFICATION: `Instance crashed: ${event.error}; restart ${event.restarts} in ${event.restartInMs / 1000} s`,
          INFO: {RESTARTS: event.restarts, RESTART_IN: event.restartInMs / 1000},
        })
        break
      case 'log':
        this.pluginLog(path, event.level, event.text, event.time, event.cut)
        break
      case 'status':
      case 'iteration':
        break
    }
  }

  // ---- persistence

  /**
   * Writes the records durably, one file per pipeline. If one write fails, the ones before it are put
   * back and the error is thrown: the caller has changed nothing yet.
   */
  private async write(records: PipelineRecord[]): Promise<void> {
    if (!this.store) return
    const done: PipelineRecord[] = []
    try {
      for (const record of records) {
        await this.store.write(record)
        done.push(record)
      }
    } catch (error) {
      await this.undoFiles(done.map((r) => ({name: r.name, before: this.recordOf(r.name)})))
      throw stateWriteError(error)
    }
  }

  private async undoFiles(changes: Array<{name: string; before: PipelineRecord | undefined}>): Promise<void> {
    if (!this.store) return
    for (const {name, before} of changes) {
      try {
        if (before) await this.store.write(before)
        else await this.store.remove(name)
      } catch (error) {
        this.log(`cannot put back the stored state of pipeline ${name} after a failed change: ${(error as Error).message}; it may come back changed after a restart`)
      }
    }
  }

  /** Undoes written changes whose apply failed: files back as they were, instances back to the previous version. */
  private async undo(changes: Array<{name: string; before: PipelineRecord | undefined}>): Promise<void> {
    await this.undoFiles(changes)
    for (const {name, before} of changes) {
      try {
        if (before && !before.archived) {
          await this.applyPipeline(before.current, undefined, false)
        } else {
          const pipeline = this.active.get(name)
          this.active.delete(name)
          if (pipeline) await Promise.all([...pipeline.instances.values()].map((s) => s.stop()))
        }
      } catch (error) {
        this.log(`cannot restore pipeline ${name} after a failed change: ${(error as Error).message}`)
      }
    }
  }

  private async restore(): Promise<void> {
    if (!this.store) return
    await this.secrets.load()
    const records = await this.store.load()
    for (const record of records) {
      const problem = commandLimitProblem('DELETE_CONFIG', record.name)
      if (problem) {
        this.addWarning(`pipeline ${JSON.stringify(record.name.slice(0, 60))} has a name commands cannot address (${problem.message}); to remove it, stop the node and delete ${this.store.fileOf(record.name)}`)
      }
      this.history.set(record.name, record.history.length > 0 ? record.history : [record.current])
      if (record.archived) this.archived.set(record.name, record.current)
    }
    for (const record of records) {
      // restored instances announce nothing: no command is waiting for a confirmation
      if (!record.archived) await this.applyPipeline(record.current, undefined, false)
    }
    this.collectBundles() // what earlier runs left behind
  }
}

/** Who made a version and why (kept with it, shown by `r1 pipelines history`). */
function provenance(meta: CommandMeta, message: unknown): Pick<PipelineVersion, 'sender' | 'message'> {
  return {...(meta.sender ? {sender: meta.sender} : {}), ...(typeof message === 'string' && message !== '' ? {message: message.slice(0, 500)} : {})}
}

function stateWriteError(error: unknown): R1Error {
  const code = (error as NodeJS.ErrnoException)?.code
  return new R1Error(`Cannot store the change in the node's data dir (${code ?? (error as Error)?.message ?? String(error)}); nothing was changed`, ExitCode.FAILURE, {
    code: code === 'ENOSPC' || code === 'EFBIG' || code === 'EDQUOT' ? 'STATE_DISK_FULL' : 'STATE_WRITE_FAILED',
    hint: 'Free disk space in the node\'s data dir (or fix its permissions), then send the command again.',
    cause: error,
  })
}

/** INSTANCE_COMMAND as a name (`"RESET"`), or `{COMMAND|NAME, PARAMS?, ...}`: the other keys are the params. */
function parseInstanceCommand(value: unknown): {name: string; params: unknown} {
  if (typeof value === 'string' && value !== '') return {name: value, params: undefined}
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const {COMMAND, NAME, PARAMS, ...rest} = value as Record<string, unknown>
    const name = COMMAND ?? NAME
    if (typeof name === 'string' && name !== '') return {name, params: PARAMS ?? (Object.keys(rest).length > 0 ? rest : undefined)}
  }
  throw rejected('INSTANCE_COMMAND must be a command name or {COMMAND, PARAMS}', 'BAD_PAYLOAD')
}

