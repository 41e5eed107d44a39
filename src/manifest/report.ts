import {readFileSync} from 'node:fs'
import {relative} from 'node:path'
import {countBySeverity, type Diagnostic} from './diagnostics.js'
import {stripBom} from './text.js'
import type {ValidationResult} from './validate.js'

/**
 * `r1 validate`'s human output without chalk (its import costs ~10 ms of the validate budget):
 * styles come in as a palette; format.ts gives the chalk one, `PLAIN` is no color.
 */

type Style = (text: string) => string

export interface Palette {
  red: Style
  yellow: Style
  green: Style
  cyan: Style
  bold: Style
  dim: Style
}

const same: Style = (text) => text
export const PLAIN: Palette = {red: same, yellow: same, green: same, cyan: same, bold: same, dim: same}

export interface ReportOptions {
  /** Styles (default: none). */
  palette?: Palette
  /** Lines of context above the diagnostic's line (default 1). */
  context?: number
  /** The manifest text (default: read from `result.file`). */
  source?: string
  /** Paths are shown relative to this folder (default: the current one). */
  cwd?: string
}

/** Human output: each diagnostic with `file:line:col`, rule, message, suggestion and a code frame. */
export function formatDiagnostics(result: Pick<ValidationResult, 'file' | 'diagnostics'>, options: ReportOptions = {}): string {
  const p = options.palette ?? PLAIN
  let lines: string[] = []
  if (result.diagnostics.length > 0) {
    try {
      lines = stripBom(options.source ?? readFileSync(result.file, 'utf8')).split(/\r?\n/)
    } catch {
      lines = []
    }
  }
  const shown = displayPath(result.file, options.cwd)
  return result.diagnostics.map((d) => formatOne(d, shown, lines, options.context ?? 1, p)).join('\n')
}

function formatOne(d: Diagnostic, file: string, lines: string[], context: number, p: Palette): string {
  const label = d.severity === 'error' ? p.red(p.bold('error')) : p.yellow(p.bold('warning'))
  const out = [`${p.bold(`${file}:${d.line}:${d.col}`)} ${label} ${d.message} ${p.dim(`[${d.rule}]`)}`]
  if (d.path) out.push(`  ${p.dim('at')} ${d.path}`)
  out.push(...codeFrame(lines, d.line, d.col, context, p, d.severity))
  if (d.suggestion) out.push(`  ${p.cyan('hint:')} ${d.suggestion}`)
  return out.join('\n') + '\n'
}

/** A few source lines with a caret under the column. */
export function codeFrame(lines: string[], line: number, col: number, context: number, p: Palette, severity: Diagnostic['severity'] = 'error'): string[] {
  if (lines.length === 0 || line < 1 || line > lines.length) return []
  const first = Math.max(1, line - context)
  const width = String(line).length
  const out: string[] = []
  for (let n = first; n <= line; n++) {
    const marker = n === line ? p.bold('>') : ' '
    const text = lines[n - 1].length > 160 ? lines[n - 1].slice(0, 160) + '…' : lines[n - 1]
    out.push(`  ${marker} ${p.dim(String(n).padStart(width) + ' |')} ${text}`)
  }
  const caret = severity === 'error' ? p.red('^') : p.yellow('^')
  const pad = lines[line - 1].slice(0, Math.max(0, col - 1)).replace(/[^\t]/g, ' ')
  out.push(`    ${' '.repeat(width)} ${p.dim('|')} ${pad}${caret}`)
  return out
}

/** `✔ config.yaml is valid` / `✖ 3 errors, 1 warning` (the last line of human output). */
export function formatSummary(result: Pick<ValidationResult, 'file' | 'diagnostics'>, options: {palette?: Palette; strict?: boolean; cwd?: string} = {}): string {
  const p = options.palette ?? PLAIN
  const {errors, warnings} = countBySeverity(result.diagnostics)
  const file = displayPath(result.file, options.cwd)
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  if (errors === 0 && (warnings === 0 || !options.strict)) {
    return `${p.green('✔')} ${file} is valid${warnings ? ` (${plural(warnings, 'warning')})` : ''}`
  }
  const parts = [plural(errors, 'error'), ...(warnings ? [plural(warnings, 'warning')] : [])]
  return `${p.red('✖')} ${parts.join(', ')} in ${file}${errors === 0 ? ' (--strict fails on warnings)' : ''}`
}

function displayPath(file: string, cwd = process.cwd()): string {
  const rel = relative(cwd, file)
  return rel && !rel.startsWith('..') ? rel : file
}

/** What `r1 validate` prints and returns, shared by the oclif command and any entry that skips oclif. */
export interface ValidationReport {
  /** The `--json` document. */
  json: {valid: boolean; file: string; diagnostics: ValidationResult['diagnostics']}
  /** Human output (diagnostics with code frames, then the summary line). */
  text: string
  /** 0 valid, 3 invalid (with `strict`, warnings count as invalid). */
  exitCode: 0 | 3
}

export function validationReport(result: ValidationResult, options: {strict?: boolean; palette?: Palette; cwd?: string} = {}): ValidationReport {
  const failed = !result.valid || (options.strict === true && result.diagnostics.length > 0)
  const frames = result.diagnostics.length > 0 ? formatDiagnostics(result, {palette: options.palette, cwd: options.cwd}) + '\n' : ''
  return {
    json: {valid: !failed, file: result.file, diagnostics: result.diagnostics},
    text: frames + formatSummary(result, options) + '\n',
    exitCode: failed ? 3 : 0,
  }
}
