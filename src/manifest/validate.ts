import {readFileSync, statSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {Collector} from './collector.js'
import {dottedPath, type Diagnostic} from './diagnostics.js'
import type {ParsedYaml} from './positions.js'
import {quickLoad} from './quick-yaml.js'
import {mapIssue} from './schema-issues.js'
import type {Manifest} from './schema.js'
import {checkSemantics} from './semantics.js'
import {checkStructure, manifestStructureSchema, type JsonSchema} from './structure.js'
import {stripBom} from './text.js'
import {formatBytes} from '../ui/bytes.js'

export {ENTRY_EXTENSIONS} from './semantics.js'

export const MANIFEST_FILE = 'config.yaml'

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

/** The project a command works on: its path argument or `--dir` (commands accept both), else the current folder. */
export function projectPath(arg: string | undefined, dir: string | undefined): string {
  if (arg !== undefined && dir !== undefined && resolve(arg) !== resolve(dir)) {
    throw new R1Error(`Two projects given: "${arg}" and --dir ${dir}`, ExitCode.USAGE, {code: 'BAD_FLAG', hint: 'Give the project once, as a path or with --dir.'})
  }
  return arg ?? dir ?? '.'
}

/** A config.yaml is a few KiB; parsing tens of MiB takes minutes and gigabytes, so a larger file is refused unread. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

function refuseOversized(file: string, size: number): void {
  if (size <= MAX_MANIFEST_BYTES) return
  throw new R1Error(`${file} is ${formatBytes(size)}: larger than the ${formatBytes(MAX_MANIFEST_BYTES)} a config.yaml may be`, ExitCode.INVALID_CONFIG, {
    code: 'MANIFEST_TOO_LARGE',
    hint: 'Is this the right file? Keep data out of config.yaml: plugins read their files at run time.',
    details: {file, size, max: MAX_MANIFEST_BYTES},
  })
}

export interface ValidateOptions {
  /**
   * `auto` (default): js-yaml first, yaml@2 only when there is a diagnostic to position or js-yaml
   * cannot vouch for the document (quick-yaml.ts); `yaml`: yaml@2 only. Both give the same result
   * (tested); `yaml` exists for that test.
   */
  parser?: 'auto' | 'yaml'
}

