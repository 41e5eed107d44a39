import {readFileSync, statSync} from 'node:fs'
import {extname, resolve} from 'node:path'
import {NODE_ADDRESS_HINT, checkNodeAddress} from './address.js'
import type {Collector} from './collector.js'
import {didYouMean} from './diagnostics.js'
import {BASE_FIELDS, BUILTIN_SIGNATURES, checkInstanceConfig, checkValue, fieldFromManifest, openPluginSpec, own, pluginSpec, type ConfigProblem} from './fields.js'
import {ADDRESS_PATTERN} from './patterns.js'
import type {PathSegment} from './positions.js'
import type {Manifest, Plugin, Tags} from './schema.js'
import {environmentTargets, knownTags} from './environments.js'
import {fileMatcher, globProblem, matchFiles, projectFiles} from './globs.js'
import {checkStructure, subschema, type JsonSchema} from './structure.js'
import {isLoopback} from '../loopback.js'

/** Checks across the manifest: references, entry files, plugin config schemas, instance configs, targets, warnings. */

function caProblem(file: string): string | undefined {
  let text: string
  try {
    if (statSync(file).size > 1024 * 1024) return 'is larger than 1 MiB'
    text = readFileSync(file, 'latin1')
  } catch {
    return `does not exist (looked for ${file})`
  }
  return text.includes('-----BEGIN CERTIFICATE-----') ? undefined : 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)'
}

function readableProblem(file: string): string | undefined {
  try {
    readFileSync(file)
    return undefined
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? `does not exist (looked for ${file})` : `cannot be read: ${(error as Error).message}`
  }
}

export const ENTRY_EXTENSIONS = ['.ts', '.js', '.mjs', '.mts'] as const

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

