/**
 * The edge runtime (ARCHITECTURE.md §4), loadable without oclif: `startLocalNode` for `r1 run`, the node
 * server and tests; the bundler; the supervisor and node core classes.
 */
import {LocalNode, type LocalNodeOptions} from './node.js'

export {LocalNode} from './node.js'
export type {InstanceChange, InstanceState, LocalNodeOptions, PipelineState, PipelineVersion} from './node.js'
export {InstanceSupervisor, defaultSupervisorOptions} from './supervisor.js'
export type {InstanceCounters, SupervisorEvent, SupervisorOptions} from './supervisor.js'
export {BundleStore, bundleEntry, sha256Hex} from './bundle.js'
export type {Bundle, BundleDiagnostic} from './bundle.js'
export {BUILTIN_SIGNATURES, isBuiltin} from './builtins/index.js'
export type {CommandMeta, EventListener, NodeCore} from './contract.js'

/**
 * Starts a node in this process: restores `dataDir` state (or uses a throw-away dir), starts every
 * instance, starts the heartbeat timer. `await node.stop()` stops every instance (no orphan process).
 */
export function startLocalNode(options: LocalNodeOptions = {}): Promise<LocalNode> {
  return LocalNode.start(options)
}

export {ProjectRun, buildForRun, validateForRun} from './project-run.js'
export type {ApplyOutcome, BuiltProject, ProjectRunOptions, ValidatedProject, WatchOutcome} from './project-run.js'
export type {InstanceSpec} from './ipc.js'
