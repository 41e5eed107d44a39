/** Secret names are environment-variable style, as instance config keys are. */
export const SECRET_NAME_PATTERN = /^[A-Z_][A-Z0-9_]{0,127}$/

/**
 * A secret reference in instance config: `DB_URL: {secret: DB_URL}` (at any depth, e.g. inside a
 * process app's ENV). The key may be `secret` or `SECRET` (fixed-key objects are upper-cased by
 * the manifest); the object has no other key. The node swaps each for the value when the instance starts.
 * Pure and dependency-free: the manifest, the CLI and the node share it.
 */
export interface SecretRef {
  secret: string
}

/** Where a reference sits in an instance config, and the secret it names. */
export interface SecretRefUse {
  path: Array<string | number>
  name: string
}

export function secretRefName(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  const keys = Object.keys(value)
  if (keys.length !== 1 || (keys[0] !== 'secret' && keys[0] !== 'SECRET')) return undefined
  const name = (value as Record<string, unknown>)[keys[0]]
  return typeof name === 'string' ? name : undefined
}

/** Every secret reference in a config value, in document order (names not yet checked: see `SECRET_NAME_PATTERN`). */
export function findSecretRefs(value: unknown, path: Array<string | number> = []): SecretRefUse[] {
  const name = secretRefName(value)
  if (name !== undefined) return [{path, name}]
  if (Array.isArray(value)) return value.flatMap((item, i) => findSecretRefs(item, [...path, i]))
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => findSecretRefs(item, [...path, key]))
  }
  return []
}

/** The distinct secret names a config uses. */
export function secretNames(value: unknown): string[] {
  return [...new Set(findSecretRefs(value).map((use) => use.name))].sort()
}

/** True for a name `r1 secrets set` accepts. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME_PATTERN.test(name)
}

/**
 * A copy of `value` with every reference replaced by its secret's value. Names `values` lacks
 * are returned in `missing` and their references left in place (the caller refuses to start).
 */
export function resolveSecretRefs<T>(value: T, values: Readonly<Record<string, string>>): {value: T; missing: string[]} {
  const missing = new Set<string>()
  const walk = (item: unknown): unknown => {
    const name = secretRefName(item)
    if (name !== undefined) {
      if (Object.hasOwn(values, name)) return values[name]
      missing.add(name)
      return item
    }
    if (Array.isArray(item)) return item.map(walk)
    if (item !== null && typeof item === 'object') {
      const out: Record<string, unknown> = {}
      for (const [key, sub] of Object.entries(item)) out[key] = walk(sub)
      return out
    }
    return item
  }
  return {value: walk(value) as T, missing: [...missing].sort()}
}

/**
 * Replaces each exact occurrence of a secret value in `text` (e.g. a plugin's log line) by
 * `[redacted:NAME]`, longest values first so that one value inside another is not half-redacted.
 * Values under 4 characters are left alone (redacting "1" would mangle every line).
 */
export function redactSecrets(text: string, values: Readonly<Record<string, string>>): string {
  const entries = Object.entries(values)
    .filter(([, v]) => v.length >= 4)
    .sort(([, a], [, b]) => b.length - a.length)
  let out = text
  for (const [name, secret] of entries) {
    if (out.includes(secret)) out = out.split(secret).join(`[redacted:${name}]`)
  }
  return out
}

/** A copy of `value` with every string, object keys included, passed through `redactSecrets` (payloads, notification INFO). */
export function redactDeep<T>(value: T, values: Readonly<Record<string, string>>): T {
  const walk = (item: unknown): unknown => {
    if (typeof item === 'string') return redactSecrets(item, values)
    if (Array.isArray(item)) return item.map(walk)
    if (item !== null && typeof item === 'object') {
      const out: Record<string, unknown> = {}
      for (const [key, sub] of Object.entries(item)) out[redactSecrets(key, values)] = walk(sub)
      return out
    }
    return item
  }
  return walk(value) as T
}
