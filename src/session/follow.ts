import {readFile} from 'node:fs/promises'
import {ExitCode, R1Error, exitCodeOf} from '../errors.js'
import {type TargetStatus, exitCodeFor} from '../fleet/result.js'
import type {NodeEvent} from '../protocol/events.js'
import type {EventFilter, GapEvent} from '../protocol/filter.js'
import type {Identity} from '../protocol/identity.js'
import type {BrokerConfig} from '../transport/mqtt.js'
import {Session, type SessionOptions} from './session.js'

/**
 * `r1 logs` over many nodes: one resumable subscription per node, merged into one stream in arrival
 * order. Per node: history first (`since` / `tail`), then live when following; a node that is down is
 * reported and retried while the others stream; a dropped connection is resumed after the last seq
 * seen (the session reconnects; this layer reconnects too when a session has to be recreated), and
 * events are deduplicated by seq per node, so nothing is shown twice and a lost range is a gap entry.
 */

export interface FollowTarget {
  /** Label of the node in the merged stream (the config.yaml target name or host:port). */
  name: string
  url: string
  address: string
  /** PEM file of the CA to trust for this wss:// node. */
  ca?: string
  /** Reached through this broker (`url` is the broker's). */
  broker?: BrokerConfig
}

/** Where history starts: after a seq, or at a time (ms since the epoch). */
export type Since = {seq: number} | {time: number}

export interface FollowOptions {
  targets: FollowTarget[]
  identity: Identity
  /** Applied on the node. */
  filter?: EventFilter
  since?: Since
  /** The last N matching events first (default none; with `since`, the later start wins). */
  tail?: number
  /** Keep streaming live events; otherwise stop each node once its history is replayed. */
  follow: boolean
  /** Fraction (0..1] of PAYLOAD events shown, chosen by seq so a resume keeps the same choice; other events always pass. */
  samplingRate?: number
  signal?: AbortSignal
  /** Passed to each session (ping period = keepalive, reconnect back-off, TLS). */
  session?: Partial<Omit<SessionOptions, 'url' | 'nodeAddress' | 'identity'>>
  /** Back-off for a node that cannot be reached (default 500 ms doubling to 15 s). */
  retry?: {initialDelayMs?: number; maxDelayMs?: number}
  /** Without --follow, give up on a node after this many failed connection attempts (default 1: report it at once). */
  attemptsWithoutFollow?: number
}

export type FollowNotice =
  | {kind: 'connected'; alias: string; nodeLastSeq: number}
  | {kind: 'unreachable'; message: string; retryInMs: number}
  | {kind: 'live'; position: number}
  | {kind: 'failed'; message: string}
  | {kind: 'warning'; message: string}

export type FollowEntry = NodeEvent | GapEvent

export interface FollowHandlers {
  /** One event or gap of one node, in that node's seq order. A returned promise pauses that node's stream (back-pressure). */
  onEntry(target: FollowTarget, entry: FollowEntry): void | Promise<void>
  onNotice?(target: FollowTarget, notice: FollowNotice): void
}

/** A followed node's end, in the fleet's statuses (`interrupted`, by Ctrl-C, is not a failure). */
export type FollowStatus = Extract<TargetStatus, 'ok' | 'interrupted' | 'unreachable' | 'rejected' | 'failed'>

export interface FollowOutcome {
  target: string
  url: string
  address: string
  alias?: string
  status: FollowStatus
  /** Events passed to onEntry. */
  events: number
  gaps: number
  /** The highest seq seen (resume point). */
  lastSeq?: number
  /** The node journal lastSeq counts in. */
  journalId?: string
  error?: string
}

export interface FollowResult {
  ok: boolean
  exitCode: ExitCode
  targets: FollowOutcome[]
}

/** Follows every target at once; resolves when all are done (history replayed, or the signal aborted). */
export async function followNodes(options: FollowOptions, handlers: FollowHandlers): Promise<FollowResult> {
  const targets = await Promise.all(options.targets.map((target) => followOne(target, options, handlers)))
  const exitCode = exitCodeFor(targets)
  return {ok: exitCode === ExitCode.OK, exitCode, targets}
}

