import {readFileSync, statSync} from 'node:fs'
import {dirname, extname, join, resolve} from 'node:path'
import type {z} from 'zod'
import {ExitCode, R1Error} from '../errors.js'
import {checkNodeAddress} from './address.js'
import {RULES, didYouMean, dottedPath, type Diagnostic, type RuleId} from './diagnostics.js'
import {BASE_FIELDS, BUILTIN_SIGNATURES, checkInstanceConfig, checkValue, fieldFromManifest, openPluginSpec, pluginSpec, type ConfigProblem} from './fields.js'
import {parseYaml, stripBom, type ParsedYaml, type PathSegment} from './positions.js'
import {ManifestSchema, PluginSchema, type Manifest, type Plugin} from './schema.js'

export const MANIFEST_FILE = 'config.yaml'
export const ENTRY_EXTENSIONS = ['.ts', '.js', '.mjs', '.mts'] as const

export interface ValidationResult {
  /** Absolute path of config.yaml. */
  file: string
  /** Its folder: entries and CWDs are relative to it. */
  dir: string
  /** No errors (warnings allowed; `--strict` decides about those). */
  valid: boolean
  /** Sorted by position. */
  diagnostics: Diagnostic[]
  /** The parsed manifest (defaults applied), set when there are no errors. */
  manifest?: Manifest
}

/** Resolves a project folder or a manifest path to the manifest file (no I/O beyond stat). */
export function resolveManifestPath(pathOrDir: string): string {
  const absolute = resolve(pathOrDir)
  let stats
  try {
    stats = statSync(absolute)
  } catch {
    throw notFound(`${absolute} does not exist`, pathOrDir)
  }
  if (!stats.isDirectory()) return absolute
  const file = join(absolute, MANIFEST_FILE)
  try {
    if (statSync(file).isFile()) return file
  } catch {
    // fall through
  }
  throw notFound(`No ${MANIFEST_FILE} in ${absolute}`, pathOrDir)
}

function notFound(message: string, given: string): R1Error {
  return new R1Error(message, ExitCode.FAILURE, {
    code: 'MANIFEST_NOT_FOUND',
    hint: `Pass a project folder or its ${MANIFEST_FILE} (got "${given}"), or create a project with \`r1 init\`.`,
  })
}

/** Reads and checks a project's config.yaml. Throws R1Error (exit 1) only when the file is missing or unreadable. */
export async function validateProject(pathOrDir: string): Promise<ValidationResult> {
  const file = resolveManifestPath(pathOrDir)
  let source: string
  try {
    source = readFileSync(file, 'utf8')
  } catch (error) {
    throw new R1Error(`Cannot read ${file}: ${(error as Error).message}`, ExitCode.FAILURE, {
      code: 'MANIFEST_UNREADABLE',
      hint: 'Check the file permissions.',
      cause: error,
    })
  }
  return validateSource(source, file)
}

/**
 * Validates a project and returns its manifest, or throws R1Error exit 3 (`MANIFEST_INVALID`,
 * diagnostics in `details`) when it has errors. For `r1 run` and `r1 deploy`.
 */
export async function loadManifest(pathOrDir: string): Promise<ValidationResult & {manifest: Manifest}> {
  const result = await validateProject(pathOrDir)
  if (!result.manifest) {
    const errors = result.diagnostics.filter((d) => d.severity === 'error')
    const first = errors.slice(0, 3).map((d) => `  ${d.file}:${d.line}:${d.col} ${d.message} [${d.rule}]`)
    const more = errors.length > 3 ? [`  … and ${errors.length - 3} more`] : []
    throw new R1Error([`${result.file} has ${errors.length} error${errors.length === 1 ? '' : 's'}:`, ...first, ...more].join('\n'), ExitCode.INVALID_CONFIG, {
      code: 'MANIFEST_INVALID',
      hint: `Run \`r1 validate ${result.dir}\` for details.`,
      details: {file: result.file, diagnostics: result.diagnostics},
    })
  }
  return result as ValidationResult & {manifest: Manifest}
}

