import {watch, type FSWatcher} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, dirname, join, relative, sep} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import type {Diagnostic} from '../manifest/diagnostics.js'
import type {Manifest} from '../manifest/schema.js'
import {NotificationCode} from '../protocol/codes.js'
import type {NodeEvent} from '../protocol/events.js'
import type {PipelineConfig} from '../protocol/pipeline.js'
import type {Session} from '../session/session.js'
import {bundleEntry, type Bundle} from './bundle.js'
import {isBuiltin} from './builtins/index.js'
import type {InstanceChange, LocalNode, LocalNodeOptions} from './node.js'
import type {NodeServerHandle} from './serve.js'

/**
 * `r1 run` without oclif: validate a project, bundle its plugins, run its pipelines on an embedded
 * node, re-apply what changed on edits (`--watch`).
 */

export interface ValidatedProject {
  dir: string
  file: string
  manifest: Manifest
  /** Pipelines to run (all when none were named). */
  pipelines: string[]
  /** The pipelines named by the user (empty: all, including ones added while watching). */
  requested: string[]
}

export interface BuiltProject extends ValidatedProject {
  /** signature → bundle, for the project signatures the pipelines use. */
  bundles: Map<string, Bundle>
  configs: PipelineConfig[]
}

/** Validates config.yaml; invalid → R1Error exit 3 whose message is `r1 validate`'s output and `details` the diagnostics. */
export async function validateForRun(dir: string, pipelines: string[] = [], options: {color?: boolean} = {}): Promise<ValidatedProject> {
  const {validateProject, formatDiagnostics, formatSummary} = await import('../manifest/index.js')
  const result = await validateProject(dir)
  if (!result.valid || !result.manifest) {
    const text = [formatDiagnostics(result, {color: options.color}), formatSummary(result, {color: options.color})].filter(Boolean).join('\n')
    throw new R1Error(`${text}`, ExitCode.INVALID_CONFIG, {
      code: 'INVALID_CONFIG',
      hint: 'Fix config.yaml (`r1 validate` shows the same), then run again.',
      details: {file: result.file, diagnostics: result.diagnostics satisfies Diagnostic[]},
    })
  }
  const names = Object.keys(result.manifest.pipelines)
  const unknown = pipelines.filter((name) => !names.includes(name))
  if (unknown.length > 0) {
    throw new R1Error(`No pipeline ${unknown.join(', ')} in ${relative(process.cwd(), result.file) || result.file}`, ExitCode.USAGE, {
      code: 'UNKNOWN_PIPELINE',
      hint: names.length > 0 ? `Pipelines: ${names.join(', ')}` : 'config.yaml defines no pipeline.',
    })
  }
  if (names.length === 0) throw new R1Error(`${result.file} defines no pipeline to run`, ExitCode.INVALID_CONFIG, {code: 'NO_PIPELINE', hint: 'Add one under `pipelines:`.'})
  return {dir: result.dir, file: result.file, manifest: result.manifest, pipelines: pipelines.length > 0 ? pipelines : names, requested: pipelines}
}

/** Bundles the project plugins the selected pipelines use and compiles the pipeline configs. */
export async function buildForRun(project: ValidatedProject): Promise<BuiltProject> {
  const {compileManifest} = await import('../manifest/index.js')
  const signatures = new Set<string>()
  for (const name of project.pipelines) {
    for (const instance of Object.values(project.manifest.pipelines[name].instances)) if (!isBuiltin(instance.plugin)) signatures.add(instance.plugin)
  }
  const bundles = new Map<string, Bundle>()
  await Promise.all(
    [...signatures].map(async (signature) => {
      bundles.set(signature, await bundleEntry(project.manifest.plugins[signature]!.entry!, {projectDir: project.dir}))
    }),
  )
  const hashes = Object.fromEntries([...bundles].map(([signature, bundle]) => [signature, bundle.hash]))
  const configs = compileManifest(project.manifest, {pipelines: project.pipelines, bundles: hashes})
  return {...project, bundles, configs}
}

export interface ApplyOutcome {
  applied: string[]
  deleted: string[]
  unchanged: string[]
}

export interface WatchOutcome extends Partial<ApplyOutcome> {
  error?: R1Error | Error
}

