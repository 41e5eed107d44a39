import {NotificationCode, NotificationType} from '../protocol/codes.js'
import type {HeartbeatEvent, NodeEvent, NotificationEvent} from '../protocol/events.js'
import {reasonOf} from './confirm.js'
import type {NodeLink} from './engine.js'

/**
 * A node's health during a rollout's soak, for the pipelines the rollout changed there, from what the
 * node already sends: an instance crash (restart), an exception, a failed config, a heartbeat showing
 * an instance in error, restarting (back-off, crash loop) or invalid, its plugin's `health` hook
 * answering `failed` (or `degraded`), heartbeats that stop coming, and the connection being lost.
 */

export interface HealthReport {
  status: 'ok' | 'degraded' | 'failed'
  reason?: string
  /** When the first failing signal arrived (ms since the epoch). */
  at?: number
}

/** A heartbeat is missing after this many periods (plus a second for the wire). */
const MISSED_PERIODS = 2.5

export class HealthWatch {
  private current: HealthReport = {status: 'ok'}
  private readonly offEvent: () => void
  private readonly offLost?: () => void
  private lastHeartbeat = Date.now()
  private heartbeatTimer?: NodeJS.Timeout

  constructor(
    link: NodeLink,
    private readonly pipelines: ReadonlySet<string>,
    private readonly onChange: (report: HealthReport) => void,
  ) {
    this.offEvent = link.onEvent((event) => this.observe(event))
    this.offLost = link.onLost?.((error) => this.fail(`connection lost: ${error.message}`))
  }

  get report(): HealthReport {
    return this.current
  }

  observe(event: NodeEvent): void {
    if (event.EE_EVENT_TYPE === 'NOTIFICATION') this.onNotification(event)
    else if (event.EE_EVENT_TYPE === 'HEARTBEAT') this.onHeartbeat(event)
  }

  stop(): void {
    clearTimeout(this.heartbeatTimer)
    this.offEvent()
    this.offLost?.()
  }

  private onNotification(n: NotificationEvent): void {
    const [, pipeline, signature, instanceId] = n.EE_PAYLOAD_PATH
    if (!pipeline || !this.pipelines.has(pipeline) || !signature || !instanceId) return
    const who = `${signature}/${instanceId}`
    const code = n.NOTIFICATION_CODE
    if (code === NotificationCode.PLUGIN_HEALTH) {
      const info = (n.INFO ?? {}) as {HEALTH?: unknown; REASON?: unknown}
      const reason = `${who} health: ${typeof info.REASON === 'string' ? info.REASON : String(info.HEALTH)}`
      if (info.HEALTH === 'failed') this.fail(reason)
      else if (info.HEALTH === 'degraded') this.degrade(reason)
      return
    }
    if (code === NotificationCode.PLUGIN_CRASHED) this.fail(`${who} crashed: ${reasonOf(n)}`)
    else if (code === NotificationCode.PLUGIN_CONFIG_FAILED || code === NotificationCode.PLUGIN_EXCEPTION) this.fail(`${who}: ${reasonOf(n)}`)
    // a refused instance command is the command's answer, a dropped log line is not an error of the version
    else if (n.NOTIFICATION_TYPE === NotificationType.EXCEPTION && code !== NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED && code !== NotificationCode.PLUGIN_LOG_DROPPED) this.fail(`${who}: ${reasonOf(n)}`)
  }

  private onHeartbeat(h: HeartbeatEvent): void {
    this.lastHeartbeat = Date.now()
    for (const p of h.ACTIVE_PLUGINS) {
      if (!this.pipelines.has(p.STREAM_ID)) continue
      const who = `${p.SIGNATURE}/${p.INSTANCE_ID}`
      if (p.STATUS === 'error' || p.STATUS === 'invalid_config' || p.STATUS === 'restarting') this.fail(`${who} is ${p.STATUS}${p.LAST_ERROR ? `: ${p.LAST_ERROR.split('\n')[0]}` : ''}`)
      else if (p.HEALTH?.STATUS === 'failed') this.fail(`${who} health: ${p.HEALTH.REASON ?? 'failed'}`)
      else if (p.HEALTH?.STATUS === 'degraded') this.degrade(`${who} health: ${p.HEALTH.REASON ?? 'degraded'}`)
    }
    const period = h.R1_HEARTBEAT_INTERVAL
    if (period === undefined) return
    clearTimeout(this.heartbeatTimer)
    const grace = period * 1000 * MISSED_PERIODS + 1000
    this.heartbeatTimer = setTimeout(() => this.fail(`no heartbeat for ${Math.round((Date.now() - this.lastHeartbeat) / 1000)} s (every ${period} s expected)`), grace)
    this.heartbeatTimer.unref()
  }

  private degrade(reason: string): void {
    if (this.current.status !== 'ok') return
    this.current = {status: 'degraded', reason}
    this.onChange(this.current)
  }

  private fail(reason: string): void {
    if (this.current.status === 'failed') return
    this.current = {status: 'failed', reason, at: Date.now()}
    this.onChange(this.current)
  }
}
