import {z} from 'zod'
import {InstanceStatus, NotificationCode, NotificationType} from './codes.js'
import {EventType, HeartbeatEventSchema, type NodeEvent} from './events.js'
import {TagsSchema} from './tags.js'
import {EventFilterSchema, GapEventSchema, LiveMarkerSchema, type GapEvent, type LiveMarker} from './filter.js'
import {PipelineConfigSchema} from './pipeline.js'
import {SECRET_NAME_PATTERN} from './secret-refs.js'
import {ServicePayloadSchemas, ServiceResultSchemas} from './services.js'
import {isStandardBase64} from './base64.js'

/**
 * Every frame of the r1 WebSocket protocol (subprotocol `r1.v1`), both directions.
 * PROTOCOL.md in this folder is the prose reference; test/protocol/protocol-doc.test.ts keeps
 * the two in step.
 */

export const SUBPROTOCOL = 'r1.v1'
/** ws maxPayload on both ends: a frame above it closes the connection with 1009. */
export const MAX_FRAME_BYTES = 1024 * 1024
/** Raw bytes per R1_BUNDLE_PUT chunk (base64 inflates by 4/3; the envelope must stay under MAX_FRAME_BYTES). */
export const BUNDLE_CHUNK_BYTES = 512 * 1024
/** A bundle may be at most this big (64 MiB). */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024

const PipelineName = z.string().min(1).max(200)
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256')

/** UPDATE_PIPELINE_INSTANCE: one instance's config delta; `INSTANCE_COMMAND` inside is a one-shot command. */
export const InstanceUpdateSchema = z.object({
  NAME: PipelineName,
  SIGNATURE: z.string().min(1),
  INSTANCE_ID: z.string().min(1),
  INSTANCE_CONFIG: z
    .object({
      /** One-shot command delivered to the plugin's `command()` (Ratio1: any JSON; a string or `{COMMAND, ...}`). */
      INSTANCE_COMMAND: z.unknown().optional(),
    })
    .catchall(z.unknown()),
  /** Why this change was made (`r1 deploy --message`): kept with the version it creates, not part of the config. */
  R1_MESSAGE: z.string().max(500).optional(),
})
export type InstanceUpdate = z.infer<typeof InstanceUpdateSchema>

/** PIPELINE_COMMAND: a command for the whole pipeline (its data source). */
export const PipelineCommandSchema = z
  .object({
    NAME: PipelineName,
    PIPELINE_COMMAND: z.unknown(),
  })
  .catchall(z.unknown())

/** R1_BUNDLE_PUT: one chunk of a content-addressed bundle; the node stores it once all COUNT chunks hash to HASH. */
export const BundlePutSchema = z.object({
  HASH: Sha256Hex,
  SIZE: z.number().int().nonnegative().max(MAX_BUNDLE_BYTES),
  INDEX: z.number().int().nonnegative(),
  COUNT: z.number().int().positive().max(Math.ceil(MAX_BUNDLE_BYTES / BUNDLE_CHUNK_BYTES) + 1),
  DATA: z.string().refine(isStandardBase64, 'expected standard base64'),
}).refine((chunk) => chunk.INDEX < chunk.COUNT, {message: 'INDEX must be below COUNT', path: ['INDEX']})
export type BundlePut = z.infer<typeof BundlePutSchema>

export const BundleHasSchema = z.object({HASHES: z.array(Sha256Hex).max(1000)})

/**
 * R1_STATE: the node's pipelines and instance statuses (one pipeline with NAME); with HEARTBEAT a fresh
 * heartbeat too (as FULL_HEARTBEAT), with BUNDLES which of those it lacks (as R1_BUNDLE_HAS): one round
 * trip where a status or a deploy needs both.
 */
export const StateQuerySchema = z.object({NAME: PipelineName.optional(), HEARTBEAT: z.literal(true).optional(), BUNDLES: BundleHasSchema.shape.HASHES.optional()}).nullish()

