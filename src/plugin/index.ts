/**
 * The plugin SDK: `import {definePlugin} from 'r1/plugin'` (ARCHITECTURE.md §3), and `testPlugin`,
 * a harness to unit-test a plugin without a node.
 */
import type {HealthAnswer, InstanceConfigOf, Plugin, PluginContext, PluginDefinition, PluginNotificationType, PluginPayload} from './define.js'
import {PluginRunner, type CommandResult, type LogLevel, type StepResult, type UpdateDecision} from './runner.js'
import type {ServiceUrls} from '../services/env.js'

export {definePlugin, isPlugin, PLUGIN_BRAND} from './define.js'
export type {
  BaseInstanceConfig,
  HealthAnswer,
  InstanceConfigOf,
  JsonValue,
  NotifyOptions,
  Plugin,
  PluginContext,
  PluginCStore,
  PluginDefinition,
  PluginLogger,
  PluginNotificationType,
  PluginPayload,
  PluginR1fs,
  R1fsAddOptions,
  R1fsFileData,
  UpdateAnswer,
} from './define.js'
export type {CommandResult, LogLevel, StepResult, UpdateDecision} from './runner.js'
export {NotificationCode, NotificationType} from '../protocol/codes.js'

/** A notification as the harness records it (the node would add the envelope). */
export interface TestNotification {
  message: string
  code?: number
  type: PluginNotificationType
  info?: unknown
  commandHash?: string
}

export interface TestLog {
  level: LogLevel
  text: string
}

export interface TestPluginOptions<C> {
  /** The instance config; keys are uppercased as the node does. */
  config?: Partial<C> & Record<string, unknown>
  instanceId?: string
  pipeline?: string
  signature?: string
  node?: {address: string; alias: string}
}

export interface ProcessOutcome extends StepResult {
  /** Payloads emitted by this call (the return value and `ctx.emit`s). */
  payloads: PluginPayload[]
  /** Notifications emitted by this call (EXCEPTION on a throw, PLUGIN_CONFIG_OK after (re)config). */
  notifications: TestNotification[]
}

export interface PluginTestHarness<C> {
  readonly ctx: PluginContext<C>
  /** The current config (after accepted reconfigurations). */
  readonly config: InstanceConfigOf<C>
  /** Calls `init` (done automatically before the first `process` or `command`). */
  init(): Promise<StepResult>
  /** One `process` call with optional pipeline inputs (`ctx.inputs`). */
  process(inputs?: unknown[]): Promise<ProcessOutcome>
  /** One instance command, as `INSTANCE_COMMAND` delivers it. */
  command(name: string, params?: unknown): Promise<CommandResult>
  /** Live reconfiguration with a whole new instance config. */
  reconfigure(next: Partial<C> & Record<string, unknown>): Promise<StepResult>
  /** Aborts `ctx.signal` and calls `close`; then stops the services `ctx.cstore` / `ctx.r1fs` used and removes their data. */
  close(): Promise<StepResult>
  /** Asks the `health` hook as the node does every HEALTH_INTERVAL (a change is a PLUGIN_HEALTH notification). */
  health(): Promise<HealthAnswer>
  /** Asks the `beforeUpdate` hook about a next config (null: removal), as a node does before a deploy changes the instance. */
  beforeUpdate(next: (Partial<C> & Record<string, unknown>) | null): Promise<UpdateDecision>
  /** Everything emitted so far, in order. */
  readonly payloads: PluginPayload[]
  readonly notifications: TestNotification[]
  readonly logs: TestLog[]
}