/** Validates manifest text; `file` names it in diagnostics and its folder anchors entry paths. */
export function validateSource(source: string, file: string): ValidationResult {
  const absolute = resolve(file)
  const dir = dirname(absolute)
  const yaml = parseYaml(stripBom(source))
  const out = new Collector(absolute, yaml)

  const linesWithError = new Set<number>()
  for (const problem of yaml.syntaxErrors) {
    // One YAML mistake often cascades into more errors on its line: the first one is the useful one.
    if (linesWithError.has(problem.position.line)) continue
    linesWithError.add(problem.position.line)
    out.at(problem.position, 'yaml-syntax', '', problem.message, YAML_HINTS[problem.code])
  }
  if (yaml.syntaxErrors.length > 0) return out.result(dir)

  for (const dup of yaml.duplicateKeys) {
    out.at(dup.position, 'yaml-duplicate-key', dottedPath([...dup.path, dup.key]), `key "${dup.key}" appears more than once${dup.path.length ? ` in ${dottedPath(dup.path)}` : ''}`, 'remove one of them (the last one would win)')
  }

  const data = yaml.data
  if (data === null || data === undefined) {
    out.add([], 'value', 'schema-type', 'config.yaml is empty: expected a mapping with name, version, plugins and pipelines')
    return out.result(dir)
  }

  const parsed = ManifestSchema.safeParse(data)
  if (!parsed.success) for (const issue of parsed.error.issues) mapIssue(issue, data, out)

  checkSemantics(data, dir, out)

  const result = out.result(dir)
  if (result.valid && parsed.success) result.manifest = parsed.data
  return result
}

const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  BLOCK_AS_IMPLICIT_KEY: 'quote the value if it contains ": " (e.g. description: "a: b")',
  BAD_INDENT: 'check the indentation and that every [ and { is closed',
  MULTILINE_IMPLICIT_KEY: 'a key must fit on one line; check for a missing ":" or an unclosed quote',
  MISSING_CHAR: 'a closing quote or bracket is missing',
  UNEXPECTED_TOKEN: 'check the indentation and quoting around this point',
}

class Collector {
  private readonly list: Diagnostic[] = []
  private readonly seen = new Set<string>()
  constructor(
    private readonly file: string,
    readonly yaml: ParsedYaml,
  ) {}

  at(position: {line: number; col: number}, rule: RuleId, path: string, message: string, suggestion?: string): void {
    // The zod pass and the semantic pass can both see one problem (e.g. a bad config key): report it once.
    const key = `${rule}:${position.line}:${position.col}`
    if (this.seen.has(key)) return
    this.seen.add(key)
    this.list.push({file: this.file, line: position.line, col: position.col, severity: RULES[rule].severity, rule, path, message, ...(suggestion ? {suggestion} : {})})
  }

  add(path: readonly PathSegment[], at: 'key' | 'value', rule: RuleId, message: string, suggestion?: string): void {
    this.at(this.yaml.locate(path, at), rule, dottedPath(path), message, suggestion)
  }

  result(dir: string): ValidationResult {
    const diagnostics = [...this.list].sort((a, b) => a.line - b.line || a.col - b.col)
    return {file: this.file, dir, valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics}
  }
}

// ---- zod issues → diagnostics ------------------------------------------------------------

type Issue = z.core.$ZodIssue

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<PropertyKey, unknown>)[segment]
  }
  return node
}

