import {z} from 'zod'
import {NotificationType} from './codes.js'
import {EventType, LogLevel} from './events.js'

/**
 * Subscription filters (R1_SUBSCRIBE `FILTER`), applied on the node so filtered-out events never
 * cross the wire, and the typed gap event a reader receives instead of a silent hole.
 * Wire keys are UPPERCASE, as everywhere on the Ratio1 wire.
 */

/** Severity of an event, lowest first; a `LEVEL` filter keeps events at or above it. */
export const EventLevel = LogLevel
export type EventLevel = (typeof EventLevel)[number]

export const EventFilterSchema = z.strictObject({
  /** Event types to keep (all when absent). */
  TYPES: z.array(z.enum(EventType)).min(1).optional(),
  /** Pipeline NAME (EE_PAYLOAD_PATH[1]), exact. */
  PIPELINE: z.string().min(1).optional(),
  /** INSTANCE_ID (EE_PAYLOAD_PATH[3]), exact. */
  INSTANCE: z.string().min(1).optional(),
  /** SIGNATURE (EE_PAYLOAD_PATH[2]), case-insensitive (signatures are UPPER_SNAKE). */
  SIGNATURE: z.string().min(1).optional(),
  /** NOTIFICATION_TYPE of notifications (`NORMAL`, `ABNORMAL FUNCTIONING`, `EXCEPTION`), case-insensitive; other event types never match. */
  NOTIFICATION_TYPE: z.string().min(1).optional(),
  /** Minimum level (see `eventLevel`). */
  LEVEL: z.enum(EventLevel).optional(),
  /** Case-insensitive substring of the event's JSON text. */
  SEARCH: z.string().min(1).max(1024).optional(),
})
export type EventFilter = z.infer<typeof EventFilterSchema>

/**
 * What a reader gets in place of events it can never have: `FROM_SEQ..TO_SEQ` (inclusive) were
 * dropped by retention (`REASON: 'retention'`), or are missing inside the retained range (`REASON: 'missing'`:
 * a corrupt record skipped on read, or a write that failed, e.g. on a full disk).
 * It carries no EE_MESSAGE_SEQ of its own; the next event's seq is TO_SEQ + 1 or later.
 */
export const GapEventSchema = z.object({
  EE_EVENT_TYPE: z.literal('R1_GAP'),
  FROM_SEQ: z.number().int().nonnegative(),
  TO_SEQ: z.number().int().nonnegative(),
  /**
   * `reset`: the node's journal does not hold the seqs the reader resumed from (another journal, or this
   * one gone back): FROM_SEQ is the first seq the reader did not get, the stream goes on after TO_SEQ of
   * the node's journal (0: from its start), and seqs above TO_SEQ now name other events.
   */
  REASON: z.enum(['retention', 'missing', 'reset']),
  EE_TIMESTAMP: z.string(),
  /** (`reset`) the id of the journal the stream continues in. */
  JOURNAL_ID: z.string().optional(),
  /** `[node alias, null, null, null]` when the sender knows its alias (the server adds it). */
  EE_PAYLOAD_PATH: z.tuple([z.string(), z.null(), z.null(), z.null()]).optional(),
})
export type GapEvent = z.infer<typeof GapEventSchema>

/**
 * Node → subscriber, once the history replay of a subscription is over (and right after the reply for
 * a live-only one): every event up to POSITION has been examined and the matching ones sent; what
 * follows is live. Not sequenced, not journaled. A non-following reader (`r1 logs` without --follow)
 * stops here.
 */
export const LiveMarkerSchema = z.object({
  EE_EVENT_TYPE: z.literal('R1_LIVE'),
  EE_PAYLOAD_PATH: z.tuple([z.string(), z.null(), z.null(), z.null()]),
  EE_TIMESTAMP: z.string(),
  POSITION: z.number().int().nonnegative(),
})
export type LiveMarker = z.infer<typeof LiveMarkerSchema>

export function liveMarker(alias: string, position: number): LiveMarker {
  return {EE_EVENT_TYPE: 'R1_LIVE', EE_PAYLOAD_PATH: [alias, null, null, null], EE_TIMESTAMP: new Date().toISOString(), POSITION: position}
}

export function gapEvent(fromSeq: number, toSeq: number, reason: GapEvent['REASON']): GapEvent {
  return {EE_EVENT_TYPE: 'R1_GAP', FROM_SEQ: fromSeq, TO_SEQ: toSeq, REASON: reason, EE_TIMESTAMP: new Date().toISOString()}
}

