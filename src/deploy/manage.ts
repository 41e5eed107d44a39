import {ExitCode, R1Error} from '../errors.js'
import {NotificationCode} from '../protocol/codes.js'
import type {ActivePlugin} from '../protocol/events.js'
import type {Action, HeartbeatResult, PayloadOf, StateResult, StoredPipeline} from '../protocol/messages.js'
import {type ConfirmedCommand, type ManageResult, type NodeLink, onEveryTarget, sendAndConfirm, verdictError} from '../fleet/engine.js'
import {fleetResult} from '../fleet/result.js'
import type {BrokerSelection} from './discover.js'
import type {Target} from './targets.js'

/**
 * The managing commands (`status`, `pipelines ls|start|stop|delete|history`, `command`, `restart`, `rollback`;
 * `cstore …` and `r1fs …` through `manage` too): each runs one operation per target over a session, confirms
 * it by the node's notification, and reports per target with the same exit-code rules as deploy.
 */

export interface InstanceStatusRow {
  pipeline: string
  signature: string
  instanceId: string
  status: string
  /** PID of the instance's process while it runs. */
  pid?: number
  restarts?: number
  lastError?: string | null
  lastErrorTime?: string | null
  lastConfig?: string | null
  iteration?: number
  payloads?: number
  /** The last answer of the plugin's `health` hook (plugins that have one). */
  health?: {status: string; reason?: string}
}

export interface NodeStatus {
  online: true
  /** Set when this key is not on the node's allow-list (what to ask for): the figures come from its heartbeat only. */
  restricted?: string
  /** The node answered with its public heartbeat (R1_PUBLIC), which shows no pipelines: `pipelines` is empty for that reason, not because none run. */
  pipelinesHidden?: true
  /** What the node found wrong at start (a corrupt journal.json set aside, …); empty when nothing or when restricted. */
  warnings: string[]
  address: string
  alias: string
  version?: string
  uptime?: number
  cpu?: number
  memory?: {process?: number; available?: number; machine?: number}
  pipelines: Array<{name: string; type: string; version?: number; kept?: number[]; stopped: boolean; instances: InstanceStatusRow[]}>
}

/** `r1 status` for one node: its state and a fresh heartbeat's figures, instance by instance. */
export async function nodeStatus(link: NodeLink): Promise<NodeStatus> {
  // one round trip: the state with a fresh heartbeat
  const state = await link.state({heartbeat: true}).catch((error: unknown) => error as Error)
  if (state instanceof Error) {
    // Anyone may ask for a heartbeat: a key the node does not allow still sees its figures (and, from a node
    // that sends strangers its full heartbeat, what runs there).
    if (!(state instanceof R1Error) || state.code !== 'REJECTED_NOT_ALLOWED') throw state
    const heartbeat = await link.heartbeat()
    const restricted = `your key is not on this node's allow-list (r1 node allow ${link.sender ?? '<your address>'})`
    if ((heartbeat as {R1_PUBLIC?: unknown}).R1_PUBLIC === true) return {...figures(link, heartbeat), restricted, pipelinesHidden: true, warnings: [], pipelines: []}
    return {...figures(link, heartbeat), restricted, warnings: [], pipelines: heartbeatPipelines(heartbeat)}
  }
  const s = state
  const heartbeat = s.HEARTBEAT ?? (await link.heartbeat()) // a node from before HEARTBEAT in R1_STATE
  return {
    ...figures(link, heartbeat),
    address: s.ADDRESS,
    alias: s.ALIAS,
    version: s.VERSION ?? heartbeat.VERSION ?? undefined,
    uptime: s.UPTIME,
    warnings: s.WARNINGS ?? [],
    pipelines: [
      ...s.PIPELINES.map((p) => ({name: p.NAME, type: p.TYPE, version: p.R1_VERSION, kept: kept(s, p.NAME), stopped: false, instances: instanceRows(p, heartbeat.ACTIVE_PLUGINS, s)})),
      ...s.ARCHIVED.map((p) => ({name: p.NAME, type: p.TYPE, version: p.R1_VERSION, kept: kept(s, p.NAME), stopped: true, instances: []})),
    ],
  }
}

function figures(link: NodeLink, heartbeat: HeartbeatResult): Omit<NodeStatus, 'pipelines' | 'warnings'> {
  return {
    online: true,
    address: heartbeat.EE_ADDR ?? link.address,
    alias: heartbeat.EE_ALIAS ?? link.alias,
    version: heartbeat.VERSION ?? undefined,
    uptime: heartbeat.UPTIME,
    cpu: heartbeat.CPU_USED,
    // the public heartbeat (a key the node does not allow) has no process memory
    memory: {process: 'PROCESS_MEMORY' in heartbeat ? heartbeat.PROCESS_MEMORY : undefined, available: heartbeat.AVAILABLE_MEMORY, machine: heartbeat.MACHINE_MEMORY},
  }
}

