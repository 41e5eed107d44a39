import type {CommandOf} from '../protocol/messages.js'
import {bundleMap, type InstanceConfig, type PipelineConfig} from '../protocol/pipeline.js'

/**
 * What a deploy changes on one node, computed from the desired pipelines and the node's current
 * ones. Ratio1's SDK sends the whole pipeline (UPDATE_CONFIG) when its structure changes and only
 * instance deltas (BATCH_UPDATE_PIPELINE_INSTANCE) when only instance configs change; so do we,
 * so that unchanged instances keep running untouched.
 */

/** Keys a node adds to a stored pipeline itself: never a difference. */
const NODE_MANAGED_KEYS = new Set(['R1_VERSION', 'R1_ARCHIVED', 'R1_CREATED_AT', 'R1_UPDATED_AT', 'R1_MESSAGE', 'SESSION_ID', 'INITIATOR_ID', 'TIME'])

export interface KeyChange {
  key: string
  kind: 'add' | 'change' | 'remove'
  from?: unknown
  to?: unknown
}

export type InstanceChangeKind = 'create' | 'update' | 'restart' | 'remove' | 'unchanged'

export interface InstancePlan {
  signature: string
  instanceId: string
  /** `restart`: same config, new bundle for its signature (or its bundle is missing on the node: uploaded again). */
  change: InstanceChangeKind
  diff: KeyChange[]
  /** Set on a `restart` because the node lacks (or found corrupt) a bundle the instance loads. */
  bundleMissing?: true
}

export type PipelineChangeKind = 'create' | 'update' | 'update-instances' | 'unchanged'

/** One command that applies a pipeline's plan (Ratio1 action and payload). */
export type PlannedCommand = CommandOf<'UPDATE_CONFIG' | 'BATCH_UPDATE_PIPELINE_INSTANCE'>

/** One entry of BATCH_UPDATE_PIPELINE_INSTANCE (Ratio1's UPDATE_PIPELINE_INSTANCE payload). */
export interface BatchInstanceUpdate {
  NAME: string
  SIGNATURE: string
  INSTANCE_ID: string
  INSTANCE_CONFIG: Record<string, unknown>
}

export interface InstanceRef {
  signature: string
  instanceId: string
}

export interface PipelinePlan {
  name: string
  change: PipelineChangeKind
  /** Pipeline-level keys (TYPE, …) that differ. */
  diff: KeyChange[]
  /** Signatures whose bundle hash differs (or is new). */
  bundles: KeyChange[]
  /**
   * Bundles the pipeline loads that the node lacks although its config names them (a corrupt one the
   * node removed): by key (`SIGNATURE`, `SIGNATURE:files`), uploaded again and their instances restarted.
   */
  missing: KeyChange[]
  instances: InstancePlan[]
  command?: PlannedCommand
  /** What to wait for once the command is sent: PIPELINE_OK (whole-pipeline updates) and PLUGIN_CONFIG_OK per instance. */
  confirm: {pipeline: boolean; instances: InstanceRef[]}
  /** The node's config before this deploy (undefined when created): what `--atomic` restores. */
  previous?: PipelineConfig
}

export interface TargetPlan {
  pipelines: PipelinePlan[]
  /** Bundle hashes the desired pipelines need (upload the ones the node lacks). */
  bundles: string[]
  /** True when at least one pipeline changes. */
  changed: boolean
}

/**
 * Plans every desired pipeline against the node's current pipelines (others on the node are left alone).
 * `missing`: the bundle hashes the node reported it lacks (R1_BUNDLE_HAS): a pipeline that loads one
 * is sent again, its bundle uploaded again, even when its config is unchanged.
 */
export function planTarget(desired: PipelineConfig[], current: PipelineConfig[], missing: Iterable<string> = []): TargetPlan {
  const byName = new Map(current.map((p) => [p.NAME, p]))
  const lacking = new Set(missing)
  const pipelines = desired.map((p) => planPipeline(p, byName.get(p.NAME), lacking))
  const bundles = [...new Set(desired.flatMap((p) => Object.values(bundleMap(p))))].sort()
  return {pipelines, bundles, changed: pipelines.some((p) => p.change !== 'unchanged')}
}