export interface ProjectRunOptions {
  /** Keep the node's state here; default: a throw-away folder removed on stop. */
  dataDir?: string
  /** Heartbeat period of the embedded node (default 10 s). */
  heartbeatIntervalMs?: number
  /** Node core options (supervisor timings, instance env). */
  core?: Omit<LocalNodeOptions, 'address' | 'alias' | 'dataDir' | 'startSeq' | 'heartbeatIntervalMs'>
  /** Node server diagnostics (default: stderr). */
  log?: (line: string) => void
  /** The session keeps each batched event's signed text (for `--json` output). */
  wireTexts?: boolean
}

/**
 * A project's pipelines on an embedded node, reached as a remote one is (ARCHITECTURE.md §4): a node server
 * on 127.0.0.1:0 with a throw-away identity, and a session whose key is the only one allowed.
 * Lifecycle checks (`whenStarted`, `whenAllProcessed`) and plugin logs come from the in-process core.
 */
export class ProjectRun {
  private applied = new Map<string, string>()
  private watchers: FSWatcher[] = []
  private debounce: NodeJS.Timeout | undefined
  private rebuilding: Promise<void> = Promise.resolve()
  private project: BuiltProject | undefined
  private readonly listeners = new Set<(event: NodeEvent) => void>()
  private readonly subscription = new AbortController()
  private pump: Promise<void> = Promise.resolve()
  private stopping: Promise<void> | undefined
  private deliveredSeq = 0

  private constructor(
    private readonly handle: NodeServerHandle,
    readonly session: Session,
    private readonly throwAwayDir: string | undefined,
  ) {}

  /** The embedded node's core (in this process). */
  get node(): LocalNode {
    return this.handle.core
  }

  /** Starts the embedded node server and connects a session to it; events flow once `subscribe` is called. */
  static async start(dir: string, options: ProjectRunOptions = {}): Promise<ProjectRun> {
    const [{startNodeServer}, {Session}, {generateIdentity}] = await Promise.all([import('./serve.js'), import('../session/index.js'), import('../protocol/identity.js')])
    const throwAwayDir = options.dataDir ? undefined : await mkdtemp(join(tmpdir(), 'r1-run-'))
    const client = generateIdentity()
    let handle: NodeServerHandle | undefined
    try {
      handle = await startNodeServer({
        dataDir: options.dataDir ?? throwAwayDir!,
        host: '127.0.0.1',
        port: 0,
        alias: 'local',
        identity: generateIdentity(),
        allow: [client.address],
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 10_000,
        // the plugins see CStore and R1FS as on a node, on free ports
        services: {host: '127.0.0.1', cstorePort: 0, r1fsPort: 0},
        // plugins under development run as the developer (no separate instance user)
        core: {workDir: dir, ...options.core, supervisor: {runAs: false, ...options.core?.supervisor}},
        ...(options.log ? {log: options.log} : {}),
      })
      const session = await Session.connect({url: handle.url, nodeAddress: handle.address, identity: client, initiatorId: 'r1-run', wireTexts: options.wireTexts})
      return new ProjectRun(handle, session, throwAwayDir)
    } catch (error) {
      await handle?.stop()
      if (throwAwayDir) await rm(throwAwayDir, {recursive: true, force: true})
      throw error
    }
  }

