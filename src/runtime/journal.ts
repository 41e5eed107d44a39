import {randomUUID} from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {writeFileAtomic} from '../files.js'
import {canonicalJson} from '../protocol/canonical.js'
import type {NodeEvent} from '../protocol/events.js'
import {MATCH_ALL, compileFilter, gapEvent, type EventFilter, type EventMatcher, type GapEvent} from '../protocol/filter.js'
import {HEADER_BYTES, decodeRecord, encodeRecord, parseSegmentName, segmentName} from './journal-format.js'

/**
 * The node's event journal (ARCHITECTURE.md §4): every event with its EE_MESSAGE_SEQ, on disk, append-only,
 * bounded, in segment files named by the first seq they may hold (format in journal-format.ts).
 *
 * Durability: `append` buffers in memory and the buffer reaches the kernel (one positional write) at the
 * end of the current event-loop turn, when it passes `flushBytes`, or on `flush()`. Publishers call
 * `flush()` before putting an event on the wire, so an event a client has seen survives a `kill -9` of the
 * node (it is in the page cache); a `kill -9` loses only events appended but not yet flushed, and a torn
 * last record is cut off on the next open. Data is fsynced `fsyncIntervalMs` after the write that follows
 * the last fsync, and when a segment is closed, so a power loss can lose up to that interval; there is no
 * fsync per event (throughput), and no timer while nothing is written.
 *
 * Retention deletes whole segments, oldest first, when the journal passes `maxBytes` or a segment's
 * newest event is older than `maxAgeMs` (checked at open, when a segment is closed and after each write:
 * a journal nothing is written to keeps its segments as they are); the segment being written is never
 * deleted. A reader asking for seqs older than retention gets an `R1_GAP` entry (`REASON: 'retention'`);
 * seqs missing inside the retained range (a corrupt record, skipped with a warning, or a failed write)
 * give `REASON: 'missing'`.
 */

export interface JournalLimits {
  /** Total size of all segments; oldest segments are deleted beyond it. */
  maxBytes: number
  /** Segments whose newest event is older than this are deleted (at open, on a segment change, after a write). */
  maxAgeMs: number
  /** A segment is closed, and a new one started, once it reaches this size. */
  segmentBytes: number
}

export const DEFAULT_JOURNAL_LIMITS: JournalLimits = {
  maxBytes: 256 * 1024 * 1024,
  maxAgeMs: 7 * 24 * 3600 * 1000,
  segmentBytes: 16 * 1024 * 1024,
}

export interface JournalOptions extends Partial<JournalLimits> {
  /** How long after a write its data is fsynced and retention checked (default 1000 ms); an idle journal sets no timer. */
  fsyncIntervalMs?: number
  /** Buffered bytes that trigger a write before the end of the turn (default 256 KiB). */
  flushBytes?: number
  /** Write failures that happen outside a direct `flush()` call (default: printed on stderr). */
  onError?: (error: R1Error) => void
  /** Recoverable findings: torn tail cut off, corrupt record skipped (default: printed on stderr). */
  onWarning?: (message: string) => void
}

/** What a reader gets: events in seq order, and gaps where events can no longer be had. */
export type JournalEntry = NodeEvent | GapEvent

/** An entry with its canonical JSON in UTF-8 (the record's own bytes, so a server signs them without serializing again). */
export interface JournalRecord {
  entry: JournalEntry
  json: Buffer
}

export interface ReadOptions {
  /** Only events with EE_MESSAGE_SEQ > sinceSeq ("everything after the last one I saw"). */
  sinceSeq?: number
  /** Start at the last N events that match `filter` (within retention; no gap for the part before). */
  last?: number
  /** Start at the first event stamped at or after this time (ms since the epoch); no gap for the part before. */
  sinceTime?: number
  /** Applied before events leave the journal; gaps always pass. */
  filter?: EventFilter
  /** At most this many entries (read/iterator only). */
  limit?: number
}

export interface JournalStats {
  id: string
  dir: string
  segments: number
  bytes: number
  firstSeq: number
  lastSeq: number
}

