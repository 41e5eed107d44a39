import {NotificationCode, NotificationType} from '../protocol/codes.js'
import type {HeartbeatEvent, NodeEvent, NotificationEvent} from '../protocol/events.js'
import type {InstanceRef} from './plan.js'

/**
 * Waits on the node's notifications for one command, as Ratio1 confirms: PIPELINE_OK for the
 * pipeline (matched by COMMAND_HASH), PLUGIN_CONFIG_OK for every new or changed instance (matched by
 * path), and fails fast on a rejection naming the command or on an awaited instance that errors.
 */

export interface Expectation {
  pipeline: string
  /** Wait for PIPELINE_OK (or another pipeline-level code) naming this command. */
  pipelineCode?: number
  instances: InstanceRef[]
  /** Wait for this code per instance (default PLUGIN_CONFIG_OK). */
  instanceCode?: number
}

export type Verdict =
  | {state: 'pending'; waitingFor: string[]}
  | {state: 'confirmed'; info?: Record<string, unknown>}
  | {state: 'rejected'; reason: string; code?: number}
  | {state: 'failed'; reason: string; instance?: InstanceRef; code?: number}
  /** The connection to the node was lost before every confirmation came. */
  | {state: 'lost'; reason: string}

/** Codes that mean an instance's code failed (rather than the command being refused). */
const INSTANCE_FAILURES = new Set<number>([NotificationCode.PLUGIN_EXCEPTION, NotificationCode.PLUGIN_CRASHED, NotificationCode.PLUGIN_CONFIG_FAILED, NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED])

export class ConfirmationTracker {
  private hash?: string
  private readonly buffered: NodeEvent[] = []
  private pipelineDone: boolean
  private readonly pendingInstances: Map<string, InstanceRef>
  private verdict?: Verdict
  /** INFO of the confirmations (a command's RESULT, a rollback's VERSION travel there). */
  private info?: Record<string, unknown>

  constructor(private readonly expect: Expectation) {
    this.pipelineDone = expect.pipelineCode === undefined
    this.pendingInstances = new Map(expect.instances.map((i) => [key(i.signature, i.instanceId), i]))
  }

  /** The command's EE_HASH, once signed; events seen before it are re-examined. */
  setCommandHash(hash: string): Verdict {
    this.hash = hash
    const events = this.buffered.splice(0)
    for (const e of events) this.observe(e)
    return this.current()
  }

  /** Feeds one node event; returns the verdict so far. */
  observe(event: NodeEvent): Verdict {
    if (this.verdict && this.verdict.state !== 'pending') return this.verdict
    if (event.EE_EVENT_TYPE === 'NOTIFICATION') this.onNotification(event)
    else if (event.EE_EVENT_TYPE === 'HEARTBEAT') this.onHeartbeat(event)
    return this.current()
  }

  current(): Verdict {
    if (this.verdict) return this.verdict
    if (this.pipelineDone && this.pendingInstances.size === 0) {
      this.verdict = this.info ? {state: 'confirmed', info: this.info} : {state: 'confirmed'}
      return this.verdict
    }
    const waitingFor = [
      ...(this.pipelineDone ? [] : [`pipeline ${this.expect.pipeline} (code ${this.expect.pipelineCode})`]),
      ...[...this.pendingInstances.values()].map((i) => `${i.signature}/${i.instanceId}`),
    ]
    return {state: 'pending', waitingFor}
  }

  private onNotification(n: NotificationEvent): void {
    const code = n.NOTIFICATION_CODE
    const [, pipeline, signature, instanceId] = n.EE_PAYLOAD_PATH
    if (n.COMMAND_HASH !== undefined && this.hash === undefined) {
      this.buffered.push(n)
      return
    }
    const ours = n.COMMAND_HASH !== undefined && n.COMMAND_HASH === this.hash
    const others = n.COMMAND_HASH !== undefined && n.COMMAND_HASH !== this.hash
    if (ours && code !== undefined && code < 0 && !INSTANCE_FAILURES.has(code)) {
      this.verdict = {state: 'rejected', reason: reasonOf(n), code}
      return
    }
    if (ours && code === this.expect.pipelineCode) {
      this.pipelineDone = true
      if (n.INFO && typeof n.INFO === 'object') this.info = {...(n.INFO as Record<string, unknown>), ...this.info}
      return
    }
    if (others || pipeline !== this.expect.pipeline || !signature || !instanceId) return
    const k = key(signature, instanceId)
    const awaited = this.pendingInstances.get(k)
    if (!awaited) return
    if (code === (this.expect.instanceCode ?? NotificationCode.PLUGIN_CONFIG_OK)) {
      this.pendingInstances.delete(k)
      if (n.INFO && typeof n.INFO === 'object') this.info = {...this.info, ...(n.INFO as Record<string, unknown>)}
      return
    }
    const failedCode = code !== undefined && (INSTANCE_FAILURES.has(code) || code < 0)
    if (failedCode || n.NOTIFICATION_TYPE === NotificationType.EXCEPTION) {
      this.verdict = {state: 'failed', reason: `${signature}/${instanceId}: ${reasonOf(n)}`, instance: awaited, code}
    }
  }

  /** A heartbeat that shows an awaited instance in `error` or `invalid_config` ends the wait with its last error. */
  private onHeartbeat(h: HeartbeatEvent): void {
    for (const p of h.ACTIVE_PLUGINS) {
      const awaited = this.pendingInstances.get(key(p.SIGNATURE, p.INSTANCE_ID))
      if (!awaited || p.STREAM_ID !== this.expect.pipeline) continue
      if (p.STATUS === 'error' || p.STATUS === 'invalid_config') {
        this.verdict = {state: 'failed', reason: `${p.SIGNATURE}/${p.INSTANCE_ID} is ${p.STATUS}${p.LAST_ERROR ? `: ${p.LAST_ERROR}` : ''}`, instance: awaited}
        return
      }
    }
  }
}

function key(signature: string, instanceId: string): string {
  return `${signature}\u0000${instanceId}`
}

/** The notification's text, with the error detail Ratio1 puts in INFO when there is one. */
export function reasonOf(n: NotificationEvent): string {
  const info = n.INFO
  const detail = typeof info === 'string' ? info : info && typeof info === 'object' && 'message' in info ? String((info as {message: unknown}).message) : undefined
  const text = n.NOTIFICATION || detail || 'no reason given'
  return detail && !text.includes(detail) ? `${text} (${firstLine(detail)})` : text
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim().length > 0) ?? text
  return line.length > 200 ? line.slice(0, 197) + '…' : line
}
