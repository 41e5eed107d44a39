import {Chalk, type ChalkInstance} from 'chalk'
import type {NodeEvent} from '../protocol/events.js'
import {out} from './colors.js'
import {escapeControl, escapeControlKeepLines, escapeDeep} from './escape.js'
import {formatBytes} from './bytes.js'

/**
 * One node event as one human line (or a few, for a logged stack): time, path, a compact payload.
 * `r1 run` and `r1 logs` both print through this.
 */
export interface RenderEventOptions {
  /** Colors (default: stdout's color support). */
  color?: boolean
  /** Prefix naming the node (`r1 logs` over many nodes: the target name or alias); omitted when undefined. */
  nodeLabel?: string
  /** Cut the compact payload at this many characters (default 200; 0 = never). */
  maxWidth?: number
  /** Show the date too, not only the time of day (default false). */
  date?: boolean
}

const plain = new Chalk({level: 0})

function chalkOf(options: RenderEventOptions): ChalkInstance {
  if (options.color === undefined) return out
  return options.color ? (out.level > 0 ? out : new Chalk({level: 1})) : plain
}

function clip(text: string, max: number): string {
  return max > 0 && text.length > max ? text.slice(0, max - 1) + '…' : text
}

function compactValue(value: unknown): string {
  if (typeof value === 'string') return /^[\w.:/@+-]+$/.test(value) ? value : JSON.stringify(value)
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Math.round(value * 1e4) / 1e4)
  return JSON.stringify(value) ?? String(value)
}

/** `KEY=value KEY2=value` of a payload without its envelope (EE_*) keys. */
export function compactPayload(event: Record<string, unknown>): string {
  return Object.entries(event)
    .filter(([key]) => !key.startsWith('EE_'))
    .map(([key, value]) => `${key}=${compactValue(value)}`)
    .join(' ')
}

function timeOf(event: NodeEvent, date: boolean): string {
  const stamp = new Date(event.EE_TIMESTAMP)
  if (Number.isNaN(stamp.getTime())) return String(event.EE_TIMESTAMP)
  const pad = (n: number, width = 2) => String(n).padStart(width, '0')
  const time = `${pad(stamp.getHours())}:${pad(stamp.getMinutes())}:${pad(stamp.getSeconds())}.${pad(stamp.getMilliseconds(), 3)}`
  return date ? `${stamp.getFullYear()}-${pad(stamp.getMonth() + 1)}-${pad(stamp.getDate())} ${time}` : time
}

/** `pipeline/SIGNATURE/instance` (node-level events: the node alias). */
export function pathLabel(event: NodeEvent): string {
  if (!Array.isArray(event.EE_PAYLOAD_PATH)) return '-'
  const [alias, pipeline, signature, instance] = event.EE_PAYLOAD_PATH
  const parts = [pipeline, signature, instance].filter((part): part is string => part !== null)
  return parts.length > 0 ? parts.join('/') : alias
}

function renderPayload(event: Record<string, unknown>, c: ChalkInstance, max: number): string {
  if (event.R1_KIND === 'PROGRESS') {
    const current = Number(event.CURRENT)
    const total = Number(event.TOTAL)
    const percent = total > 0 ? ` (${Math.round((current / total) * 100)}%)` : ''
    return `${c.cyan('progress')} ${current}/${total}${percent}${event.CATEGORY ? ' ' + c.dim(String(event.CATEGORY)) : ''}`
  }
  if (event.R1_KIND === 'METRICS') {
    const values = Object.entries((event.METRICS ?? {}) as Record<string, unknown>).map(([k, v]) => `${k}=${compactValue(v)}`)
    return clip(`${c.cyan('metrics')}${event.CATEGORY ? ' ' + c.dim(String(event.CATEGORY)) : ''} ${values.join(' ')}`, max)
  }
  return clip(compactPayload(event), max)
}