/** Pipelines as a heartbeat shows them (no types or versions: those need R1_STATE). */
function heartbeatPipelines(heartbeat: HeartbeatResult): NodeStatus['pipelines'] {
  const plugins: ActivePlugin[] = heartbeat.ACTIVE_PLUGINS
  return heartbeat.PIPELINES.map((name: string) => ({
    name,
    type: '?',
    stopped: false,
    instances: plugins.filter((p) => p.STREAM_ID === name).map((p) => ({
      pipeline: name,
      signature: p.SIGNATURE,
      instanceId: p.INSTANCE_ID,
      status: p.STATUS,
      restarts: p.RESTARTS,
      lastError: p.LAST_ERROR,
      lastErrorTime: p.LAST_ERROR_TIME,
      lastConfig: p.LAST_CONFIG_TIMESTAMP,
      iteration: p.CURRENT_PROCESS_ITERATION,
      payloads: p.TOTAL_PAYLOAD_COUNT,
    })),
  }))
}

/** Versions the node keeps for `rollback --to`, oldest first. */
function kept(state: StateResult, name: string): number[] {
  return (state.VERSIONS[name] ?? []).map((v) => v.VERSION)
}

function instanceRows(pipeline: StoredPipeline, plugins: ActivePlugin[], state: StateResult): InstanceStatusRow[] {
  return pipeline.PLUGINS.flatMap((plugin) =>
    plugin.INSTANCES.map((instance) => {
      const live = plugins.find((p) => p.STREAM_ID === pipeline.NAME && p.SIGNATURE === plugin.SIGNATURE && p.INSTANCE_ID === instance.INSTANCE_ID)
      const known = state.INSTANCES.find((i) => i.PIPELINE === pipeline.NAME && i.SIGNATURE === plugin.SIGNATURE && i.INSTANCE_ID === instance.INSTANCE_ID)
      return {
        pipeline: pipeline.NAME,
        signature: plugin.SIGNATURE,
        instanceId: instance.INSTANCE_ID,
        status: live?.STATUS ?? known?.STATUS ?? 'unknown',
        ...(known?.PID ? {pid: known.PID} : {}),
        restarts: live?.RESTARTS,
        lastError: live?.LAST_ERROR ?? known?.LAST_ERROR ?? null,
        lastErrorTime: live?.LAST_ERROR_TIME ?? null,
        lastConfig: live?.LAST_CONFIG_TIMESTAMP ?? null,
        iteration: live?.CURRENT_PROCESS_ITERATION,
        payloads: live?.TOTAL_PAYLOAD_COUNT,
        ...(live?.HEALTH ? {health: {status: live.HEALTH.STATUS, ...(live.HEALTH.REASON === undefined ? {} : {reason: live.HEALTH.REASON})}} : {}),
      }
    }),
  )
}

function requirePipeline(state: StateResult, name: string, alias: string): StoredPipeline {
  const pipeline = state.PIPELINES.find((p) => p.NAME === name)
  if (!pipeline) {
    const names = state.PIPELINES.map((p) => p.NAME)
    throw new R1Error(`No pipeline "${name}" on ${alias}`, ExitCode.FAILURE, {
      code: 'PIPELINE_NOT_FOUND',
      hint: names.length > 0 ? `Pipelines there: ${names.join(', ')}` : 'That node runs no pipeline.',
    })
  }
  return pipeline
}

/**
 * `r1 status` on every target. A node that does not allow this key (or no longer does) still shows
 * its heartbeat figures, but the target counts as rejected (exit 4).
 */
export async function statusOfNodes(flags: ManageFlags, signal: AbortSignal | undefined) {
  const result = await manage(flags, signal, (link) => nodeStatus(link), {readOnly: true})
  const targets = result.targets.map((t): ManageResult<NodeStatus> =>
    t.result?.restricted
      ? {...t, ok: false, status: 'rejected', error: t.result.restricted, hint: "Ask the node's operator to run that `r1 node allow …` on the node; until then it shows you only its public heartbeat."}
      : t,
  )
  return fleetResult(targets)
}

