import {createRequire} from 'node:module'
import {findSecretRefs, SECRET_NAME_PATTERN, secretRefName} from '../protocol/secret-refs.js'
import {closest, didYouMean, type RuleId} from './diagnostics.js'
import {CONFIG_KEY_PATTERN, type FieldType} from './patterns.js'
import type {ConfigField, Manifest} from './schema.js'

/**
 * Instance config schemas: the base keys every plugin has, the built-in signatures, and the
 * checks and defaults that the validator, the compiler and the runtime share.
 */

export type EnumValue = string | number | boolean

/** `record[key]` only for own keys: names like `constructor` or `toString` come from user YAML. */
export function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined
}

/** One config key's schema: what config.yaml can declare, plus unions and nesting for built-ins. */
export interface FieldSpec {
  type: FieldType | readonly FieldType[]
  nullable?: boolean
  default?: unknown
  min?: number
  max?: number
  enum?: readonly EnumValue[]
  required?: boolean
  description?: string
  /**
   * For objects with a fixed set of keys: UPPERCASE, like top-level config keys. A user may write
   * them in any case (two spellings of one key are an error); compiled configs carry them UPPERCASE.
   */
  properties?: Readonly<Record<string, FieldSpec>>
  /** For objects used as maps: every value's schema. */
  values?: FieldSpec
  /** For arrays: every item's schema. */
  items?: FieldSpec
  /** Checks across keys of one value (e.g. HEALTH_CHECK tcp needs a PORT); gets the value with its property keys UPPERCASE. */
  refine?: (value: unknown) => ConfigProblem[]
}

export interface PluginSpec {
  signature: string
  builtin: boolean
  /** As written in config.yaml (relative to its folder); built-ins have none. */
  entry?: string
  description?: string
  /** UPPERCASE key → schema; base keys included. */
  fields: Readonly<Record<string, FieldSpec>>
  /** Undeclared keys pass through unchecked. */
  allowUnknown: boolean
}

/** A problem inside one instance config; `path` is relative to the config object. */
export interface ConfigProblem {
  rule: RuleId
  path: Array<string | number>
  message: string
  suggestion?: string
  /** Point at the key rather than the value. */
  at?: 'key' | 'value'
}

/**
 * Keys every plugin instance has. ALLOW_EMPTY_INPUTS defaults to true (Ratio1's default is false)
 * because r1 pipelines are mostly `Void`, which never has input: false would mean "never runs".
 */
export const BASE_FIELDS: Readonly<Record<string, FieldSpec>> = {
  PROCESS_DELAY: {type: 'number', min: 0, default: 1, description: 'Minimum seconds between two process() calls'},
  ALLOW_EMPTY_INPUTS: {type: 'boolean', default: true, description: 'Run process() even when the pipeline has no input (Void pipelines never have any)'},
  DISABLED: {type: 'boolean', default: false, description: 'Configured but not started'},
  RESTART_BACKOFF_MAX: {type: 'number', min: 1, default: 60, description: 'Cap, in seconds, of the exponential restart back-off after crashes'},
  SHUTDOWN_TIMEOUT: {type: 'number', min: 0, default: 5, description: 'Seconds close() may take before the instance process is killed'},
  FORCED_PAUSE: {type: 'boolean', default: false, description: 'Loaded and initialized, but process() is not called (status paused)'},
  // no default: the node's own hang timeout applies (60 s; tests shrink it)
  PROCESS_TIMEOUT: {type: 'number', min: 0, description: "Seconds one process() call may run before the instance counts as hung and is restarted; unset or 0: the node's default (60 s)"},
  HEALTH_INTERVAL: {type: 'number', min: 0.1, description: "Seconds between two calls of the plugin's health() hook (default 10)"},
  // no default: the node's own cap applies (none unless the operator sets one)
  MAX_MEMORY_MB: {type: 'number', min: 64, description: 'Memory cap in MiB (an idle instance process takes ~50): the JavaScript heap limit, and the resident memory of the instance with every process it started; over it the instance is notified as over its limit, killed and restarted with back-off'},
}

/** Keys r1 sets itself in the compiled config. */
export const RESERVED_KEYS: readonly string[] = ['INSTANCE_ID']

