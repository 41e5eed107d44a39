import {NotificationCode, NotificationType} from '../protocol/codes.js'
import type {HealthAnswer, InstanceConfigOf, Plugin, PluginContext, PluginDefinition, PluginLogger, PluginNotificationType, PluginPayload} from './define.js'
import type {ServiceUrls} from '../services/env.js'
import {serviceClients} from './services.js'

/**
 * Drives one plugin instance's hooks with Ratio1's semantics, with no timing and no I/O:
 * the node's instance host adds the loop and IPC, `testPlugin` adds collection for unit tests.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export type RunnerEvent =
  | {kind: 'payload'; data: PluginPayload}
  | {kind: 'notification'; message: string; code?: number; type: PluginNotificationType; info?: unknown; commandHash?: string}
  /** `time` (epoch ms): when the line was read, for lines that may reach the node later (a process app's output); else the node stamps it. */
  /** `cut`: characters of the line already cut where it was read (the node cuts every line to MAX_LINE_CHARS and counts them with it). */
  | {kind: 'log'; level: LogLevel; text: string; time?: number; cut?: number}

export interface RunnerOptions {
  config: Record<string, unknown>
  instanceId: string
  pipeline: string
  signature: string
  node: {address: string; alias: string}
  onEvent: (event: RunnerEvent) => void
  /** Emit PLUGIN_CONFIG_OK after the first good `process` (a new or reconfigured instance; not a restart). */
  announceConfig?: boolean
  /** COMMAND_HASH for that PLUGIN_CONFIG_OK. */
  configHash?: string
  /** Where `ctx.cstore` and `ctx.r1fs` send their requests (the instance's environment; testPlugin's own services). */
  services?: () => Promise<Partial<ServiceUrls>> | Partial<ServiceUrls>
}

export interface StepResult {
  ok: boolean
  /** `Name: message` of what the plugin threw. */
  error?: string
}

/** A `beforeUpdate` answer as the node acts on it. */
export type UpdateDecision = {action: 'ok'} | {action: 'refuse'; reason: string} | {action: 'defer'; seconds: number; reason?: string}

export interface CommandResult extends StepResult {
  result?: unknown
}

/** Instance config keys are UPPERCASE (ARCHITECTURE.md §2); a test may write them in any case. */
export function upperKeys(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config)) out[key.toUpperCase()] = value
  return out
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return `Thrown value: ${typeof error === 'string' ? error : safeJson(error)}`
}

function stackOf(error: unknown): string | undefined {
  return error instanceof Error && error.stack ? error.stack.split('\n').slice(0, 12).join('\n') : undefined
}

