import {loadavg} from 'node:os'
import {R1Error} from '../errors.js'
import type {InstanceStatus} from '../protocol/codes.js'
import type {Tags} from '../protocol/tags.js'
import type {PublicHeartbeat, StateResult} from '../protocol/messages.js'
import type {PipelineConfig} from '../protocol/pipeline.js'
import type {NodeServices} from '../services/types.js'
import type {NodeCore} from './contract.js'
import {CpuMeter, memory} from './machine.js'

/**
 * What the server asks of the core beyond NodeCore for r1's query actions (LocalNode has these);
 * without them R1_STATE / R1_BUNDLE_* are refused with EXECUTION_FAILED.
 */
export interface NodeQueries {
  state?(): Array<{
    name: string
    version: number
    archived: boolean
    config: PipelineConfig
    instances: Array<{signature: string; instanceId: string; status: InstanceStatus; lastError: string | null; pid?: number; counters?: Record<string, unknown>}>
  }>
  versions?(name: string): Array<{version: number; appliedAt: string; config?: unknown; sender?: string; message?: string; restoredFrom?: number}>
  hasBundle?(hash: string): boolean
  putBundle?(hash: string, bytes: Uint8Array): Promise<void>
  /** Problems found at start (a corrupt journal.json set aside, …): R1_STATE's WARNINGS. */
  warnings?(): string[]
  /** The node's CStore and R1FS (the service actions use them); none on a node without services. */
  readonly services?: NodeServices
}

/** R1_STATE's RESULT (PROTOCOL.md §4.9). */
export function stateResult(core: NodeCore & NodeQueries, node: {version: string | null; uptimeSeconds: number}, name?: string): StateResult {
  if (!core.state) throw new R1Error('This node core cannot report its state', 1)
  const pipelines = core.state().filter((p) => name === undefined || p.name === name)
  return {
    ADDRESS: core.address,
    ALIAS: core.alias,
    VERSION: node.version,
    UPTIME: node.uptimeSeconds,
    LAST_SEQ: core.lastSeq(),
    PIPELINES: pipelines.filter((p) => !p.archived).map((p) => ({...p.config, R1_VERSION: p.version})),
    ARCHIVED: pipelines.filter((p) => p.archived).map((p) => ({...p.config, R1_VERSION: p.version})),
    INSTANCES: pipelines.flatMap((p) =>
      p.instances.map((i) => ({
        PIPELINE: p.name,
        SIGNATURE: i.signature,
        INSTANCE_ID: i.instanceId,
        STATUS: i.status,
        LAST_ERROR: i.lastError,
        ...(i.pid ? {PID: i.pid} : {}),
        ...(i.counters ? {COUNTERS: i.counters} : {}),
      })),
    ),
    VERSIONS: Object.fromEntries(pipelines.map((p) => [p.name, (core.versions?.(p.name) ?? []).map(versionEntry)])),
    WARNINGS: core.warnings?.() ?? [],
  }
}

/** One kept version in R1_STATE's VERSIONS: when, who and why (older records have only VERSION and TIME). */
function versionEntry(v: {version: number; appliedAt: string; sender?: string; message?: string; restoredFrom?: number}): StateResult['VERSIONS'][string][number] {
  return {
    VERSION: v.version,
    TIME: v.appliedAt,
    ...(v.sender === undefined ? {} : {SENDER: v.sender}),
    ...(v.message === undefined ? {} : {MESSAGE: v.message}),
    ...(v.restoredFrom === undefined ? {} : {RESTORED_FROM: v.restoredFrom}),
  }
}

/** R1_BUNDLE_HAS's RESULT. */
export function bundleHas(core: NodeQueries, hashes: string[]): {HAVE: string[]; MISSING: string[]} {
  const has = core.hasBundle
  if (!has) throw new R1Error('This node core does not store bundles', 1)
  const unique = [...new Set(hashes)]
  const held = new Set(unique.filter((h) => has.call(core, h)))
  return {HAVE: unique.filter((h) => held.has(h)), MISSING: unique.filter((h) => !held.has(h))}
}

/**
 * The heartbeat strangers get: identity, version, uptime and load, rebuilt at most once per
 * `ttlMs` whatever the number of requests, and never emitted as an event (so never journaled).
 */
export class PublicHeartbeatCache {
  private cached?: {heartbeat: PublicHeartbeat; at: number}
  private readonly cpu = new CpuMeter()

  constructor(
    private readonly identity: {address: string; alias: string; version: string | null; startedAt: number; tags?: Tags},
    private readonly now: () => number,
    private readonly ttlMs = 1000,
  ) {}

  get(): PublicHeartbeat {
    const now = this.now()
    if (this.cached && now - this.cached.at < this.ttlMs) return this.cached.heartbeat
    const {address, alias, version, startedAt, tags} = this.identity
    const memoryNow = memory()
    const heartbeat: PublicHeartbeat = {
      EE_EVENT_TYPE: 'HEARTBEAT',
      EE_PAYLOAD_PATH: [alias, null, null, null],
      EE_TIMESTAMP: new Date(now).toISOString(),
      EE_ADDR: address,
      EE_ALIAS: alias,
      VERSION: version,
      UPTIME: (now - startedAt) / 1000,
      CPU_USED: this.cpu.percent(),
      LOAD_AVERAGE: Math.round(loadavg()[0]! * 100) / 100,
      MACHINE_MEMORY: memoryNow.machine,
      AVAILABLE_MEMORY: memoryNow.available,
      PIPELINES: [],
      ACTIVE_PLUGINS: [],
      R1_PUBLIC: true,
      ...(tags && Object.keys(tags).length > 0 ? {R1_TAGS: tags} : {}),
    }
    this.cached = {heartbeat, at: now}
    return heartbeat
  }
}