export function checkSemantics(data: unknown, dir: string, schema: JsonSchema, out: Collector): void {
  if (!isRecord(data)) return
  const rawPlugins = isRecord(data.plugins) ? data.plugins : {}
  // Plugins that parse on their own: their config schemas check instances even if other parts are broken.
  const plugins: Record<string, Plugin> = {}
  const pluginSchema = subschema(schema, ['plugins', '*'])
  for (const [signature, raw] of Object.entries(rawPlugins)) {
    const parsed = checkStructure(pluginSchema, raw)
    if (parsed.issues.length === 0) plugins[signature] = parsed.value as Plugin
  }
  const partial = {name: '', version: '', plugins, pipelines: {}, targets: {}, environments: {}} as Manifest
  const used = new Set<string>()

  const shipped = new Map<string, (path: string) => boolean>()
  for (const [signature, plugin] of Object.entries(plugins)) {
    checkPlugin(signature, plugin, dir, out)
    if (plugin.files) shipped.set(signature, fileMatcher(plugin.files))
  }
  for (const [signature, raw] of Object.entries(rawPlugins)) {
    // a built-in may be listed only to ship files with it (files, setup, description)
    if (BUILTIN_SIGNATURES.includes(signature) && isRecord(raw) && (raw.entry !== undefined || raw.config !== undefined || raw.allow_unknown_config !== undefined)) {
      out.add(['plugins', signature], 'key', 'ref-builtin-shadowed', `${signature} is a built-in signature; a project plugin cannot reuse its name`, 'rename the plugin, or keep only `files`/`setup` to ship files with the built-in')
    }
  }

  const pipelines = isRecord(data.pipelines) ? data.pipelines : undefined
  if (data.pipelines === undefined || (pipelines && Object.keys(pipelines).length === 0)) {
    out.add(data.pipelines === undefined ? [] : ['pipelines'], 'key', 'no-pipelines', 'the manifest defines no pipeline, so `r1 run` and `r1 deploy` have nothing to do', 'add one under `pipelines:`')
  }
  for (const [name, pipeline] of Object.entries(pipelines ?? {})) {
    if (!isRecord(pipeline)) continue
    const instances = isRecord(pipeline.instances) ? pipeline.instances : undefined
    if (pipeline.instances === undefined || (instances && Object.keys(instances).length === 0)) {
      out.add(['pipelines', name], 'key', 'empty-pipeline', `pipeline "${name}" has no instances`, 'add one under `instances:` or remove the pipeline')
    }
    for (const [id, instance] of Object.entries(instances ?? {})) {
      if (!isRecord(instance) || typeof instance.plugin !== 'string') continue
      const path = ['pipelines', name, 'instances', id]
      const signature = instance.plugin
      used.add(signature)
      if (!BUILTIN_SIGNATURES.includes(signature) && !Object.hasOwn(rawPlugins, signature)) {
        const known = [...BUILTIN_SIGNATURES, ...Object.keys(rawPlugins)]
        out.add([...path, 'plugin'], 'value', 'ref-unknown-plugin', `instance "${id}" uses plugin "${signature}", which is neither a project plugin nor a built-in (known: ${known.join(', ')})`, didYouMean(signature, known))
        continue
      }
      const spec = pluginSpec(signature, partial) ?? openPluginSpec(signature)
      const config = instance.config === undefined ? {} : instance.config
      if (!isRecord(config)) continue
      for (const problem of checkInstanceConfig(spec, config)) addConfigProblem([...path, 'config'], problem, out)
      checkShipped(config, [...path, 'config'], signature, shipped.get(signature), dir, out)
    }
  }

  for (const signature of Object.keys(rawPlugins)) {
    if (!used.has(signature) && !BUILTIN_SIGNATURES.includes(signature)) {
      out.add(['plugins', signature], 'key', 'unused-plugin', `plugin ${signature} is not used by any pipeline instance`, 'add an instance that uses it, or remove it')
    }
  }

  const brokers = isRecord(data.brokers) ? data.brokers : {}
  for (const [name, broker] of Object.entries(brokers)) {
    if (!isRecord(broker)) continue
    for (const key of ['password_file', 'ca'] as const) {
      const file = broker[key]
      if (typeof file !== 'string' || file.length === 0) continue
      const problem = key === 'ca' ? caProblem(resolve(dir, file)) : readableProblem(resolve(dir, file))
      if (problem) out.add(['brokers', name, key], 'value', 'broker-file', `broker "${name}": ${key} ${file} ${problem}`, 'paths are relative to config.yaml')
    }
    if (broker.password_file !== undefined && broker.password_env !== undefined) {
      out.add(['brokers', name, 'password_env'], 'key', 'broker-password', `broker "${name}" gives both password_file and password_env`, 'keep one: password_env for a CI secret, password_file on a workstation')
    }
    if (typeof broker.url === 'string' && /^(mqtt|ws):/.test(broker.url) && (broker.user !== undefined || broker.password_file !== undefined || broker.password_env !== undefined)) {
      const host = hostOf(broker.url)
      if (host && !isLoopback(host)) {
        const secure = broker.url.replace(/^mqtt:/, 'mqtts:').replace(/^ws:/, 'wss:')
        out.add(['brokers', name, 'url'], 'value', 'broker-insecure', `broker "${name}" is reached over unencrypted ${broker.url.split(':')[0]}:// to ${host}: its password travels in clear (commands and replies stay encrypted end to end)`, `use "${secure}"`)
      }
    }
  }

  const targets = isRecord(data.targets) ? data.targets : {}
  for (const [name, target] of Object.entries(targets)) {
    if (!isRecord(target)) continue
    if ((target.url === undefined) === (target.broker === undefined)) {
      const both = target.url !== undefined
      out.add(['targets', name], 'key', 'target-transport', `target "${name}" ${both ? 'has both `url` and `broker`' : 'has neither `url` nor `broker`'}`, both ? 'keep `url` for a node you reach directly, or `broker` for one behind a broker' : 'add `url: wss://host:port`, or `broker: <name>` of one under `brokers`')
    }
    if (typeof target.broker === 'string' && !Object.hasOwn(brokers, target.broker)) {
      out.add(['targets', name, 'broker'], 'value', 'ref-broker', `target "${name}" names the broker "${target.broker}", which \`brokers\` does not define`, didYouMean(target.broker, Object.keys(brokers)) ?? 'define it under `brokers:` (url, user, password_file, ca, root)')
    }
    if (typeof target.address === 'string' && ADDRESS_PATTERN.test(target.address)) {
      const problem = checkNodeAddress(target.address)
      if (problem) out.add(['targets', name, 'address'], 'value', 'target-address', problem, NODE_ADDRESS_HINT)
    }
    if (typeof target.ca === 'string' && target.ca.length > 0) {
      const problem = caProblem(resolve(dir, target.ca))
      if (problem) out.add(['targets', name, 'ca'], 'value', 'target-ca', `target "${name}": ca file ${target.ca} ${problem}`, "point it at the node's certificate (its --tls-cert), relative to config.yaml")
    }
    if (typeof target.url === 'string' && target.url.startsWith('ws://')) {
      const host = hostOf(target.url)
      if (host && !isLoopback(host)) {
        out.add(['targets', name, 'url'], 'value', 'target-insecure', `target "${name}" uses unencrypted ws:// to ${host}; commands are signed but payloads travel in clear`, `use "${target.url.replace(/^ws:/, 'wss:')}"`)
      }
    }
  }
  checkEnvironments(data, partial, shipped, dir, out)
}

