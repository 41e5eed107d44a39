/** Every check `r1 validate` makes, by stable rule id (these ids are a public contract: tools match on them). */
export const RULES = {
  'yaml-syntax': {severity: 'error', summary: 'config.yaml is not valid YAML'},
  'yaml-duplicate-key': {severity: 'error', summary: 'a mapping has the same key twice'},
  'schema-unknown-key': {severity: 'error', summary: 'a structural key the schema does not define'},
  'schema-type': {severity: 'error', summary: 'a structural value has the wrong type'},
  'schema-required': {severity: 'error', summary: 'a required structural key is missing'},
  'schema-enum': {severity: 'error', summary: 'a structural value is not one of the allowed values'},
  'schema-range': {severity: 'error', summary: 'a structural value is too small or too large'},
  'name-format': {severity: 'error', summary: 'a project, pipeline, instance or target name has the wrong format'},
  'version-format': {severity: 'error', summary: 'version is not semver'},
  'signature-format': {severity: 'error', summary: 'a plugin signature is not UPPER_SNAKE'},
  'config-key-format': {severity: 'error', summary: 'a config key is not an identifier'},
  'ref-unknown-plugin': {severity: 'error', summary: "an instance's plugin is neither a project plugin nor a built-in"},
  'ref-entry-missing': {severity: 'error', summary: "a plugin's entry file does not exist"},
  'ref-entry-extension': {severity: 'error', summary: "a plugin's entry is not .ts, .js, .mjs or .mts"},
  'ref-builtin-shadowed': {severity: 'error', summary: 'a project plugin reuses a built-in signature'},
  'files-outside': {severity: 'error', summary: 'a files glob is absolute or leaves the project'},
  'files-no-match': {severity: 'error', summary: 'a files glob matches no file'},
  'file-not-shipped': {severity: 'error', summary: "an instance's config names a project file that its plugin does not ship"},
  'field-default': {severity: 'error', summary: "a config field's default does not satisfy the field"},
  'field-constraint': {severity: 'error', summary: 'a config field has contradictory or inapplicable constraints'},
  'config-type': {severity: 'error', summary: 'an instance config value has the wrong type'},
  'config-range': {severity: 'error', summary: 'an instance config value is out of range'},
  'config-enum': {severity: 'error', summary: 'an instance config value is not one of the allowed values'},
  'config-required': {severity: 'error', summary: 'a required instance config key is missing'},
  'config-unknown-key': {severity: 'error', summary: "an instance config key the plugin's schema does not declare"},
  'config-duplicate-key': {severity: 'error', summary: 'two spellings of one config key (keys are compared in UPPERCASE)'},
  'config-reserved-key': {severity: 'error', summary: 'a config key r1 sets itself (INSTANCE_ID)'},
  'config-value': {severity: 'error', summary: 'an instance config value is invalid for its plugin (e.g. CODE does not parse)'},
  'config-secret': {severity: 'error', summary: 'a secret reference ({secret: NAME}) has a bad name or stands where a string is not accepted'},
  'target-url': {severity: 'error', summary: 'a target URL is not ws:// or wss://'},
  'target-address': {severity: 'error', summary: 'a target address is not a valid node address'},
  'target-ca': {severity: 'error', summary: 'a target `ca` file is missing or holds no PEM certificate'},
  'target-insecure': {severity: 'warning', summary: 'a target on another host uses unencrypted ws://'},
  'env-no-targets': {severity: 'error', summary: 'an environment names neither targets nor tags'},
  'env-unknown-target': {severity: 'error', summary: 'an environment names a target that is not under `targets`'},
  'env-tags-no-match': {severity: 'error', summary: "an environment's tags match no target"},
  'env-unknown-pipeline': {severity: 'error', summary: 'an environment overrides the config of a pipeline that does not exist'},
  'env-unknown-instance': {severity: 'error', summary: 'an environment overrides the config of an instance that does not exist'},
  'target-transport': {severity: 'error', summary: 'a target has neither `url` nor `broker`, or both'},
  'ref-broker': {severity: 'error', summary: 'a target names a broker that `brokers` does not define'},
  'broker-url': {severity: 'error', summary: 'a broker URL is not mqtt://, mqtts://, ws:// or wss://, or holds credentials'},
  'broker-file': {severity: 'error', summary: "a broker's `password_file` or `ca` file is missing or unreadable"},
  'broker-password': {severity: 'error', summary: 'a broker gives both `password_file` and `password_env`'},
  'broker-insecure': {severity: 'warning', summary: 'a broker on another host is reached with a password over unencrypted mqtt:// or ws://'},
  'unused-plugin': {severity: 'warning', summary: 'a project plugin no instance uses'},
  'empty-pipeline': {severity: 'warning', summary: 'a pipeline without instances'},
  'no-pipelines': {severity: 'warning', summary: 'the manifest defines no pipeline'},
  'missing-description': {severity: 'warning', summary: 'a project plugin without a description'},
} as const satisfies Record<string, {severity: Severity; summary: string}>

export type RuleId = keyof typeof RULES
export type Severity = 'error' | 'warning'

export interface Diagnostic {
  /** Absolute path of the manifest. */
  file: string
  /** 1-based. */
  line: number
  /** 1-based, in characters. */
  col: number
  severity: Severity
  rule: RuleId
  /** Dotted path in the manifest, e.g. `pipelines.temps.instances.monitor-1.config.threshold` ('' for the document). */
  path: string
  message: string
  /** "did you mean" or another concrete fix. */
  suggestion?: string
}

/** A path segment list rendered as the dotted path used in diagnostics. */
export function dottedPath(path: ReadonlyArray<string | number>): string {
  let out = ''
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`
    else out += out === '' ? segment : `.${segment}`
  }
  return out
}

/** Edit distance (Levenshtein plus adjacent transpositions, so `prot`→`port` is 1), case-sensitive. */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0
  if (a.length === 0) return b.length
  if (b.length === 0) return a.length
  const rows: number[][] = [Array.from({length: b.length + 1}, (_, j) => j)]
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row[j] = Math.min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j], rows[i - 2][j - 2] + 1)
    }
    rows.push(row)
  }
  return rows[a.length][b.length]
}

/** The closest candidate (compared case-insensitively), if it is close enough to be a likely typo. */
export function closest(input: string, candidates: Iterable<string>): string | undefined {
  const needle = input.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = levenshtein(needle, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  if (best === undefined) return undefined
  // A third of the longer word, at least 1 and at most 3 edits: `threshhold`→`threshold`, not `foo`→`url`.
  const limit = Math.min(3, Math.max(1, Math.floor(Math.max(needle.length, best.length) / 3)))
  return bestDistance <= limit ? best : undefined
}

/** `did you mean "x"?` text for a suggestion, or undefined. */
export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  const match = closest(input, candidates)
  return match === undefined ? undefined : `did you mean "${match}"?`
}

export function countBySeverity(diagnostics: readonly Diagnostic[]): {errors: number; warnings: number} {
  let errors = 0
  let warnings = 0
  for (const d of diagnostics) {
    if (d.severity === 'error') errors++
    else warnings++
  }
  return {errors, warnings}
}
