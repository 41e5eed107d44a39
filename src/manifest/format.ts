import {Chalk} from 'chalk'
import * as report from './report.js'
import type {ValidationResult} from './validate.js'

/** The human output of report.ts with `color` turned into chalk's styles (ANSI 16 colors). */

export type {ValidationReport} from './report.js'

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

function palette(color: boolean | undefined): report.Palette {
  if (!color) return report.PLAIN
  const c = new Chalk({level: 1})
  return {red: c.red, yellow: c.yellow, green: c.green, cyan: c.cyan, bold: c.bold, dim: c.dim}
}

/** Human output: each diagnostic with `file:line:col`, rule, message, suggestion and a code frame. */
export function formatDiagnostics(result: Pick<ValidationResult, 'file' | 'diagnostics'>, options: FormatOptions = {}): string {
  return report.formatDiagnostics(result, {...options, palette: palette(options.color)})
}

/** `✔ config.yaml is valid` / `✖ 3 errors, 1 warning` (the last line of human output). */
export function formatSummary(result: Pick<ValidationResult, 'file' | 'diagnostics'>, options: {color?: boolean; strict?: boolean; cwd?: string} = {}): string {
  return report.formatSummary(result, {...options, palette: palette(options.color)})
}

export function validationReport(result: ValidationResult, options: {strict?: boolean; color?: boolean; cwd?: string} = {}): report.ValidationReport {
  return report.validationReport(result, {...options, palette: palette(options.color)})
}