/**
 * Each environment names existing targets, its tags match at least one, and its overrides name
 * existing instances and pass the plugin's config schema (as the instance's own config does, but
 * for required keys: the instance sets those).
 */
function checkEnvironments(data: Record<string, unknown>, partial: Manifest, shipped: Map<string, (path: string) => boolean>, dir: string, out: Collector): void {
  const environments = isRecord(data.environments) ? data.environments : {}
  const targets = Object.fromEntries(Object.entries(isRecord(data.targets) ? data.targets : {}).map(([name, t]) => [name, {tags: isRecord(t) && isRecord(t.tags) ? (t.tags as Tags) : undefined}]))
  const pipelines = isRecord(data.pipelines) ? data.pipelines : {}
  for (const [name, environment] of Object.entries(environments)) {
    if (!isRecord(environment)) continue
    const path = ['environments', name]
    if (environment.targets === undefined && environment.tags === undefined) {
      out.add(path, 'key', 'env-no-targets', `environment "${name}" names no targets`, 'add `targets: [<name>, …]` or `tags: {<name>: <value>}`')
    }
    if (Array.isArray(environment.targets)) {
      environment.targets.forEach((target, i) => {
        if (typeof target === 'string' && !Object.hasOwn(targets, target)) {
          const known = Object.keys(targets)
          out.add([...path, 'targets', i], 'value', 'env-unknown-target', `environment "${name}" names target "${target}", which is not under \`targets:\`${known.length > 0 ? ` (known: ${known.join(', ')})` : ''}`, didYouMean(target, known))
        }
      })
    }
    if (isRecord(environment.tags) && Object.values(environment.tags).every((v) => typeof v === 'string') && environmentTargets({tags: environment.tags as Tags}, targets).length === 0) {
      const known = knownTags(targets)
      const wanted = Object.entries(environment.tags).map(([k, v]) => `${k}=${String(v)}`)
      const guess = wanted.length === 1 ? didYouMean(wanted[0]!, known) : undefined
      out.add([...path, 'tags'], 'key', 'env-tags-no-match', `no target carries ${wanted.join(' and ')} (environment "${name}")`, guess ?? (known.length > 0 ? `tags in use: ${known.join(', ')}` : 'add `tags:` to the targets under `targets:`'))
    }
    for (const [pipeline, instances] of Object.entries(isRecord(environment.config) ? environment.config : {})) {
      const configPath = [...path, 'config', pipeline]
      if (!Object.hasOwn(pipelines, pipeline)) {
        out.add(configPath, 'key', 'env-unknown-pipeline', `environment "${name}" overrides pipeline "${pipeline}", which is not under \`pipelines:\``, didYouMean(pipeline, Object.keys(pipelines)))
        continue
      }
      const declared = isRecord(pipelines[pipeline]) && isRecord(pipelines[pipeline].instances) ? pipelines[pipeline].instances : {}
      for (const [id, values] of Object.entries(isRecord(instances) ? instances : {})) {
        const instance = declared[id]
        if (!isRecord(instance)) {
          const known = Object.keys(declared)
          out.add([...configPath, id], 'key', 'env-unknown-instance', `environment "${name}" overrides instance "${id}", which pipeline "${pipeline}" does not have${known.length > 0 ? ` (it has: ${known.join(', ')})` : ''}`, didYouMean(id, known))
          continue
        }
        if (!isRecord(values) || typeof instance.plugin !== 'string') continue
        const signature = instance.plugin
        if (!BUILTIN_SIGNATURES.includes(signature) && !Object.hasOwn(partial.plugins, signature)) continue // the instance's own check reports it
        const spec = pluginSpec(signature, partial) ?? openPluginSpec(signature)
        for (const problem of checkInstanceConfig(spec, values)) if (problem.rule !== 'config-required') addConfigProblem([...configPath, id], problem, out)
        checkShipped(values, [...configPath, id], signature, shipped.get(signature), dir, out)
      }
    }
  }
}

