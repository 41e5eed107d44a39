import {randomBytes} from 'node:crypto'
import {watch, type FSWatcher} from 'node:fs'
import {basename, dirname, join, relative, sep} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import type {Diagnostic} from '../manifest/diagnostics.js'
import type {Manifest} from '../manifest/schema.js'
import type {PipelineConfig} from '../protocol/pipeline.js'
import {bundleEntry, type Bundle} from './bundle.js'
import {isBuiltin} from './builtins/index.js'
import {LocalNode, type InstanceChange, type LocalNodeOptions} from './node.js'

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
      bundles.set(signature, await bundleEntry(project.manifest.plugins[signature].entry, {projectDir: project.dir}))
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

/** A project's pipelines running on an embedded node. */
export class ProjectRun {
  private applied = new Map<string, string>()
  private watchers: FSWatcher[] = []
  private debounce: NodeJS.Timeout | undefined
  private rebuilding: Promise<void> = Promise.resolve()
  private project: BuiltProject | undefined

  private constructor(readonly node: LocalNode) {}

  /** Starts a node (throw-away data dir unless `options.dataDir`), working in the project folder. */
  static async start(dir: string, options: LocalNodeOptions = {}): Promise<ProjectRun> {
    return new ProjectRun(await LocalNode.start({alias: 'local', heartbeatIntervalMs: 10_000, workDir: dir, ...options}))
  }

  /** Stores the bundles and sends UPDATE_CONFIG for new and changed pipelines, DELETE_CONFIG for dropped ones. */
  async apply(project: BuiltProject): Promise<ApplyOutcome> {
    for (const bundle of project.bundles.values()) await this.node.putBundle(bundle.hash, bundle.bytes)
    const outcome: ApplyOutcome = {applied: [], deleted: [], unchanged: []}
    const meta = () => ({hash: randomBytes(32).toString('hex'), sender: this.node.address, initiator: 'r1 run'})
    for (const config of project.configs) {
      const text = JSON.stringify(config)
      if (this.applied.get(config.NAME) === text) {
        outcome.unchanged.push(config.NAME)
        continue
      }
      await this.node.execute('UPDATE_CONFIG', config, meta())
      this.applied.set(config.NAME, text)
      outcome.applied.push(config.NAME)
    }
    for (const name of [...this.applied.keys()]) {
      if (project.configs.some((config) => config.NAME === name)) continue
      await this.node.execute('DELETE_CONFIG', {NAME: name}, meta())
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

  /** Resolves once every enabled instance has finished at least one `process` call (`--once`). */
  whenAllProcessed(): Promise<void> {
    const waiting = new Set<string>()
    for (const pipeline of this.node.state()) {
      for (const instance of pipeline.instances) {
        if (instance.config.DISABLED !== true && instance.counters.iterations === 0) waiting.add(`${pipeline.name}/${instance.signature}/${instance.instanceId}`)
      }
    }
    if (waiting.size === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const off = this.node.onInstanceChange((change) => {
        if (change.kind !== 'iteration') return
        waiting.delete(change.path.slice(1).join('/'))
        if (waiting.size === 0) {
          off()
          resolve()
        }
      })
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
    for (const entry of Object.values(project.manifest.plugins)) files.add(join(project.dir, entry.entry))
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

  async stop(): Promise<void> {
    clearTimeout(this.debounce)
    for (const watcher of this.watchers) watcher.close()
    this.watchers = []
    await this.rebuilding
    await this.node.stop()
  }
}

function cannotStart(label: string, reason: string): R1Error {
  return new R1Error(`Instance ${label} cannot start: ${reason}`, ExitCode.FAILURE, {code: 'INSTANCE_START_FAILED', hint: 'Fix the plugin (see the error above), or run with --watch to keep the runtime up while you edit.'})
}
