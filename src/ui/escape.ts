/**
 * Whatever a node sends is data: before a terminal sees a node-supplied string (pipeline names,
 * notification texts, app output, instance ids, errors), its control characters are made visible
 * so that ANSI escapes, NUL or carriage returns cannot repaint or hide what r1 prints.
 */

// C0 controls, DEL, C1 controls, and the bidirectional overrides that reorder what follows.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g

const NAMED: Record<string, string> = {'\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001B': '\\e', '\u0000': '\\0'}

function visible(char: string): string {
  const code = char.codePointAt(0)!
  return NAMED[char] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
}

/** One line of node data for a terminal: every control character (newlines too) shown as an escape. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, visible)
}

/** Like escapeControl, but keeps line breaks (messages that are meant to span lines). */
export function escapeControlKeepLines(text: string): string {
  return text.replace(CONTROL_BUT_NEWLINE, visible)
}

/** A copy of a node event (or any JSON value) whose strings, keys included, are escaped for a terminal. */
export function escapeDeep<T>(value: T): T {
  if (typeof value === 'string') return escapeControl(value) as T
  if (Array.isArray(value)) return value.map((v) => escapeDeep(v)) as T
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [escapeControl(k), escapeDeep(v)])) as T
  }
  return value
}