const healthCheck: FieldSpec = {
  type: 'object',
  nullable: true,
  default: null,
  description: 'How to tell the app is up: tcp (PORT), http (URL, or PORT + PATH) or delay (DELAY seconds)',
  properties: {
    TYPE: {type: 'string', enum: ['tcp', 'http', 'delay'], required: true},
    HOST: {type: 'string', min: 1, description: 'Host probed by tcp and by http with PORT (default 127.0.0.1)'},
    PORT: {type: 'integer', min: 1, max: 65535},
    URL: {type: 'string', min: 1},
    PATH: {type: 'string', description: 'Path probed by http with PORT (default /)'},
    DELAY: {type: 'number', min: 0, description: 'Seconds a delay check waits'},
    TIMEOUT: {type: 'number', min: 0, description: 'Seconds before a failing tcp/http check is reported (default 60)'},
  },
  refine(value) {
    const check = value as Record<string, unknown> | null
    if (check === null || typeof check !== 'object') return []
    if (check.TYPE === 'tcp' && check.PORT === undefined) return [{rule: 'config-required', path: [], message: 'a tcp health check needs PORT'}]
    if (check.TYPE === 'http' && check.URL === undefined && check.PORT === undefined)
      return [{rule: 'config-required', path: [], message: 'an http health check needs URL or PORT'}]
    if (check.TYPE === 'delay' && check.DELAY === undefined) return [{rule: 'config-required', path: [], message: 'a delay health check needs DELAY (seconds)'}]
    return []
  },
}

export const BUILTIN_PLUGINS: Readonly<Record<string, Omit<PluginSpec, 'fields'> & {own: Record<string, FieldSpec>}>> = {
  CUSTOM_EXEC_01: {
    signature: 'CUSTOM_EXEC_01',
    builtin: true,
    description: 'Runs inline JavaScript (CODE: the body of an async function with `plugin` in scope) every PROCESS_DELAY seconds',
    allowUnknown: false,
    own: {
      CODE: {
        type: 'string',
        required: true,
        min: 1,
        description: 'JavaScript function body, or base64 of zlib-compressed JavaScript as Ratio1 sends it',
        refine(value) {
          if (typeof value !== 'string') return []
          const problem = checkCodeSyntax(value)
          return problem ? [{rule: 'config-value', path: [], message: problem}] : []
        },
      },
    },
  },
  PROCESS_APP_RUNNER: {
    signature: 'PROCESS_APP_RUNNER',
    builtin: true,
    description: 'Runs a command (Python, a binary, a shell script): its output lines become log lines, its status payloads',
    allowUnknown: false,
    own: {
      COMMAND: {
        type: ['string', 'array'],
        required: true,
        min: 1,
        items: {type: 'string'},
        description: 'A shell command line, or [program, ...args] run without a shell',
      },
      CWD: {type: 'string', description: "Working directory (relative to the project's folder)"},
      ENV: {type: 'object', values: {type: ['string', 'number', 'boolean']}, default: {}, description: 'Environment of the process (it gets nothing else)'},
      RESTART_POLICY: {type: 'string', enum: ['always', 'on-failure', 'no'], default: 'on-failure', description: 'When to restart the process after it exits'},
      HEALTH_CHECK: healthCheck,
      // no default: ignored since output lines became LOG events, and accepted because configs stored on nodes carry it
      OUTPUT_THROTTLE: {type: 'number', min: 0, description: 'Ignored (output lines are log lines, rate-limited by the node); kept so existing configs stay valid'},
    },
  },
}

export const BUILTIN_SIGNATURES: readonly string[] = Object.keys(BUILTIN_PLUGINS)

/** A FieldSpec from a config.yaml field declaration. */
export function fieldFromManifest(field: ConfigField): FieldSpec {
  const spec: FieldSpec = {type: field.type}
  if (field.default !== undefined) spec.default = field.default
  if (field.min !== undefined) spec.min = field.min
  if (field.max !== undefined) spec.max = field.max
  if (field.enum !== undefined) spec.enum = field.enum
  if (field.required !== undefined) spec.required = field.required
  if (field.description !== undefined) spec.description = field.description
  return spec
}

