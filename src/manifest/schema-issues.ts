import {NODE_ADDRESS_HINT, checkNodeAddress} from './address.js'
import type {Collector} from './collector.js'
import {didYouMean, dottedPath} from './diagnostics.js'
import type {PathSegment} from './positions.js'
import {knownKeysAt, type JsonSchema, type StructureIssue} from './structure.js'

/** Structural issues (zod's codes) → diagnostics with rule ids, positions and "did you mean". */

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data
  for (const segment of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, segment)) return undefined
    node = (node as Record<PropertyKey, unknown>)[segment]
  }
  return node
}

const kind = (value: unknown): string => (value === null ? 'nothing (an empty value: add entries or remove the key)' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a mapping' : typeof value)
const expectedName = (expected: string): string => (expected === 'object' || expected === 'record' ? 'a mapping' : expected === 'array' ? 'a list' : expected)

export function mapIssue(issue: StructureIssue, data: unknown, schema: JsonSchema, out: Collector): void {
  const path = issue.path
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(schema, path)
      for (const key of issue.keys ?? []) {
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
        out.add(path, 'value', 'schema-type', `expected ${expectedName(issue.expected ?? 'a different type')}, got ${kind(value)}`)
      }
      return
    }
    case 'invalid_value': {
      const value = valueAt(data, path)
      if (value === undefined) return missing(path, out)
      const allowed = (issue.values ?? []).map((v) => String(v))
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
        const what = typeof value === 'string' ? 'length' : Array.isArray(value) ? 'item count' : 'value'
        const bound = issue.code === 'too_small' ? `at least ${issue.minimum}` : `at most ${issue.maximum}`
        out.add(path, 'value', 'schema-range', `${dottedPath(path)}: ${what} must be ${bound}`)
      }
      return
    }
    case 'invalid_union':
      out.add(path, 'value', 'schema-type', `expected a string, number or boolean, got ${kind(valueAt(data, path))}`)
      return
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
  } else if (path[0] === 'brokers' && path[2] === 'url') {
    out.add(path, 'value', 'broker-url', `broker URL "${text}" must start with mqtt://, mqtts://, ws:// or wss://, name a host, and hold no user or password`, 'put the user in `user` and the password in `password_file`')
  } else if (path[0] === 'targets' && path[2] === 'address') {
    out.add(path, 'value', 'target-address', checkNodeAddress(text) ?? `"${text}" is not a node address`, NODE_ADDRESS_HINT)
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
    const what = last === 'pipelines' ? 'pipeline name' : last === 'instances' ? 'instance id' : last === 'targets' ? 'target name' : last === 'brokers' ? 'broker name' : 'name'
    out.add(path, 'key', 'name-format', `${what} "${key}" may only contain letters, digits, ".", "_" and "-", starting with a letter or digit, at most 200 characters${key.length > 200 ? ` (it has ${key.length})` : ''}`)
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
