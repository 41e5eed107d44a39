import {readFileSync} from 'node:fs'
import type {PathSegment} from './positions.js'

/**
 * Structural validation at run time against the JSON Schema generated from the zod schema
 * (dist/config.schema.json). zod stays the single source; this keeps its ~50 ms import off the
 * path of every `r1 validate/run/deploy`. Issues mirror zod's (codes, paths, skipped values), and
 * a test checks both agree (success and output) on every fixture. Unknown keywords throw.
 */

export type JsonSchema = boolean | {[keyword: string]: any}

export interface StructureIssue {
  code: 'invalid_type' | 'invalid_value' | 'invalid_format' | 'invalid_key' | 'invalid_union' | 'unrecognized_keys' | 'too_small' | 'too_big'
  path: PathSegment[]
  expected?: string
  values?: unknown[]
  keys?: string[]
  minimum?: number
  maximum?: number
}

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', 'default', 'examples', '$comment'])
const KEYWORDS = new Set(['type', 'enum', 'properties', 'required', 'additionalProperties', 'propertyNames', 'pattern', 'minLength', 'maxLength', 'minItems', 'maxItems', 'items', 'minimum', 'maximum'])

let cached: JsonSchema | undefined

/** The shipped JSON Schema; generated from zod when running from source (tests, bin/dev.js). */
export async function manifestStructureSchema(): Promise<JsonSchema> {
  if (cached) return cached
  try {
    cached = JSON.parse(readFileSync(new URL('../config.schema.json', import.meta.url), 'utf8')) as JsonSchema
  } catch {
    const {manifestJsonSchema} = await import('./json-schema.js')
    cached = manifestJsonSchema()
  }
  return cached
}

/** Checks `data` against `schema`; `value` is `data` with the schema's defaults filled in (as zod's output). */
export function checkStructure(schema: JsonSchema, data: unknown): {issues: StructureIssue[]; value: unknown} {
  const issues: StructureIssue[] = []
  const value = walk(schema, data, [], issues)
  return {issues, value}
}

const regexes = new Map<string, RegExp>()
const regex = (pattern: string): RegExp => {
  let re = regexes.get(pattern)
  if (!re) regexes.set(pattern, (re = new RegExp(pattern, 'u')))
  return re
}

function typeOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

function hasType(type: string, value: unknown): boolean {
  if (type === 'number') return typeof value === 'number' && Number.isFinite(value)
  if (type === 'integer') return typeof value === 'number' && Number.isInteger(value)
  return typeOf(value) === type
}

function walk(schema: JsonSchema, value: unknown, path: PathSegment[], issues: StructureIssue[]): unknown {
  if (schema === true) return value
  if (schema === false) {
    issues.push({code: 'invalid_type', path, expected: 'never'})
    return value
  }
  for (const keyword of Object.keys(schema)) {
    if (!ANNOTATIONS.has(keyword) && !KEYWORDS.has(keyword)) throw new Error(`config.schema.json uses "${keyword}", which the structure check does not implement`)
  }
  // zod checks an enum by membership alone (a number where a string enum is expected is "not one of").
  if (schema.enum) {
    if (!(schema.enum as unknown[]).some((e) => e === value)) issues.push({code: 'invalid_value', path, values: schema.enum})
    return value
  }
  if (schema.type !== undefined) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type]
    if (!types.some((t) => hasType(t, value))) {
      issues.push(types.length > 1 ? {code: 'invalid_union', path} : {code: 'invalid_type', path, expected: schema.additionalProperties && !schema.properties ? 'record' : types[0]})
      return value
    }
  }
  if (typeof value === 'string') {
    const length = [...value].length
    if (schema.minLength !== undefined && length < schema.minLength) issues.push({code: 'too_small', path, minimum: schema.minLength})
    if (schema.maxLength !== undefined && length > schema.maxLength) issues.push({code: 'too_big', path, maximum: schema.maxLength})
    if (schema.pattern !== undefined && !regex(schema.pattern).test(value)) issues.push({code: 'invalid_format', path})
    return value
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) issues.push({code: 'too_small', path, minimum: schema.minimum})
    if (schema.maximum !== undefined && value > schema.maximum) issues.push({code: 'too_big', path, maximum: schema.maximum})
    return value
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) issues.push({code: 'too_small', path, minimum: schema.minItems})
    if (schema.maxItems !== undefined && value.length > schema.maxItems) issues.push({code: 'too_big', path, maximum: schema.maxItems})
    return schema.items === undefined ? value : value.map((item, i) => walk(schema.items, item, [...path, i], issues))
  }
  if (typeOf(value) === 'object') return walkObject(schema, value as Record<string, unknown>, path, issues)
  return value
}

// `__proto__` from YAML is an ordinary key: define it, never assign it (that would set the prototype).
function put(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(object, key, {value, enumerable: true, writable: true, configurable: true})
  else object[key] = value
}

function walkObject(schema: {[keyword: string]: any}, object: Record<string, unknown>, path: PathSegment[], issues: StructureIssue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const properties: Record<string, JsonSchema> = schema.properties ?? {}
  const required = new Set<string>(schema.required ?? [])
  for (const [key, property] of Object.entries(properties)) {
    const present = Object.hasOwn(object, key) && object[key] !== undefined
    if (present) put(out, key, walk(property, object[key], [...path, key], issues))
    else if (typeof property === 'object' && property.default !== undefined) put(out, key, structuredClone(property.default))
    else if (required.has(key)) {
      // As zod: a missing enum is "not one of", any other missing key "expected <type>".
      if (typeof property === 'object' && property.enum) issues.push({code: 'invalid_value', path: [...path, key], values: property.enum})
      else issues.push({code: 'invalid_type', path: [...path, key], expected: typeof property === 'object' ? String(property.type) : 'unknown'})
    }
  }
  const unknown: string[] = []
  for (const [key, item] of Object.entries(object)) {
    if (Object.hasOwn(properties, key)) continue
    if (schema.propertyNames !== undefined) {
      const keyIssues: StructureIssue[] = []
      walk(schema.propertyNames, key, [], keyIssues)
      // zod reports a bad record key once and does not look at its value.
      if (keyIssues.length > 0) {
        issues.push({code: 'invalid_key', path: [...path, key]})
        continue
      }
    }
    if (schema.additionalProperties === false) unknown.push(key)
    else put(out, key, schema.additionalProperties === undefined ? item : walk(schema.additionalProperties, item, [...path, key], issues))
  }
  if (unknown.length > 0) issues.push({code: 'unrecognized_keys', path, keys: unknown})
  return out
}

/** Keys the schema defines at `path` (for "did you mean"). */
export function knownKeysAt(schema: JsonSchema, path: readonly PathSegment[]): string[] {
  let node: JsonSchema | undefined = schema
  for (const segment of path) {
    if (typeof node !== 'object') return []
    node = node.properties && Object.hasOwn(node.properties, String(segment)) ? node.properties[String(segment)] : typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined
  }
  return typeof node === 'object' && node.properties ? Object.keys(node.properties) : []
}

/** The subschema at a path of property names (e.g. ['plugins', '*'] for one plugin). */
export function subschema(schema: JsonSchema, path: readonly string[]): JsonSchema {
  let node: JsonSchema = schema
  for (const segment of path) {
    if (typeof node !== 'object') return true
    node = segment === '*' ? (node.additionalProperties ?? true) : (node.properties?.[segment] ?? true)
  }
  return node
}