/** The schema of one signature: a built-in, one of the manifest's plugins, or undefined when unknown. */
export function pluginSpec(signature: string, manifest?: Manifest): PluginSpec | undefined {
  const builtin = own(BUILTIN_PLUGINS, signature)
  if (builtin) {
    const {own, ...rest} = builtin
    return {...rest, fields: {...BASE_FIELDS, ...own}}
  }
  const plugin = own(manifest?.plugins, signature)
  if (!plugin) return undefined
  const fields: Record<string, FieldSpec> = {...BASE_FIELDS}
  for (const [key, field] of Object.entries(plugin.config)) {
    const upper = key.toUpperCase()
    const base = own(BASE_FIELDS, upper)
    // A plugin may re-declare a base key to change its default or bounds; its type stays the base one.
    fields[upper] = base ? {...base, ...fieldFromManifest(field), type: base.type} : fieldFromManifest(field)
  }
  return {signature, builtin: false, entry: plugin.entry, description: plugin.description, fields, allowUnknown: plugin.allow_unknown_config}
}

/** Every signature the manifest can use: the built-ins and the project's plugins. */
export function pluginSchemas(manifest?: Manifest): Record<string, PluginSpec> {
  const out: Record<string, PluginSpec> = {}
  for (const signature of BUILTIN_SIGNATURES) out[signature] = pluginSpec(signature)!
  for (const signature of Object.keys(manifest?.plugins ?? {})) out[signature] = pluginSpec(signature, manifest)!
  return out
}

/** A spec for a signature the runtime knows nothing about (e.g. a deployed bundle): base keys checked, the rest passed through. */
export function openPluginSpec(signature: string): PluginSpec {
  return {signature, builtin: false, fields: {...BASE_FIELDS}, allowUnknown: true}
}

/**
 * Instance config with keys in UPPERCASE and every default filled in. Used by the compiler and by
 * the runtime for raw pipeline configs; the signature's spec comes from the built-ins or `manifest`,
 * else only the base keys get defaults.
 */
export function applyDefaults(signature: string, config: Readonly<Record<string, unknown>>, manifest?: Manifest): Record<string, unknown> {
  const spec = pluginSpec(signature, manifest) ?? openPluginSpec(signature)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config)) {
    const upper = key.toUpperCase()
    const field = own(spec.fields, upper)
    out[upper] = field ? normalizeValue(field, value) : value
  }
  for (const [key, field] of Object.entries(spec.fields)) {
    if (out[key] === undefined && field.default !== undefined) out[key] = structuredClone(field.default)
  }
  return out
}

/**
 * A value with the keys of its fixed-key objects (`properties`, e.g. HEALTH_CHECK) in UPPERCASE, at
 * every depth; map values (`values`, e.g. ENV) keep their keys as written. Anything else is returned as is.
 */
export function normalizeValue(field: FieldSpec, value: unknown): unknown {
  // a secret reference goes to the node in one spelling: {"secret": NAME}
  const secret = secretRefName(value)
  if (secret !== undefined) return {secret}
  if (field.properties && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      const upper = key.toUpperCase()
      const sub = own(field.properties, upper)
      out[upper] = sub ? normalizeValue(sub, item) : item
    }
    return out
  }
  if (field.values && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) out[key] = normalizeValue(field.values, item)
    return out
  }
  if (field.items && Array.isArray(value)) return value.map((item) => normalizeValue(field.items!, item))
  return value
}