interface Segment {
  firstSeq: number
  file: string
  /** Valid bytes on disk (everything after is not part of the journal). */
  bytes: number
  lastWriteMs: number
  /** Highest seq written in it, once known. */
  lastSeq?: number
  /** Sparse index, flat pairs `seq, offset`, one every INDEX_STRIDE bytes; built on write or on first read. */
  index?: number[]
  /** Made empty when a new journal opened, named by the seq expected next (renamed if the first one differs). */
  madeAtOpen?: boolean
}

const INDEX_STRIDE = 64 * 1024
const READ_CHUNK = 256 * 1024
/** One `next()` call scans at most this much, so a filter that matches nothing cannot stall the event loop. */
const MAX_SCAN_BYTES = 4 * 1024 * 1024
const META_FILE = 'journal.json'

export class Journal {
  readonly dir: string
  readonly id: string
  /** Records from this seq on hold canonical JSON; older ones (written by r1 before it did) are re-encoded when read. */
  readonly canonicalFromSeq: number
  readonly limits: JournalLimits
  private readonly segments: Segment[]
  private active: {segment: Segment; fd: number} | undefined
  private last: number
  /** Highest seq that is on disk or known lost (a failed write): what readers may rely on. */
  private settled: number
  private buffer: Buffer
  private used = 0
  private pendingSeqs: number[] = []
  private pendingOffsets: number[] = []
  private flushScheduled = false
  private dirty = false
  private closed = false
  /** The fsync and retention pass, armed by a write (an idle node's journal wakes nothing). */
  private tickTimer?: NodeJS.Timeout
  private readonly fsyncIntervalMs: number
  private readonly flushBytes: number
  private readonly onError: (error: R1Error) => void
  private readonly onWarning: (message: string) => void
  private readonly warned = new Set<string>()
  /**
   * Set when this open found `journal.json` corrupt and started a new journal (a new id: seqs restart
   * meaning for clients); the old file is kept as `journal.json.bad-<time>`. A node reports it in status.
   */
  readonly warning: string | undefined

  private constructor(dir: string, meta: JournalMeta, limits: JournalLimits, segments: Segment[], options: JournalOptions) {
    this.dir = dir
    this.id = meta.ID
    this.warning = meta.recovered
    this.canonicalFromSeq = meta.CANONICAL_FROM_SEQ ?? 1
    this.limits = limits
    this.segments = segments
    this.last = segments.at(-1)?.lastSeq ?? 0
    this.settled = this.last
    this.flushBytes = options.flushBytes ?? 256 * 1024
    this.buffer = Buffer.allocUnsafe(Math.max(this.flushBytes * 2, 64 * 1024))
    this.onError = options.onError ?? ((error) => process.stderr.write(`r1 journal: ${error.message}\n`))
    this.onWarning = options.onWarning ?? ((message) => process.stderr.write(`r1 journal: ${message}\n`))
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 1000
  }

