import {compileManifest, loadManifest, type Manifest} from '../manifest/index.js'
import type {PipelineConfig} from '../protocol/pipeline.js'
import {type Target, type TargetMap, type TargetSelection, resolveTargets} from './targets.js'

/** A project ready to deploy: its compiled pipelines and the bundle bytes they reference, built once for every target. */
export interface PreparedProject {
  file: string
  dir: string
  manifest: Manifest
  targets: TargetMap
  pipelines: PipelineConfig[]
  /** sha256 → bundle bytes. */
  bundles: Map<string, Uint8Array>
  /** signature → sha256, for the project's plugins the selected pipelines use. */
  signatures: Record<string, string>
}

/** The project's targets only (for the managing commands, which need no bundles). */
export async function loadTargets(dir: string): Promise<TargetMap> {
  const {manifest} = await loadManifest(dir)
  return manifest.targets
}

/**
 * Validates the project (exit 3 on errors), bundles each project plugin the selected pipelines use
 * (esbuild, content-addressed) and compiles the pipelines with their `R1_BUNDLES`.
 */
export async function prepareProject(dir: string, pipelineNames?: string[]): Promise<PreparedProject> {
  const loaded = await loadManifest(dir)
  const {manifest} = loaded
  const selected = compileManifest(manifest, pipelineNames && pipelineNames.length > 0 ? {pipelines: pipelineNames} : {})
  const used = [...new Set(selected.flatMap((p) => p.PLUGINS.map((plugin) => plugin.SIGNATURE)))].filter((s) => Object.hasOwn(manifest.plugins, s))
  const bundles = new Map<string, Uint8Array>()
  const signatures: Record<string, string> = {}
  if (used.length > 0) {
    const {bundleEntry} = await import('../runtime/bundle.js')
    const built = await Promise.all(used.map((signature) => bundleEntry(manifest.plugins[signature].entry, {projectDir: loaded.dir})))
    used.forEach((signature, i) => {
      signatures[signature] = built[i].hash
      bundles.set(built[i].hash, built[i].bytes)
    })
  }
  const pipelines = compileManifest(manifest, {...(pipelineNames && pipelineNames.length > 0 ? {pipelines: pipelineNames} : {}), bundles: signatures})
  return {file: loaded.file, dir: loaded.dir, manifest, targets: manifest.targets, pipelines, bundles, signatures}
}

/**
 * The targets of a managing command: ad hoc `--node`s alone need no project; named targets,
 * `--all` or no flag at all read `targets` from the project's config.yaml.
 */
export async function selectTargets(dir: string, selection: TargetSelection): Promise<Target[]> {
  const adHocOnly = (selection.node?.length ?? 0) > 0 && !selection.all && (selection.target?.length ?? 0) === 0 && (selection.exclude?.length ?? 0) === 0
  return resolveTargets(adHocOnly ? undefined : await loadTargets(dir), selection)
}