/** Checks one instance config against its plugin (keys as written). Problems' paths are relative to the config. */
export function checkInstanceConfig(spec: PluginSpec, config: Readonly<Record<string, unknown>>): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const seen = new Map<string, string>()
  for (const [key, value] of Object.entries(config)) {
    if (!CONFIG_KEY_PATTERN.test(key)) {
      problems.push({rule: 'config-key-format', path: [key], at: 'key', message: `config key "${key}" is not an identifier (letters, digits and _)`})
      continue
    }
    const upper = key.toUpperCase()
    const first = seen.get(upper)
    if (first !== undefined) {
      problems.push({
        rule: 'config-duplicate-key',
        path: [key],
        at: 'key',
        message: `"${key}" and "${first}" are the same key (config keys are compared in UPPERCASE)`,
        suggestion: `keep one of "${first}" and "${key}"`,
      })
      continue
    }
    seen.set(upper, key)
    if (RESERVED_KEYS.includes(upper)) {
      problems.push({rule: 'config-reserved-key', path: [key], at: 'key', message: `${upper} is set by r1 from the instance's key; remove it from config`})
      continue
    }
    const field = own(spec.fields, upper)
    if (!field) {
      if (spec.allowUnknown) continue
      const suggestion = didYouMean(upper, Object.keys(spec.fields))
      problems.push({
        rule: 'config-unknown-key',
        path: [key],
        at: 'key',
        message: `${spec.signature} has no config key "${upper}"${spec.builtin ? '' : ' (declare it under plugins.' + spec.signature + '.config)'}`,
        ...(suggestion ? {suggestion} : {}),
      })
      continue
    }
    for (const problem of checkValue(field, value)) problems.push({...problem, path: [key, ...problem.path]})
  }
  problems.push(...secretNameProblems(config))
  for (const [key, field] of Object.entries(spec.fields)) {
    if (field.required && field.default === undefined && !seen.has(key)) {
      problems.push({rule: 'config-required', path: [], at: 'key', message: `${spec.signature} requires config key ${key}${field.description ? ` (${field.description})` : ''}`})
    }
  }
  return problems
}

const typeName = (value: unknown): string => {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer'
  return typeof value
}

function matchesType(type: FieldType, value: unknown): boolean {
  switch (type) {
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value)
    case 'string':
      return typeof value === 'string'
    case 'boolean':
      return typeof value === 'boolean'
    case 'array':
      return Array.isArray(value)
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value)
  }
}

/** Every secret reference in a config whose name `r1 secrets set` would not accept (at any depth). */
function secretNameProblems(config: Readonly<Record<string, unknown>>): ConfigProblem[] {
  return findSecretRefs(config)
    .filter((use) => !SECRET_NAME_PATTERN.test(use.name))
    .map((use) => {
      const suggestion = use.name.toUpperCase().replace(/[^A-Z0-9_]/g, '_').replace(/^([0-9])/, '_$1').slice(0, 128)
      return {rule: 'config-secret' as const, path: [...use.path, Object.keys(secretRefObject(config, use.path))[0] ?? 'secret'], message: `"${use.name}" is not a secret name: use UPPER_SNAKE_CASE (letters, digits, _)`, ...(suggestion ? {suggestion} : {})}
    })
}

function secretRefObject(config: unknown, path: ReadonlyArray<string | number>): Record<string, unknown> {
  let at: unknown = config
  for (const key of path) at = (at as Record<string | number, unknown>)[key]
  return at as Record<string, unknown>
}