/** R1_SUBSCRIBE: one subscription per connection (a new one replaces the old). History first, then live. */
export const SubscribeSchema = z.object({
  /** Shorthand for FILTER.TYPES. */
  TYPES: z.array(z.enum(EventType)).min(1).optional(),
  FILTER: EventFilterSchema.optional(),
  /** Replay every journaled event with EE_MESSAGE_SEQ > SINCE_SEQ, then go live. */
  SINCE_SEQ: z.number().int().nonnegative().optional(),
  /** Replay the last LAST matching events, then go live (ignored when SINCE_SEQ is given). */
  LAST: z.number().int().nonnegative().max(100_000).optional(),
  /** Replay from the first event stamped at or after this ISO-8601 time, then go live (with SINCE_SEQ or LAST: the later start wins). */
  SINCE_TIME: z.string().refine((t) => !Number.isNaN(Date.parse(t)), 'expected an ISO-8601 time').optional(),
  /** The journal SINCE_SEQ counts in (from an earlier reply): another one means the node's numbering restarted. */
  JOURNAL_ID: z.string().min(1).max(100).optional(),
})
export type Subscribe = z.infer<typeof SubscribeSchema>

export const RollbackSchema = z.object({NAME: PipelineName, VERSION: z.number().int().positive().optional()})

/** R1_RESTART: restarts every instance of a running pipeline, or one (INSTANCE_ID, with SIGNATURE when the id is ambiguous). */
export const RestartSchema = z.object({NAME: PipelineName, INSTANCE_ID: z.string().min(1).max(200).optional(), SIGNATURE: z.string().min(1).max(200).optional()})
/** One secret value as the client sealed it to this node: Ratio1's EE_ENCRYPTED_DATA from SENDER (a throwaway key). */
export const SealedValueSchema = z.strictObject({
  SENDER: z.string().regex(/^(0xai_|aixp_)[A-Za-z0-9_-]{44}$/, 'expected a node address'),
  DATA: z.string().min(1).max(128 * 1024).refine(isStandardBase64, 'expected standard base64'),
})

/**
 * R1_SECRETS: the secret values a pipeline's config refers to (`{secret: NAME}`), each still sealed to
 * this node's key; the set replaces the pipeline's previous one. Accepted only inside an encrypted command.
 */
export const SecretsSchema = z.strictObject({
  NAME: PipelineName,
  SECRETS: z.record(z.string().regex(SECRET_NAME_PATTERN, 'expected an UPPER_SNAKE secret name'), SealedValueSchema).refine((s) => Object.keys(s).length <= 256, 'at most 256 secrets per pipeline'),
})
export type Secrets = z.infer<typeof SecretsSchema>

const NoPayload = z.union([z.null(), z.object({}).strict()]).optional()

/** ACTION → PAYLOAD schema. Ratio1 actions first, then r1's `R1_` extensions. */
export const PayloadSchemas = {
  UPDATE_CONFIG: PipelineConfigSchema,
  DELETE_CONFIG: PipelineName,
  ARCHIVE_CONFIG: PipelineName,
  UPDATE_PIPELINE_INSTANCE: InstanceUpdateSchema,
  BATCH_UPDATE_PIPELINE_INSTANCE: z.array(InstanceUpdateSchema).min(1).max(1000),
  PIPELINE_COMMAND: PipelineCommandSchema,
  FULL_HEARTBEAT: z.unknown(),
  R1_BUNDLE_PUT: BundlePutSchema,
  R1_BUNDLE_HAS: BundleHasSchema,
  R1_STATE: StateQuerySchema,
  R1_SUBSCRIBE: SubscribeSchema,
  R1_UNSUBSCRIBE: NoPayload,
  R1_ROLLBACK: RollbackSchema,
  R1_RESTART: RestartSchema,
  R1_SECRETS: SecretsSchema,
  R1_PING: NoPayload,
  ...ServicePayloadSchemas,
} as const
export type Action = keyof typeof PayloadSchemas
export const Actions = Object.keys(PayloadSchemas) as Action[]
/** What `action` carries as PAYLOAD: `send`, the fleet link and the node core all take this. */
export type PayloadOf<A extends Action> = z.infer<(typeof PayloadSchemas)[A]>
/** An action with its payload, the two kept together (a list of commands to send in order). */
export type CommandOf<A extends Action = Action> = {[K in A]: {action: K; payload: PayloadOf<K>}}[A]

/** Actions anyone may send (no allow-list): a heartbeat request, and a liveness probe (a broker session's keepalive). */
export const PUBLIC_ACTIONS: ReadonlySet<Action> = new Set<Action>(['FULL_HEARTBEAT', 'R1_PING'])
/** Actions a node accepts only when they arrived encrypted (EE_IS_ENCRYPTED). */
export const ENCRYPTED_ONLY_ACTIONS: ReadonlySet<Action> = new Set<Action>(['R1_SECRETS'])
/**
 * Actions that change nothing on a node: a replay of one changes nothing either, so the node answers
 * without first waiting for its hash to reach the disk (it is still refused as a replay while remembered).
 */
