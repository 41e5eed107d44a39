import type {HeartbeatEvent, NodeEvent} from '../protocol/events.js'
import type {Tags} from '../protocol/tags.js'
import type {Action, PayloadOf} from '../protocol/messages.js'

/**
 * The seam between the node core (src/runtime/node.ts), the WebSocket server
 * (src/runtime/server.ts) and the event journal (src/runtime/journal.ts).
 * The core knows nothing of sockets or signatures; the server knows nothing of instances.
 */

/** Who sent a command that the server has already authenticated. */
export interface CommandMeta {
  /** EE_HASH of the signed command: every confirmation/rejection notification names it as COMMAND_HASH. */
  hash: string
  /** EE_SENDER address (or the local session's address for in-process calls). */
  sender: string
  initiator?: string
  sessionId?: string
  /** It arrived encrypted to the node's key (R1_SECRETS is accepted only so). */
  encrypted?: boolean
}

/**
 * A stream of node events in EE_MESSAGE_SEQ order. `json` is the event's canonical JSON in UTF-8,
 * made once per event: the journal stores it and the server signs it, so neither serializes again.
 */
export type EventListener = (event: NodeEvent, json: Buffer) => void

export interface NodeCore {
  readonly address: string
  readonly alias: string
  /** Labels its heartbeats carry as R1_TAGS (`--tag k=v`). */
  readonly tags?: Tags
  /**
   * Executes one Ratio1 action (UPDATE_CONFIG, DELETE_CONFIG, ARCHIVE_CONFIG, UPDATE_PIPELINE_INSTANCE,
   * BATCH_UPDATE_PIPELINE_INSTANCE, PIPELINE_COMMAND, FULL_HEARTBEAT, R1_ROLLBACK, R1_RESTART, …) with a payload
   * already validated against the action's schema. Confirmations and failures are emitted as
   * NOTIFICATION events carrying COMMAND_HASH = meta.hash and Ratio1's codes; a payload the core
   * cannot apply throws R1Error and changes nothing. The server answers the query actions itself.
   */
  execute<A extends Action>(action: A, payload: PayloadOf<A>, meta: CommandMeta): Promise<void>
  /** Subscribes to every event the node emits from now on (already sequenced). */
  onEvent(listener: EventListener): () => void
  /** The last sequence number assigned (0 before any event). */
  lastSeq(): number
  /** Builds (and emits) a heartbeat now. */
  heartbeat(): HeartbeatEvent
  stop(): Promise<void>
}
