import {mkdir, open, readFile, rename, rm, type FileHandle} from 'node:fs/promises'
import {dirname} from 'node:path'

/**
 * The EE_HASHes of accepted commands, kept until their TIME can no longer pass the skew check, so a
 * signed command runs once, across restarts too. Only allow-listed senders' commands enter it, at
 * most `perSender` each: a busy sender is throttled, never the others.
 *
 * On disk: an append-only file of `<hash> <expiry ms> <sender>` lines, fsynced (several commands
 * share one fsync) before `durable()` resolves, read back at start and rewritten without the expired
 * lines when it grows.
 */
export type ReplayVerdict = 'fresh' | 'replay' | 'full'

export interface ReplayCacheOptions {
  /** Hashes kept per sender; at the bound its new commands are refused (THROTTLED). */
  perSender?: number
  /** The file (none: memory only, forgotten at restart). */
  path?: string
  /** Clock for expiry (ms). */
  now?: () => number
}

export const DEFAULT_REPLAY_PER_SENDER = 10_000
const LINE = /^([0-9a-f]{64}) (\d{1,16}) (\S{1,200})$/

interface Seen {
  expires: number
  sender: string
}

export class ReplayCache {
  private readonly seen = new Map<string, Seen>()
  private readonly perSenderCount = new Map<string, number>()
  private readonly perSender: number
  private readonly now: () => number
  private handle?: FileHandle
  /** Lines in the file (live or expired), to know when to compact. */
  private fileLines = 0
  private queued: string[] = []
  private tail: Promise<void> = Promise.resolve()
  private nextFlush?: Promise<void>
  private lastFlush: Promise<void> = Promise.resolve()
  private closed = false

  private constructor(
    readonly path: string | undefined,
    options: ReplayCacheOptions,
  ) {
    this.perSender = options.perSender ?? DEFAULT_REPLAY_PER_SENDER
    this.now = options.now ?? Date.now
  }

  /** Loads the file (dropping expired and torn lines) and rewrites it compacted. */
  static async open(options: ReplayCacheOptions = {}): Promise<ReplayCache> {
    const cache = new ReplayCache(options.path, options)
    if (!options.path) return cache
    let text = ''
    try {
      text = await readFile(options.path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    const now = cache.now()
    for (const line of text.split('\n')) {
      const match = LINE.exec(line)
      if (!match) continue
      const expires = Number(match[2])
      if (expires >= now && !cache.seen.has(match[1]!)) cache.insert(match[1]!, expires, match[3]!)
    }
    await mkdir(dirname(options.path), {recursive: true, mode: 0o700})
    await cache.rewrite()
    return cache
  }

  get size(): number {
    return this.seen.size
  }

  countFor(sender: string): number {
    return this.perSenderCount.get(sender) ?? 0
  }

  /** Records `hash` until `expires` unless it was seen or its sender is at its bound. Call durable() before acting on 'fresh'. */
  check(sender: string, hash: string, expires: number): ReplayVerdict {
    if (this.seen.has(hash)) return 'replay'
    if (this.countFor(sender) >= this.perSender) return 'full'
    this.insert(hash, expires, sender)
    if (this.path) this.queued.push(`${hash} ${Math.ceil(expires)} ${sender}\n`)
    return 'fresh'
  }

  /** Resolves once every hash recorded so far is on disk (fsynced); rejects when the write failed. */
  durable(): Promise<void> {
    if (!this.path) return Promise.resolve()
    if (this.queued.length === 0) return this.lastFlush
    return (this.nextFlush ??= this.serially(async () => {
      this.nextFlush = undefined
      const taken = this.queued
      this.queued = []
      if (taken.length === 0) return
      try {
        if (!this.handle) throw new Error(this.closed ? 'the replay cache is closed' : 'the replay cache file is not open')
        await this.handle.appendFile(taken.join(''))
        await this.handle.sync()
      } catch (error) {
        // Still owed to the file (a line written twice is harmless: open() keeps the first).
        this.queued = [...taken, ...this.queued]
        throw error
      }
      this.fileLines += taken.length
    }))
  }

  /** Forgets hashes whose expiry has passed (their TIME now fails the skew check); compacts the file when mostly stale. */
  expire(): void {
    const now = this.now()
    for (const [hash, {expires, sender}] of this.seen) {
      if (expires >= now) continue
      this.seen.delete(hash)
      const count = this.countFor(sender) - 1
      if (count > 0) this.perSenderCount.set(sender, count)
      else this.perSenderCount.delete(sender)
    }
    if (this.path && this.fileLines > 1000 && this.fileLines > 2 * this.seen.size) void this.serially(() => this.rewrite()).catch(() => undefined)
  }

  async close(): Promise<void> {
    if (this.closed) return
    await this.durable().catch(() => undefined)
    this.closed = true
    await this.serially(async () => {
      await this.handle?.close()
      this.handle = undefined
    }).catch(() => undefined)
  }

  private insert(hash: string, expires: number, sender: string): void {
    this.seen.set(hash, {expires, sender})
    this.perSenderCount.set(sender, this.countFor(sender) + 1)
  }

  /** Runs file operations one after another; a failed one does not stop the next. */
  private serially(operation: () => Promise<void>): Promise<void> {
    const run = this.tail.then(operation)
    this.tail = run.catch(() => undefined)
    this.lastFlush = run
    return run
  }

  /** The live entries (queued ones included) into a new file: temp, fsync, rename; then append to it. */
  private async rewrite(): Promise<void> {
    if (!this.path || this.closed) return
    const temp = `${this.path}.tmp`
    // Snapshot and take the queue in one synchronous step: a hash check()ed during the awaits below is
    // in neither, stays queued, and the durable() flush chained after this rewrite appends it to the new file.
    const lines = [...this.seen].map(([hash, {expires, sender}]) => `${hash} ${Math.ceil(expires)} ${sender}\n`)
    const taken = this.queued
    this.queued = []
    try {
      const out = await open(temp, 'w', 0o600)
      try {
        await out.writeFile(lines.join(''))
        await out.sync()
      } finally {
        await out.close()
      }
      try {
        await rename(temp, this.path)
      } catch (error) {
        await rm(temp, {force: true})
        throw error
      }
    } catch (error) {
      // Not rewritten: what was taken must still reach the (old) file.
      this.queued = [...taken, ...this.queued]
      throw error
    }
    const old = this.handle
    this.handle = undefined
    await old?.close()
    this.handle = await open(this.path, 'a', 0o600)
    this.fileLines = lines.length
  }
}