/** Reads and checks a project's config.yaml. Throws R1Error (exit 1) only when the file is missing or unreadable. */
export async function validateProject(pathOrDir: string, options: ValidateOptions = {}): Promise<ValidationResult> {
  const file = resolveManifestPath(pathOrDir)
  let source: string
  try {
    refuseOversized(file, statSync(file).size)
    source = readFileSync(file, 'utf8')
  } catch (error) {
    if (error instanceof R1Error) throw error
    throw new R1Error(`Cannot read ${file}: ${(error as Error).message}`, ExitCode.FAILURE, {
      code: 'MANIFEST_UNREADABLE',
      hint: 'Check the file permissions.',
      cause: error,
    })
  }
  return validateSource(source, file, await manifestStructureSchema(), options)
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

/**
 * Validates manifest text; `file` names it in diagnostics and its folder anchors entry paths.
 * `schema` is `await manifestStructureSchema()` (the JSON Schema generated from the zod schema).
 */
export async function validateSource(source: string, file: string, schema: JsonSchema, options: ValidateOptions = {}): Promise<ValidationResult> {
  const absolute = resolve(file)
  const dir = dirname(absolute)
  const text = stripBom(source)
  if (options.parser !== 'yaml') {
    // The common case, a valid manifest, never needs a position: yaml@2 (~150 ms cold on 100 pipelines) is not loaded.
    const quick = quickLoad(text)
    if (quick) {
      // The first diagnostic ends this pass (its locate throws); `located` holds even if something swallowed the throw.
      let located = false
      const out = new Collector(absolute, {
        locate() {
          located = true
          throw NEEDS_POSITIONS
        },
      })
      try {
        const structure = checkData(quick.data, dir, schema, out)
        if (!located && out.count === 0 && structure.issues.length === 0) return {file: absolute, dir, valid: true, diagnostics: [], manifest: structure.value as Manifest}
      } catch {
        // NEEDS_POSITIONS, or anything unexpected: yaml@2's pass decides (and throws again if it is a bug).
      }
    }
  }
  // Something to report (or a document js-yaml cannot vouch for): yaml@2 gives the positions and the YAML diagnostics.
  const {parseYaml} = await import('./positions.js')
  return validateParsed(parseYaml(text), absolute, dir, schema)
}

/** Thrown on the fast path by the first diagnostic: diagnostics are computed again with yaml@2's positions. */
const NEEDS_POSITIONS = new Error('a diagnostic needs positions')

function checkData(data: unknown, dir: string, schema: JsonSchema, out: Collector): ReturnType<typeof checkStructure> {
  const structure = checkStructure(schema, data)
  for (const issue of structure.issues) mapIssue(issue, data, schema, out)
  checkSemantics(data, dir, schema, out)
  return structure
}

function validateParsed(yaml: ParsedYaml, absolute: string, dir: string, schema: JsonSchema): ValidationResult {
  const out = new Collector(absolute, yaml)
  const result = (): ValidationResult => {
    const diagnostics = out.sorted()
    return {file: absolute, dir, valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics}
  }

  const linesWithError = new Set<number>()
  for (const problem of yaml.syntaxErrors) {
    // One YAML mistake often cascades into more errors on its line: the first one is the useful one.
    if (linesWithError.has(problem.position.line)) continue
    linesWithError.add(problem.position.line)
    const indented = problem.code === 'BLOCK_AS_IMPLICIT_KEY' ? overIndentedAfter(yaml.source, problem.position.line) : undefined
    if (indented) out.at(indented.position, 'yaml-syntax', '', indented.message, indented.hint)
    else out.at(problem.position, 'yaml-syntax', '', problem.message, YAML_HINTS[problem.code])
  }
  if (yaml.syntaxErrors.length > 0) return result()

  for (const dup of yaml.duplicateKeys) {
    out.at(dup.position, 'yaml-duplicate-key', dottedPath([...dup.path, dup.key]), `key "${dup.key}" appears more than once${dup.path.length ? ` in ${dottedPath(dup.path)}` : ''}`, 'remove one of them (the last one would win)')
  }

  const data = yaml.data
  if (data === null || data === undefined) {
    out.add([], 'value', 'schema-type', 'config.yaml is empty: expected a mapping with name, version, plugins and pipelines')
    return result()
  }

  const structure = checkData(data, dir, schema, out)
  const final = result()
  if (final.valid && structure.issues.length === 0) final.manifest = structure.value as Manifest
  return final
}

/**
 * yaml@2 reports `name: foo` followed by an over-indented `  version: 1` as a nested mapping at the
 * value on the first line; the mistake is the indentation of the next line, so that line is reported.
 */
function overIndentedAfter(source: string, line: number): {position: {line: number; col: number}; message: string; hint: string} | undefined {
  const lines = source.split(/\r?\n/)
  const indentOf = (text: string) => text.length - text.trimStart().length
  const current = lines[line - 1]
  if (current === undefined || !/:\s*\S/.test(current.replace(/\s+#.*$/, ''))) return undefined // the key on this line has a value of its own
  let next = line
  while (next < lines.length && (lines[next].trim() === '' || lines[next].trimStart().startsWith('#'))) next++
  const following = lines[next]
  if (following === undefined || indentOf(following) <= indentOf(current) || !/^\s*[^\s:#][^:]*:(\s|$)/.test(following)) return undefined
  const key = following.trim().split(':')[0]
  return {
    position: {line: next + 1, col: indentOf(following) + 1},
    message: `"${key}" is indented more than the key on line ${line}, which already has a value`,
    hint: `start "${key}" at column ${indentOf(current) + 1}, like the key above it (or, if it belongs under that key, remove that key's value)`,
  }
}

const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  BLOCK_AS_IMPLICIT_KEY: 'quote the value if it contains ": " (e.g. description: "a: b")',
  BAD_INDENT: 'check the indentation and that every [ and { is closed',
  MULTILINE_IMPLICIT_KEY: 'a key must fit on one line; check for a missing ":" or an unclosed quote',
  MISSING_CHAR: 'a closing quote or bracket is missing',
  UNEXPECTED_TOKEN: 'check the indentation and quoting around this point',
  BAD_MERGE: '"<<:" merges a mapping: use an alias to one (<<: *defaults) or a list of them',
}