/** `r1 pipelines stop`: ARCHIVE_CONFIG, confirmed by PIPELINE_ARCHIVE_OK (the node keeps it for rollback). */
export async function stopPipeline(link: NodeLink, name: string, timeoutMs: number): Promise<{pipeline: string; archived: true; alreadyStopped?: true}> {
  const state = await link.state()
  // stopping what is already stopped is done, not an error (scripts can run it twice)
  if (!state.PIPELINES.some((p) => p.NAME === name) && state.ARCHIVED.some((p) => p.NAME === name)) return {pipeline: name, archived: true, alreadyStopped: true}
  requirePipeline(state, name, link.alias)
  await confirmOne(link, 'ARCHIVE_CONFIG', name, {pipeline: name, pipelineCode: NotificationCode.PIPELINE_ARCHIVE_OK, instances: []}, `Stopping ${name} on ${link.alias}`, timeoutMs)
  return {pipeline: name, archived: true}
}

/**
 * `r1 pipelines start`: resumes a stopped (archived) pipeline with R1_ROLLBACK without VERSION (the node
 * restores the archived version as a new one), confirmed by PIPELINE_OK. A running pipeline is left as is.
 */
export async function startPipeline(link: NodeLink, name: string, timeoutMs: number): Promise<{pipeline: string; started: true; version?: number; alreadyRunning?: true}> {
  const state = await link.state()
  const running = state.PIPELINES.find((p) => p.NAME === name)
  // starting what runs is done, not an error (scripts can run it twice)
  if (running) return {pipeline: name, started: true, version: running.R1_VERSION, alreadyRunning: true}
  if (!state.ARCHIVED.some((p) => p.NAME === name)) requirePipeline(state, name, link.alias)
  const {version} = await rollbackPipeline(link, name, undefined, timeoutMs, `Starting ${name} on ${link.alias}`)
  return {pipeline: name, started: true, ...(version === undefined ? {} : {version})}
}

/** `r1 restart`: R1_RESTART of every instance of a running pipeline (or one), confirmed by PIPELINE_OK listing them. */
export async function restartInstances(link: NodeLink, args: {pipeline: string; instanceId?: string; signature?: string}, timeoutMs: number): Promise<{pipeline: string; restarted: string[]}> {
  const state = await link.state()
  if (!state.PIPELINES.some((p) => p.NAME === args.pipeline) && state.ARCHIVED.some((p) => p.NAME === args.pipeline)) {
    throw new R1Error(`Pipeline ${args.pipeline} is stopped on ${link.alias}: nothing to restart`, ExitCode.FAILURE, {code: 'PIPELINE_STOPPED', hint: `Start it instead: r1 pipelines start ${args.pipeline}`})
  }
  const pipeline = requirePipeline(state, args.pipeline, link.alias)
  const signature = args.instanceId === undefined ? args.signature : ownerOf(pipeline, args.instanceId, args.signature, link.alias)
  const payload = {NAME: args.pipeline, ...(args.instanceId === undefined ? {} : {INSTANCE_ID: args.instanceId}), ...(signature === undefined ? {} : {SIGNATURE: signature})}
  const {verdict} = await sendAndConfirm(link, [{action: 'R1_RESTART', payload, expect: {pipeline: args.pipeline, pipelineCode: NotificationCode.PIPELINE_OK, instances: []}}], timeoutMs)
  const error = verdictError(verdict, `Restarting ${args.pipeline} on ${link.alias}`, timeoutMs)
  if (error) throw error
  const restarted = verdict.state === 'confirmed' ? verdict.info?.RESTARTED : undefined
  return {pipeline: args.pipeline, restarted: Array.isArray(restarted) ? restarted.map(String) : []}
}

export interface HistoryEntry {
  version: number
  time?: string
  /** Address whose command made this version (unknown for versions stored by older nodes). */
  sender?: string
  message?: string
  /** The version a rollback (or `pipelines start`) copied. */
  restoredFrom?: number
  /** The version the node runs (or keeps, when the pipeline is stopped). */
  current: boolean
}

/** `r1 pipelines history`: the versions a node keeps of a pipeline, oldest first, with who made each, when and why. */
export async function pipelineHistory(link: NodeLink, name: string): Promise<{pipeline: string; stopped: boolean; versions: HistoryEntry[]}> {
  const state = await link.state()
  const archived = state.ARCHIVED.find((p) => p.NAME === name)
  const pipeline = archived ?? requirePipeline(state, name, link.alias)
  const versions = (state.VERSIONS[name] ?? []).map(
    (v): HistoryEntry => ({
      version: v.VERSION,
      time: v.TIME,
      ...(v.SENDER === undefined ? {} : {sender: v.SENDER}),
      ...(v.MESSAGE === undefined ? {} : {message: v.MESSAGE}),
      ...(v.RESTORED_FROM === undefined ? {} : {restoredFrom: v.RESTORED_FROM}),
      current: v.VERSION === pipeline.R1_VERSION,
    }),
  )
  return {pipeline: name, stopped: archived !== undefined && !state.PIPELINES.some((p) => p.NAME === name), versions}
}