export function formatLogArgs(args: unknown[]): string {
  return args.map((arg) => (typeof arg === 'string' ? arg : arg instanceof Error ? (arg.stack ?? String(arg)) : safeJson(arg))).join(' ')
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

export class PluginRunner<C = Record<string, unknown>> {
  readonly ctx: PluginContext<C>
  private config: InstanceConfigOf<C>
  private inputs: readonly unknown[] = []
  private iteration = 0
  private readonly abort = new AbortController()
  private pendingConfigOk: {hash?: string} | undefined
  private initialized = false
  private lastHealth?: HealthAnswer

  constructor(
    private readonly plugin: Plugin<C> | PluginDefinition<C>,
    private readonly options: RunnerOptions,
  ) {
    this.config = Object.freeze(upperKeys(options.config)) as InstanceConfigOf<C>
    if (options.announceConfig) this.pendingConfigOk = {hash: options.configHash}
    this.ctx = this.createContext()
  }

  get currentConfig(): InstanceConfigOf<C> {
    return this.config
  }

  get isInitialized(): boolean {
    return this.initialized
  }

  async init(): Promise<StepResult> {
    try {
      await this.plugin.init?.(this.ctx)
      this.initialized = true
      return {ok: true}
    } catch (error) {
      return this.exception('init', error)
    }
  }

  /** One `process` call; `inputs` become `ctx.inputs`. */
  async process(inputs: readonly unknown[] = []): Promise<StepResult> {
    this.iteration++
    this.inputs = Object.freeze([...inputs])
    try {
      const result = await this.plugin.process?.(this.ctx)
      if (result !== undefined && result !== null) {
        if (typeof result === 'object' && !Array.isArray(result)) this.emitPayload(result)
        else this.log('warn', [`process returned ${Array.isArray(result) ? 'an array' : `a ${typeof result}`}, not an object: ignored (return an object, or call ctx.emit)`])
      }
    } catch (error) {
      return this.exception('process', error)
    }
    if (this.pendingConfigOk) {
      const {hash} = this.pendingConfigOk
      this.pendingConfigOk = undefined
      this.send({kind: 'notification', type: NotificationType.NORMAL, code: NotificationCode.PLUGIN_CONFIG_OK, message: 'Plugin config OK', commandHash: hash})
    }
    return {ok: true}
  }

  /** A one-shot instance command, confirmed with PLUGIN_INSTANCE_COMMAND_OK or its negative. */
  async command(name: string, params: unknown, hash?: string): Promise<CommandResult> {
    const info = (extra: Record<string, unknown>) => ({COMMAND: name, ...extra})
    if (!this.plugin.command) {
      const error = `Instance command "${name}" refused: ${this.options.signature} has no command handler`
      this.send({kind: 'notification', type: NotificationType.ABNORMAL, code: NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED, message: error, info: info({}), commandHash: hash})
      return {ok: false, error}
    }
    try {
      const result = await this.plugin.command(this.ctx, name, params)
      this.send({kind: 'notification', type: NotificationType.NORMAL, code: NotificationCode.PLUGIN_INSTANCE_COMMAND_OK, message: `Instance command "${name}" OK`, info: info(result === undefined ? {} : {RESULT: result}), commandHash: hash})
      return {ok: true, result}
    } catch (error) {
      const text = describeError(error)
      this.send({kind: 'notification', type: NotificationType.EXCEPTION, code: NotificationCode.PLUGIN_INSTANCE_COMMAND_FAILED, message: `Instance command "${name}" failed: ${text}`, info: info({STACK: stackOf(error)}), commandHash: hash})
      return {ok: false, error: text}
    }
  }

  /** Live reconfiguration: the `config` hook may reject `next` by throwing; then the previous config stays. */
  async reconfigure(next: Record<string, unknown>, hash?: string): Promise<StepResult> {
    const frozen = Object.freeze(upperKeys(next)) as InstanceConfigOf<C>
    try {
      await this.plugin.config?.(this.ctx, frozen, this.config)
    } catch (error) {
      const text = describeError(error)
      this.send({kind: 'notification', type: NotificationType.EXCEPTION, code: NotificationCode.PLUGIN_CONFIG_FAILED, message: `Config rejected by the plugin: ${text}`, info: {STACK: stackOf(error)}, commandHash: hash})
      return {ok: false, error: text}
    }
    this.config = frozen
    this.pendingConfigOk = {hash}
    return {ok: true}
  }

  get hasHealth(): boolean {
    return typeof this.plugin.health === 'function'
  }

  /**
   * Asks the `health` hook (a throw or a malformed answer counts as `failed`) and emits a PLUGIN_HEALTH
   * notification with the first answer and whenever it changes.
   */
  async health(): Promise<HealthAnswer> {
    let answer: HealthAnswer
    try {
      const given = await this.plugin.health?.(this.ctx)
      answer = given && ['ok', 'degraded', 'failed'].includes(given.status) ? {status: given.status, ...(typeof given.reason === 'string' ? {reason: given.reason} : {})} : {status: 'failed', reason: `health returned ${JSON.stringify(given)}, not {status: 'ok' | 'degraded' | 'failed', reason?}`}
    } catch (error) {
      answer = {status: 'failed', reason: `health threw ${describeError(error)}`}
    }
    if (answer.status !== this.lastHealth?.status || answer.reason !== this.lastHealth.reason) {
      const type = answer.status === 'ok' ? NotificationType.NORMAL : NotificationType.ABNORMAL
      this.send({kind: 'notification', type, code: NotificationCode.PLUGIN_HEALTH, message: `Health ${answer.status}${answer.reason ? `: ${answer.reason}` : ''}`, info: {HEALTH: answer.status, ...(answer.reason ? {REASON: answer.reason} : {})}})
    }
    this.lastHealth = answer
    return answer
  }

  /** Asks the `beforeUpdate` hook about `next` (null: the instance is removed); a throw refuses with its message. */
  async beforeUpdate(next: Record<string, unknown> | null): Promise<UpdateDecision> {
    if (!this.plugin.beforeUpdate) return {action: 'ok'}
    try {
      const answer = await this.plugin.beforeUpdate(this.ctx, next === null ? null : (Object.freeze(upperKeys(next)) as InstanceConfigOf<C>))
      if (answer && typeof answer === 'object' && 'refuse' in answer) return {action: 'refuse', reason: String(answer.refuse)}
      if (answer && typeof answer === 'object' && 'defer' in answer) {
        const seconds = Number(answer.defer)
        return {action: 'defer', seconds: Number.isFinite(seconds) && seconds > 0 ? seconds : 1, ...(answer.reason ? {reason: String(answer.reason)} : {})}
      }
      return {action: 'ok'}
    } catch (error) {
      return {action: 'refuse', reason: `beforeUpdate threw ${describeError(error)}`}
    }
  }

  /** Aborts `ctx.signal` (at once, even while a hook is still running). */
  signalStop(): void {
    if (!this.abort.signal.aborted) this.abort.abort(new Error('instance stopping'))
  }

  /** Aborts `ctx.signal`, then calls `close`. */
  async close(): Promise<StepResult> {
    this.signalStop()
    try {
      await this.plugin.close?.(this.ctx)
      return {ok: true}
    } catch (error) {
      const text = describeError(error)
      this.log('error', [`close failed: ${text}`])
      return {ok: false, error: text}
    }
  }

  private exception(hook: string, error: unknown): StepResult {
    const text = describeError(error)
    this.send({kind: 'notification', type: NotificationType.EXCEPTION, code: NotificationCode.PLUGIN_EXCEPTION, message: `Exception in ${hook}: ${text}`, info: {STACK: stackOf(error)}})
    return {ok: false, error: text}
  }

  private send(event: RunnerEvent): void {
    this.options.onEvent(event)
  }

  private emitPayload(payload: PluginPayload): void {
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new TypeError(`ctx.emit expects an object, got ${Array.isArray(payload) ? 'an array' : typeof payload}`)
    }
    this.send({kind: 'payload', data: payload})
  }

  private log(level: LogLevel, args: unknown[]): void {
    this.send({kind: 'log', level, text: formatLogArgs(args)})
  }

  private createContext(): PluginContext<C> {
    const log = ((...args: unknown[]) => this.log('info', args)) as PluginLogger
    log.debug = (...args) => this.log('debug', args)
    log.info = (...args) => this.log('info', args)
    log.warn = (...args) => this.log('warn', args)
    log.error = (...args) => this.log('error', args)
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const runner = this
    const {instanceId, pipeline, signature} = this.options
    const node = Object.freeze({...this.options.node})
    const {cstore, r1fs} = serviceClients(this.options.services ?? (() => ({})))
    return {
      get config() {
        return runner.config
      },
      emit: (payload) => this.emitPayload(payload),
      notify: (notification) => {
        const n = typeof notification === 'string' ? {message: notification} : notification
        if (!n || typeof n.message !== 'string') throw new TypeError('ctx.notify expects {message, code?, type?} or a string')
        this.send({kind: 'notification', message: n.message, type: n.type ?? NotificationType.NORMAL, ...(n.code === undefined ? {} : {code: n.code}), ...(n.info === undefined ? {} : {info: n.info})})
      },
      log,
      progress: (current, total, category) => this.emitPayload({R1_KIND: 'PROGRESS', CURRENT: current, TOTAL: total, CATEGORY: category ?? null}),
      metrics: (values, category) => this.emitPayload({R1_KIND: 'METRICS', CATEGORY: category ?? null, METRICS: values}),
      instanceId,
      pipeline,
      signature,
      node,
      get signal() {
        return runner.abort.signal
      },
      get inputs() {
        return runner.inputs
      },
      get iteration() {
        return runner.iteration
      },
      cstore,
      r1fs,
    }
  }
}
