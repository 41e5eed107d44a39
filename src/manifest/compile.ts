import {ExitCode, R1Error} from '../errors.js'
import type {InstanceConfig, PipelineConfig, PluginConfig} from '../protocol/pipeline.js'
import {applyDefaults} from './fields.js'
import type {Manifest} from './schema.js'

export interface CompileOptions {
  /** Only these pipelines, in this order (default: all, in manifest order). */
  pipelines?: string[]
  /** signature → sha256 of its bundle; adds `R1_BUNDLES` with the signatures each pipeline uses. */
  bundles?: Record<string, string>
  /** signature → sha256 of the files bundle it ships; adds `R1_FILES` with the signatures each pipeline uses. */
  files?: Record<string, string>
}

/**
 * A valid manifest as Ratio1 pipeline configs: `{NAME, TYPE, PLUGINS: [{SIGNATURE, INSTANCES:
 * [{INSTANCE_ID, ...UPPERCASE config with defaults}]}]}`. Plugins appear in the order of their
 * first instance. Throws R1Error exit 2 for an unknown pipeline name.
 */
export function compileManifest(manifest: Manifest, options: CompileOptions = {}): PipelineConfig[] {
  const names = Object.keys(manifest.pipelines)
  const selected = options.pipelines ?? names
  const unknown = selected.filter((name) => !Object.hasOwn(manifest.pipelines, name))
  if (unknown.length > 0) {
    throw new R1Error(`Unknown pipeline${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')} in ${manifest.name}`, ExitCode.USAGE, {
      code: 'UNKNOWN_PIPELINE',
      hint: names.length > 0 ? `Pipelines in config.yaml: ${names.join(', ')}` : 'config.yaml defines no pipeline.',
      details: {unknown, pipelines: names},
    })
  }
  return selected.map((name) => compilePipeline(manifest, name, options))
}

function compilePipeline(manifest: Manifest, name: string, {bundles, files}: CompileOptions): PipelineConfig {
  const pipeline = manifest.pipelines[name]
  const bySignature = new Map<string, InstanceConfig[]>()
  for (const [id, instance] of Object.entries(pipeline.instances)) {
    const config = applyDefaults(instance.plugin, instance.config, manifest)
    const instances = bySignature.get(instance.plugin) ?? []
    instances.push({INSTANCE_ID: id, ...config})
    bySignature.set(instance.plugin, instances)
  }
  const plugins: PluginConfig[] = [...bySignature].map(([SIGNATURE, INSTANCES]) => ({SIGNATURE, INSTANCES}))
  const compiled: PipelineConfig = {NAME: name, TYPE: pipeline.type, PLUGINS: plugins}
  const usedOf = (hashes: Record<string, string>) => Object.fromEntries([...bySignature.keys()].filter((s) => hashes[s]).map((s) => [s, hashes[s]!]))
  if (bundles) compiled.R1_BUNDLES = usedOf(bundles)
  if (files && Object.keys(usedOf(files)).length > 0) compiled.R1_FILES = usedOf(files)
  return compiled
}
