import type {Readable} from 'node:stream'
import {StringDecoder} from 'node:string_decoder'
import {TokenBucket} from './token-bucket.js'

/**
 * Limits on plugin log lines, applied by the node to every LOG event whatever its source (ctx.log,
 * console.*, a process app's output, a shipped files' setup): a line is cut to MAX_LINE_CHARS, and each
 * instance gets a token bucket of lines (burst, then a sustained rate). Lines over the rate are dropped
 * and counted; the count is reported before the next line that goes out, within `flushMs` of the drop
 * when no line follows, and when the instance stops. So a chatty plugin cannot flood the journal, no
 * LOG event outgrows a WebSocket frame, and a reader still learns that lines are missing.
 */

/** Longer lines are cut: a LOG event must fit in one WebSocket frame (1 MiB), JSON escapes included. */
export const MAX_LINE_CHARS = 64 * 1024

/** `text` cut to MAX_LINE_CHARS, with the count of what was cut (`more`: characters already cut before it came here). */
export function cutLine(text: string, more = 0): string {
  if (text.length > MAX_LINE_CHARS) {
    more += text.length - MAX_LINE_CHARS
    text = text.slice(0, MAX_LINE_CHARS)
  }
  return more > 0 ? `${text}… (${more} more characters cut)` : text
}

/**
 * Splits a byte stream (a process's stdout or stderr) into lines, in bounded memory: at most
 * MAX_LINE_CHARS of a line are kept; the rest is only counted and reported as `cut` with the line.
 * Line ends are \n or \r\n; a last line without one is emitted when the stream ends.
 */
export function splitLines(stream: Readable, onLine: (text: string, cut: number) => void): void {
  const decoder = new StringDecoder('utf8')
  let line = ''
  let cut = 0
  const add = (part: string) => {
    const room = MAX_LINE_CHARS - line.length
    if (part.length <= room) line += part
    else {
      line += part.slice(0, room)
      cut += part.length - room
    }
  }
  const emit = () => {
    // a \r\n ending: the \r belongs to the line end (when the line was cut, it was counted among what was cut)
    if (cut > 0) {
      onLine(line, cut)
    } else onLine(line.endsWith('\r') ? line.slice(0, -1) : line, 0)
    line = ''
    cut = 0
  }
  const feed = (text: string) => {
    let start = 0
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      add(text.slice(start, end))
      emit()
      start = end + 1
    }
    if (start < text.length) add(start === 0 ? text : text.slice(start))
  }
  stream.on('data', (chunk: Buffer | string) => feed(typeof chunk === 'string' ? chunk : decoder.write(chunk)))
  stream.once('end', () => {
    feed(decoder.end())
    if (line !== '' || cut > 0) emit()
  })
}

export interface LogRate {
  /** Lines an instance may log at once. */
  burst: number
  /** Sustained lines per second. */
  perSecond: number
}

export const DEFAULT_LOG_RATE: LogRate = {burst: 500, perSecond: 100}

interface Limit<T> {
  bucket: TokenBucket
  /** Lines dropped since the last report. */
  dropped: number
  /** What `report` is told about (the instance's path). */
  subject: T
  timer: NodeJS.Timeout | undefined
}

/**
 * Log rate limits of every instance, by key. An entry lives while its bucket refills: once full it is
 * indistinguishable from a new one and is removed (so instances that are gone leave nothing behind).
 */
export class LogLimits<T> {
  private readonly limits = new Map<string, Limit<T>>()

  constructor(
    private readonly rate: LogRate,
    /** Lines of `subject` were dropped: report the count. */
    private readonly report: (subject: T, dropped: number) => void,
    private readonly options: {now?: () => number; flushMs?: number} = {},
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)()
  }

  /** Takes one line of `key`: false when it is dropped (counted); true when it may go out, after the drops before it are reported. */
  take(key: string, subject: T): boolean {
    let limit = this.limits.get(key)
    if (!limit) {
      limit = {bucket: new TokenBucket(this.rate.burst, this.rate.perSecond, this.now()), dropped: 0, subject, timer: undefined}
      this.limits.set(key, limit)
    }
    limit.subject = subject
    const ok = limit.bucket.take(this.now())
    if (ok) this.flush(limit)
    else limit.dropped++
    this.arm(key, limit)
    return ok
  }

  /** The instance stopped or was removed: its pending drops are reported and its entry removed. */
  retire(key: string): void {
    const limit = this.limits.get(key)
    if (!limit) return
    clearTimeout(limit.timer)
    this.limits.delete(key)
    this.flush(limit)
  }

  /** Retires every entry (the node stops). */
  close(): void {
    for (const key of [...this.limits.keys()]) this.retire(key)
  }

  /** Instances with an entry (tests). */
  get size(): number {
    return this.limits.size
  }

  private flush(limit: Limit<T>): void {
    if (limit.dropped === 0) return
    const dropped = limit.dropped
    limit.dropped = 0
    this.report(limit.subject, dropped)
  }

  /** While an entry lives, a timer reports its drops (within flushMs) and removes it once its bucket is full again. */
  private arm(key: string, limit: Limit<T>): void {
    if (limit.timer) return
    limit.timer = setTimeout(() => {
      limit.timer = undefined
      this.flush(limit)
      if (limit.bucket.isFull(this.now())) this.limits.delete(key)
      else this.arm(key, limit)
    }, this.options.flushMs ?? 1000)
    limit.timer.unref()
  }
}
