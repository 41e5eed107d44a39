import type {ChalkInstance} from 'chalk'
import {escapeControl, escapeControlKeepLines} from '../ui/escape.js'
import type {InstancePlan, KeyChange, PipelinePlan, TargetPlan} from './plan.js'
import {formatBytes} from '../ui/bytes.js'
import {MAX_TARGET_LINES} from '../fleet/result.js'

/** Human renderings of deploy plans and per-target results (stdout; `--json` returns the data instead). */

const MARK = {create: '+', update: '~', 'update-instances': '~', restart: '↻', remove: '-', unchanged: '='} as const

function value(v: unknown): string {
  const text = escapeControl(typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v))
  return text.length > 60 ? text.slice(0, 57) + '…' : text
}

function short(hash: unknown): string {
  return typeof hash === 'string' ? hash.slice(0, 12) : String(hash)
}

function keyLine(c: KeyChange, color: ChalkInstance, indent: string, hashes = false): string {
  const show = hashes ? short : value
  c = {...c, key: escapeControl(c.key)}
  if (c.kind === 'add') return color.green(`${indent}+ ${c.key}: ${show(c.to)}`)
  if (c.kind === 'remove') return color.red(`${indent}- ${c.key}: ${show(c.from)}`)
  return color.yellow(`${indent}~ ${c.key}: ${show(c.from)} → ${show(c.to)}`)
}

function pipelineSummary(p: PipelinePlan): string {
  const count = (kind: InstancePlan['change']) => p.instances.filter((i) => i.change === kind).length
  const parts = [
    count('create') && `${count('create')} to create`,
    count('update') && `${count('update')} to change`,
    count('restart') && `${count('restart')} to restart (${p.instances.some((i) => i.change === 'restart' && !i.bundleMissing) ? 'new bundle' : 'bundle missing on the node'})`,
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
    const head = `  ${mark} pipeline ${escapeControl(p.name)}: ${pipelineSummary(p)}`
    lines.push(p.change === 'unchanged' ? color.dim(head) : p.change === 'create' ? color.green(head) : color.yellow(head))
    if (p.change === 'unchanged') continue
    for (const c of p.diff) lines.push(keyLine(c, color, '      '))
    for (const c of p.bundles) lines.push(keyLine({...c, key: `bundle ${c.key}`}, color, '      ', true))
    for (const c of p.missing) lines.push(color.yellow(`      ↻ bundle ${escapeControl(c.key)}: ${short(c.to)} missing on the node (uploaded again)`))
    for (const i of p.instances) {
      if (i.change === 'unchanged') continue
      lines.push(`    ${MARK[i.change]} ${escapeControl(`${i.signature}/${i.instanceId}`)}${i.change === 'restart' ? (i.bundleMissing ? ' (bundle missing on the node)' : ' (new bundle)') : ''}`)
      if (i.change !== 'remove') for (const c of i.diff) lines.push(keyLine(c, color, '        '))
    }
  }
  if (plan.pipelines.length === 0) lines.push(color.dim('  (no pipelines)'))
  return lines
}

