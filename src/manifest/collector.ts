import {RULES, dottedPath, type Diagnostic, type RuleId} from './diagnostics.js'
import type {PathSegment, Position} from './positions.js'

/** Where a path is in the source (positions.ts's `ParsedYaml`). */
export interface Locator {
  locate(path: readonly PathSegment[], at?: 'key' | 'value'): Position
}

/** Gathers diagnostics for one manifest, positioned through its parsed YAML. */
export class Collector {
  private readonly list: Diagnostic[] = []
  private readonly seen = new Set<string>()
  constructor(
    private readonly file: string,
    private readonly locator: Locator,
  ) {}

  at(position: {line: number; col: number}, rule: RuleId, path: string, message: string, suggestion?: string): void {
    // The zod pass and the semantic pass can both see one problem (e.g. a bad config key): report it once.
    const key = `${rule}:${position.line}:${position.col}`
    if (this.seen.has(key)) return
    this.seen.add(key)
    this.list.push({file: this.file, line: position.line, col: position.col, severity: RULES[rule].severity, rule, path, message, ...(suggestion ? {suggestion} : {})})
  }

  add(path: readonly PathSegment[], at: 'key' | 'value', rule: RuleId, message: string, suggestion?: string): void {
    this.at(this.locator.locate(path, at), rule, dottedPath(path), message, suggestion)
  }

  get count(): number {
    return this.list.length
  }

  /** Sorted by position. */
  sorted(): Diagnostic[] {
    return [...this.list].sort((a, b) => a.line - b.line || a.col - b.col)
  }
}