  /**
   * Opens (or creates) the journal in `dir`: cuts a torn last record off, resumes the newest segment,
   * applies retention. The node then numbers events from `lastSeq() + 1`.
   */
  static async open(dir: string, options: JournalOptions = {}): Promise<Journal> {
    const limits: JournalLimits = {
      maxBytes: options.maxBytes ?? DEFAULT_JOURNAL_LIMITS.maxBytes,
      maxAgeMs: options.maxAgeMs ?? DEFAULT_JOURNAL_LIMITS.maxAgeMs,
      segmentBytes: options.segmentBytes ?? DEFAULT_JOURNAL_LIMITS.segmentBytes,
    }
    for (const [key, value] of Object.entries(limits)) {
      if (!Number.isFinite(value) || value <= 0) throw new R1Error(`Journal limit ${key} must be a positive number, got ${value}`, ExitCode.USAGE, {code: 'JOURNAL_BAD_LIMIT'})
    }
    try {
      fs.mkdirSync(dir, {recursive: true})
    } catch (error) {
      throw journalError(`Cannot create the event journal directory ${dir}`, error, 'Check the data dir path and its permissions.')
    }
    const meta = await readMeta(dir)
    const warnings: string[] = []
    const segments = listSegments(dir)
    // Only the newest segment can end in a torn record: the others were closed after a complete write.
    while (segments.length > 0) {
      const newest = segments.at(-1)!
      const scan = scanSegment(newest, fs.readFileSync(newest.file), (message) => warnings.push(message))
      if (scan.validEnd < newest.bytes) {
        warnings.push(`cut ${newest.bytes - scan.validEnd} bytes of torn or corrupt tail from ${path.basename(newest.file)} (an interrupted write)`)
        fs.truncateSync(newest.file, scan.validEnd)
        newest.bytes = scan.validEnd
      }
      if (newest.lastSeq !== undefined) break
      fs.rmSync(newest.file, {force: true})
      segments.pop()
    }
    if (meta.CANONICAL_FROM_SEQ === undefined) {
      // a new journal, or one written before records were canonical: mark where canonical records start
      meta.CANONICAL_FROM_SEQ = (segments.at(-1)?.lastSeq ?? 0) + 1
      await writeMeta(dir, meta)
    }
    const journal = new Journal(dir, meta, limits, segments, options)
    if (journal.warning) journal.onWarning(journal.warning)
    for (const message of warnings) journal.onWarning(message)
    const newest = segments.at(-1)
    if (newest && newest.bytes < limits.segmentBytes) {
      try {
        journal.active = {segment: newest, fd: fs.openSync(newest.file, 'r+')}
      } catch (error) {
        throw journalError(`Cannot open journal segment ${newest.file} for writing`, error, 'Check the data dir permissions.')
      }
    } else if (!newest) {
      // a new journal's first segment is made now, not on the first event: a new node's first answers are not held up making a file
      try {
        journal.startSegment(journal.last + 1).segment.madeAtOpen = true
      } catch {
        // made on the first write instead, which reports why it cannot be
      }
    }
    journal.enforceRetention()
    return journal
  }

  /** A new, empty segment for events from `firstSeq` on, made the one being written. */
  private startSegment(firstSeq: number): {segment: Segment; fd: number} {
    const file = path.join(this.dir, segmentName(firstSeq))
    const segment: Segment = {firstSeq, file, bytes: 0, lastWriteMs: Date.now(), index: []}
    this.active = {segment, fd: fs.openSync(file, 'w')}
    this.segments.push(segment)
    return this.active
  }

  /** The highest seq appended (0 for an empty journal). */
  lastSeq(): number {
    return this.last
  }

  /** The oldest seq still retained (lastSeq() + 1 when the journal holds nothing). */
  firstSeq(): number {
    return this.segments[0]?.firstSeq ?? this.pendingSeqs[0] ?? this.last + 1
  }

