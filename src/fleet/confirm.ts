import type {InstanceRef} from '../deploy/plan.js'
import {NotificationCode} from '../protocol/codes.js'
import {type HeartbeatEvent, type NodeEvent, type NotificationEvent, isFailureNotification} from '../protocol/events.js'

/**
 * The one confirmation matcher (the session's `send({expect})` and the fleet's `sendAndConfirm` both use
 * it). Waits on a node's notifications for one command, as Ratio1 confirms: a pipeline-level code
 * (PIPELINE_OK, …) naming the command's COMMAND_HASH, an instance-level one (PLUGIN_CONFIG_OK, …) by
 * path. It fails fast on a negative code naming the command (rejected), and on an awaited instance
 * that reports a failure, an exception or a crash, or that a heartbeat shows in `error` (failed).
 */

/** One confirmation to wait for: a notification with `code` at this path; parts left out match anything. */
export interface Confirmation {
  code: number
  pipeline?: string
  signature?: string
  instance?: string
}

/** A command's confirmations in the deploy's terms: the pipeline's code and every instance's. */
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

/** The confirmations an expectation stands for. */
export function confirmationsOf(expect: Expectation): Confirmation[] {
  const instanceCode = expect.instanceCode ?? NotificationCode.PLUGIN_CONFIG_OK
  return [
    ...(expect.pipelineCode === undefined ? [] : [{code: expect.pipelineCode, pipeline: expect.pipeline}]),
    ...expect.instances.map((i) => ({code: instanceCode, pipeline: expect.pipeline, signature: i.signature, instance: i.instanceId})),
  ]
}

export class ConfirmationTracker {
  private hash?: string
  private readonly buffered: NodeEvent[] = []
  private readonly pending: Confirmation[]
  private verdict?: Verdict
  /** INFO of the confirmations (a command's RESULT, a rollback's VERSION travel there). */
  private info?: Record<string, unknown>

  constructor(expect: Expectation | readonly Confirmation[]) {
    this.pending = 'instances' in expect ? confirmationsOf(expect) : [...expect]
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
    if (this.pending.length === 0) {
      this.verdict = this.info ? {state: 'confirmed', info: this.info} : {state: 'confirmed'}
      return this.verdict
    }
    return {state: 'pending', waitingFor: this.pending.map(describe)}
  }

  private onNotification(n: NotificationEvent): void {
    const code = n.NOTIFICATION_CODE
    if (n.COMMAND_HASH !== undefined && this.hash === undefined) {
      this.buffered.push(n)
      return
    }
    const ours = n.COMMAND_HASH !== undefined && n.COMMAND_HASH === this.hash
    if (n.COMMAND_HASH !== undefined && !ours) return
    if (ours && code !== undefined && code < 0 && !INSTANCE_FAILURES.has(code)) {
      this.verdict = {state: 'rejected', reason: reasonOf(n), code}
      return
    }
    const [, pipeline, signature, instanceId] = n.EE_PAYLOAD_PATH
    for (const [i, a] of this.pending.entries()) {
      if (!matches(a, pipeline, signature, instanceId)) continue
      const instanceLevel = a.instance !== undefined || a.signature !== undefined
      if (code === a.code && (ours || instanceLevel)) {
        this.pending.splice(i, 1)
        // pipeline-level INFO first, so an instance's (a command's RESULT) wins
        if (n.INFO && typeof n.INFO === 'object') this.info = instanceLevel ? {...this.info, ...(n.INFO as Record<string, unknown>)} : {...(n.INFO as Record<string, unknown>), ...this.info}
        return
      }
      if (instanceLevel && signature && instanceId && isFailureNotification(n)) {
        this.verdict = {state: 'failed', reason: `${signature}/${instanceId}: ${reasonOf(n)}`, instance: {signature, instanceId}, code}
        return
      }
    }
  }

  /** A heartbeat that shows an awaited instance in `error` or `invalid_config` ends the wait with its last error. */
  private onHeartbeat(h: HeartbeatEvent): void {
    for (const p of h.ACTIVE_PLUGINS) {
      const awaited = this.pending.some((a) => a.instance !== undefined && matches(a, p.STREAM_ID, p.SIGNATURE, p.INSTANCE_ID))
      if (!awaited) continue
      if (p.STATUS === 'error' || p.STATUS === 'invalid_config') {
        this.verdict = {state: 'failed', reason: `${p.SIGNATURE}/${p.INSTANCE_ID} is ${p.STATUS}${p.LAST_ERROR ? `: ${p.LAST_ERROR}` : ''}`, instance: {signature: p.SIGNATURE, instanceId: p.INSTANCE_ID}}
        return
      }
    }
  }
}

function matches(a: Confirmation, pipeline: string | null, signature: string | null, instanceId: string | null): boolean {
  return (a.pipeline === undefined || a.pipeline === pipeline) && (a.signature === undefined || a.signature === signature) && (a.instance === undefined || a.instance === instanceId)
}

function describe(a: Confirmation): string {
  if (a.instance !== undefined) return a.signature ? `${a.signature}/${a.instance}` : a.instance
  return `pipeline ${a.pipeline ?? '*'} (code ${a.code})`
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
