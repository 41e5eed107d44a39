/**
 * The part of the plugin SDK that plugin code imports at run time. It imports nothing but types
 * (erased when compiled), so the bundler can inline it into every plugin bundle and the bundle stays
 * self-contained.
 */

import type {JsonValue} from '../services/types.js'

export type {JsonValue} from '../services/types.js'

/** A payload: the data an instance emits (UPPERCASE keys by convention, as in Ratio1). */
export type PluginPayload = Record<string, unknown>

/** Ratio1's NOTIFICATION_TYPE values a plugin may use in `ctx.notify`. */
export type PluginNotificationType = 'NORMAL' | 'ABNORMAL FUNCTIONING' | 'EXCEPTION'

/** Config keys every instance has, whatever its signature (Ratio1 base plugin keys). */
export interface BaseInstanceConfig {
  INSTANCE_ID?: string
  /** Minimum seconds between two `process` calls. */
  PROCESS_DELAY?: number
  /** When false, `process` runs only when the pipeline has input (`ctx.inputs` not empty). */
  ALLOW_EMPTY_INPUTS?: boolean
  /** A disabled instance is not started (status `stopped`). */
  DISABLED?: boolean
  /** A paused instance stays loaded but `process` is not called (status `paused`). */
  FORCED_PAUSE?: boolean
  /** Cap, in seconds, of the restart back-off after crashes. */
  RESTART_BACKOFF_MAX?: number
  /** Seconds `close` may take before the instance process is killed. */
  SHUTDOWN_TIMEOUT?: number
  /** Seconds one `process` call may run before the instance counts as hung and is restarted (unset: the node's 60 s). */
  PROCESS_TIMEOUT?: number
  /** Seconds between two calls of the plugin's `health` hook (default 10). */
  HEALTH_INTERVAL?: number
  [key: string]: unknown
}

/** The config an instance sees: its plugin's own keys (UPPERCASE) plus the base keys. */
export type InstanceConfigOf<C> = Readonly<C & BaseInstanceConfig>

export interface NotifyOptions {
  message: string
  /** A Ratio1 notification code (see `NotificationCode`); omitted for plain information. */
  code?: number
  /** Defaults to NORMAL. */
  type?: PluginNotificationType
  /** Any JSON data attached to the notification. */
  info?: unknown
}

/** `ctx.log('x')` is `ctx.log.info('x')`; the node prints logs, it does not emit them as events. */
export interface PluginLogger {
  (...args: unknown[]): void
  debug(...args: unknown[]): void
  info(...args: unknown[]): void
  warn(...args: unknown[]): void
  error(...args: unknown[]): void
}

/**
 * `ctx.cstore`: the node's key-value and hash store (Ratio1's CStore). Values are any JSON; a missing
 * key reads as null, and storing null deletes. Shared by every instance of the node (and of every node
 * on the same NATS backend).
 */
export interface PluginCStore {
  get<T extends JsonValue = JsonValue>(key: string): Promise<T | null>
  /** Resolves true once stored (durable). */
  set(key: string, value: JsonValue): Promise<boolean>
  hget<T extends JsonValue = JsonValue>(hkey: string, field: string): Promise<T | null>
  hset(hkey: string, field: string, value: JsonValue): Promise<boolean>
  /** Every field of a hash; `{}` when it has none. */
  hgetall<T extends JsonValue = JsonValue>(hkey: string): Promise<Record<string, T>>
  hkeys(hkey: string): Promise<string[]>
}

/** A file read from R1FS. */
export interface R1fsFileData {
  data: Buffer
  filename: string
}

/** Options of the R1FS writes: `secret` stores the file encrypted (AES-256-GCM keyed by it). */
export interface R1fsAddOptions {
  filename?: string
  secret?: string
}

/**
 * `ctx.r1fs`: the node's content-addressed file store (Ratio1's R1FS). Adds return the content address
 * (CID); reads of an unknown CID, or with the wrong secret, resolve undefined.
 */
export interface PluginR1fs {
  addFile(data: Uint8Array | string, options: R1fsAddOptions & {filename: string}): Promise<string>
  addJson(data: JsonValue, options?: R1fsAddOptions): Promise<string>
  addYaml(data: JsonValue, options?: R1fsAddOptions): Promise<string>
  getFile(cid: string, options?: {secret?: string}): Promise<R1fsFileData | undefined>
  getJson<T = JsonValue>(cid: string, options?: {secret?: string}): Promise<T | undefined>
  getYaml<T = JsonValue>(cid: string, options?: {secret?: string}): Promise<T | undefined>
  /** True when the file existed. */
  delete(cid: string): Promise<boolean>
}

