import {ExitCode, R1Error} from '../errors.js'
import {NotificationCode} from '../protocol/codes.js'
import type {ActivePlugin} from '../protocol/events.js'
import type {PipelineConfig} from '../protocol/pipeline.js'
import {type Connect, type NodeLink, type NodeState, type TargetStatus, exitCodeFor, isFailure, pool, sendAndConfirm, statusOfError, verdictError} from './fanout.js'
import type {Target} from './targets.js'

/**
 * The managing commands (`status`, `pipelines ls|stop|delete`, `command`, `rollback`): each runs
 * one operation per target over a session, confirms it by the node's notification, and reports
 * per target with the same exit-code rules as deploy.
 */

export interface ManageResult<T> {
  target: string
  url: string
  address: string
  ok: boolean
  status: TargetStatus
  error?: string
  /** What the operation returned for this target. */
  result?: T
}

export interface FanOutOptions {
  targets: Target[]
  connect: Connect
  maxConcurrent?: number
  signal?: AbortSignal
  onDone?: (result: ManageResult<unknown>) => void
}

/** Runs `operation` on every target (connect, run, close), never throwing: failures become results. */
export async function onEveryTarget<T>(options: FanOutOptions, operation: (link: NodeLink, target: Target) => Promise<T>): Promise<{ok: boolean; exitCode: ExitCode; targets: Array<ManageResult<T>>}> {
  const targets = await pool(options.targets, options.maxConcurrent ?? 8, async (target) => {
    const base = {target: target.name, url: target.url, address: target.address}
    let link: NodeLink | undefined
    let out: ManageResult<T>
    try {
      link = await options.connect(target, options.signal)
      out = {...base, ok: true, status: 'ok', result: await operation(link, target)}
    } catch (error) {
      const status = statusOfError(error)
      out = {...base, ok: !isFailure(status), status, error: error instanceof Error ? error.message : String(error)}
    } finally {
      await link?.close().catch(() => undefined)
    }
    options.onDone?.(out)
    return out
  })
  const exitCode = exitCodeFor(targets)
  return {ok: exitCode === ExitCode.OK, exitCode, targets}
}

export interface InstanceStatusRow {
  pipeline: string
  signature: string
  instanceId: string
  status: string
  restarts?: number
  lastError?: string | null
  lastErrorTime?: string | null
  lastConfig?: string | null
  iteration?: number
  payloads?: number
}

export interface NodeStatus {
  address: string
  alias: string
  version?: string
  uptime?: number
  cpu?: number
  memory?: {process?: number; available?: number; machine?: number}
  pipelines: Array<{name: string; type: string; instances: InstanceStatusRow[]}>
}

/** `r1 status` for one node: its state and its last heartbeat's figures, instance by instance. */
export async function nodeStatus(link: NodeLink): Promise<NodeStatus> {
  const state = await link.state()
  const plugins = activePlugins(state)
  const heartbeat = (state.heartbeat ?? {}) as Record<string, unknown>
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined)
  return {
    address: state.address ?? link.address,
    alias: state.alias ?? link.alias,
    version: typeof state.version === 'string' ? state.version : typeof heartbeat.VERSION === 'string' ? heartbeat.VERSION : undefined,
    uptime: num(state.uptime) ?? num(heartbeat.UPTIME),
    cpu: num(heartbeat.CPU_USED),
    memory: {process: num(heartbeat.PROCESS_MEMORY), available: num(heartbeat.AVAILABLE_MEMORY), machine: num(heartbeat.MACHINE_MEMORY)},
    pipelines: state.pipelines.map((p) => ({name: p.NAME, type: p.TYPE, instances: instanceRows(p, plugins)})),
  }
}

function activePlugins(state: NodeState): ActivePlugin[] {
  const fromHeartbeat = (state.heartbeat as {ACTIVE_PLUGINS?: ActivePlugin[]} | undefined)?.ACTIVE_PLUGINS
  const direct = state.instances as ActivePlugin[] | undefined
  return Array.isArray(direct) ? direct : Array.isArray(fromHeartbeat) ? fromHeartbeat : []
}

function instanceRows(pipeline: PipelineConfig, plugins: ActivePlugin[]): InstanceStatusRow[] {
  return pipeline.PLUGINS.flatMap((plugin) =>
    plugin.INSTANCES.map((instance) => {
      const live = plugins.find((p) => p.STREAM_ID === pipeline.NAME && p.SIGNATURE === plugin.SIGNATURE && p.INSTANCE_ID === instance.INSTANCE_ID)
      return {
        pipeline: pipeline.NAME,
        signature: plugin.SIGNATURE,
        instanceId: instance.INSTANCE_ID,
        status: live?.STATUS ?? 'unknown',
        restarts: live?.RESTARTS,
        lastError: live?.LAST_ERROR ?? null,
        lastErrorTime: live?.LAST_ERROR_TIME ?? null,
        lastConfig: live?.LAST_CONFIG_TIMESTAMP ?? null,
        iteration: live?.CURRENT_PROCESS_ITERATION,
        payloads: live?.TOTAL_PAYLOAD_COUNT,
      }
    }),
  )
}

function requirePipeline(state: NodeState, name: string, alias: string): PipelineConfig {
  const pipeline = state.pipelines.find((p) => p.NAME === name)
  if (!pipeline) {
    const names = state.pipelines.map((p) => p.NAME)
    throw new R1Error(`No pipeline "${name}" on ${alias}`, ExitCode.FAILURE, {
      code: 'PIPELINE_NOT_FOUND',
      hint: names.length > 0 ? `Pipelines there: ${names.join(', ')}` : 'That node runs no pipeline.',
    })
  }
  return pipeline
}

