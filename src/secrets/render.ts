import type {ChalkInstance} from 'chalk'
import type {SecretEntry} from './store.js'

/** `r1 secrets ls` for humans: one row per secret (never a value), stale ones flagged. */
export function renderSecrets(secrets: SecretEntry[], out: ChalkInstance): string {
  if (secrets.length === 0) return ''
  const rows = secrets.map((s) => [printable(s.target), s.name, s.setAt.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC'), s.stale ? 'stale: sealed to a node this target no longer names' : ''])
  const header = ['TARGET', 'NAME', 'SET', '']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()
  return [out.bold(line(header)), ...rows.map((r) => (r[3] ? out.yellow(line(r)) : line(r)))].join('\n') + '\n'
}

// The store is a local file anyone may have edited: no control characters reach the terminal.
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}
