import type {ChalkInstance} from 'chalk'
import type {InstancePlan, KeyChange, PipelinePlan, TargetPlan} from './plan.js'

/** Human renderings of deploy plans and per-target results (stdout; `--json` returns the data instead). */

const MARK = {create: '+', update: '~', 'update-instances': '~', restart: '↻', remove: '-', unchanged: '='} as const

function value(v: unknown): string {
  const text = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v)
  return text.length > 60 ? text.slice(0, 57) + '…' : text
}

function short(hash: unknown): string {
  return typeof hash === 'string' ? hash.slice(0, 12) : String(hash)
}

function keyLine(c: KeyChange, color: ChalkInstance, indent: string, hashes = false): string {
  const show = hashes ? short : value
  if (c.kind === 'add') return color.green(`${indent}+ ${c.key}: ${show(c.to)}`)
  if (c.kind === 'remove') return color.red(`${indent}- ${c.key}: ${show(c.from)}`)
  return color.yellow(`${indent}~ ${c.key}: ${show(c.from)} → ${show(c.to)}`)
}

function pipelineSummary(p: PipelinePlan): string {
  const count = (kind: InstancePlan['change']) => p.instances.filter((i) => i.change === kind).length
  const parts = [
    count('create') && `${count('create')} to create`,
    count('update') && `${count('update')} to change`,
    count('restart') && `${count('restart')} to restart (new bundle)`,
    count('remove') && `${count('remove')} to remove`,
    count('unchanged') && `${count('unchanged')} unchanged`,
  ].filter(Boolean)
  const how = p.command ? ` via ${p.command.action}` : ''
  return `${p.change}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}${how}`
}

/** The `--dry-run` plan of one target: pipelines and instances to create, change (with the config diff), remove. */
export function renderPlan(plan: TargetPlan, color: ChalkInstance): string[] {
  const lines: string[] = []
  for (const p of plan.pipelines) {
    const mark = MARK[p.change]
    const head = `  ${mark} pipeline ${p.name}: ${pipelineSummary(p)}`
    lines.push(p.change === 'unchanged' ? color.dim(head) : p.change === 'create' ? color.green(head) : color.yellow(head))
    if (p.change === 'unchanged') continue
    for (const c of p.diff) lines.push(keyLine(c, color, '      '))
    for (const c of p.bundles) lines.push(keyLine({...c, key: `bundle ${c.key}`}, color, '      ', true))
    for (const i of p.instances) {
      if (i.change === 'unchanged') continue
      lines.push(`    ${MARK[i.change]} ${i.signature}/${i.instanceId}${i.change === 'restart' ? ' (new bundle)' : ''}`)
      if (i.change !== 'remove') for (const c of i.diff) lines.push(keyLine(c, color, '        '))
    }
  }
  if (plan.pipelines.length === 0) lines.push(color.dim('  (no pipelines)'))
  return lines
}

/** A plain text table: columns padded to the widest cell (colors applied after padding). */
export function table(headers: string[], rows: string[][], color: ChalkInstance, paint?: (row: number, col: number, text: string) => string): string[] {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[], style: (row: number, col: number, text: string) => string) =>
    cells.map((cell, c) => style(-1, c, c === cells.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd()
  const body = rows.map((r, i) => line(r, (_row, c, text) => (paint ? paint(i, c, text) : text)))
  return [color.bold(line(headers, (_r, _c, text) => text)), ...body]
}

export function ms(value: number | undefined): string {
  if (value === undefined) return '-'
  return value < 1000 ? `${Math.round(value)}ms` : `${(value / 1000).toFixed(2)}s`
}
