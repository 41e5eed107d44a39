import {applyDefaults} from './fields.js'
import type {Environment, Manifest, Tags} from './schema.js'

/**
 * Tags and environments of config.yaml: which targets an environment (or a tag filter) means, and
 * the manifest with an environment's instance config overrides applied. `r1 validate` (semantics.ts),
 * target selection (src/deploy/targets.ts) and `r1 deploy --env` all go through these.
 */

/** True when `tags` carries every `name: value` of `wanted` (an empty `wanted` matches every target). */
export function hasTags(tags: Readonly<Tags> | undefined, wanted: Readonly<Tags>): boolean {
  return Object.entries(wanted).every(([name, value]) => tags !== undefined && Object.hasOwn(tags, name) && tags[name] === value)
}

/** `name=value` of every tag the targets carry, sorted (for hints). */
export function knownTags(targets: Readonly<Record<string, {tags?: Tags}>>): string[] {
  return [...new Set(Object.values(targets).flatMap((t) => Object.entries(t.tags ?? {}).map(([name, value]) => `${name}=${value}`)))].sort()
}

/**
 * The targets of an environment, in config.yaml order: those it names, and every target that carries
 * all of its `tags`. Names that are not targets are left out (`r1 validate` reports them).
 */
export function environmentTargets(environment: Pick<Environment, 'targets' | 'tags'>, targets: Readonly<Record<string, {tags?: Tags}>>): string[] {
  const named = new Set(environment.targets ?? [])
  const tags = environment.tags
  return Object.keys(targets).filter((name) => named.has(name) || (tags !== undefined && hasTags(targets[name]!.tags, tags)))
}

/** One config value an environment changes: the instance's value (defaults filled in) and the environment's. */
export interface ConfigOverride {
  pipeline: string
  instance: string
  /** UPPERCASE, as compiled. */
  key: string
  /** undefined: the instance has no value for the key outside the environment. */
  from: unknown
  to: unknown
}

/**
 * `manifest` as deployed to `name`: each overridden key replaces the instance's value, whatever its
 * spelling (keys are compared in UPPERCASE). The manifest is a valid one, so every override names an
 * existing instance.
 */
export function withEnvironment(manifest: Manifest, name: string): {manifest: Manifest; overrides: ConfigOverride[]} {
  const environment = manifest.environments[name]!
  const pipelines = structuredClone(manifest.pipelines)
  const overrides: ConfigOverride[] = []
  for (const [pipeline, instances] of Object.entries(environment.config)) {
    for (const [id, values] of Object.entries(instances)) {
      const instance = pipelines[pipeline]!.instances[id]!
      const before = applyDefaults(instance.plugin, instance.config, manifest)
      const replaced = new Set(Object.keys(values).map((key) => key.toUpperCase()))
      instance.config = {...Object.fromEntries(Object.entries(instance.config).filter(([key]) => !replaced.has(key.toUpperCase()))), ...structuredClone(values)}
      const after = applyDefaults(instance.plugin, instance.config, manifest)
      for (const key of replaced) overrides.push({pipeline, instance: id, key, from: before[key], to: after[key]})
    }
  }
  return {manifest: {...manifest, pipelines}, overrides}
}