/** Checks one value against its field schema; paths are relative to the value. */
export function checkValue(field: FieldSpec, value: unknown): ConfigProblem[] {
  const types = typeof field.type === 'string' ? [field.type] : field.type
  // {secret: NAME} stands for a string the node fills in when the instance starts (its name is checked once, over the whole config)
  if (secretRefName(value) !== undefined) {
    if (types.includes('string')) return []
    return [{rule: 'config-secret', path: [], message: `a secret reference stands for a string; this key expects ${types.join(' or ')}`}]
  }
  if (value === null && field.nullable) return []
  const type = types.find((t) => matchesType(t, value))
  if (!type) {
    const expected = types.join(' or ') + (field.nullable ? ' or null' : '')
    const shown = typeof value === 'string' ? ` ("${value.length > 30 ? value.slice(0, 30) + '…' : value}")` : ''
    return [{rule: 'config-type', path: [], message: `expected ${expected}, got ${typeName(value)}${shown}`}]
  }
  const problems: ConfigProblem[] = []
  if (field.enum && !field.enum.includes(value as EnumValue)) {
    const suggestion = typeof value === 'string' ? didYouMean(value, field.enum.map(String)) : undefined
    problems.push({rule: 'config-enum', path: [], message: `${JSON.stringify(value)} is not one of ${field.enum.map((v) => JSON.stringify(v)).join(', ')}`, ...(suggestion ? {suggestion} : {})})
  }
  const measured = type === 'string' || type === 'array' ? (value as string | unknown[]).length : type === 'number' || type === 'integer' ? (value as number) : undefined
  if (measured !== undefined) {
    const what = type === 'string' ? 'length ' : type === 'array' ? 'item count ' : ''
    if (field.min !== undefined && measured < field.min) problems.push({rule: 'config-range', path: [], message: `${what}${measured} is below the minimum ${field.min}`})
    if (field.max !== undefined && measured > field.max) problems.push({rule: 'config-range', path: [], message: `${what}${measured} is above the maximum ${field.max}`})
  }
  if (type === 'array' && field.items) {
    ;(value as unknown[]).forEach((item, i) => {
      for (const p of checkValue(field.items!, item)) problems.push({...p, path: [i, ...p.path]})
    })
  }
  if (type === 'object' && field.values) {
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      for (const p of checkValue(field.values, item)) problems.push({...p, path: [key, ...p.path]})
    }
  }
  if (type === 'object' && field.properties) {
    const properties = field.properties
    const seen = new Map<string, string>()
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      const upper = key.toUpperCase()
      const first = seen.get(upper)
      if (first !== undefined) {
        problems.push({rule: 'config-duplicate-key', path: [key], at: 'key', message: `"${key}" and "${first}" are the same key (keys are compared in UPPERCASE)`, suggestion: `keep one of "${first}" and "${key}"`})
        continue
      }
      seen.set(upper, key)
      const sub = own(properties, upper)
      if (!sub) {
        // suggest in the case the user writes in (config.yaml usually lowercase)
        const lower = key === key.toLowerCase()
        const names = Object.keys(properties).map((name) => (lower ? name.toLowerCase() : name))
        const suggestion = didYouMean(lower ? key : upper, names)
        problems.push({rule: 'config-unknown-key', path: [key], at: 'key', message: `unknown key "${key}" (expected ${names.join(', ')}, in any case)`, ...(suggestion ? {suggestion} : {})})
        continue
      }
      for (const p of checkValue(sub, item)) problems.push({...p, path: [key, ...p.path]})
    }
    for (const [key, sub] of Object.entries(properties)) {
      if (sub.required && !seen.has(key)) problems.push({rule: 'config-required', path: [], message: `missing required key ${key}`})
    }
  }
  if (problems.length === 0 && field.refine) problems.push(...field.refine(normalizeValue(field, value)))
  return problems
}

// node:zlib only for base64 CODE: its import is a few ms of every `r1 validate`, and decodeCode is synchronous.
let zlibModule: typeof import('node:zlib') | undefined
const zlib = (): typeof import('node:zlib') => (zlibModule ??= createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib'))

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Whether base64 text starts with a zlib header (RFC 1950: deflate, header a multiple of 31), as inflate would check first. */
function zlibHeader(base64: string): boolean {
  const [a, b, c] = [BASE64.indexOf(base64[0]), BASE64.indexOf(base64[1]), BASE64.indexOf(base64[2])]
  const cmf = (a << 2) | (b >> 4)
  const flg = ((b & 15) << 4) | (c >> 2)
  return (cmf & 15) === 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 === 0
}

/** CODE as it will run: plain JavaScript, or Ratio1's base64 of zlib-compressed JavaScript decoded. */
export function decodeCode(code: string): string {
  const compact = code.replace(/\s+/g, '')
  if (compact.length >= 8 && compact.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(compact) && zlibHeader(compact)) {
    try {
      return zlib().inflateSync(Buffer.from(compact, 'base64')).toString('utf8')
    } catch {
      // not zlib: an identifier-only body such as `noop` is plain JavaScript
    }
  }
  return code
}

/** A syntax error message for CODE, or undefined. Compiles without running it. */
export function checkCodeSyntax(code: string): string | undefined {
  const source = decodeCode(code)
  try {
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => unknown
    new AsyncFunction('plugin', source)
    return undefined
  } catch (error) {
    return `CODE does not parse as the body of an async function: ${(error as Error).message}`
  }
}

/** Suggests a known signature for a mistyped one. */
export function suggestSignature(signature: string, manifest?: Manifest): string | undefined {
  return closest(signature, [...BUILTIN_SIGNATURES, ...Object.keys(manifest?.plugins ?? {})])
}