export const READ_ACTIONS: ReadonlySet<Action> = new Set<Action>(['FULL_HEARTBEAT', 'R1_PING', 'R1_STATE', 'R1_BUNDLE_HAS', 'R1_SUBSCRIBE', 'R1_UNSUBSCRIBE'])
/** Actions the server answers itself (the rest go to the node core). */
export const SERVER_ACTIONS: ReadonlySet<Action> = new Set<Action>(['R1_SUBSCRIBE', 'R1_UNSUBSCRIBE'])

/** `YYYY-mm-dd HH:MM:SS.ffffff` in UTC, as Ratio1 stamps commands. */
export const TIME_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/

let lastMicros = 0

/**
 * `date` (default: now) as a command TIME. Without an explicit date, successive calls are strictly
 * increasing (microseconds bumped within one millisecond), so two identical commands sent at once
 * still differ in EE_HASH and neither looks like a replay.
 */
export function formatTime(date?: Date): string {
  let micros = (date ?? new Date()).getTime() * 1000
  if (!date) {
    if (micros <= lastMicros) micros = lastMicros + 1
    lastMicros = micros
  }
  const iso = new Date(Math.floor(micros / 1000)).toISOString()
  return iso.slice(0, 10) + ' ' + iso.slice(11, 23) + String(micros % 1000).padStart(3, '0')
}

/** Milliseconds since the epoch of a TIME string (UTC), NaN when malformed. */
export function parseTime(time: string): number {
  if (!TIME_RE.test(time)) return Number.NaN
  return Date.parse(time.slice(0, 23).replace(' ', 'T') + 'Z')
}

/** What every signed command carries, in the clear or encrypted. */
const signedCommandFields = {
  EE_DEST: z.string(),
  INITIATOR_ID: z.string().max(200),
  SESSION_ID: z.string().max(200),
  TIME: z.string().regex(TIME_RE, 'expected "YYYY-mm-dd HH:MM:SS.ffffff" (UTC)'),
  SIGN_CANON_V: z.literal('v2'),
  EE_HASH: Sha256Hex,
  EE_SIGN: z.string(),
  EE_SENDER: z.string(),
}

/** The signed command envelope (client → node). Extra Ratio1 keys (EE_ID, EE_ETH_*) are allowed. */
export const CommandEnvelopeSchema = z
  .object({
    ACTION: z.enum(Actions as [Action, ...Action[]]),
    PAYLOAD: z.unknown(),
    ...signedCommandFields,
    EE_IS_ENCRYPTED: z.boolean().optional(),
  })
  .catchall(z.unknown())
export type CommandEnvelope = z.infer<typeof CommandEnvelopeSchema>

/**
 * An encrypted command envelope as signed: ACTION and PAYLOAD are inside EE_ENCRYPTED_DATA (Ratio1's
 * scheme, from EE_SENDER to EE_DEST), opened only after the signature, destination, skew, allow-list and
 * replay checks passed.
 */
export const EncryptedEnvelopeSchema = z
  .object({
    EE_IS_ENCRYPTED: z.literal(true),
    EE_ENCRYPTED_DATA: z.string().min(1),
    ...signedCommandFields,
  })
  .catchall(z.unknown())
  .refine((m) => !('ACTION' in m) && !('PAYLOAD' in m), {message: 'an encrypted command carries ACTION and PAYLOAD only inside EE_ENCRYPTED_DATA', path: ['ACTION']})
export type EncryptedEnvelope = z.infer<typeof EncryptedEnvelopeSchema>

/** A command before signing. */
export interface UnsignedCommand {
  ACTION: Action
  PAYLOAD: unknown
  EE_DEST: string
  INITIATOR_ID: string
  SESSION_ID: string
  TIME: string
}

/** Why the server rejected a frame (REASON of a COMM_RECEIVED_BAD_COMMAND notification). */
export const RejectionReason = [
  'BAD_JSON',
  'INVALID_MESSAGE',
  'UNKNOWN_ACTION',
  'INVALID_PAYLOAD',
  'BAD_SIGNATURE',
  'WRONG_DEST',
  'TIME_SKEW',
  'REPLAY',
  'NOT_ALLOWED',
  'THROTTLED',
  'BAD_ENCRYPTION',
  'ENCRYPTION_REQUIRED',
  'EXECUTION_FAILED',
  'SHUTTING_DOWN',
] as const
export type RejectionReason = (typeof RejectionReason)[number]