const kind = (value: unknown): string => (value === null ? 'nothing (an empty value: add entries or remove the key)' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a mapping' : typeof value)
const expectedName = (expected: string): string => (expected === 'object' || expected === 'record' ? 'a mapping' : expected === 'array' ? 'a list' : expected)

function mapIssue(issue: Issue, data: unknown, out: Collector): void {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p)) as PathSegment[]
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(path)
      for (const key of issue.keys) {
        const where = path.length ? dottedPath(path) : 'the top level'
        out.add([...path, key], 'key', 'schema-unknown-key', `unknown key "${key}" in ${where} (allowed: ${known.join(', ')})`, didYouMean(key, known))
      }
      return
    }
    case 'invalid_type': {
      const value = valueAt(data, path)
      if (value === undefined) {
        missing(path, out)
      } else {
        out.add(path, 'value', 'schema-type', `expected ${expectedName(issue.expected)}, got ${kind(value)}`)
      }
      return
    }
    case 'invalid_value': {
      const value = valueAt(data, path)
      if (value === undefined) return missing(path, out)
      const allowed = issue.values.map((v) => String(v))
      out.add(path, 'value', 'schema-enum', `${JSON.stringify(value)} is not one of ${allowed.join(', ')}`, typeof value === 'string' ? didYouMean(value, allowed) : undefined)
      return
    }
    case 'invalid_format':
      formatIssue(path, valueAt(data, path), out)
      return
    case 'invalid_key':
      keyIssue(path, out)
      return
    case 'too_small':
    case 'too_big': {
      const value = valueAt(data, path)
      if (issue.code === 'too_small' && (typeof value === 'string' || Array.isArray(value)) && Number(issue.minimum) === 1) {
        out.add(path, 'value', 'schema-range', `${dottedPath(path)} must not be empty`)
      } else {
        out.add(path, 'value', 'schema-range', issue.message)
      }
      return
    }
    case 'invalid_union':
      out.add(path, 'value', 'schema-type', `expected a string, number or boolean, got ${kind(valueAt(data, path))}`)
      return
    default:
      out.add(path, 'value', 'schema-type', issue.message)
  }
}

function missing(path: PathSegment[], out: Collector): void {
  const key = path.at(-1)
  out.add(path.slice(0, -1), 'key', 'schema-required', `missing required key "${String(key)}"${path.length > 1 ? ` in ${dottedPath(path.slice(0, -1))}` : ''}`)
}

function formatIssue(path: PathSegment[], value: unknown, out: Collector): void {
  const text = String(value)
  if (path.length === 1 && path[0] === 'name') {
    out.add(path, 'value', 'name-format', `project name "${text}" must be kebab-case (lowercase letters, digits and single dashes)`, suggestKebab(text))
  } else if (path.length === 1 && path[0] === 'version') {
    const parts = text.split('.')
    const guess = /^\d+(\.\d+)?$/.test(text) ? [...parts, '0', '0'].slice(0, 3).join('.') : undefined
    out.add(path, 'value', 'version-format', `version "${text}" is not semver (MAJOR.MINOR.PATCH, e.g. 0.1.0)`, guess ? `use "${guess}"` : undefined)
  } else if (path[0] === 'targets' && path[2] === 'url') {
    out.add(path, 'value', 'target-url', `target URL "${text}" must start with ws:// or wss:// and name a host`, /^https?:\/\//.test(text) ? `use "${text.replace(/^http/, 'ws')}"` : undefined)
  } else if (path[0] === 'targets' && path[2] === 'address') {
    out.add(path, 'value', 'target-address', checkNodeAddress(text) ?? `"${text}" is not a node address`, 'copy it from `r1 keys show` on the node')
  } else {
    out.add(path, 'value', 'schema-type', `"${text}" has the wrong format`)
  }
}

function keyIssue(path: PathSegment[], out: Collector): void {
  const key = String(path.at(-1))
  const parent = path.slice(0, -1)
  const last = parent.at(-1)
  if (parent.length === 1 && last === 'plugins') {
    const upper = key.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_+|_+$/g, '')
    out.add(path, 'key', 'signature-format', `signature "${key}" must be UPPER_SNAKE (A-Z, 0-9, _; starting with a letter)`, /^[A-Z]/.test(upper) ? `rename it "${upper}"` : undefined)
  } else if (last === 'config') {
    out.add(path, 'key', 'config-key-format', `config key "${key}" is not an identifier (letters, digits and _)`)
  } else {
    const what = last === 'pipelines' ? 'pipeline name' : last === 'instances' ? 'instance id' : last === 'targets' ? 'target name' : 'name'
    out.add(path, 'key', 'name-format', `${what} "${key}" may only contain letters, digits, ".", "_" and "-", starting with a letter or digit`)
  }
}

function suggestKebab(text: string): string | undefined {
  const kebab = text
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
  return /^[a-z]/.test(kebab) ? `use "${kebab}"` : undefined
}