  /** Node events as the session receives them (in seq order), from the moment `subscribe` resolves. */
  onEvent(listener: (event: NodeEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Subscribes the session to every event of the node, live; resolves once the node confirmed it. */
  async subscribe(): Promise<void> {
    let live!: () => void
    const ready = new Promise<void>((resolve) => (live = resolve))
    const stream = this.session.subscribe({signal: this.subscription.signal, onLive: () => live()})
    this.pump = (async () => {
      try {
        for await (const item of stream) {
          if (item.EE_EVENT_TYPE === 'R1_GAP') continue // live-only from a fresh node: nothing can be missing
          this.deliveredSeq = Math.max(this.deliveredSeq, (item as NodeEvent).EE_MESSAGE_SEQ)
          for (const listener of this.listeners) listener(item as NodeEvent)
        }
      } catch (error) {
        if (!this.stopping) process.stderr.write(`r1 run: the event stream ended: ${(error as Error).message}\n`)
      } finally {
        live()
      }
    })()
    await ready
  }

  /** Uploads missing bundles and sends UPDATE_CONFIG for new and changed pipelines, DELETE_CONFIG for dropped ones. */
  async apply(project: BuiltProject): Promise<ApplyOutcome> {
    const bundles = [...project.bundles.values()]
    const missing = new Set(await this.session.missingBundles(bundles.map((b) => b.hash)))
    for (const bundle of bundles) if (missing.has(bundle.hash)) await this.session.putBundle(bundle.hash, bundle.bytes)
    const outcome: ApplyOutcome = {applied: [], deleted: [], unchanged: []}
    for (const config of project.configs) {
      const text = JSON.stringify(config)
      if (this.applied.get(config.NAME) === text) {
        outcome.unchanged.push(config.NAME)
        continue
      }
      await this.session.send('UPDATE_CONFIG', config, {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: config.NAME}]})
      this.applied.set(config.NAME, text)
      outcome.applied.push(config.NAME)
    }
    for (const name of [...this.applied.keys()]) {
      if (project.configs.some((config) => config.NAME === name)) continue
      await this.session.send('DELETE_CONFIG', name, {expect: [{code: NotificationCode.PIPELINE_DELETE_OK, pipeline: name}]})
      this.applied.delete(name)
      outcome.deleted.push(name)
    }
    this.project = project
    return outcome
  }