  /**
   * Adds an event; its EE_MESSAGE_SEQ must be above lastSeq(). Throws only for such misuse; a failed
   * disk write is reported through `onError` and leaves earlier records intact. `json` is the event's
   * canonical JSON in UTF-8 when the caller has it (the node core makes it once per event).
   */
  append(event: NodeEvent, json: Uint8Array = Buffer.from(canonicalJson(event))): void {
    if (this.closed) throw new R1Error(`The event journal in ${this.dir} is closed`, ExitCode.FAILURE, {code: 'JOURNAL_CLOSED'})
    const seq = event.EE_MESSAGE_SEQ
    if (!Number.isSafeInteger(seq) || seq <= this.last) {
      throw new R1Error(`Event EE_MESSAGE_SEQ ${seq} is not above the journal's last seq ${this.last}`, ExitCode.FAILURE, {
        code: 'JOURNAL_SEQ_ORDER',
        hint: 'The node must number events from journal.lastSeq() + 1, in order.',
      })
    }
    let written = encodeRecord(this.buffer, this.used, seq, json)
    if (written < 0) {
      this.flushQuietly()
      if (this.used === 0 && this.buffer.length < HEADER_BYTES + 24 + json.length) this.buffer = Buffer.allocUnsafe(2 * (HEADER_BYTES + 24 + json.length))
      written = encodeRecord(this.buffer, this.used, seq, json)
    }
    this.pendingSeqs.push(seq)
    this.pendingOffsets.push(this.used)
    this.used += written
    this.last = seq
    if (this.used >= this.flushBytes) this.flushQuietly()
    else if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => {
        this.flushScheduled = false
        this.flushQuietly()
      })
    }
  }

  /**
   * Writes buffered records to the kernel now. Call before sending events to a client. Throws on a
   * write failure (after restoring the segment to its last complete record; the buffered events are lost).
   */
  flush(): void {
    if (this.used === 0) return
    const seqs = this.pendingSeqs
    const offsets = this.pendingOffsets
    const length = this.used
    this.used = 0
    this.pendingSeqs = []
    this.pendingOffsets = []
    this.settled = seqs.at(-1)!
    let target = this.active
    try {
      target ??= this.startSegment(seqs[0]!)
      const {segment} = target
      if (segment.madeAtOpen) {
        if (segment.firstSeq !== seqs[0]) {
          // the numbers jumped since the open: named by the seq it really starts at
          const file = path.join(this.dir, segmentName(seqs[0]!))
          fs.renameSync(segment.file, file)
          Object.assign(segment, {firstSeq: seqs[0]!, file})
        }
        segment.madeAtOpen = false
      }
    } catch (error) {
      throw journalError(`Cannot create journal segment in ${this.dir}; events ${seqs[0]}..${seqs.at(-1)} are lost`, error, 'Free disk space or fix the data dir permissions.', {fromSeq: seqs[0], toSeq: seqs.at(-1)})
    }
    const {segment, fd} = target
    try {
      let done = 0
      while (done < length) done += fs.writeSync(fd, this.buffer, done, length - done, segment.bytes + done)
    } catch (error) {
      try {
        fs.ftruncateSync(fd, segment.bytes)
      } catch {
        // The next write goes to the same position and overwrites the partial bytes; a reopen cuts them otherwise.
      }
      throw journalError(`Cannot write to journal segment ${segment.file}; events ${seqs[0]}..${seqs.at(-1)} are lost`, error, 'Free disk space; the journal keeps its earlier events.', {
        fromSeq: seqs[0],
        toSeq: seqs.at(-1),
      })
    }
    const index = segment.index!
    for (let i = 0; i < seqs.length; i++) {
      const offset = segment.bytes + offsets[i]!
      if (index.length === 0 || offset - index.at(-1)! >= INDEX_STRIDE) index.push(seqs[i]!, offset)
    }
    segment.bytes += length
    segment.lastSeq = seqs.at(-1)
    segment.lastWriteMs = Date.now()
    this.dirty = true
    this.armTick()
    if (segment.bytes >= this.limits.segmentBytes) {
      this.closeActive()
      this.enforceRetention()
    }
  }

  /** A cursor reading forward from `sinceSeq` (or the last N matching events); see JournalCursor. */
  async cursor(options: Omit<ReadOptions, 'limit'> = {}): Promise<JournalCursor> {
    // "The last N" means as of this call: events appended while older segments are scanned do not shift the window.
    const until = this.last
    this.flushQuietly()
    const match = compileFilter(options.filter)
    let since = options.sinceSeq ?? (options.last === undefined ? 0 : until)
    if (options.last !== undefined) {
      const fromLast = await this.startOfLast(options.last, match, until)
      since = options.sinceSeq === undefined ? fromLast : Math.max(options.sinceSeq, fromLast)
    }
    if (options.sinceTime !== undefined) {
      const fromTime = await this.startOfTime(options.sinceTime)
      since = options.sinceSeq === undefined && options.last === undefined ? fromTime : Math.max(since, fromTime)
    }
    return new JournalCursor(this, Math.max(0, since), match)
  }

  /** Entries up to the lastSeq() at the time of the call, in order. */
  async *read(options: ReadOptions = {}): AsyncGenerator<JournalEntry> {
    const until = this.last
    const cursor = await this.cursor(options)
    let remaining = options.limit ?? Number.POSITIVE_INFINITY
    while (remaining > 0 && cursor.position < until) {
      const page = await cursor.next(Math.min(1000, remaining))
      for (const {entry} of page) {
        yield entry
        if (--remaining <= 0) return
      }
      if (page.length === 0 && cursor.caughtUp) return
    }
  }

  stats(): JournalStats {
    return {id: this.id, dir: this.dir, segments: this.segments.length, bytes: this.segments.reduce((sum, s) => sum + s.bytes, 0), firstSeq: this.firstSeq(), lastSeq: this.last}
  }

  /** Flushes, fsyncs and closes; the journal reopens where it stopped. */
  async close(): Promise<void> {
    if (this.closed) return
    this.flushQuietly() // may arm the tick: cleared below, once nothing can arm it again
    this.closed = true
    clearTimeout(this.tickTimer)
    this.tickTimer = undefined
    if (this.active) {
      const {fd} = this.active
      this.active = undefined
      try {
        fs.fsyncSync(fd)
      } catch (error) {
        this.onError(journalError('Cannot fsync the journal on close', error, 'The last second of events may not survive a power loss.'))
      }
      fs.closeSync(fd)
    }
  }

  // ---- internals shared with JournalCursor ----

  /** @internal Flush for readers and timers: failures go to onError, never to the caller. */
  flushQuietly(): void {
    try {
      this.flush()
    } catch (error) {
      this.onError(error instanceof R1Error ? error : journalError('Journal write failed', error, 'Free disk space.'))
    }
  }

  /** @internal */
  settledSeq(): number {
    return this.settled
  }

  /** @internal The segment that would hold `seq` (the last one whose firstSeq ≤ seq). */
  segmentFor(seq: number): Segment | undefined {
    let lo = 0
    let hi = this.segments.length - 1
    let found: Segment | undefined
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (this.segments[mid]!.firstSeq <= seq) {
        found = this.segments[mid]
        lo = mid + 1
      } else hi = mid - 1
    }
    return found
  }

  /** @internal */
  segmentAfter(segment: Segment): Segment | undefined {
    const i = this.segments.indexOf(segment)
    return i === -1 ? undefined : this.segments[i + 1]
  }

  /** @internal */
  isRetained(segment: Segment): boolean {
    return this.segments.includes(segment)
  }

  /** @internal A segment whose file vanished under us is dropped from the list (readers then see a gap). */
  forget(segment: Segment): void {
    const i = this.segments.indexOf(segment)
    if (i !== -1 && segment !== this.active?.segment) this.segments.splice(i, 1)
  }

  /** @internal Byte offset at or before the record holding `seq`. */
  async offsetFor(segment: Segment, seq: number): Promise<number> {
    if (!segment.index) {
      const data = await fs.promises.readFile(segment.file)
      scanSegment(segment, data.subarray(0, segment.bytes), (message) => this.warnOnce(message))
    }
    const index = segment.index!
    let offset = 0
    for (let lo = 0, hi = index.length / 2 - 1; lo <= hi; ) {
      const mid = (lo + hi) >> 1
      if (index[mid * 2]! <= seq) {
        offset = index[mid * 2 + 1]!
        lo = mid + 1
      } else hi = mid - 1
    }
    return offset
  }

  /** @internal */
  warnOnce(message: string): void {
    if (this.warned.has(message)) return
    this.warned.add(message)
    this.onWarning(message)
  }

  private async startOfLast(count: number, match: EventMatcher, until: number): Promise<number> {
    if (count <= 0) return until
    const oldest = Math.max(0, this.firstSeq() - 1)
    if (match === MATCH_ALL) return Math.max(oldest, until - count)
    // Walk segments newest first, collecting matching seqs, until `count` are found.
    let needed = count
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seqs: number[] = []
      for await (const {seq, event} of this.segmentEvents(this.segments[i]!)) {
        if (seq <= until && match(event as Parameters<EventMatcher>[0])) seqs.push(seq)
      }
      if (seqs.length >= needed) return seqs[seqs.length - needed]! - 1
      needed -= seqs.length
    }
    return oldest
  }

  private async startOfTime(time: number): Promise<number> {
    for (const segment of [...this.segments]) {
      // A segment last written before `time` holds only older events.
      if (segment.lastWriteMs < time && segment !== this.segments.at(-1)) continue
      for await (const {seq, event} of this.segmentEvents(segment)) {
        if (Date.parse((event as {EE_TIMESTAMP?: string}).EE_TIMESTAMP ?? '') >= time) return seq - 1
      }
    }
    return this.last
  }

  /**
   * The intact records of one segment, parsed. An unreadable segment yields nothing; a checksummed
   * but unparsable record is skipped (the cursor reports it as missing).
   */
  private async *segmentEvents(segment: Segment): AsyncGenerator<{seq: number; event: unknown}> {
    let data: Buffer
    try {
      data = (await fs.promises.readFile(segment.file)).subarray(0, segment.bytes)
    } catch {
      return
    }
    for (let p = 0; p < data.length; ) {
      const record = decodeRecord(data, p, data.length)
      if (!record) break
      p = record.end
      if (!record.ok) continue
      let event: unknown
      try {
        event = JSON.parse(data.toString('utf8', record.jsonStart, record.end - 1))
      } catch {
        continue
      }
      yield {seq: record.seq, event}
    }
  }

  private closeActive(): void {
    if (!this.active) return
    const {fd} = this.active
    this.active = undefined
    // fsync off the event loop, then close: a closed segment is durable before it can be deleted or relied upon.
    fs.fsync(fd, () => fs.close(fd, () => {}))
  }

  private enforceRetention(): void {
    const now = Date.now()
    let total = this.segments.reduce((sum, s) => sum + s.bytes, 0)
    while (this.segments.length > 1 && this.segments[0] !== this.active?.segment) {
      const oldest = this.segments[0]!
      if (total <= this.limits.maxBytes && now - oldest.lastWriteMs <= this.limits.maxAgeMs) break
      try {
        fs.rmSync(oldest.file, {force: true})
      } catch (error) {
        this.onError(journalError(`Cannot delete old journal segment ${oldest.file}`, error, 'Check the data dir permissions.'))
        return
      }
      this.segments.shift()
      total -= oldest.bytes
    }
  }

  private armTick(): void {
    if (this.tickTimer || this.closed) return
    this.tickTimer = setTimeout(() => {
      this.tickTimer = undefined
      this.tick()
    }, this.fsyncIntervalMs)
    this.tickTimer.unref()
  }

  private tick(): void {
    this.flushQuietly()
    if (this.dirty && this.active) {
      this.dirty = false
      const {fd} = this.active
      fs.fsync(fd, (error) => {
        if (error && error.code !== 'EBADF') this.onError(journalError('Cannot fsync the journal', error, 'Check the disk.'))
      })
    }
    this.enforceRetention()
  }
}