/**
 * `r1 pipelines delete` may go ahead: with --yes; on a terminal, once the user says yes; without one,
 * a usage error naming --yes (a delete drops the kept versions too, so it is never implied).
 */
export async function confirmDelete(name: string, options: {yes?: boolean; json?: boolean}): Promise<void> {
  if (options.yes) return
  const {canPrompt} = await import('../ui/prompts.js')
  if (!canPrompt(options.json)) {
    throw new R1Error(`Deleting pipeline ${name} needs --yes (no prompt without a terminal).`, ExitCode.USAGE, {
      code: 'MISSING_FLAG',
      hint: `Run again with --yes: r1 pipelines delete ${name} --yes (\`r1 pipelines stop ${name}\` keeps it for rollback instead).`,
    })
  }
  const {terminalAsker} = await import('../scaffold/prompts.js')
  const ok = await terminalAsker().confirm(`Delete pipeline ${name} and every version the nodes keep of it?`, false)
  if (!ok) throw new R1Error(`Not deleted: ${name}`, ExitCode.FAILURE, {code: 'DECLINED'})
}

/** `r1 pipelines delete`: DELETE_CONFIG, confirmed by PIPELINE_DELETE_OK. */
export async function deletePipeline(link: NodeLink, name: string, timeoutMs: number): Promise<{pipeline: string; deleted: true}> {
  requirePipeline(await link.state(), name, link.alias)
  await confirmOne(link, 'DELETE_CONFIG', name, {pipeline: name, pipelineCode: NotificationCode.PIPELINE_DELETE_OK, instances: []}, `Deleting ${name} on ${link.alias}`, timeoutMs)
  return {pipeline: name, deleted: true}
}

/** `r1 rollback`: R1_ROLLBACK to the previous (or a given) kept version, confirmed by PIPELINE_OK naming the new version. */
export async function rollbackPipeline(link: NodeLink, name: string, version: number | undefined, timeoutMs: number, what = `Rolling back ${name} on ${link.alias}`): Promise<{pipeline: string; restored?: number; version?: number}> {
  const payload = version === undefined ? {NAME: name} : {NAME: name, VERSION: version}
  const {verdict} = await sendAndConfirm(link, [{action: 'R1_ROLLBACK', payload, expect: {pipeline: name, pipelineCode: NotificationCode.PIPELINE_OK, instances: []}}], timeoutMs)
  const error = verdictError(verdict, what, timeoutMs)
  if (error) throw error
  const info = verdict.state === 'confirmed' ? (verdict.info ?? {}) : {}
  return {
    pipeline: name,
    ...(typeof info.ROLLBACK_TO === 'number' ? {restored: info.ROLLBACK_TO} : {}),
    ...(typeof info.VERSION === 'number' ? {version: info.VERSION} : {}),
  }
}

/** The INSTANCE_COMMAND value: the bare name (as Ratio1 sends it), or `{COMMAND, PARAMS}` when there are params. */
export function instanceCommandValue(command: string, params: Record<string, unknown>): unknown {
  return Object.keys(params).length === 0 ? command : {COMMAND: command, PARAMS: params}
}

/** `r1 command`: a one-shot INSTANCE_COMMAND, confirmed by PLUGIN_INSTANCE_COMMAND_OK (its RESULT, if any, returned). */
export async function instanceCommand(
  link: NodeLink,
  args: {pipeline: string; instanceId: string; signature?: string; command: string; params: Record<string, unknown>},
  timeoutMs: number,
): Promise<{pipeline: string; signature: string; instanceId: string; command: string; result?: unknown}> {
  const pipeline = requirePipeline(await link.state(), args.pipeline, link.alias)
  const signature = ownerOf(pipeline, args.instanceId, args.signature, link.alias)
  const payload = {NAME: args.pipeline, SIGNATURE: signature, INSTANCE_ID: args.instanceId, INSTANCE_CONFIG: {INSTANCE_COMMAND: instanceCommandValue(args.command, args.params)}}
  const {verdict} = await sendAndConfirm(
    link,
    [{action: 'UPDATE_PIPELINE_INSTANCE', payload, expect: {pipeline: args.pipeline, instances: [{signature, instanceId: args.instanceId}], instanceCode: NotificationCode.PLUGIN_INSTANCE_COMMAND_OK}}],
    timeoutMs,
  )
  const error = verdictError(verdict, `Command ${args.command} on ${link.alias}`, timeoutMs)
  if (error) throw error
  const result = verdict.state === 'confirmed' ? verdict.info?.RESULT : undefined
  return {pipeline: args.pipeline, signature, instanceId: args.instanceId, command: args.command, ...(result === undefined ? {} : {result})}
}