/** The minimum shape a filter reads; NodeEvent and GapEvent both fit. */
export interface FilterableEvent {
  EE_EVENT_TYPE: string
  EE_PAYLOAD_PATH?: readonly (string | null)[]
  NOTIFICATION_TYPE?: unknown
  NOTIFICATION_CODE?: unknown
  [key: string]: unknown
}

const LEVEL_RANK: Record<EventLevel, number> = {debug: 0, info: 1, warn: 2, error: 3}

/**
 * Level of an event: a LOG line has its own LEVEL; an EXCEPTION notification is `error`; an ABNORMAL
 * FUNCTIONING one, or any notification with a negative (failure) code, is `warn`; everything else
 * (payloads, heartbeats, normal notifications) is `info`. Gaps are `warn`.
 */
export function eventLevel(event: FilterableEvent): EventLevel {
  if (event.EE_EVENT_TYPE === 'R1_GAP') return 'warn'
  if (event.EE_EVENT_TYPE === 'LOG') return typeof event.LEVEL === 'string' && event.LEVEL in LEVEL_RANK ? (event.LEVEL as EventLevel) : 'info'
  if (event.EE_EVENT_TYPE !== 'NOTIFICATION') return 'info'
  const type = typeof event.NOTIFICATION_TYPE === 'string' ? event.NOTIFICATION_TYPE.toUpperCase() : ''
  if (type === NotificationType.EXCEPTION) return 'error'
  if (type === NotificationType.ABNORMAL) return 'warn'
  if (typeof event.NOTIFICATION_CODE === 'number' && event.NOTIFICATION_CODE < 0) return 'warn'
  return 'info'
}

export type EventMatcher = (event: FilterableEvent) => boolean

/** What compileFilter returns for an empty filter (callers may compare against it to skip work). */
export const MATCH_ALL: EventMatcher = () => true

/**
 * Compiles a filter once into a predicate (the node runs it on every event of every subscription).
 * An empty or absent filter matches everything; gap events always match (a reader must learn of them).
 */
export function compileFilter(filter: EventFilter | undefined): EventMatcher {
  if (!filter) return MATCH_ALL
  const checks: EventMatcher[] = []
  if (filter.TYPES) {
    const types = new Set<string>(filter.TYPES)
    checks.push((e) => types.has(e.EE_EVENT_TYPE))
  }
  if (filter.PIPELINE !== undefined) {
    const pipeline = filter.PIPELINE
    checks.push((e) => e.EE_PAYLOAD_PATH?.[1] === pipeline)
  }
  if (filter.SIGNATURE !== undefined) {
    const signature = filter.SIGNATURE.toUpperCase()
    checks.push((e) => {
      const value = e.EE_PAYLOAD_PATH?.[2]
      return typeof value === 'string' && value.toUpperCase() === signature
    })
  }
  if (filter.INSTANCE !== undefined) {
    const instance = filter.INSTANCE
    checks.push((e) => e.EE_PAYLOAD_PATH?.[3] === instance)
  }
  if (filter.NOTIFICATION_TYPE !== undefined) {
    const type = filter.NOTIFICATION_TYPE.toUpperCase()
    checks.push((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && typeof e.NOTIFICATION_TYPE === 'string' && e.NOTIFICATION_TYPE.toUpperCase() === type)
  }
  if (filter.LEVEL !== undefined && filter.LEVEL !== 'debug') {
    const min = LEVEL_RANK[filter.LEVEL]
    checks.push((e) => LEVEL_RANK[eventLevel(e)] >= min)
  }
  if (filter.SEARCH !== undefined) {
    const needle = filter.SEARCH.toLowerCase()
    checks.push((e) => JSON.stringify(e).toLowerCase().includes(needle))
  }
  if (checks.length === 0) return MATCH_ALL
  return (event) => {
    if (event.EE_EVENT_TYPE === 'R1_GAP') return true
    for (const check of checks) if (!check(event)) return false
    return true
  }
}

/** One-off form of `compileFilter`; prefer compiling once per subscription. */
export function matchesFilter(event: FilterableEvent, filter: EventFilter | undefined): boolean {
  return compileFilter(filter)(event)
}

/** Parses a wire FILTER, with the first problem named (for COMM_RECEIVED_BAD_COMMAND reasons and CLI errors). */
export function parseEventFilter(value: unknown): {ok: true; filter: EventFilter} | {ok: false; reason: string} {
  const result = EventFilterSchema.safeParse(value ?? {})
  if (result.success) return {ok: true, filter: result.data}
  const issue = result.error.issues[0]!
  const where = issue.path.length > 0 ? `FILTER.${issue.path.join('.')}` : 'FILTER'
  return {ok: false, reason: `${where}: ${issue.message}`}
}