  /**
   * Resolves once every enabled instance has started (ready) at least once; rejects with the reason
   * when one cannot: invalid config, or it failed before becoming ready (load error, init threw, crash).
   */
  whenStarted(): Promise<void> {
    const pending = new Map<string, string>()
    for (const pipeline of this.node.state()) {
      for (const instance of pipeline.instances) {
        const label = `${pipeline.name}/${instance.signature}/${instance.instanceId}`
        if (instance.status === 'invalid_config') return Promise.reject(cannotStart(label, instance.lastError ?? 'invalid config'))
        if (instance.config.DISABLED === true) continue
        if (instance.status === 'running' || instance.status === 'paused') continue
        if (instance.status === 'restarting' || instance.status === 'error') return Promise.reject(cannotStart(label, instance.lastError ?? instance.status))
        pending.set(label, instance.status)
      }
    }
    if (pending.size === 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const off = this.node.onInstanceChange((change: InstanceChange) => {
        const label = change.path.slice(1).join('/')
        if (!pending.has(label)) return
        if (change.kind === 'status' && (change.status === 'running' || change.status === 'paused')) pending.delete(label)
        else if (change.kind === 'crash') {
          off()
          reject(cannotStart(label, change.error))
          return
        }
        if (pending.size === 0) {
          off()
          resolve()
        }
      })
    })
  }

  /**
   * `r1 run --once`: resolves once every enabled instance finished its first process() call. Rejects
   * (exit 1, with each error) when a first call threw, or the instance crashed, exited or was killed
   * as hung (the supervisor's unresponsive / process timeouts bound that), and (exit 5) when
   * `timeoutMs` passes first.
   */
  whenAllProcessed(options: {timeoutMs?: number} = {}): Promise<void> {
    const waiting = new Set<string>()
    const failures: string[] = []
    for (const pipeline of this.node.state()) {
      for (const instance of pipeline.instances) {
        const label = `${pipeline.name}/${instance.signature}/${instance.instanceId}`
        if (instance.config.DISABLED === true) continue
        if (instance.counters.iterations === 0) waiting.add(label)
        // already past its first call: it counts only if that call went well
        else if (instance.counters.iterations === 1 && instance.counters.lastError) failures.push(`${label}: ${instance.counters.lastError}`)
      }
    }
    if (waiting.size === 0 && failures.length === 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const finish = (error?: R1Error) => {
        off()
        clearTimeout(timer)
        if (error) reject(error)
        else if (failures.length > 0) {
          reject(
            new R1Error(`The first process() failed: ${failures.length === 1 ? failures[0] : `\n  ${failures.join('\n  ')}`}`, ExitCode.FAILURE, {
              code: 'PROCESS_FAILED',
              hint: 'Fix the plugin, then run again (`r1 run` without --once keeps retrying with back-off).',
            }),
          )
        } else resolve()
      }
      const off = this.node.onInstanceChange((change) => {
        const label = change.path.slice(1).join('/')
        if (!waiting.has(label)) return
        if (change.kind === 'iteration') {
          if (!change.ok) failures.push(`${label}: ${change.error ?? 'process() threw'}`)
        } else if (change.kind === 'crash') {
          failures.push(`${label}: ${change.error}`)
        } else if (change.status === 'invalid_config' || change.status === 'error') {
          failures.push(`${label}: ${change.error ?? change.status}`)
        } else return
        waiting.delete(label)
        if (waiting.size === 0) finish()
      })
      if (waiting.size === 0) {
        finish()
        return
      }
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            finish(
              new R1Error(`No first process() result within ${options.timeoutMs! / 1000} s from ${[...waiting].join(', ')}`, ExitCode.TIMEOUT, {
                code: 'PROCESS_TIMEOUT',
                hint: 'The instance hangs (or PROCESS_DELAY is long): check its process(), or raise --timeout.',
              }),
            ),
          options.timeoutMs,
        )
      }
    })
  }

  /**
   * Watches config.yaml and every source file that went into a bundle; on a change re-validates,
   * re-bundles and applies only what changed. A failure keeps the last good version running.
   */
  watch(project: ValidatedProject, onOutcome: (outcome: WatchOutcome) => void, onRebuild?: () => void): void {
    const rebuild = () => {
      this.rebuilding = this.rebuilding.then(async () => {
        onRebuild?.()
        try {
          const validated = await validateForRun(project.dir, project.requested)
          const built = await buildForRun(validated)
          const outcome = await this.apply(built)
          this.rewatch(built, rebuild)
          onOutcome(outcome)
        } catch (error) {
          onOutcome({error: error as Error})
        }
      })
    }
    this.rewatch(this.project ?? {...project, bundles: new Map(), configs: []}, rebuild)
  }

  /** Directory watchers (an editor's save-by-rename breaks per-file watchers) filtered to the project's inputs. */
  private rewatch(project: BuiltProject | ValidatedProject, rebuild: () => void): void {
    for (const watcher of this.watchers) watcher.close()
    this.watchers = []
    const files = new Set<string>([project.file])
    for (const bundle of (project as BuiltProject).bundles?.values() ?? []) for (const input of bundle.inputs) if (!input.includes(`${sep}node_modules${sep}`)) files.add(input)
    for (const plugin of Object.values(project.manifest.plugins)) if (plugin.entry) files.add(join(project.dir, plugin.entry))
    const byDir = new Map<string, Set<string>>()
    for (const file of files) {
      const names = byDir.get(dirname(file)) ?? new Set<string>()
      names.add(basename(file))
      byDir.set(dirname(file), names)
    }
    for (const [dir, names] of byDir) {
      try {
        const watcher = watch(dir, (_event, name) => {
          if (name && !names.has(String(name))) return
          clearTimeout(this.debounce)
          this.debounce = setTimeout(rebuild, 150)
        })
        watcher.on('error', () => undefined)
        this.watchers.push(watcher)
      } catch {
        // a folder that vanished: the next successful build watches what exists then
      }
    }
  }

  /** Waits (bounded) until the session has delivered every event the node emitted so far. */
  async drain(timeoutMs = 3000): Promise<void> {
    const target = this.node.lastSeq()
    const deadline = Date.now() + timeoutMs
    while (this.deliveredSeq < target && Date.now() < deadline && this.session.connected) await new Promise((resolve) => setTimeout(resolve, 10))
  }

  /**
   * Stops watching, stops every instance (what their close hooks log is still delivered), delivers
   * pending events, closes the session, stops the node server, removes the throw-away dir.
   */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      clearTimeout(this.debounce)
      for (const watcher of this.watchers) watcher.close()
      this.watchers = []
      await this.rebuilding
      await this.node.stop()
      await this.drain()
      this.subscription.abort()
      await this.session.close()
      await this.pump
      await this.handle.stop()
      if (this.throwAwayDir) await rm(this.throwAwayDir, {recursive: true, force: true})
    })())
  }
}

function cannotStart(label: string, reason: string): R1Error {
  return new R1Error(`Instance ${label} cannot start: ${reason}`, ExitCode.FAILURE, {code: 'INSTANCE_START_FAILED', hint: 'Fix the plugin (see the error above), or run with --watch to keep the runtime up while you edit.'})
}