export function planPipeline(desired: PipelineConfig, current: PipelineConfig | undefined, missingHashes: ReadonlySet<string> = new Set()): PipelinePlan {
  const want = instancesOf(desired)
  if (!current) {
    const instances = [...want.values()].map(({signature, config}) => ({signature, instanceId: config.INSTANCE_ID, change: 'create' as const, diff: diffKeys({}, instanceKeys(config))}))
    return {
      name: desired.NAME,
      change: 'create',
      diff: diffKeys({}, pipelineKeys(desired)),
      bundles: diffKeys({}, bundleMap(desired)),
      missing: [],
      instances,
      command: {action: 'UPDATE_CONFIG', payload: desired},
      confirm: {pipeline: true, instances: instances.filter((i) => runs(want, i)).map(ref)},
    }
  }

  const have = instancesOf(current)
  const diff = diffKeys(pipelineKeys(current), pipelineKeys(desired))
  const bundles = diffKeys(bundleMap(current), bundleMap(desired))
  const newBundle = new Set(bundles.map((b) => b.key))
  // a bundle the node runs from but lacks now (removed as corrupt): the same hash, uploaded again
  const missing = Object.entries(bundleMap(desired))
    .filter(([key, hash]) => missingHashes.has(hash) && !newBundle.has(key))
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([key, hash]): KeyChange => ({key, kind: 'add', to: hash}))
  const lostBundle = new Set(missing.map((b) => b.key))
  const instances: InstancePlan[] = []
  for (const [key, {signature, config}] of want) {
    const before = have.get(key)
    if (!before) {
      instances.push({signature, instanceId: config.INSTANCE_ID, change: 'create', diff: diffKeys({}, instanceKeys(config))})
      continue
    }
    const changes = diffKeys(instanceKeys(before.config), instanceKeys(config))
    // (a disabled instance runs nothing: its bundle is uploaded again, but there is no start to wait for)
    const lost = (lostBundle.has(signature) || lostBundle.has(`${signature}:files`)) && config.DISABLED !== true
    const change = changes.length > 0 ? 'update' : newBundle.has(signature) || newBundle.has(`${signature}:files`) || lost ? 'restart' : 'unchanged'
    instances.push({signature, instanceId: config.INSTANCE_ID, change, diff: changes, ...(lost ? {bundleMissing: true as const} : {})})
  }
  for (const [key, {signature, config}] of have) {
    if (!want.has(key)) instances.push({signature, instanceId: config.INSTANCE_ID, change: 'remove', diff: diffKeys(instanceKeys(config), {})})
  }

  const touched = instances.filter((i) => i.change !== 'unchanged')
  const base = {name: desired.NAME, diff, bundles, missing, instances, previous: withoutNodeKeys(current)}
  if (diff.length === 0 && bundles.length === 0 && missing.length === 0 && touched.length === 0) {
    return {...base, change: 'unchanged', confirm: {pipeline: false, instances: []}}
  }
  const toConfirm = touched.filter((i) => i.change !== 'remove' && runs(want, i)).map(ref)
  // Instance deltas only when nothing but existing instances' keys changed (removed keys need the whole config;
  // a bundle uploaded again needs the config that makes the node load it).
  const deltasSuffice = diff.length === 0 && bundles.length === 0 && missing.length === 0 && touched.every((i) => i.change === 'update' && i.diff.every((d) => d.kind !== 'remove'))
  if (deltasSuffice) {
    const payload = touched.map((i) => {
      const {INSTANCE_ID: _id, ...config} = want.get(instanceKey(i.signature, i.instanceId))!.config
      return {NAME: desired.NAME, SIGNATURE: i.signature, INSTANCE_ID: i.instanceId, INSTANCE_CONFIG: config}
    })
    return {...base, change: 'update-instances', command: {action: 'BATCH_UPDATE_PIPELINE_INSTANCE', payload}, confirm: {pipeline: false, instances: toConfirm}}
  }
  return {...base, change: 'update', command: {action: 'UPDATE_CONFIG', payload: desired}, confirm: {pipeline: true, instances: toConfirm}}
}

/** A stored pipeline as it was sent: without the keys the node added. */
export function withoutNodeKeys(pipeline: PipelineConfig): PipelineConfig {
  return Object.fromEntries(Object.entries(pipeline).filter(([k]) => !NODE_MANAGED_KEYS.has(k))) as PipelineConfig
}

/** Whether the instance is to run: a disabled one is stopped, with no start whose PLUGIN_CONFIG_OK a deploy could wait for. */
function runs(want: ReturnType<typeof instancesOf>, i: InstancePlan): boolean {
  return want.get(instanceKey(i.signature, i.instanceId))?.config.DISABLED !== true
}

function ref(i: InstancePlan): InstanceRef {
  return {signature: i.signature, instanceId: i.instanceId}
}

function instanceKey(signature: string, instanceId: string): string {
  return `${signature}\u0000${instanceId}`
}

function instancesOf(pipeline: PipelineConfig): Map<string, {signature: string; config: InstanceConfig}> {
  const map = new Map<string, {signature: string; config: InstanceConfig}>()
  for (const plugin of pipeline.PLUGINS ?? []) {
    for (const config of plugin.INSTANCES ?? []) map.set(instanceKey(plugin.SIGNATURE, config.INSTANCE_ID), {signature: plugin.SIGNATURE, config})
  }
  return map
}

function pipelineKeys(pipeline: PipelineConfig): Record<string, unknown> {
  const keys: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(pipeline)) {
    if (k !== 'PLUGINS' && k !== 'R1_BUNDLES' && k !== 'R1_FILES' && k !== 'NAME' && !NODE_MANAGED_KEYS.has(k)) keys[k] = v
  }
  return keys
}

function instanceKeys(config: InstanceConfig): Record<string, unknown> {
  const {INSTANCE_ID: _id, ...rest} = config
  return rest
}

/** Key-level differences of two flat objects, sorted by key; values compare structurally. */
export function diffKeys(before: Record<string, unknown>, after: Record<string, unknown>): KeyChange[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
  const changes: KeyChange[] = []
  for (const key of keys) {
    const inBefore = Object.hasOwn(before, key) && before[key] !== undefined
    const inAfter = Object.hasOwn(after, key) && after[key] !== undefined
    if (inBefore && !inAfter) changes.push({key, kind: 'remove', from: before[key]})
    else if (!inBefore && inAfter) changes.push({key, kind: 'add', to: after[key]})
    else if (inBefore && inAfter && !sameValue(before[key], after[key])) changes.push({key, kind: 'change', from: before[key], to: after[key]})
  }
  return changes
}

/** Structural equality, ignoring object key order. */
export function sameValue(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b)
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v))
}