/** A plain text table: columns padded to the widest cell (colors applied after padding). */
export function table(headers: string[], cells: string[][], color: ChalkInstance, paint?: (row: number, col: number, text: string) => string): string[] {
  // cells hold node data (names, ids, errors): escaped before they are measured or printed
  const rows = cells.map((r) => r.map((cell) => escapeControl(cell ?? '')))
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

const STATUS_COLOR: Record<string, 'green' | 'yellow' | 'red' | 'dim'> = {
  deployed: 'green',
  ok: 'green',
  unchanged: 'dim',
  planned: 'dim',
  running: 'green',
  starting: 'yellow',
  restarting: 'yellow',
  paused: 'yellow',
  stopped: 'dim',
  'rolled-back': 'yellow',
  skipped: 'yellow',
  untouched: 'dim',
}

export function paintStatus(status: string, text: string, color: ChalkInstance): string {
  const c = STATUS_COLOR[status] ?? 'red'
  return color[c](text)
}

/** The deploy summary: one row per target with its result and timings. */
export function renderDeploySummary(
  targets: ReadonlyArray<{target: string; status: string; error?: string; uploaded: string[]; timings: {connect?: number; upload?: number; apply?: number; confirm?: number; total: number}; rollback?: {ok: boolean; error?: string}}>,
  color: ChalkInstance,
): string[] {
  const rows = targets.map((t) => [
    t.target,
    t.status,
    ms(t.timings.connect),
    t.uploaded.length > 0 ? `${ms(t.timings.upload)} (${t.uploaded.length})` : ms(t.timings.upload),
    ms(t.timings.apply),
    ms(t.timings.confirm),
    ms(t.timings.total),
    [t.error, t.rollback && (t.rollback.ok ? 'rolled back' : `rollback failed: ${t.rollback.error}`)].filter(Boolean).join('; '),
  ])
  return table(['TARGET', 'RESULT', 'CONNECT', 'UPLOAD', 'APPLY', 'CONFIRM', 'TOTAL', 'DETAIL'], rows, color, (row, col, text) => (col === 1 ? paintStatus(rows[row][1], text, color) : text))
}

/** Per-target results of a managing command: target, result, detail. */
export function renderTargetResults(targets: ReadonlyArray<{target: string; status: string; error?: string}>, detail: (index: number) => string, color: ChalkInstance): string[] {
  const rows = targets.map((t, i) => [t.target, t.status, t.error ?? detail(i)])
  return table(['TARGET', 'RESULT', 'DETAIL'], rows, color, (row, col, text) => (col === 1 ? paintStatus(rows[row][1], text, color) : text))
}

/**
 * `r1 cstore …` / `r1 r1fs …`: one row per target with `detail` of what it returned, or, for one target
 * that answered, `single`'s text alone (a value a script can read).
 */
export function renderValueResults<T>(targets: ReadonlyArray<{target: string; status: string; error?: string; result?: T}>, detail: (result: T) => string, color: ChalkInstance, single?: (result: T) => string): string[] {
  const only = targets.length === 1 ? targets[0] : undefined
  if (single && only?.result !== undefined) return [escapeControlKeepLines(single(only.result))]
  return renderTargetResults(targets, (i) => (targets[i].result === undefined ? '' : detail(targets[i].result as T)), color)
}

function duration(seconds: number | undefined): string {
  if (seconds === undefined) return '-'
  const s = Math.floor(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`
}

/** `r1 status` for one node (the NodeStatus of src/deploy/manage.ts). */
export function renderNodeStatus(
  name: string,
  s: {address: string; alias: string; restricted?: string; pipelinesHidden?: boolean; warnings?: string[]; version?: string; uptime?: number; cpu?: number; memory?: {process?: number; available?: number; machine?: number}; pipelines: Array<{name: string; type: string; stopped?: boolean; version?: number; instances: Array<{signature: string; instanceId: string; status: string; restarts?: number; lastError?: string | null}>}>},
  color: ChalkInstance,
): string[] {
  const lines = [
    `${color.bold(escapeControl(name))} ${color.green('online')}  ${escapeControl(s.alias)}  ${escapeControl(s.address)}`,
    `  version ${escapeControl(s.version ?? '-')}  uptime ${duration(s.uptime)}  cpu ${s.cpu === undefined ? '-' : `${Math.round(s.cpu)}%`}  memory ${formatBytes(s.memory?.process)} (available ${formatBytes(s.memory?.available)} of ${formatBytes(s.memory?.machine)})`,
  ]
  for (const warning of s.warnings ?? []) lines.push(color.yellow(`  warning: ${escapeControl(warning)}`))
  if (s.restricted) lines.push(color.yellow(`  ${s.pipelinesHidden ? 'pipelines hidden' : 'from the heartbeat only'}: ${escapeControl(s.restricted.split('\n')[0])}`))
  if (s.pipelinesHidden) return lines
  if (s.pipelines.length === 0) return [...lines, color.dim('  no pipelines')]
  const rows = s.pipelines.flatMap((p) =>
    p.instances.map((i) => [p.name, `${i.signature}/${i.instanceId}`, i.status, String(i.restarts ?? '-'), i.lastError ? i.lastError.split('\n')[0].slice(0, 80) : '']),
  )
  const empty = s.pipelines.filter((p) => p.instances.length === 0).map((p) => [p.name, p.stopped ? `(stopped at v${p.version ?? '?'}, kept for rollback)` : '(no instances)', p.stopped ? 'stopped' : '', '', ''])
  const table_ = table(['PIPELINE', 'INSTANCE', 'STATUS', 'RESTARTS', 'LAST ERROR'], [...rows, ...empty], color, (row, col, text) =>
    col === 2 && row < rows.length ? paintStatus(rows[row][2], text, color) : col === 4 ? color.red(text) : text,
  )
  return [...lines, ...table_.map((l) => `  ${l}`)]
}

/** The `✖ message` / `→ hint` lines of a failure, its node-supplied text escaped (line breaks kept). */
export function failureText(failure: {message: string; hint?: string}, color: ChalkInstance): string {
  const hint = failure.hint ? color.dim('→ ' + escapeControlKeepLines(failure.hint)) + '\n' : ''
  return `${color.red('✖')} ${escapeControlKeepLines(failure.message)}\n${hint}`
}

/** `r1 deploy --dry-run`, one target: its plan, or why there is none. */
export function renderPlanOf(t: {target: string; url: string; status: string; error?: string; plan?: TargetPlan; secrets?: Record<string, string[]>}, color: ChalkInstance): string[] {
  const head = color.bold(escapeControl(`${t.target} (${t.url})`))
  // names only: the values travel sealed to the node and are never shown
  const secrets = Object.entries(t.secrets ?? {}).map(([pipeline, names]) => `  secrets for ${escapeControl(pipeline)}: ${escapeControl(names.join(', '))} (sent encrypted to the node)`)
  return [head, ...(t.plan ? renderPlan(t.plan, color) : [color.red(`  ${t.status}: ${escapeControl(t.error ?? '')}`)]), ...secrets]
}

type StatusOfTarget = {target: string; status: string; url: string; address?: string; error?: string; result?: Parameters<typeof renderNodeStatus>[1]}

/** `r1 status`: one block per target, a node that did not answer as its status and error; past MAX_TARGET_LINES targets, one row each. */
export function renderStatusReport(targets: readonly StatusOfTarget[], color: ChalkInstance): string {
  if (targets.length > MAX_TARGET_LINES) return renderStatusTable(targets, color).join('\n') + '\n'
  const blocks = targets.map((t) =>
    t.result ? renderNodeStatus(t.target, t.result, color).join('\n') : `${color.bold(escapeControl(t.target))} ${color.red(t.status)}  ${escapeControl(t.url)}\n  ${escapeControl(t.error ?? '')}`,
  )
  return blocks.join('\n\n') + '\n'
}

/** How many instances are in each status ("4 running, 1 error"). */
function instanceCounts(pipelines: NonNullable<StatusOfTarget['result']>['pipelines']): string {
  const counts = new Map<string, number>()
  for (const p of pipelines) for (const i of p.instances) counts.set(i.status, (counts.get(i.status) ?? 0) + 1)
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ') || 'none'
}

/** What needs a look on a node: why it did not answer, a warning, an instance's last error. */
function statusDetail(t: StatusOfTarget): string {
  const s = t.result
  const failing = s?.pipelines.flatMap((p) => p.instances.filter((i) => i.lastError && i.status !== 'running').map((i) => `${i.signature}/${i.instanceId}: ${i.lastError}`))[0]
  const detail = t.error ?? s?.warnings?.[0] ?? (s?.restricted && `${s.pipelinesHidden ? 'pipelines hidden' : 'from the heartbeat only'}: ${s.restricted}`) ?? failing ?? ''
  const line = detail.split('\n')[0]
  return line.length > 100 ? line.slice(0, 99) + '…' : line
}

/** A fleet's status, one row per node; `r1 status --target <name>` shows one node's pipelines and instances. */
function renderStatusTable(targets: readonly StatusOfTarget[], color: ChalkInstance): string[] {
  const rows = targets.map((t) => {
    const s = t.result
    const state = s ? 'online' : t.status
    if (!s) return [t.target, state, '-', '-', '-', '-', '-', t.address ?? '-', statusDetail(t)]
    return [t.target, state, s.version ?? '-', duration(s.uptime), s.cpu === undefined ? '-' : `${Math.round(s.cpu)}%`, formatBytes(s.memory?.process), s.pipelinesHidden ? 'hidden' : instanceCounts(s.pipelines), s.address, statusDetail(t)]
  })
  const lines = table(['TARGET', 'STATE', 'VERSION', 'UPTIME', 'CPU', 'MEMORY', 'INSTANCES', 'ADDRESS', 'DETAIL'], rows, color, (row, col, text) =>
    col === 1 ? (rows[row][1] === 'online' ? color.green(text) : color.red(text)) : col === 8 ? color.yellow(text) : text,
  )
  return [...lines, color.dim('One node in full: r1 status --target <name>, or --address <0xai_…> with --broker')]
}

/** `r1 node info`: the address first (what to pin), then what else the hello says, and the target line to paste. */
export function renderNodeInfo(info: {url: string; address: string; alias: string; version: string | null; lastSeq: number}, color: ChalkInstance): string {
  const e = escapeControl
  return [
    `${color.bold('address')}  ${e(info.address)}`,
    `${color.bold('alias')}    ${e(info.alias || '-')}`,
    `${color.bold('version')}  ${e(info.version ?? '-')}`,
    `${color.bold('url')}      ${e(info.url)}`,
    color.dim(`# config.yaml: targets:\n#   ${e(info.alias || 'my-node')}: { url: "${e(info.url)}", address: "${e(info.address)}" }`),
  ].join('\n') + '\n'
}

/** `r1 pipelines history`: one table row per kept version, oldest first, `*` on the current one; a target that did not answer, as its status. */
export function renderHistory(
  targets: ReadonlyArray<{target: string; status: string; error?: string; result?: {versions: ReadonlyArray<{version: number; time?: string; sender?: string; message?: string; restoredFrom?: number; current: boolean}>}}>,
  color: ChalkInstance,
): string[] {
  const rows = targets.flatMap((t) =>
    t.result
      ? t.result.versions.map((v) => [
          t.target,
          `${v.current ? '*' : ' '}v${v.version}`,
          v.time ?? '-',
          v.sender ?? '-',
          [v.restoredFrom === undefined ? '' : `(from v${v.restoredFrom})`, v.message ?? ''].filter(Boolean).join(' ') || '-',
        ])
      : [[t.target, '-', '-', '-', `${t.status}: ${t.error ?? ''}`]],
  )
  return rows.length > 0 ? table(['TARGET', 'VERSION', 'TIME', 'WHO', 'MESSAGE'], rows, color, (_r, c, text) => (c === 1 && text.startsWith('*') ? color.bold(text) : text)) : ['No versions.']
}

/** `r1 deploy --env`: the environment and each config value it sets (`pipeline/instance KEY: instance value → environment value`). */
export function renderOverrides(environment: {name: string; overrides: ReadonlyArray<{pipeline: string; instance: string; key: string; from: unknown; to: unknown}>}, color: ChalkInstance): string[] {
  const head = color.bold(`environment ${escapeControl(environment.name)}`) + (environment.overrides.length === 0 ? color.dim(' (no config overrides)') : '')
  const lines = environment.overrides.map((o) => {
    const where = escapeControl(`${o.pipeline}/${o.instance}`)
    return o.from === undefined ? color.green(`  ${where} ${escapeControl(o.key)}: ${value(o.to)}`) : color.yellow(`  ${where} ${escapeControl(o.key)}: ${value(o.from)} → ${value(o.to)}`)
  })
  return [head, ...lines]
}

/** `r1 deploy --waves/--canary`: the waves (which targets, how far each got), then each target's outcome, or each target's plan with --dry-run. */
export function renderRollout(
  result: {id?: string; dryRun?: boolean; reason?: string; abort?: string; rolledBack?: boolean; waves: Array<{wave: number; targets: string[]; state: string}>; targets: Array<Parameters<typeof renderPlanOf>[0] & Parameters<typeof renderDeploySummary>[0][number] & {wave: number}>},
  color: ChalkInstance,
): string[] {
  const waves = result.waves.map((w) => `wave ${w.wave} (${w.state}): ${escapeControl(w.targets.join(', '))}`)
  if (result.dryRun) return [...waves, ...result.targets.flatMap((t) => renderPlanOf(t, color))]
  const ending = result.reason
    ? [color.yellow(`rollout ${result.id ?? ''} ${result.reason}: ${escapeControl(result.abort ?? '')}${result.rolledBack ? ' — every updated target was put back' : ''}`)]
    : result.id
      ? [color.dim(`rollout ${result.id} recorded (r1 rollouts show ${result.id})`)]
      : []
  return [...waves, ...renderDeploySummary(result.targets, color), ...ending]
}

/** `r1 rollouts ls`: one line per recorded rollout, oldest first. */
export function renderRolloutList(
  rollouts: ReadonlyArray<{id: string; started: string; who: string; message?: string; exitCode: number; reason?: string; targets: Array<{status: string}>}>,
  color: ChalkInstance,
): string[] {
  if (rollouts.length === 0) return ['No rollout recorded yet (r1 deploy --waves … or --canary N records one).']
  const rows = rollouts.map((r) => {
    const updated = r.targets.filter((t) => t.status === 'deployed' || t.status === 'unchanged').length
    const outcome = r.reason ? `${r.reason} (exit ${r.exitCode})` : r.exitCode === 0 ? 'ok' : `partial (exit ${r.exitCode})`
    return [r.id, r.started.replace('T', ' ').slice(0, 19), `${r.who.slice(0, 14)}…`, outcome, `${updated}/${r.targets.length}`, r.message ?? '']
  })
  return table(['ID', 'STARTED (UTC)', 'WHO', 'OUTCOME', 'UPDATED', 'MESSAGE'], rows, color, (row, col, text) => (col === 3 ? paintStatus(rollouts[row].exitCode === 0 ? 'ok' : 'failed', text, color) : text))
}

/** `r1 rollouts show`: the rollout's header, then one row per target. */
export function renderRolloutRecord(
  r: {id: string; started: string; finished: string; who: string; message?: string; exitCode: number; reason?: string; abort?: string; waves: Array<{wave: number; targets: string[]; state: string}>; targets: Array<{target: string; wave: number; status: string; error?: string; health?: {status: string; reason?: string}}>},
  color: ChalkInstance,
): string[] {
  const head = [
    color.bold(`rollout ${r.id}`),
    `  by ${r.who}, ${r.started} → ${r.finished}, exit ${r.exitCode}${r.message ? ` — ${escapeControl(r.message)}` : ''}`,
    ...(r.reason ? [color.yellow(`  ${r.reason}: ${escapeControl(r.abort ?? '')}`)] : []),
    ...r.waves.map((w) => `  wave ${w.wave} (${w.state}): ${escapeControl(w.targets.join(', '))}`),
  ]
  const rows = r.targets.map((t) => [t.target, String(t.wave), t.status, t.health?.status ?? '-', t.error ?? ''])
  return [...head, ...table(['TARGET', 'WAVE', 'RESULT', 'HEALTH', 'DETAIL'], rows, color, (row, col, text) => (col === 2 ? paintStatus(rows[row][2], text, color) : text))]
}