/** The SIGNATURE of instance `instanceId` of `pipeline` (exit 1 when there is none, 2 when several plugins use the id). */
function ownerOf(pipeline: StoredPipeline, instanceId: string, signature: string | undefined, alias: string): string {
  const owners = pipeline.PLUGINS.filter((p) => p.INSTANCES.some((i) => i.INSTANCE_ID === instanceId) && (!signature || p.SIGNATURE === signature))
  if (owners.length === 0) {
    const ids = pipeline.PLUGINS.flatMap((p) => p.INSTANCES.map((i) => `${p.SIGNATURE}/${i.INSTANCE_ID}`))
    throw new R1Error(`No instance "${instanceId}" in pipeline ${pipeline.NAME} on ${alias}`, ExitCode.FAILURE, {code: 'INSTANCE_NOT_FOUND', hint: `Instances there: ${ids.join(', ') || 'none'}`})
  }
  if (owners.length > 1) {
    throw new R1Error(`Instance "${instanceId}" exists under several signatures (${owners.map((o) => o.SIGNATURE).join(', ')})`, ExitCode.USAGE, {code: 'AMBIGUOUS_INSTANCE', hint: 'Name one with --signature.'})
  }
  return owners[0].SIGNATURE
}

async function confirmOne<A extends Action>(link: NodeLink, action: A, payload: PayloadOf<A>, expect: Parameters<typeof sendAndConfirm>[1][number]['expect'], what: string, timeoutMs: number): Promise<void> {
  const {verdict} = await sendAndConfirm(link, [{action, payload, expect} as ConfirmedCommand], timeoutMs)
  const error = verdictError(verdict, what, timeoutMs)
  if (error) throw error
}

/** The target and session flags every managing command takes. */
export interface ManageFlags extends BrokerSelection {
  dir: string
  'max-concurrent'?: number
  'connect-timeout': number
  'wait-timeout': number
  ca?: string
}

/** Resolves the targets, loads the session identity, and runs `operation` on every target. */
export async function manage<T>(
  flags: ManageFlags,
  signal: AbortSignal | undefined,
  operation: (link: NodeLink, target: Target, timeoutMs: number) => Promise<T>,
  options: {readOnly?: boolean; oneTarget?: string} = {},
) {
  const [{selectTargets}, {connector}] = await Promise.all([import('./project.js'), import('./link.js')])
  const targets = await selectTargets(flags.dir, {...flags, everyTargetByDefault: options.readOnly}, {connectTimeoutMs: flags['connect-timeout'] * 1000, signal})
  if (options.oneTarget && targets.length > 1) {
    throw new R1Error(`${options.oneTarget} works on one target at a time; the flags select ${targets.length} (${targets.map((t) => t.name).join(', ')}).`, ExitCode.USAGE, {code: 'ONE_TARGET', hint: 'Name one with --target <name> (or --node <url> --address <0xai_…>).'})
  }
  const connect = await connector({connectTimeoutMs: flags['connect-timeout'] * 1000, caFile: flags.ca})
  const timeoutMs = flags['wait-timeout'] * 1000
  return onEveryTarget({targets, connect, maxConcurrent: flags['max-concurrent'], signal}, (link, target) => operation(link, target, timeoutMs))
}

/** `--param KEY=VALUE` values: JSON where it parses (numbers, booleans, objects), else the string. Keys in UPPERCASE. */
export function parseParams(pairs: string[]): Record<string, unknown> {
  const params: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new R1Error(`--param "${pair}" is not KEY=VALUE`, ExitCode.USAGE, {code: 'BAD_PARAM', hint: 'e.g. --param delay=5 --param mode=fast'})
    const key = pair.slice(0, eq).trim().toUpperCase()
    const raw = pair.slice(eq + 1)
    let value: unknown = raw
    try {
      value = JSON.parse(raw)
    } catch {
      // not JSON: keep the text
    }
    params[key] = value
  }
  return params
}
