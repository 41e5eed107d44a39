import type {ChalkInstance} from 'chalk'
import {table} from '../deploy/render.js'
import {escapeControl} from '../ui/escape.js'
import type {CheckStatus, DoctorReport} from './checks.js'

const PAINT: Record<CheckStatus, 'green' | 'yellow' | 'red' | 'dim'> = {ok: 'green', warn: 'yellow', fail: 'red', skip: 'dim'}

/** `r1 doctor` for humans: one table row per check, then the fix of every warn and fail, then the tally. */
export function renderDoctor(report: DoctorReport, color: ChalkInstance): string {
  const rows = report.checks.map((c) => [c.id, c.target ?? '-', c.status, c.message])
  const lines = table(['CHECK', 'TARGET', 'STATUS', 'MESSAGE'], rows, color, (row, col, text) => (col === 2 ? color[PAINT[report.checks[row]!.status]](text) : text))
  const fixes = report.checks.filter((c) => (c.status === 'fail' || c.status === 'warn') && c.hint)
  if (fixes.length > 0) {
    lines.push('', color.bold('To fix:'))
    for (const c of fixes) lines.push(`  ${color[PAINT[c.status]](escapeControl(`${c.id}${c.target ? ` (${c.target})` : ''}`))}: ${escapeControl(c.hint!)}`)
  }
  const {ok, warn, fail, skip} = report.summary
  const tally = [`${ok} ok`, `${warn} warning${warn === 1 ? '' : 's'}`, `${fail} failed`, ...(skip > 0 ? [`${skip} skipped`] : [])].join(', ')
  lines.push('', fail > 0 ? color.red(tally) : warn > 0 ? color.yellow(tally) : color.green(tally))
  return lines.join('\n') + '\n'
}