/** Server → client: a command was refused; nothing changed. Not sequenced, not journaled. */
export const RejectionSchema = z
  .object({
    EE_EVENT_TYPE: z.literal('NOTIFICATION'),
    EE_PAYLOAD_PATH: z.tuple([z.string(), z.null(), z.null(), z.null()]),
    EE_TIMESTAMP: z.string(),
    NOTIFICATION_TYPE: z.literal(NotificationType.EXCEPTION),
    NOTIFICATION_CODE: z.literal(NotificationCode.COMM_RECEIVED_BAD_COMMAND),
    NOTIFICATION: z.string(),
    REASON: z.enum(RejectionReason),
    /** EE_HASH of the refused frame, when it carried a well-formed one (null for unparseable frames). */
    COMMAND_HASH: z.string().nullable(),
    ACTION: z.string().nullable(),
  })
  .catchall(z.unknown())
export type Rejection = z.infer<typeof RejectionSchema>

/** Server → client: the answer to an accepted command (queries carry RESULT; others RESULT null). */
export const ReplySchema = z
  .object({
    EE_EVENT_TYPE: z.literal('R1_REPLY'),
    EE_PAYLOAD_PATH: z.tuple([z.string(), z.null(), z.null(), z.null()]),
    EE_TIMESTAMP: z.string(),
    COMMAND_HASH: z.string(),
    ACTION: z.enum(Actions as [Action, ...Action[]]),
    RESULT: z.unknown(),
  })
  .catchall(z.unknown())
export type Reply = z.infer<typeof ReplySchema>

/** Server → client, first frame of every connection: who the node is (the client checks the signer). */
export const HelloSchema = z
  .object({
    EE_EVENT_TYPE: z.literal('R1_HELLO'),
    EE_PAYLOAD_PATH: z.tuple([z.string(), z.null(), z.null(), z.null()]),
    EE_TIMESTAMP: z.string(),
    EE_ADDR: z.string(),
    EE_ALIAS: z.string(),
    LAST_SEQ: z.number().int().nonnegative(),
    VERSION: z.string().nullable(),
    PROTOCOL: z.literal(SUBPROTOCOL),
    /** What this node does beyond the protocol's base (absent on nodes from before the field). */
    FEATURES: z.array(z.string().max(100)).max(100).optional(),
  })
  .catchall(z.unknown())
export type Hello = z.infer<typeof HelloSchema>

/**
 * A hello FEATURE: the failures of a pipeline's instances that answer no command (an exception, a crash)
 * also reach, without a subscription, every session whose sender applied that pipeline's config
 * (DEPLOY_ACTIONS) in the last 10 minutes and is still on the allow-list.
 */
export const FEATURE_PIPELINE_FAILURES = 'PIPELINE_FAILURES'
/**
 * A hello FEATURE: UPDATE_CONFIG may carry bundles the config loads and the node lacks, inline, as
 * `R1_BUNDLE_DATA: {<sha256>: <base64>}` within the config's size bound: stored (checked like an
 * R1_BUNDLE_PUT) before the config is applied, never kept in it. A small bundle's deploy is then one
 * command, not an upload and a command.
 */
export const FEATURE_INLINE_BUNDLES = 'INLINE_BUNDLES'
/**
 * A hello FEATURE: a session (or connection) with a command the node is still carrying out is kept
 * however long it stays silent meanwhile: its peer is waiting for the answer, not gone. A client then
 * needs no keepalive probe to hold the session while it waits, only one now and then to show an answer
 * the broker lost (the node's next frame arrives past a gap in its numbers).
 */
export const FEATURE_KEEPS_WAITING_SESSIONS = 'KEEPS_WAITING_SESSIONS'
/**
 * The actions the node confirms with notifications naming the command (PIPELINE_OK, PLUGIN_CONFIG_OK,
 * PLUGIN_INSTANCE_COMMAND_OK, …) after its R1_REPLY: what a client waits on past the answer.
 */
export const CONFIRMED_ACTIONS: ReadonlySet<Action> = new Set<Action>(['UPDATE_CONFIG', 'DELETE_CONFIG', 'ARCHIVE_CONFIG', 'UPDATE_PIPELINE_INSTANCE', 'BATCH_UPDATE_PIPELINE_INSTANCE', 'PIPELINE_COMMAND', 'R1_ROLLBACK', 'R1_RESTART'])
/** The actions that apply a deploy's configs (instances start or restart with them): see FEATURE_PIPELINE_FAILURES. */
export const DEPLOY_ACTIONS: ReadonlySet<Action> = new Set<Action>(['UPDATE_CONFIG', 'BATCH_UPDATE_PIPELINE_INSTANCE'])