function addConfigProblem(configPath: PathSegment[], problem: ConfigProblem, out: Collector): void {
  const path = [...configPath, ...problem.path]
  out.add(path, problem.at ?? 'value', problem.rule, problem.message, problem.suggestion)
}

function checkPlugin(signature: string, plugin: Plugin, dir: string, out: Collector): void {
  const path = ['plugins', signature]

  for (const [i, glob] of (plugin.files ?? []).entries()) {
    const problem = globProblem(glob)
    if (problem) out.add([...path, 'files', i], 'value', 'files-outside', problem)
    else if (!hasMatch(dir, glob)) out.add([...path, 'files', i], 'value', 'files-no-match', `"${glob}" matches no file of the project`, 'fix the glob (relative to config.yaml) or remove it')
  }
  if (BUILTIN_SIGNATURES.includes(signature)) return
  if (!plugin.description) out.add(path, 'key', 'missing-description', `plugin ${signature} has no description`, 'add `description:` (shown by `r1 types` and in docs)')
  if (plugin.entry === undefined) {
    out.add(path, 'key', 'ref-entry-missing', `plugin ${signature} has no entry`, 'add `entry:` with the module whose default export is definePlugin(...)')
    return
  }
  const ext = extname(plugin.entry)
  if (!(ENTRY_EXTENSIONS as readonly string[]).includes(ext)) {
    out.add([...path, 'entry'], 'value', 'ref-entry-extension', `entry "${plugin.entry}" must be a .ts, .js, .mjs or .mts module`)
  } else {
    const full = resolve(dir, plugin.entry)
    let isFile = false
    try {
      isFile = statSync(full).isFile()
    } catch {
      // missing
    }
    if (!isFile) out.add([...path, 'entry'], 'value', 'ref-entry-missing', `entry file ${plugin.entry} does not exist (looked for ${full})`, 'create it or fix the path (relative to config.yaml)')
  }

  const seen = new Map<string, string>()
  for (const [key, field] of Object.entries(plugin.config)) {
    const fieldPath = [...path, 'config', key]
    const upper = key.toUpperCase()
    const first = seen.get(upper)
    if (first !== undefined) {
      out.add(fieldPath, 'key', 'config-duplicate-key', `"${key}" and "${first}" declare the same key (config keys are compared in UPPERCASE)`, `keep one of "${first}" and "${key}"`)
      continue
    }
    seen.set(upper, key)
    const base = own(BASE_FIELDS, upper)
    if (base && base.type !== field.type) {
      out.add([...fieldPath, 'type'], 'value', 'field-constraint', `${upper} is a base key of type ${String(base.type)}; a plugin may change its default or bounds, not its type`)
      continue
    }
    const numeric = field.type === 'number' || field.type === 'integer' || field.type === 'string' || field.type === 'array'
    if (!numeric && (field.min !== undefined || field.max !== undefined)) {
      out.add([...fieldPath, field.min !== undefined ? 'min' : 'max'], 'key', 'field-constraint', `min/max apply to number, integer, string (length) and array (item count) fields, not ${field.type}`)
    }
    if (field.min !== undefined && field.max !== undefined && field.min > field.max) {
      out.add([...fieldPath, 'min'], 'value', 'field-constraint', `min ${field.min} is greater than max ${field.max}`)
    }
    if (field.enum) {
      if (field.type === 'object' || field.type === 'array') {
        out.add([...fieldPath, 'enum'], 'key', 'field-constraint', `enum applies to scalar fields, not ${field.type}`)
      } else {
        field.enum.forEach((value, i) => {
          const problems = checkValue({type: field.type}, value)
          if (problems.length > 0) out.add([...fieldPath, 'enum', i], 'value', 'field-constraint', `enum value ${JSON.stringify(value)} is not a ${field.type}`)
        })
      }
    }
    if (field.default !== undefined) {
      const problems = checkValue(fieldFromManifest({...field, required: false}), field.default)
      for (const problem of problems) out.add([...fieldPath, 'default', ...problem.path], 'value', 'field-default', `default ${JSON.stringify(field.default)} does not satisfy its own field: ${problem.message}`)
    }
  }
}