/**
 * Reads forward through the journal in pages. `position` is the highest seq examined (delivered or
 * filtered out): a subscriber resumes from it, and is caught up when it equals the journal's lastSeq().
 */
export class JournalCursor {
  position: number
  private segment: Segment | undefined
  private offset = 0

  constructor(
    private readonly journal: Journal,
    sinceSeq: number,
    private readonly match: EventMatcher,
  ) {
    this.position = sinceSeq
  }

  get caughtUp(): boolean {
    return this.position >= this.journal.lastSeq()
  }

  /**
   * Up to `max` entries after `position`. Returns [] when caught up; may also return fewer (even none)
   * before that when a filter skips much, so loop on `caughtUp`, not on an empty page.
   */
  async next(max = 1000): Promise<JournalRecord[]> {
    const journal = this.journal
    journal.flushQuietly()
    const out: JournalRecord[] = []
    let scanned = 0
    let chunk = READ_CHUNK
    while (out.length < max && scanned < MAX_SCAN_BYTES) {
      const target = this.position + 1
      if (target > journal.settledSeq()) break
      const first = journal.firstSeq()
      if (target < first) {
        out.push(gapRecord(target, first - 1, 'retention'))
        this.position = first - 1
        this.segment = undefined
        continue
      }
      const segment = journal.segmentFor(target)
      if (!segment) break
      try {
        if (segment !== this.segment) {
          this.offset = await journal.offsetFor(segment, target)
          this.segment = segment
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          journal.forget(segment)
          this.segment = undefined
          continue
        }
        throw error
      }
      const end = segment.bytes
      if (this.offset >= end) {
        const next = journal.segmentAfter(segment)
        // Seqs between the end of this segment's data and the next one's start were never written or are corrupt.
        const upTo = next ? next.firstSeq - 1 : journal.settledSeq()
        if (this.position < upTo) {
          out.push(gapRecord(this.position + 1, upTo, 'missing'))
          this.position = upTo
        }
        if (next) {
          this.segment = next
          this.offset = 0
          continue
        }
        break
      }
      let data: Buffer
      try {
        data = await readAt(segment.file, this.offset, Math.min(chunk, end - this.offset))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          journal.forget(segment)
          this.segment = undefined
          continue
        }
        throw error
      }
      scanned += data.length
      let p = 0
      while (p < data.length && out.length < max) {
        const record = decodeRecord(data, p, data.length)
        if (!record) break
        p = record.end
        if (!record.ok) {
          journal.warnOnce(`skipped a corrupt record (${record.reason}) at byte ${this.offset + record.start} of ${path.basename(segment.file)}`)
          continue
        }
        if (record.seq <= this.position) continue
        const bytes = data.subarray(record.jsonStart, record.end - 1)
        let event: NodeEvent | undefined
        try {
          event = JSON.parse(bytes.toString()) as NodeEvent
        } catch {
          journal.warnOnce(`skipped an unreadable record (seq ${record.seq}) in ${path.basename(segment.file)}`)
          continue
        }
        if (record.seq > this.position + 1) out.push(gapRecord(this.position + 1, record.seq - 1, 'missing'))
        this.position = record.seq
        // copied: a record waiting in a subscriber's queue must not pin the whole chunk it was read in
        if (this.match(event)) out.push({entry: event, json: record.seq >= journal.canonicalFromSeq ? Buffer.from(bytes) : Buffer.from(canonicalJson(event))})
      }
      if (p === 0) {
        if (data.length < end - this.offset) {
          chunk *= 2 // a record longer than the chunk: read more at once
          continue
        }
        journal.warnOnce(`skipped an incomplete record at byte ${this.offset} of ${path.basename(segment.file)}`)
        p = data.length
      }
      this.offset += p
      chunk = READ_CHUNK
    }
    return out
  }
}