/**
 * FULL_HEARTBEAT's RESULT for a sender not on the allow-list: who the node is and how loaded, nothing
 * of what runs there (PIPELINES and ACTIVE_PLUGINS stay empty). Not sequenced, not journaled.
 */
export const PublicHeartbeatSchema = z
  .object({
    EE_EVENT_TYPE: z.literal('HEARTBEAT'),
    EE_PAYLOAD_PATH: z.tuple([z.string(), z.null(), z.null(), z.null()]),
    EE_TIMESTAMP: z.string(),
    EE_ADDR: z.string(),
    EE_ALIAS: z.string(),
    VERSION: z.string().nullable(),
    UPTIME: z.number(),
    CPU_USED: z.number(),
    LOAD_AVERAGE: z.number(),
    MACHINE_MEMORY: z.number(),
    AVAILABLE_MEMORY: z.number(),
    PIPELINES: z.tuple([]),
    ACTIVE_PLUGINS: z.tuple([]),
    R1_PUBLIC: z.literal(true),
    R1_TAGS: TagsSchema.optional(),
  })
  .strict()
export type PublicHeartbeat = z.infer<typeof PublicHeartbeatSchema>

/** RESULT of R1_SUBSCRIBE: the node's last seq when the subscription started. */
export const SubscribeResultSchema = z.object({LAST_SEQ: z.number().int().nonnegative(), FROM_SEQ: z.number().int().nonnegative(), JOURNAL_ID: z.string().optional()})
export type SubscribeResult = z.infer<typeof SubscribeResultSchema>
/** RESULT of R1_BUNDLE_HAS. */
export const BundleHasResultSchema = z.object({HAVE: z.array(z.string()), MISSING: z.array(z.string())})
export type BundleHasResult = z.infer<typeof BundleHasResultSchema>
/** RESULT of R1_BUNDLE_PUT. */
export const BundlePutResultSchema = z.object({HASH: z.string(), RECEIVED: z.number().int(), COUNT: z.number().int(), STORED: z.boolean()})
export type BundlePutResult = z.infer<typeof BundlePutResultSchema>

/** RESULT of FULL_HEARTBEAT: the node's heartbeat, or the public one when the sender is not on its allow-list. */
export const HeartbeatResultSchema = z.union([HeartbeatEventSchema, PublicHeartbeatSchema])
export type HeartbeatResult = z.infer<typeof HeartbeatResultSchema>

/** A pipeline as a node stores it (PROTOCOL.md §4.1) with the version the node gave it. */
export const StoredPipelineSchema = PipelineConfigSchema.extend({R1_VERSION: z.number().int().positive()})
export type StoredPipeline = z.infer<typeof StoredPipelineSchema>

/**
 * RESULT of R1_STATE (PROTOCOL.md §4.9): the one shape of a node's state. The server builds it
 * (`stateResult`), the session checks what it receives against it, deploy and the managing commands read it.
 */
export const StateResultSchema = z.object({
  ADDRESS: z.string(),
  ALIAS: z.string(),
  VERSION: z.string().nullable(),
  UPTIME: z.number(),
  LAST_SEQ: z.number().int().nonnegative(),
  PIPELINES: z.array(StoredPipelineSchema),
  /** Stopped pipelines, kept for rollback. */
  ARCHIVED: z.array(StoredPipelineSchema),
  INSTANCES: z.array(
    z.object({
      PIPELINE: z.string(),
      SIGNATURE: z.string(),
      INSTANCE_ID: z.string(),
      STATUS: z.enum(InstanceStatus),
      LAST_ERROR: z.string().nullable(),
      PID: z.number().int().optional(),
      COUNTERS: z.record(z.string(), z.unknown()).optional(),
    }),
  ),
  /** Kept versions per pipeline, oldest first: when, and (from nodes that record them) who, why, and what a rollback copied. */
  VERSIONS: z.record(z.string(), z.array(z.object({VERSION: z.number().int().positive(), TIME: z.string(), SENDER: z.string().optional(), MESSAGE: z.string().optional(), RESTORED_FROM: z.number().int().optional()}))),
  /** What the node found wrong at start (a corrupt file set aside, …); [] when nothing. */
  WARNINGS: z.array(z.string()),
  /** The fresh heartbeat asked for with HEARTBEAT. */
  HEARTBEAT: HeartbeatEventSchema.optional(),
  /** Those of the BUNDLES asked about that the node does not hold. */
  MISSING_BUNDLES: z.array(z.string()).optional(),
})
export type StateResult = z.infer<typeof StateResultSchema>