function hasMatch(dir: string, glob: string): boolean {
  try {
    return matchFiles(dir, [glob]).length > 0
  } catch {
    return false // an unreadable project folder: entry checks report it
  }
}

/** Words of an instance config value that may name a project file (a shell line is split into words). */
function pathCandidates(value: unknown, at: PathSegment[], out: Array<{word: string; at: PathSegment[]}>): void {
  if (typeof value === 'string') {
    for (const word of value.split(/\s+/)) {
      const bare = word.replace(/^['"]|['"]$/g, '').replace(/^\.\//, '').replace(/\/$/, '')
      if (bare && bare !== '.' && /^[\w.][\w./-]*$/.test(bare) && !/^[\d.]+$/.test(bare) && !bare.split('/').includes('..')) out.push({word: bare, at})
    }
  } else if (Array.isArray(value)) value.forEach((item, i) => pathCandidates(item, [...at, i], out))
  else if (isRecord(value)) for (const [key, item] of Object.entries(value)) pathCandidates(item, [...at, key], out)
}

/**
 * Every project file or folder an instance's config names must travel with the deploy: a file taken
 * by its plugin's `files:` globs, a folder holding at least one such file.
 */
function checkShipped(config: Record<string, unknown>, configPath: PathSegment[], signature: string, shipped: ((path: string) => boolean) | undefined, dir: string, out: Collector): void {
  const candidates: Array<{word: string; at: PathSegment[]}> = []
  for (const [key, value] of Object.entries(config)) pathCandidates(value, [key], candidates)
  for (const {word, at} of candidates) {
    let kind: 'file' | 'folder' | undefined
    try {
      const info = statSync(resolve(dir, word))
      kind = info.isFile() ? 'file' : info.isDirectory() ? 'folder' : undefined
    } catch {
      continue // not a project path
    }
    if (!kind) continue
    const ok = shipped !== undefined && (kind === 'file' ? shipped(word) : projectFilesUnder(dir, word).some(shipped))
    if (ok) continue
    out.add([...configPath, ...at], 'value', 'file-not-shipped', `the ${kind} ${word} does not travel with a deploy: ${signature} ships ${shipped ? 'other files' : 'no files'}`, `add it to plugins.${signature}.files (e.g. "${kind === 'folder' ? `${word}/**` : word}")`)
  }
}

function projectFilesUnder(dir: string, folder: string): string[] {
  try {
    return projectFiles(resolve(dir, folder)).map((path) => `${folder}/${path}`)
  } catch {
    return []
  }
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1')
  } catch {
    return undefined
  }
}