async function followOne(target: FollowTarget, options: FollowOptions, handlers: FollowHandlers): Promise<FollowOutcome> {
  const outcome: FollowOutcome = {target: target.name, url: target.url, address: target.address, status: 'ok', events: 0, gaps: 0}
  const notice = (n: FollowNotice) => handlers.onNotice?.(target, n)
  const signal = options.signal
  const initialDelay = options.retry?.initialDelayMs ?? 500
  const maxDelay = options.retry?.maxDelayMs ?? 15_000
  const maxAttempts = options.follow ? Number.POSITIVE_INFINITY : (options.attemptsWithoutFollow ?? 1)
  const rate = options.samplingRate ?? 1
  let delay = initialDelay
  let attempts = 0
  let historyDone = false

  while (!signal?.aborted) {
    let session: Session
    try {
      session = await Session.connect({
        ...options.session,
        // a target's own `ca` (config.yaml) when no --ca was given
        ...(target.ca && !options.session?.ca ? {ca: await readFile(target.ca)} : {}),
        url: target.url,
        ...(target.broker ? {broker: target.broker} : {}),
        nodeAddress: target.address,
        identity: options.identity,
        onWarning: (message) => notice({kind: 'warning', message}),
      })
    } catch (error) {
      if (signal?.aborted) break
      attempts++
      const code = (error as R1Error).code
      if (code === 'NODE_ADDRESS_MISMATCH' || code === 'IDENTITY_MISMATCH' || attempts >= maxAttempts) {
        outcome.status = exitCodeOf(error) === ExitCode.UNREACHABLE ? 'unreachable' : exitCodeOf(error) === ExitCode.REJECTED ? 'rejected' : 'failed'
        outcome.error = (error as Error).message
        notice({kind: 'failed', message: outcome.error})
        return outcome
      }
      notice({kind: 'unreachable', message: (error as Error).message, retryInMs: delay})
      await sleep(delay, signal)
      delay = Math.min(maxDelay, delay * 2)
      continue
    }
    delay = initialDelay
    attempts = 0
    outcome.alias = session.alias
    notice({kind: 'connected', alias: session.alias, nodeLastSeq: session.nodeLastSeq})

    // Ends this node's stream: the user's Ctrl-C, or (without --follow) the end of its history.
    const stop = new AbortController()
    const onAbort = () => stop.abort()
    signal?.addEventListener('abort', onAbort, {once: true})
    try {
      const resumeAfter = outcome.lastSeq
      // Without --follow, history is what the node held when it accepted the subscription: nothing after its LAST_SEQ.
      let cutoff: number | undefined
      const items = session.subscribe({
        filter: options.filter,
        sinceSeq: resumeAfter ?? (options.since && 'seq' in options.since ? options.since.seq : undefined),
        sinceTime: resumeAfter === undefined && options.since && 'time' in options.since ? options.since.time : undefined,
        last: resumeAfter === undefined ? options.tail : undefined,
        journalId: resumeAfter === undefined ? undefined : outcome.journalId,
        signal: stop.signal,
        onStarted: (started) => {
          outcome.journalId ??= started.JOURNAL_ID // a different one comes with a reset gap
          if (!options.follow) cutoff ??= started.LAST_SEQ
        },
        onLive: (position) => {
          if (historyDone) return
          historyDone = true
          notice({kind: 'live', position})
          if (!options.follow) stop.abort()
        },
      })
      for await (const item of items) {
        if (!options.follow && (historyDone || (cutoff !== undefined && (item.EE_EVENT_TYPE === 'R1_GAP' ? item.FROM_SEQ : item.EE_MESSAGE_SEQ) > cutoff))) break
        if (item.EE_EVENT_TYPE === 'R1_GAP') {
          if (item.REASON === 'reset') {
            // the node's numbering went back (another journal, or this one restored): it goes on after TO_SEQ
            outcome.journalId = item.JOURNAL_ID
            cutoff = undefined
          } else if (outcome.lastSeq !== undefined && item.TO_SEQ <= outcome.lastSeq) continue
          outcome.lastSeq = item.TO_SEQ
          outcome.gaps++
          await handlers.onEntry(target, item)
          continue
        }
        const seq = item.EE_MESSAGE_SEQ
        if (outcome.lastSeq !== undefined && seq <= outcome.lastSeq) continue // already shown before a reconnect
        outcome.lastSeq = seq
        if (rate < 1 && item.EE_EVENT_TYPE === 'PAYLOAD' && !sampled(seq, rate)) continue
        outcome.events++
        await handlers.onEntry(target, item)
        if (!options.follow && cutoff !== undefined && seq >= cutoff) break
      }
      if (signal?.aborted) outcome.status = 'interrupted'
      if (signal?.aborted || !options.follow) return outcome
      // The session ended the stream on its own (closed under us): connect again and resume.
    } catch (error) {
      if (signal?.aborted) {
        outcome.status = 'interrupted'
        return outcome
      }
      const code = exitCodeOf(error)
      // A refusal (not on the allow-list) or the wrong node will not change by retrying.
      if (code === ExitCode.REJECTED || (error as R1Error).code === 'NODE_ADDRESS_MISMATCH' || !options.follow) {
        outcome.status = code === ExitCode.REJECTED ? 'rejected' : code === ExitCode.UNREACHABLE ? 'unreachable' : 'failed'
        outcome.error = (error as Error).message
        notice({kind: 'failed', message: outcome.error})
        return outcome
      }
      notice({kind: 'unreachable', message: (error as Error).message, retryInMs: delay})
      await sleep(delay, signal)
      delay = Math.min(maxDelay, delay * 2)
    } finally {
      signal?.removeEventListener('abort', onAbort)
      await session.close()
    }
  }
  outcome.status = 'interrupted'
  return outcome
}