/** The keys the zod schema allows at `path` (for "did you mean"). */
function knownKeysAt(path: readonly PathSegment[]): string[] {
  let schema = unwrap(ManifestSchema as unknown as ZodLike)
  for (const segment of path) {
    const def = schema._zod.def
    if (def.type === 'object') schema = unwrap(def.shape![String(segment)])
    else if (def.type === 'record') schema = unwrap(def.valueType!)
    else return []
    if (!schema) return []
  }
  return schema._zod.def.type === 'object' ? Object.keys(schema._zod.def.shape!) : []
}

interface ZodLike {
  _zod: {def: {type: string; shape?: Record<string, ZodLike>; valueType?: ZodLike; innerType?: ZodLike}}
}
function unwrap(schema: ZodLike): ZodLike {
  let current = schema
  while (current?._zod.def.innerType) current = current._zod.def.innerType
  return current
}

// ---- checks across the manifest ---------------------------------------------------------------

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

function checkSemantics(data: unknown, dir: string, out: Collector): void {
  if (!isRecord(data)) return
  const rawPlugins = isRecord(data.plugins) ? data.plugins : {}
  // Plugins that parse on their own: their config schemas check instances even if other parts are broken.
  const plugins: Record<string, Plugin> = {}
  for (const [signature, raw] of Object.entries(rawPlugins)) {
    const parsed = PluginSchema.safeParse(raw)
    if (parsed.success) plugins[signature] = parsed.data
  }
  const partial = {name: '', version: '', plugins, pipelines: {}, targets: {}} as Manifest
  const used = new Set<string>()

  for (const [signature, plugin] of Object.entries(plugins)) checkPlugin(signature, plugin, dir, out)
  for (const signature of Object.keys(rawPlugins)) {
    if (BUILTIN_SIGNATURES.includes(signature)) {
      out.add(['plugins', signature], 'key', 'ref-builtin-shadowed', `${signature} is a built-in signature; a project plugin cannot reuse its name`, 'rename the plugin')
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
      if (!BUILTIN_SIGNATURES.includes(signature) && !(signature in rawPlugins)) {
        const known = [...BUILTIN_SIGNATURES, ...Object.keys(rawPlugins)]
        out.add([...path, 'plugin'], 'value', 'ref-unknown-plugin', `instance "${id}" uses plugin "${signature}", which is neither a project plugin nor a built-in (known: ${known.join(', ')})`, didYouMean(signature, known))
        continue
      }
      const spec = pluginSpec(signature, partial) ?? openPluginSpec(signature)
      const config = instance.config === undefined ? {} : instance.config
      if (!isRecord(config)) continue
      for (const problem of checkInstanceConfig(spec, config)) addConfigProblem([...path, 'config'], problem, out)
    }
  }

  for (const signature of Object.keys(rawPlugins)) {
    if (!used.has(signature) && !BUILTIN_SIGNATURES.includes(signature)) {
      out.add(['plugins', signature], 'key', 'unused-plugin', `plugin ${signature} is not used by any pipeline instance`, 'add an instance that uses it, or remove it')
    }
  }

  const targets = isRecord(data.targets) ? data.targets : {}
  for (const [name, target] of Object.entries(targets)) {
    if (!isRecord(target)) continue
    if (typeof target.address === 'string' && /^0xai_[A-Za-z0-9_-]{44}$/.test(target.address)) {
      const problem = checkNodeAddress(target.address)
      if (problem) out.add(['targets', name, 'address'], 'value', 'target-address', problem, 'copy it from `r1 keys show` on the node')
    }
    if (typeof target.url === 'string' && target.url.startsWith('ws://')) {
      const host = hostOf(target.url)
      if (host && !isLoopback(host)) {
        out.add(['targets', name, 'url'], 'value', 'target-insecure', `target "${name}" uses unencrypted ws:// to ${host}; commands are signed but payloads travel in clear`, `use "${target.url.replace(/^ws:/, 'wss:')}"`)
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
  if (!plugin.description) out.add(path, 'key', 'missing-description', `plugin ${signature} has no description`, 'add `description:` (shown by `r1 types` and in docs)')

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
    const base = BASE_FIELDS[upper]
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

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname
  } catch {
    return undefined
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