/**
 * Runs a plugin's hooks in the current process, the way a node's instance host does, and collects
 * what it emits. No node, no child process, no timers: the test decides when `process` runs.
 * `ctx.cstore` and `ctx.r1fs` work against the real embedded services, started in a temp folder on
 * first use (loopback, free ports) and removed by `close()`.
 *
 * ```ts
 * import {testPlugin} from 'r1/plugin'
 * import plugin from '../src/temp-monitor.js'
 *
 * const t = testPlugin(plugin, {config: {THRESHOLD: 25}})
 * const {payloads} = await t.process()
 * expect(payloads[0]).toMatchObject({TEMPERATURE: expect.any(Number)})
 * expect((await t.command('RESET')).ok).toBe(true)
 * await t.reconfigure({THRESHOLD: 30})   // the plugin's `config` hook runs; PLUGIN_CONFIG_OK follows the next process
 * await t.close()
 * ```
 */
export function testPlugin<C = Record<string, unknown>>(plugin: Plugin<C> | PluginDefinition<C>, options: TestPluginOptions<C> = {}): PluginTestHarness<C> {
  const payloads: PluginPayload[] = []
  const notifications: TestNotification[] = []
  const logs: TestLog[] = []
  let callPayloads: PluginPayload[] = []
  let callNotifications: TestNotification[] = []
  const node = options.node ?? {address: '0xai_test', alias: 'test-node'}
  let services: Promise<TestServices> | undefined
  const runner = new PluginRunner<C>(plugin, {
    config: {INSTANCE_ID: options.instanceId ?? 'test-1', ...options.config},
    instanceId: options.instanceId ?? 'test-1',
    pipeline: options.pipeline ?? 'test',
    signature: options.signature ?? 'TEST_PLUGIN',
    node,
    announceConfig: true,
    services: async () => (await (services ??= startTestServices(node))).urls,
    onEvent: (event) => {
      if (event.kind === 'payload') {
        payloads.push(event.data)
        callPayloads.push(event.data)
      } else if (event.kind === 'notification') {
        const {kind: _kind, ...notification} = event
        notifications.push(notification)
        callNotifications.push(notification)
      } else {
        logs.push({level: event.level, text: event.text})
      }
    },
  })
  let initialized: Promise<StepResult> | undefined
  const init = () => (initialized ??= runner.init())
  return {
    get ctx() {
      return runner.ctx
    },
    get config() {
      return runner.currentConfig
    },
    init,
    async process(inputs = []) {
      callPayloads = []
      callNotifications = []
      const started = await init()
      if (!started.ok) return {...started, payloads: callPayloads, notifications: callNotifications}
      const result = await runner.process(inputs)
      return {...result, payloads: callPayloads, notifications: callNotifications}
    },
    async command(name, params) {
      const started = await init()
      if (!started.ok) return started
      return runner.command(name, params)
    },
    reconfigure: (next) => runner.reconfigure({INSTANCE_ID: runner.ctx.instanceId, ...next}),
    async close() {
      const result = await runner.close()
      // services that failed to start have nothing to stop (the plugin's call already got the error)
      if (services) await (await services.catch(() => undefined))?.close()
      return result
    },
    health: () => runner.health(),
    beforeUpdate: (next) => runner.beforeUpdate(next === null ? null : {INSTANCE_ID: runner.ctx.instanceId, ...next}),
    payloads,
    notifications,
    logs,
  }
}

interface TestServices {
  urls: ServiceUrls
  close(): Promise<void>
}

/** The node services as `r1 run` has them (embedded backends, HTTP APIs on loopback), in a temp folder. */
async function startTestServices(node: {address: string; alias: string}): Promise<TestServices> {
  const [{mkdtemp, rm}, {tmpdir}, {join}, {openServices, serveServices}] = await Promise.all([import('node:fs/promises'), import('node:os'), import('node:path'), import('../services/index.js')])
  const dataDir = await mkdtemp(join(tmpdir(), 'r1-test-services-'))
  const services = await openServices({dataDir})
  const served = await serveServices(services, {cstorePort: 0, r1fsPort: 0, node: {...node, version: 'test'}})
  return {
    urls: {cstoreUrl: served.cstoreUrl, r1fsUrl: served.r1fsUrl},
    async close() {
      await served.close()
      await services.cstore.close()
      await services.r1fs.close()
      await rm(dataDir, {recursive: true, force: true})
    },
  }
}