/** Keeps about `rate` of all seqs, the same ones on every run and after every resume. */
export function sampled(seq: number, rate: number): boolean {
  if (rate >= 1) return true
  // Knuth's multiplicative hash spreads consecutive seqs over [0, 1).
  return ((Math.imul(seq, 2654435761) >>> 0) / 4294967296) < rate
}

const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/
const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000}

/**
 * `--since`: a sequence number (`1200`: events after it), a duration back from now (`90s`, `5m`,
 * `1h30m`, `2d`) or a time (`2026-01-31T12:00:00Z`, `2026-01-31 12:00`).
 */
export function parseSince(text: string, now = Date.now()): Since {
  const value = text.trim()
  if (/^\d+$/.test(value)) return {seq: Number(value)}
  if (DURATION.test(value)) {
    let ms = 0
    for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) ms += Number(amount) * UNIT_MS[unit!]!
    return {time: now - ms}
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const time = Date.parse(value.includes('T') || !value.includes(' ') ? value : value.replace(' ', 'T'))
    if (!Number.isNaN(time)) return {time}
  }
  throw new R1Error(`--since "${text}" is not a sequence number, a duration or a time`, ExitCode.USAGE, {
    code: 'BAD_SINCE',
    hint: 'Use a seq (e.g. 1200: events after it), a duration back from now (90s, 5m, 1h30m, 2d) or a time (2026-01-31T12:00:00Z).',
  })
}

/** One line about a gap, for humans. */
export function describeGap(gap: GapEvent): string {
  if (gap.REASON === 'reset') {
    return gap.TO_SEQ === 0
      ? `the node's event journal was replaced (data dir wiped or replaced) after event ${gap.FROM_SEQ - 1}: the rest of the old one is lost here, and seqs start again at 1`
      : `the node's event journal went back to event ${gap.TO_SEQ} (restored, or cut by a power loss) after this reader had ${gap.FROM_SEQ - 1}: seqs above ${gap.TO_SEQ} now name other events`
  }
  const range = gap.FROM_SEQ === gap.TO_SEQ ? `event ${gap.FROM_SEQ} is` : `events ${gap.FROM_SEQ}..${gap.TO_SEQ} are`
  return gap.REASON === 'retention'
    ? `${range} no longer in the node's journal (retention)`
    : `${range} missing from the node's journal (corrupt or never written)`
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, {once: true})
  })
}

/**
 * Batches output lines into few writes (one per event-loop turn or 64 KiB) and reports back-pressure:
 * `write` returns a promise while the stream is full, which pauses the node streams feeding it.
 * A closed reader (`r1 logs | head`) calls `onClosed` instead of crashing on EPIPE.
 */
export class LineSink {
  private chunks: string[] = []
  private size = 0
  private scheduled = false
  private draining?: Promise<void>
  private drained?: () => void
  private closed = false

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly onClosed: () => void = () => undefined,
    private readonly maxBuffered = 64 * 1024,
  ) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error
      this.closed = true
      this.drained?.() // nobody will drain it now: release whoever waits
      this.onClosed()
    })
  }

  write(line: string): void | Promise<void> {
    if (this.closed) return
    this.chunks.push(line)
    this.size += line.length
    if (this.size >= this.maxBuffered) return this.flush()
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => {
        this.scheduled = false
        void this.flush()
      })
    }
    return this.draining
  }

  flush(): void | Promise<void> {
    if (this.size === 0 || this.closed) return this.draining
    const text = this.chunks.join('')
    this.chunks = []
    this.size = 0
    if (!this.stream.write(text) && !this.draining) {
      this.draining = new Promise((resolve) => {
        this.drained = () => {
          this.draining = undefined
          this.drained = undefined
          resolve()
        }
        this.stream.once('drain', this.drained)
      })
    }
    return this.draining
  }

  /** Writes what is buffered and waits until the stream took it. */
  async end(): Promise<void> {
    await this.flush()
  }
}
