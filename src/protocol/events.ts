import {z} from 'zod'
import {TagsSchema} from './tags.js'
import {HealthStatus, InstanceStatus, NotificationCode, NotificationType} from './codes.js'

/**
 * Node → client events (ARCHITECTURE.md §5). The runtime creates them, the journal stores them,
 * the server signs frames of them, `r1 run` and `r1 logs` render them.
 */
export const EventType = ['PAYLOAD', 'NOTIFICATION', 'HEARTBEAT', 'LOG'] as const
export type EventType = (typeof EventType)[number]

/** `[node alias, pipeline, signature, instance]`; null where it does not apply (a node-level notification). */
export const PayloadPathSchema = z.tuple([z.string(), z.string().nullable(), z.string().nullable(), z.string().nullable()])
export type PayloadPath = z.infer<typeof PayloadPathSchema>

const envelope = {
  EE_PAYLOAD_PATH: PayloadPathSchema,
  EE_MESSAGE_SEQ: z.number().int().nonnegative(),
  /** ISO-8601 with milliseconds. */
  EE_TIMESTAMP: z.string(),
  EE_ID: z.string().optional(),
}

export const PayloadEventSchema = z
  .object({EE_EVENT_TYPE: z.literal('PAYLOAD'), ...envelope})
  .catchall(z.unknown())

export const NotificationEventSchema = z
  .object({
    EE_EVENT_TYPE: z.literal('NOTIFICATION'),
    ...envelope,
    NOTIFICATION_TYPE: z.string(),
    NOTIFICATION_CODE: z.number().int().optional(),
    NOTIFICATION: z.string(),
    /** EE_HASH of the command this notification confirms or rejects, when it answers one. */
    COMMAND_HASH: z.string().optional(),
    INFO: z.unknown().optional(),
  })
  .catchall(z.unknown())

/**
 * A notification that reports a failure (what ends a wait for confirmations): a negative code, or an
 * EXCEPTION. A dropped log line (PLUGIN_LOG_DROPPED) is not one: the instance is fine, its output was cut.
 */
export function isFailureNotification(n: NotificationEvent): boolean {
  const code = n.NOTIFICATION_CODE
  return (code !== undefined && code < 0 && code !== NotificationCode.PLUGIN_LOG_DROPPED) || n.NOTIFICATION_TYPE === NotificationType.EXCEPTION
}

/** Levels of a plugin's log lines (ctx.log.*, console.*, a process app's stdout/stderr), lowest first. */
export const LogLevel = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = (typeof LogLevel)[number]

/** One line a plugin logged, journaled like every event (r1's addition to the Ratio1 event types). */
export const LogEventSchema = z
  .object({
    EE_EVENT_TYPE: z.literal('LOG'),
    ...envelope,
    LEVEL: z.enum(LogLevel),
    MESSAGE: z.string(),
  })
  .catchall(z.unknown())

/** One entry of a heartbeat's ACTIVE_PLUGINS (Ratio1 names, plus r1's status fields). */
export const ActivePluginSchema = z
  .object({
    STREAM_ID: z.string(),
    SIGNATURE: z.string(),
    INSTANCE_ID: z.string(),
    STATUS: z.enum(InstanceStatus),
    FREQUENCY: z.number().nullable().optional(),
    CURRENT_PROCESS_ITERATION: z.number().int(),
    TOTAL_PAYLOAD_COUNT: z.number().int(),
    RESTARTS: z.number().int(),
    INIT_TIMESTAMP: z.string().nullable(),
    EXEC_TIMESTAMP: z.string().nullable(),
    LAST_PAYLOAD_TIME: z.string().nullable(),
    LAST_CONFIG_TIMESTAMP: z.string().nullable(),
    LAST_ERROR_TIME: z.string().nullable(),
    LAST_ERROR: z.string().nullable(),
    /** The last answer of the plugin's `health` hook (absent when it has none). */
    HEALTH: z.object({STATUS: z.enum(HealthStatus), REASON: z.string().optional()}).optional(),
  })
  .catchall(z.unknown())
export type ActivePlugin = z.infer<typeof ActivePluginSchema>


export const HeartbeatEventSchema = z
  .object({
    EE_EVENT_TYPE: z.literal('HEARTBEAT'),
    ...envelope,
    EE_ADDR: z.string(),
    EE_ALIAS: z.string(),
    VERSION: z.string(),
    UPTIME: z.number(),
    CPU_USED: z.number(),
    MACHINE_MEMORY: z.number(),
    AVAILABLE_MEMORY: z.number(),
    PROCESS_MEMORY: z.number(),
    TOTAL_DISK: z.number(),
    AVAILABLE_DISK: z.number(),
    PIPELINES: z.array(z.string()),
    ACTIVE_PLUGINS: z.array(ActivePluginSchema),
    R1_TAGS: TagsSchema.optional(),
    /** Seconds between this node's heartbeats (absent when it sends them only on request): a watcher counts missing ones. */
    R1_HEARTBEAT_INTERVAL: z.number().positive().optional(),
  })
  .catchall(z.unknown())

export const NodeEventSchema = z.discriminatedUnion('EE_EVENT_TYPE', [PayloadEventSchema, NotificationEventSchema, HeartbeatEventSchema, LogEventSchema])
export type PayloadEvent = z.infer<typeof PayloadEventSchema>
export type NotificationEvent = z.infer<typeof NotificationEventSchema>
export type HeartbeatEvent = z.infer<typeof HeartbeatEventSchema>
export type LogEvent = z.infer<typeof LogEventSchema>
export type NodeEvent = z.infer<typeof NodeEventSchema>
