import {z} from 'zod'

/**
 * The Ratio1 pipeline config: what the manifest compiles to, what `UPDATE_CONFIG` carries,
 * what a node stores as desired state. Instance config keys are UPPERCASE.
 */
export const InstanceConfigSchema = z
  .object({INSTANCE_ID: z.string().min(1)})
  .catchall(z.unknown())
export type InstanceConfig = z.infer<typeof InstanceConfigSchema>

export const PluginConfigSchema = z.object({
  SIGNATURE: z.string().min(1),
  INSTANCES: z.array(InstanceConfigSchema),
})
export type PluginConfig = z.infer<typeof PluginConfigSchema>

export const PipelineConfigSchema = z
  .object({
    NAME: z.string().min(1),
    TYPE: z.string().min(1),
    PLUGINS: z.array(PluginConfigSchema),
  })
  // Ratio1 pipelines carry other UPPERCASE keys (URL, LIVE_FEED, ...); r1 adds R1_BUNDLES and R1_VERSION.
  .catchall(z.unknown())
export type PipelineConfig = z.infer<typeof PipelineConfigSchema>

/**
 * r1's extension on a pipeline: for each project signature, the sha256 of the esbuild bundle
 * that implements it (built-ins need none). The runtime loads code by this hash.
 */
export const BundleMapSchema = z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/))
export type BundleMap = z.infer<typeof BundleMapSchema>

/**
 * Every bundle a pipeline loads: code by signature (`R1_BUNDLES`), the files a plugin ships as
 * `<signature>:files` (`R1_FILES`). What a deploy uploads and what a node's bundle collection keeps.
 */
export function bundleMap(pipeline: PipelineConfig): Record<string, string> {
  const code = pipeline.R1_BUNDLES && typeof pipeline.R1_BUNDLES === 'object' ? (pipeline.R1_BUNDLES as Record<string, string>) : {}
  const files = pipeline.R1_FILES && typeof pipeline.R1_FILES === 'object' ? (pipeline.R1_FILES as Record<string, string>) : {}
  return {...code, ...Object.fromEntries(Object.entries(files).map(([signature, hash]) => [`${signature}:files`, hash]))}
}
