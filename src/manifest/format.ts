import {readFileSync} from 'node:fs'
import {relative} from 'node:path'
import {Chalk, type ChalkInstance} from 'chalk'
import {countBySeverity, type Diagnostic} from './diagnostics.js'
import {stripBom} from './positions.js'
import type {ValidationResult} from './validate.js'

export interface FormatOptions {
  /** Color with ANSI escapes (callers decide from TTY/NO_COLOR). */
  color?: boolean
  /** Lines of context above the diagnostic's line (default 1). */
  context?: number
  /** The manifest text (default: read from `result.file`). */
  source?: string
  /** Paths are shown relative to this folder (default: the current one). */
  cwd?: string
}

/** Human output: each diagnostic with `file:line:col`, rule, message, suggestion and a code frame. */
export function formatDiagnostics(result: Pick<ValidationResult, 'file' | 'diagnostics'>, options: FormatOptions = {}): string {
  const c = new Chalk({level: options.color ? 1 : 0})
  let lines: string[] = []
  if (result.diagnostics.length > 0) {
    try {
      lines = stripBom(options.source ?? readFileSync(result.file, 'utf8')).split(/\r?\n/)
    } catch {
      lines = []
    }
  }
  const shown = displayPath(result.file, options.cwd)
  return result.diagnostics.map((d) => formatOne(d, shown, lines, options.context ?? 1, c)).join('\n')
}

function formatOne(d: Diagnostic, file: string, lines: string[], context: number, c: ChalkInstance): string {
  const label = d.severity === 'error' ? c.red.bold('error') : c.yellow.bold('warning')
  const out = [`${c.bold(`${file}:${d.line}:${d.col}`)} ${label} ${d.message} ${c.dim(`[${d.rule}]`)}`]
  if (d.path) out.push(`  ${c.dim('at')} ${d.path}`)
  out.push(...codeFrame(lines, d.line, d.col, context, c, d.severity))
  if (d.suggestion) out.push(`  ${c.cyan('hint:')} ${d.suggestion}`)
  return out.join('\n') + '\n'
}

/** A few source lines with a caret under the column. */
export function codeFrame(lines: string[], line: number, col: number, context: number, c: ChalkInstance, severity: Diagnostic['severity'] = 'error'): string[] {
  if (lines.length === 0 || line < 1 || line > lines.length) return []
  const first = Math.max(1, line - context)
  const width = String(line).length
  const out: string[] = []
  for (let n = first; n <= line; n++) {
    const marker = n === line ? c.bold('>') : ' '
    const text = lines[n - 1].length > 160 ? lines[n - 1].slice(0, 160) + '…' : lines[n - 1]
    out.push(`  ${marker} ${c.dim(String(n).padStart(width) + ' |')} ${text}`)
  }
  const caret = severity === 'error' ? c.red('^') : c.yellow('^')
  const pad = lines[line - 1].slice(0, Math.max(0, col - 1)).replace(/[^\t]/g, ' ')
  out.push(`    ${' '.repeat(width)} ${c.dim('|')} ${pad}${caret}`)
  return out
}

/** `✔ config.yaml is valid` / `✖ 3 errors, 1 warning` (the last line of human output). */
export function formatSummary(result: Pick<ValidationResult, 'file' | 'diagnostics'>, options: {color?: boolean; strict?: boolean; cwd?: string} = {}): string {
  const c = new Chalk({level: options.color ? 1 : 0})
  const {errors, warnings} = countBySeverity(result.diagnostics)
  const file = displayPath(result.file, options.cwd)
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  if (errors === 0 && (warnings === 0 || !options.strict)) {
    return `${c.green('✔')} ${file} is valid${warnings ? ` (${plural(warnings, 'warning')})` : ''}`
  }
  const parts = [plural(errors, 'error'), ...(warnings ? [plural(warnings, 'warning')] : [])]
  return `${c.red('✖')} ${parts.join(', ')} in ${file}${errors === 0 ? ' (--strict fails on warnings)' : ''}`
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

export function validationReport(result: ValidationResult, options: {strict?: boolean; color?: boolean; cwd?: string} = {}): ValidationReport {
  const failed = !result.valid || (options.strict === true && result.diagnostics.length > 0)
  const frames = result.diagnostics.length > 0 ? formatDiagnostics(result, {color: options.color, cwd: options.cwd}) + '\n' : ''
  return {
    json: {valid: !failed, file: result.file, diagnostics: result.diagnostics},
    text: frames + formatSummary(result, options) + '\n',
    exitCode: failed ? 3 : 0,
  }
}