/** ACTION → RESULT schema of its R1_REPLY, for the query actions; every other action's RESULT is null. */
export const ResultSchemas = {
  FULL_HEARTBEAT: HeartbeatResultSchema,
  R1_BUNDLE_PUT: BundlePutResultSchema,
  R1_BUNDLE_HAS: BundleHasResultSchema,
  R1_STATE: StateResultSchema,
  R1_SUBSCRIBE: SubscribeResultSchema,
  ...ServiceResultSchemas,
} as const satisfies Partial<Record<Action, z.ZodType>>
export type QueryAction = keyof typeof ResultSchemas
/** What the node answers `action` with (R1_REPLY's RESULT): a query's answer, null for commands that change state. */
export type ResultOf<A extends Action> = A extends QueryAction ? z.infer<(typeof ResultSchemas)[A]> : null

/** Checks a reply's RESULT against its action's schema (null for non-queries); the first issue on failure. */
export function parseResult<A extends Action>(action: A, result: unknown): {ok: true; result: ResultOf<A>} | {ok: false; detail: string} {
  const schema = (ResultSchemas as Partial<Record<Action, z.ZodType>>)[action]
  if (!schema) return {ok: true, result: null as ResultOf<A>}
  const parsed = schema.safeParse(result)
  if (parsed.success) return {ok: true, result: parsed.data as ResultOf<A>}
  const issue = parsed.error.issues[0]
  return {ok: false, detail: issue ? `${['RESULT', ...issue.path.map(String)].join('.')}: ${issue.message}` : 'invalid'}
}

/** Anything that travels inside a frame: a node event, a gap, a reply or a rejection. */
export type FrameItem = NodeEvent | GapEvent | LiveMarker | Reply | Rejection | Hello

const NODE_EVENT_TYPES = new Set<string>(EventType)

/**
 * Checks one item of a verified node frame. Node events (the bulk of the traffic) get a shape check
 * of their envelope only (type, seq, path): the frame's signature already vouches for the node,
 * and full zod validation would cost more than the signature check on a busy stream.
 */
export function parseFrameItem(value: unknown): FrameItem | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  const record = value as Record<string, unknown>
  const type = record.EE_EVENT_TYPE
  if (typeof type === 'string' && NODE_EVENT_TYPES.has(type) && record.EE_MESSAGE_SEQ !== undefined) {
    const seq = record.EE_MESSAGE_SEQ
    const path = record.EE_PAYLOAD_PATH
    const ok = typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 && Array.isArray(path) && path.length === 4 && typeof record.EE_TIMESTAMP === 'string'
    return ok ? (record as FrameItem) : undefined
  }
  // R1_LIVE (end of a subscription's history) must parse: `r1 logs` without --follow stops on it (test/logs/node-side.test.ts).
  const schema = type === 'R1_REPLY' ? ReplySchema : type === 'R1_HELLO' ? HelloSchema : type === 'R1_GAP' ? GapEventSchema : type === 'R1_LIVE' ? LiveMarkerSchema : type === 'NOTIFICATION' ? RejectionSchema : undefined
  const result = schema?.safeParse(value)
  return result?.success ? (result.data as FrameItem) : undefined
}

/** Server → client batch: several items under one signature, in order. */
export const BatchFrameSchema = z.object({
  EE_EVENT_TYPE: z.literal('R1_BATCH'),
  EE_TIMESTAMP: z.string(),
  EVENTS: z.array(z.unknown()).min(1),
  SIGN_CANON_V: z.literal('v2'),
  EE_HASH: Sha256Hex,
  EE_SIGN: z.string(),
  EE_SENDER: z.string(),
})

/** True when an event is a node event with a sequence number (what subscriptions track). */
export function isSequenced(item: FrameItem): item is NodeEvent {
  return typeof (item as {EE_MESSAGE_SEQ?: unknown}).EE_MESSAGE_SEQ === 'number' && item.EE_EVENT_TYPE !== 'R1_REPLY'
}
