import {resolve} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {type ConfigOverride, compileManifest, loadManifest, type Manifest, withEnvironment} from '../manifest/index.js'
import type {Broker} from '../manifest/schema.js'
import type {PipelineConfig} from '../protocol/pipeline.js'
import type {BrokerSelection} from './discover.js'
import {type EnvironmentMap, type Target, type TargetBroker, type TargetMap, resolveTargets} from './targets.js'

/** A project's manifest, validated (exit 3 on errors), with its targets. */
export interface OpenProject {
  file: string
  dir: string
  manifest: Manifest
  targets: TargetMap
  environments: EnvironmentMap
}

/** A project ready to deploy: its compiled pipelines and the bundle bytes they reference, built once for every target. */
export interface BuiltProject {
  pipelines: PipelineConfig[]
  /** sha256 → bundle bytes. */
  bundles: Map<string, Uint8Array>
  /** signature → sha256, for the project's plugins the selected pipelines use. */
  signatures: Record<string, string>
  /** signature → sha256 of the files bundle it ships (`files:`). */
  files: Record<string, string>
  /** With an environment: the config values it changes in the selected pipelines. */
  overrides?: ConfigOverride[]
}

export async function openProject(dir: string): Promise<OpenProject> {
  const {file, dir: root, manifest} = await loadManifest(dir)
  return {file, dir: root, manifest, targets: projectTargets(manifest, root), environments: manifest.environments}
}

/** A valid manifest's targets, each `ca` resolved against the project folder (it is relative to config.yaml) and each `broker` resolved to its `brokers` entry. */
export function projectTargets(manifest: Manifest, root: string): TargetMap {
  return Object.fromEntries(
    Object.entries(manifest.targets).map(([name, {broker, ...t}]) => [name, {...t, ...(t.ca ? {ca: resolve(root, t.ca)} : {}), ...(broker ? {broker: projectBroker(broker, manifest.brokers[broker]!, root)} : {})}]),
  )
}

/** A broker of config.yaml with its files resolved against the project folder. */
export function projectBroker(name: string, broker: Broker, root: string): TargetBroker {
  return {
    name,
    url: broker.url,
    ...(broker.user === undefined ? {} : {user: broker.user}),
    ...(broker.password_file === undefined ? {} : {passwordFile: resolve(root, broker.password_file)}),
    ...(broker.password_env === undefined ? {} : {passwordEnv: broker.password_env}),
    ...(broker.ca === undefined ? {} : {ca: resolve(root, broker.ca)}),
    ...(broker.root === undefined ? {} : {root: broker.root}),
  }
}

/** The project's brokers, files resolved. */
export async function projectBrokers(dir: string): Promise<Record<string, TargetBroker>> {
  const {dir: root, manifest} = await loadManifest(dir)
  return Object.fromEntries(Object.entries(manifest.brokers).map(([name, broker]) => [name, projectBroker(name, broker, root)]))
}

/**
 * Bundles each project plugin the selected pipelines use (esbuild, content-addressed), packs the
 * files each ships, and compiles the pipelines with their `R1_BUNDLES` and `R1_FILES`, with the
 * config overrides of `environment` applied. Unknown pipeline names throw at once (exit 2), before any build.
 */
export function buildProject(project: OpenProject, pipelineNames?: string[], environment?: string): Promise<BuiltProject> {
  const names = pipelineNames && pipelineNames.length > 0 ? {pipelines: pipelineNames} : {}
  const resolved = environment === undefined ? undefined : withEnvironment(project.manifest, environment)
  const manifest = resolved?.manifest ?? project.manifest
  const selected = compileManifest(manifest, names)
  const overrides = resolved && resolved.overrides.filter((o) => selected.some((p) => p.NAME === o.pipeline))
  const used = [...new Set(selected.flatMap((p) => p.PLUGINS.map((plugin) => plugin.SIGNATURE)))].filter((s) => Object.hasOwn(manifest.plugins, s))
  const withEntry = used.filter((s) => manifest.plugins[s]!.entry)
  const withFiles = used.filter((s) => manifest.plugins[s]!.files?.length)
  return (async () => {
    const bundles = new Map<string, Uint8Array>()
    const signatures: Record<string, string> = {}
    const files: Record<string, string> = {}
    if (withEntry.length > 0) {
      const {bundleEntry} = await import('../runtime/bundle.js')
      const built = await Promise.all(withEntry.map((signature) => bundleEntry(manifest.plugins[signature]!.entry!, {projectDir: project.dir})))
      withEntry.forEach((signature, i) => {
        signatures[signature] = built[i]!.hash
        bundles.set(built[i]!.hash, built[i]!.bytes)
      })
    }
    if (withFiles.length > 0) {
      const [{packFiles}, {matchFiles}] = await Promise.all([import('../runtime/files-bundle.js'), import('../manifest/globs.js')])
      for (const signature of withFiles) {
        const plugin = manifest.plugins[signature]!
        const packed = await packFiles(project.dir, matchFiles(project.dir, plugin.files!), plugin.setup)
        files[signature] = packed.hash
        bundles.set(packed.hash, packed.bytes)
      }
    }
    return {pipelines: compileManifest(manifest, {...names, bundles: signatures, files}), bundles, signatures, files, ...(overrides ? {overrides} : {})}
  })()
}

/** Both steps at once (tests, benches). */
export async function prepareProject(dir: string, pipelineNames?: string[]): Promise<OpenProject & BuiltProject> {
  const project = await openProject(dir)
  return {...project, ...(await buildProject(project, pipelineNames))}
}

/**
 * The targets of a managing command: ad hoc `--node`s alone need no project; named targets,
 * `--all` or no flag at all read `targets` from the project's config.yaml.
 */
export async function selectTargets(dir: string, selection: BrokerSelection, options: {connectTimeoutMs?: number; signal?: AbortSignal} = {}): Promise<Target[]> {
  if (selection.broker !== undefined) {
    const {brokerTargets} = await import('./discover.js')
    // a broker URL needs no project; a broker name is one of its `brokers`
    const configured = /^[a-z]+:\/\//i.test(selection.broker) ? {} : await projectBrokers(dir)
    return brokerTargets(selection, configured, {connectTimeoutMs: options.connectTimeoutMs ?? 10_000, signal: options.signal})
  }
  const adHocOnly = (selection.node?.length ?? 0) > 0 && !selection.all && (selection.target?.length ?? 0) === 0 && (selection.exclude?.length ?? 0) === 0
  if (adHocOnly) return resolveTargets(undefined, selection)
  let project: OpenProject
  try {
    project = await openProject(dir)
  } catch (error) {
    if ((error as R1Error).code !== 'MANIFEST_NOT_FOUND') throw error
    throw new R1Error(`No target to talk to: ${(error as Error).message}, and no --node was given.`, ExitCode.USAGE, {
      code: 'NO_TARGET',
      hint: 'Run from a project folder (or pass --dir <project>) to use its `targets`, or name a node: --node <url> --address <0xai_…>.',
    })
  }
  return resolveTargets(project.targets, selection, project.environments)
}