/** `r1 pipelines stop`: ARCHIVE_CONFIG, confirmed by PIPELINE_ARCHIVE_OK (the node keeps it for rollback). */
export async function stopPipeline(link: NodeLink, name: string, timeoutMs: number): Promise<{pipeline: string; archived: true}> {
  requirePipeline(await link.state(), name, link.alias)
  await confirmOne(link, 'ARCHIVE_CONFIG', name, {pipeline: name, pipelineCode: NotificationCode.PIPELINE_ARCHIVE_OK, instances: []}, `Stopping ${name} on ${link.alias}`, timeoutMs)
  return {pipeline: name, archived: true}
}

/** `r1 pipelines delete`: DELETE_CONFIG, confirmed by PIPELINE_DELETE_OK. */
export async function deletePipeline(link: NodeLink, name: string, timeoutMs: number): Promise<{pipeline: string; deleted: true}> {
  requirePipeline(await link.state(), name, link.alias)
  await confirmOne(link, 'DELETE_CONFIG', name, {pipeline: name, pipelineCode: NotificationCode.PIPELINE_DELETE_OK, instances: []}, `Deleting ${name} on ${link.alias}`, timeoutMs)
  return {pipeline: name, deleted: true}
}

/** `r1 rollback`: R1_ROLLBACK to the previous (or a given) archived version, confirmed by PIPELINE_OK. */
export async function rollbackPipeline(link: NodeLink, name: string, version: number | undefined, timeoutMs: number): Promise<{pipeline: string; version?: number}> {
  const payload = version === undefined ? {NAME: name} : {NAME: name, VERSION: version}
  await confirmOne(link, 'R1_ROLLBACK', payload, {pipeline: name, pipelineCode: NotificationCode.PIPELINE_OK, instances: []}, `Rolling back ${name} on ${link.alias}`, timeoutMs)
  const state = await link.state()
  const now = state.pipelines.find((p) => p.NAME === name)
  const restored = typeof now?.R1_VERSION === 'number' ? now.R1_VERSION : version
  return {pipeline: name, ...(restored === undefined ? {} : {version: restored})}
}

/** The INSTANCE_COMMAND value Ratio1 sends: the bare name, or `{COMMAND, ...params}` when there are params. */
export function instanceCommandValue(command: string, params: Record<string, unknown>): unknown {
  return Object.keys(params).length === 0 ? command : {COMMAND: command, ...params}
}

/** `r1 command`: a one-shot INSTANCE_COMMAND, confirmed by PLUGIN_INSTANCE_COMMAND_OK (its RESULT, if any, returned). */
export async function instanceCommand(
  link: NodeLink,
  args: {pipeline: string; instanceId: string; signature?: string; command: string; params: Record<string, unknown>},
  timeoutMs: number,
): Promise<{pipeline: string; signature: string; instanceId: string; command: string; result?: unknown}> {
  const pipeline = requirePipeline(await link.state(), args.pipeline, link.alias)
  const owners = pipeline.PLUGINS.filter((p) => p.INSTANCES.some((i) => i.INSTANCE_ID === args.instanceId) && (!args.signature || p.SIGNATURE === args.signature))
  if (owners.length === 0) {
    const ids = pipeline.PLUGINS.flatMap((p) => p.INSTANCES.map((i) => `${p.SIGNATURE}/${i.INSTANCE_ID}`))
    throw new R1Error(`No instance "${args.instanceId}" in pipeline ${args.pipeline} on ${link.alias}`, ExitCode.FAILURE, {code: 'INSTANCE_NOT_FOUND', hint: `Instances there: ${ids.join(', ') || 'none'}`})
  }
  if (owners.length > 1) {
    throw new R1Error(`Instance "${args.instanceId}" exists under several signatures (${owners.map((o) => o.SIGNATURE).join(', ')})`, ExitCode.USAGE, {code: 'AMBIGUOUS_INSTANCE', hint: 'Name one with --signature.'})
  }
  const signature = owners[0].SIGNATURE
  const payload = {NAME: args.pipeline, SIGNATURE: signature, INSTANCE_ID: args.instanceId, INSTANCE_CONFIG: {INSTANCE_COMMAND: instanceCommandValue(args.command, args.params)}}
  const {verdict} = await sendAndConfirm(
    link,
    [{action: 'UPDATE_PIPELINE_INSTANCE', payload, expect: {pipeline: args.pipeline, instances: [{signature, instanceId: args.instanceId}], instanceCode: NotificationCode.PLUGIN_INSTANCE_COMMAND_OK}}],
    timeoutMs,
  )
  const error = verdictError(verdict, `Command ${args.command} on ${signature}/${args.instanceId} (${link.alias})`, timeoutMs)
  if (error) throw error
  const result = verdict.state === 'confirmed' ? verdict.info?.RESULT : undefined
  return {pipeline: args.pipeline, signature, instanceId: args.instanceId, command: args.command, ...(result === undefined ? {} : {result})}
}

async function confirmOne(link: NodeLink, action: string, payload: unknown, expect: Parameters<typeof sendAndConfirm>[1][number]['expect'], what: string, timeoutMs: number): Promise<void> {
  const {verdict} = await sendAndConfirm(link, [{action, payload, expect}], timeoutMs)
  const error = verdictError(verdict, what, timeoutMs)
  if (error) throw error
}