/** What a plugin's hooks receive (ARCHITECTURE.md §3). */
export interface PluginContext<C = Record<string, unknown>> {
  /** The instance config, UPPERCASE keys, replaced (not mutated) on live reconfiguration. */
  readonly config: InstanceConfigOf<C>
  /** Emits one payload now (a `process` return value is emitted the same way). */
  emit(payload: PluginPayload): void
  /** Emits a notification; a bare string is a NORMAL notification. */
  notify(notification: NotifyOptions | string): void
  log: PluginLogger
  /** Emits a progress payload `{R1_KIND: 'PROGRESS', CURRENT, TOTAL, CATEGORY}`. */
  progress(current: number, total: number, category?: string): void
  /** Emits a metrics payload `{R1_KIND: 'METRICS', CATEGORY, METRICS: values}`. */
  metrics(values: Record<string, number>, category?: string): void
  readonly instanceId: string
  readonly pipeline: string
  readonly signature: string
  readonly node: {readonly address: string; readonly alias: string}
  /** Aborted when the instance is stopping: end long waits early. */
  readonly signal: AbortSignal
  /** Pipeline inputs received since the previous `process` call (empty for a `Void` pipeline). */
  readonly inputs: readonly unknown[]
  /** Number of `process` calls started so far, this one included. */
  readonly iteration: number
  /** The node's CStore (key-value and hash store). */
  readonly cstore: PluginCStore
  /** The node's R1FS (content-addressed file store). */
  readonly r1fs: PluginR1fs
}

type Awaitable<T> = T | Promise<T>

/** What a `health` hook answers: `failed` stops a rollout that is soaking this version (and rolls it back). */
export interface HealthAnswer {
  status: 'ok' | 'degraded' | 'failed'
  reason?: string
}

/**
 * What a `beforeUpdate` hook answers: nothing (or `{ok: true}`) lets the update go ahead, `{refuse}`
 * refuses it (the deploy fails on that node with the reason; nothing changes there), `{defer}` asks the
 * node to ask again after that many seconds (the node waits at most 20 s in all, then goes ahead).
 */
export type UpdateAnswer = void | undefined | {ok: true} | {refuse: string} | {defer: number; reason?: string}

export interface PluginDefinition<C = Record<string, unknown>> {
  /** Once, before the first `process`. A throw here is a failed start (the instance is restarted). */
  init?(ctx: PluginContext<C>): Awaitable<void>
  /** Every PROCESS_DELAY seconds; a returned object is emitted as a payload. */
  process?(ctx: PluginContext<C>): Awaitable<PluginPayload | void | undefined | null>
  /** A one-shot INSTANCE_COMMAND; return a value to attach it to the confirmation, throw to reject. */
  command?(ctx: PluginContext<C>, name: string, params: unknown): Awaitable<unknown>
  /** Live reconfiguration: `ctx.config` is still `previous` while this runs; throw to reject `next`. */
  config?(ctx: PluginContext<C>, next: InstanceConfigOf<C>, previous: InstanceConfigOf<C>): Awaitable<void>
  /** On stop, after `ctx.signal` is aborted. */
  close?(ctx: PluginContext<C>): Awaitable<void>
  /** Every HEALTH_INTERVAL seconds: how the instance is doing (a throw counts as `failed`). The node reports changes and the last answer in heartbeats. */
  health?(ctx: PluginContext<C>): Awaitable<HealthAnswer>
  /** Before a deploy changes, replaces or removes this running instance: `next` is its new config (null when it is removed). */
  beforeUpdate?(ctx: PluginContext<C>, next: InstanceConfigOf<C> | null): Awaitable<UpdateAnswer>
}

/** Every hook a plugin may define. */
export const PLUGIN_HOOKS = ['init', 'process', 'command', 'config', 'close', 'health', 'beforeUpdate'] as const

/** Marks a plugin module's default export; `Symbol.for` so a bundled copy of the SDK agrees with the node's. */
export const PLUGIN_BRAND: unique symbol = Symbol.for('r1.plugin') as never

export type Plugin<C = Record<string, unknown>> = PluginDefinition<C> & {readonly [PLUGIN_BRAND]: true}

/**
 * Declares a plugin. The module's default export must be its result.
 *
 * ```ts
 * import {definePlugin} from 'r1/plugin'
 * import type {TempMonitorConfig} from './r1-types.js' // from `r1 types`
 * export default definePlugin<TempMonitorConfig>({
 *   async process(ctx) { return {TEMPERATURE: 21.5, UNIT: ctx.config.UNIT} },
 * })
 * ```
 */
export function definePlugin<C = Record<string, unknown>>(definition: PluginDefinition<C>): Plugin<C> {
  if (definition === null || typeof definition !== 'object') throw new TypeError(`definePlugin expects an object with hooks: {${PLUGIN_HOOKS.join(', ')}}`)
  for (const hook of PLUGIN_HOOKS) {
    const fn = definition[hook]
    if (fn !== undefined && typeof fn !== 'function') throw new TypeError(`definePlugin: "${hook}" must be a function, got ${typeof fn}`)
  }
  return Object.freeze({...definition, [PLUGIN_BRAND]: true as const})
}

/** True for a value produced by `definePlugin` (in this copy of the SDK or a bundled one). */
export function isPlugin(value: unknown): value is Plugin<any> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN_BRAND] === true
}