function renderNotification(event: Record<string, unknown>, c: ChalkInstance, max: number, frame: string | undefined): string {
  const type = String(event.NOTIFICATION_TYPE ?? '')
  const code = typeof event.NOTIFICATION_CODE === 'number' ? event.NOTIFICATION_CODE : undefined
  const paint = type === 'EXCEPTION' || (code !== undefined && code < 0) ? c.red : type === 'NORMAL' ? c.green : c.yellow
  const label = paint(type === 'NORMAL' ? 'note' : type === 'EXCEPTION' ? 'exception' : 'abnormal')
  const codeText = code === undefined ? '' : c.dim(` [${code}]`)
  return `${label}${codeText} ${clip(String(event.NOTIFICATION ?? ''), max)}${frame ? `\n  ${c.dim(frame)}` : ''}`
}

/** The first frame of a stack (source-mapped by the instance process) that is not Node's own. */
export function firstFrame(stack: unknown): string | undefined {
  if (typeof stack !== 'string') return undefined
  for (const line of stack.split('\n')) {
    const frame = line.trim()
    if (frame.startsWith('at ') && !frame.includes('node:internal') && !frame.includes('(node:')) return frame.replace('file://', '')
  }
  return undefined
}

/** A LOG line; its message may span lines (a logged stack), its other control characters are shown. */
function renderLogLine(level: unknown, message: unknown, c: ChalkInstance): string {
  const label = level === 'error' ? c.red('error') : level === 'warn' ? c.yellow('warn ') : c.dim(level === 'debug' ? 'debug' : 'log  ')
  return `${label} ${escapeControlKeepLines(String(message ?? ''))}`
}

function renderHeartbeat(event: Record<string, unknown>, c: ChalkInstance, max: number): string {
  const plugins = (event.ACTIVE_PLUGINS ?? []) as Array<Record<string, unknown>>
  const statuses = plugins.map((p) => `${p.INSTANCE_ID}:${p.STATUS}`).join(' ')
  const text = `up ${Math.round(Number(event.UPTIME))}s cpu ${event.CPU_USED}% rss ${formatBytes(Number(event.PROCESS_MEMORY))} pipelines ${(event.PIPELINES as unknown[] | undefined)?.length ?? 0} instances ${plugins.length}${statuses ? ` ${statuses}` : ''}`
  return `${c.magenta('heartbeat')} ${clip(text, max)}`
}

/** Renders one event for humans (no trailing newline); also a subscription's `R1_GAP` marker. */
export function renderEvent(event: NodeEvent | ({EE_EVENT_TYPE: 'R1_GAP'} & Record<string, unknown>), options: RenderEventOptions = {}): string {
  const c = chalkOf(options)
  const max = options.maxWidth ?? 200
  const raw = event as Record<string, unknown>
  // node data: control characters are shown, never interpreted by the terminal
  const record = escapeDeep(event) as Record<string, unknown>
  event = record as typeof event
  const node = options.nodeLabel === undefined ? '' : `${c.blue(escapeControl(options.nodeLabel))} `
  if (record.EE_EVENT_TYPE === 'R1_GAP') {
    return `${c.dim(timeOf(event as NodeEvent, options.date ?? false))} ${node}${c.yellow(`gap: events ${record.FROM_SEQ}..${record.TO_SEQ} are missing (${record.REASON})`)}`
  }
  const body =
    event.EE_EVENT_TYPE === 'PAYLOAD'
      ? renderPayload(record, c, max)
      : event.EE_EVENT_TYPE === 'NOTIFICATION'
        ? renderNotification(record, c, max, escapeControl(firstFrame((raw.INFO as {STACK?: unknown} | undefined)?.STACK) ?? '') || undefined)
        : event.EE_EVENT_TYPE === 'HEARTBEAT'
          ? renderHeartbeat(record, c, max)
          : event.EE_EVENT_TYPE === 'LOG'
            ? renderLogLine(record.LEVEL, raw.MESSAGE, c)
            : clip(compactPayload(record), max)
  const where = pathLabel(event as NodeEvent)
  // a node-level event under a node label would name the node twice (`edge-a edge-a heartbeat`)
  const label = options.nodeLabel !== undefined && where === escapeControl(options.nodeLabel) ? '' : `${c.bold(where)} `
  return `${c.dim(timeOf(event as NodeEvent, options.date ?? false))} ${node}${label}${body}`
}