function gapRecord(fromSeq: number, toSeq: number, reason: GapEvent['REASON']): JournalRecord {
  const entry = gapEvent(fromSeq, toSeq, reason)
  return {entry, json: Buffer.from(canonicalJson(entry))}
}

async function readAt(file: string, offset: number, length: number): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r')
  try {
    const buffer = Buffer.allocUnsafe(length)
    let done = 0
    while (done < length) {
      const {bytesRead} = await handle.read(buffer, done, length - done, offset + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return buffer.subarray(0, done)
  } finally {
    await handle.close()
  }
}

function listSegments(dir: string): Segment[] {
  const segments: Segment[] = []
  for (const name of fs.readdirSync(dir)) {
    const firstSeq = parseSegmentName(name)
    if (firstSeq === undefined) continue
    const file = path.join(dir, name)
    const stat = fs.statSync(file)
    if (!stat.isFile()) continue
    segments.push({firstSeq, file, bytes: stat.size, lastWriteMs: stat.mtimeMs})
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq)
}

/** Builds a segment's index and lastSeq from its bytes; returns where its last valid record ends. */
function scanSegment(segment: Segment, data: Buffer, warn: (message: string) => void): {validEnd: number} {
  const index: number[] = []
  let validEnd = 0
  let lastSeq: number | undefined
  let p = 0
  let corrupt: string | undefined
  while (p < data.length) {
    const record = decodeRecord(data, p, data.length)
    if (!record) break
    p = record.end
    if (!record.ok || record.seq < segment.firstSeq || (lastSeq !== undefined && record.seq <= lastSeq)) {
      corrupt ??= `${record.ok ? 'out-of-order seq' : record.reason} at byte ${record.start}`
      continue
    }
    if (corrupt) {
      // Only corruption followed by valid records is "in the middle"; a corrupt tail is cut off by open().
      warn(`skipping corrupt record(s) in ${path.basename(segment.file)} (${corrupt}); readers get a gap for the missing seqs`)
      corrupt = undefined
    }
    if (index.length === 0 || record.start - index.at(-1)! >= INDEX_STRIDE) index.push(record.seq, record.start)
    lastSeq = record.seq
    validEnd = record.end
  }
  segment.index = index
  segment.lastSeq = lastSeq
  return {validEnd}
}

/** `journal.json`: the journal's id (seqs count within it) and where its canonical records start. */
interface JournalMeta {
  ID: string
  CREATED: string
  CANONICAL_FROM_SEQ?: number
  /** Not stored: why this open started a new journal over a corrupt meta file. */
  recovered?: string
}

/**
 * The journal's meta file; a missing one gets a new id (a new journal: seqs mean something else now).
 * A corrupt one too, loudly: it is kept aside as `journal.json.bad-<time>` and `recovered` says so.
 */
async function readMeta(dir: string): Promise<JournalMeta> {
  const file = path.join(dir, META_FILE)
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {ID: randomUUID(), CREATED: new Date().toISOString()}
    throw journalError(`Cannot read ${file}`, error, 'Check the data dir permissions.')
  }
  let why: string
  try {
    const meta = JSON.parse(text) as Partial<JournalMeta> | null
    if (typeof meta?.ID === 'string' && meta.ID.length > 0) {
      const from = meta.CANONICAL_FROM_SEQ
      return {ID: meta.ID, CREATED: String(meta.CREATED ?? ''), ...(Number.isSafeInteger(from) && from! > 0 ? {CANONICAL_FROM_SEQ: from} : {})}
    }
    why = 'no journal ID in it'
  } catch (error) {
    why = `not JSON: ${(error as Error).message}`
  }
  const aside = `${file}.bad-${new Date().toISOString().replace(/[:.]/g, '-')}`
  try {
    fs.renameSync(file, aside)
  } catch (error) {
    throw journalError(`${file} is corrupt (${why}) and cannot be moved aside`, error, 'Check the data dir permissions.')
  }
  return {
    ID: randomUUID(),
    CREATED: new Date().toISOString(),
    recovered: `the event journal's ${META_FILE} was corrupt (${why}): started a new journal (clients resuming by seq are told numbering restarted); the old file is kept as ${aside}`,
  }
}

async function writeMeta(dir: string, meta: JournalMeta): Promise<void> {
  try {
    const {recovered: _recovered, ...stored} = meta
    await writeFileAtomic(path.join(dir, META_FILE), JSON.stringify(stored) + '\n')
  } catch (error) {
    throw journalError(`Cannot write ${path.join(dir, META_FILE)}`, error, 'Free disk space or fix the data dir permissions.')
  }
}

function journalError(message: string, cause: unknown, hint: string, details?: Record<string, unknown>): R1Error {
  const code = (cause as NodeJS.ErrnoException)?.code
  return new R1Error(`${message}: ${code ?? (cause as Error)?.message ?? String(cause)}`, ExitCode.FAILURE, {
    code: code === 'ENOSPC' ? 'JOURNAL_DISK_FULL' : 'JOURNAL_IO',
    hint,
    details: {...details, errno: code},
    cause,
  })
}

/** Opens the journal of a node's data dir (`<dataDir>/journal`). */
export function openJournal(dir: string, options?: JournalOptions): Promise<Journal> {
  return Journal.open(dir, options)
}
