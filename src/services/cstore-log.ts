import {mkdir, open, readFile, truncate, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {writeFileAtomic} from '../files.js'
import type {CStore, JsonValue} from './types.js'
import {formatBytes} from '../ui/bytes.js'

/** One change, one line of the log: `["s", key, value]` or `["h", hkey, field, value]`; a null value deletes. */
type Change = ['s', string, JsonValue] | ['h', string, string, JsonValue]

interface Pending {
  change: Change
  done: (error?: Error) => void
}

/** The log is rewritten with only live entries once it holds this many lines and twice as many as live entries. */
const COMPACT_MIN_LINES = 1000

/** The live data the embedded store holds (in memory, and on disk once compacted): 256 MiB of log lines. */
export const CSTORE_MAX_BYTES = 256 * 1024 * 1024

/** A key's (or a hash field's) place in the byte count. */
const slot = (change: Change): string => (change[0] === 's' ? JSON.stringify(['s', change[1]]) : JSON.stringify(['h', change[1], change[2]]))
const lineBytes = (change: Change): number => (change.at(-1) === null ? 0 : Buffer.byteLength(JSON.stringify(change)) + 1)

/**
 * CStore's embedded backend: the whole store in memory, every change appended to `cstore.log` (one
 * JSON line) and fsynced before it is acknowledged; changes arriving together share one fsync. Keys
 * and fields are JSON strings inside the log, never file names, so any string works. On open the log
 * is replayed; a torn last line (a crash mid-append, never acknowledged) is cut off; a damaged line
 * elsewhere is an error and the file is left as it is. The log is compacted by writing the live
 * entries to a new file that atomically replaces it.
 */
export class LogCStore implements CStore {
  private readonly values = new Map<string, JsonValue>()
  private readonly hashes = new Map<string, Map<string, JsonValue>>()
  private queue: Pending[] = []
  private flushing: Promise<void> | undefined
  private closed = false
  /** Bytes of the live entries' log lines, per slot and in all (what is queued counts too). */
  private readonly sizes = new Map<string, number>()
  private liveBytes = 0

  private constructor(
    private readonly maxBytes: number,
    private readonly path: string,
    private handle: FileHandle,
    private lines: number,
    /** Bytes of complete lines: a failed append is cut back to it, so no half line stays in the log. */
    private bytes: number,
  ) {}

  static async open(dir: string, options: {maxBytes?: number} = {}): Promise<LogCStore> {
    await mkdir(dir, {recursive: true, mode: 0o700})
    const path = join(dir, 'cstore.log')
    let text = ''
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    const end = text.lastIndexOf('\n') + 1
    if (end < text.length) await truncate(path, Buffer.byteLength(text.slice(0, end)))
    const store = new LogCStore(options.maxBytes ?? CSTORE_MAX_BYTES, path, await open(path, 'a', 0o600), 0, Buffer.byteLength(text.slice(0, end)))
    const lines = text.slice(0, end).split('\n')
    lines.pop()
    for (const [index, line] of lines.entries()) {
      let change: Change
      try {
        change = JSON.parse(line) as Change
      } catch {
        await store.handle.close()
        throw new R1Error(`CStore's log ${path} is damaged at line ${index + 1}: not JSON`, ExitCode.FAILURE, {
          code: 'CSTORE_CORRUPT',
          hint: `Nothing was changed. Restore ${path} from a backup, or move it aside to start with an empty CStore.`,
        })
      }
      store.apply(change)
      store.count(change)
    }
    store.lines = lines.length
    return store
  }

  async get(key: string): Promise<JsonValue> {
    return this.values.get(key) ?? null
  }

  set(key: string, value: JsonValue): Promise<boolean> {
    return this.write(['s', key, value])
  }

  async hget(hkey: string, field: string): Promise<JsonValue> {
    return this.hashes.get(hkey)?.get(field) ?? null
  }

  hset(hkey: string, field: string, value: JsonValue): Promise<boolean> {
    return this.write(['h', hkey, field, value])
  }

  async hgetall(hkey: string): Promise<Record<string, JsonValue>> {
    return Object.fromEntries(this.hashes.get(hkey) ?? [])
  }

  async hkeys(hkey: string): Promise<string[]> {
    return [...(this.hashes.get(hkey)?.keys() ?? [])]
  }

  async keys(): Promise<string[]> {
    return [...this.values.keys()]
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.flushing
    await this.handle.close()
  }

  private apply(change: Change): void {
    if (change[0] === 's') {
      const [, key, value] = change
      if (value === null) this.values.delete(key)
      else this.values.set(key, value)
      return
    }
    const [, hkey, field, value] = change
    let hash = this.hashes.get(hkey)
    if (value === null) {
      hash?.delete(field)
      if (hash?.size === 0) this.hashes.delete(hkey)
      return
    }
    if (!hash) this.hashes.set(hkey, (hash = new Map()))
    hash.set(field, value)
  }

  /** Moves a change's slot to its new size; deletes free their bytes. */
  private count(change: Change): number {
    const key = slot(change)
    const delta = lineBytes(change) - (this.sizes.get(key) ?? 0)
    if (lineBytes(change) === 0) this.sizes.delete(key)
    else this.sizes.set(key, lineBytes(change))
    this.liveBytes += delta
    return delta
  }

  private write(change: Change): Promise<boolean> {
    if (this.closed) return Promise.reject(new R1Error('CStore is closed', ExitCode.FAILURE, {code: 'CSTORE_CLOSED'}))
    const key = slot(change)
    if (this.liveBytes + lineBytes(change) - (this.sizes.get(key) ?? 0) > this.maxBytes) {
      return Promise.reject(new R1Error(`CStore is full: it holds at most ${formatBytes(this.maxBytes)} of keys and values, and this value does not fit.`, ExitCode.FAILURE, {code: 'CSTORE_FULL', hint: 'Delete keys no longer needed (set them to null), or keep large data in R1FS and store its cid.'}))
    }
    // counted now, so that concurrent writes cannot pass the bound together; a failed write gives its bytes back
    const previous = this.sizes.get(key) ?? 0
    this.count(change)
    const undo = () => {
      this.liveBytes += previous - (this.sizes.get(key) ?? 0)
      if (previous === 0) this.sizes.delete(key)
      else this.sizes.set(key, previous)
    }
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({change, done: (error) => (error ? (undo(), reject(error)) : resolve(true))})
      this.flushing ??= this.flush()
    })
  }

  /** Writes and fsyncs everything queued, batch after batch, then applies each change and acknowledges it. */
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue
      this.queue = []
      const text = batch.map((p) => JSON.stringify(p.change) + '\n').join('')
      try {
        await this.handle.write(text)
        await this.handle.datasync()
        this.bytes += Buffer.byteLength(text)
      } catch (error) {
        await this.handle.truncate(this.bytes).catch(() => undefined)
        for (const p of batch) p.done(new R1Error(`CStore could not write ${this.path}: ${(error as Error).message}`, ExitCode.FAILURE, {code: 'CSTORE_WRITE'}))
        continue
      }
      for (const p of batch) {
        this.apply(p.change)
        p.done()
      }
      this.lines += batch.length
      // a failed compaction leaves the complete old log; a write after it reports its own error
      await this.compactIfWorthIt().catch(() => undefined)
    }
    this.flushing = undefined
  }

  private liveEntries(): number {
    let count = this.values.size
    for (const hash of this.hashes.values()) count += hash.size
    return count
  }

  private async compactIfWorthIt(): Promise<void> {
    const live = this.liveEntries()
    if (this.lines < COMPACT_MIN_LINES || this.lines < 2 * live) return
    const changes: string[] = []
    for (const [key, value] of this.values) changes.push(JSON.stringify(['s', key, value]) + '\n')
    for (const [hkey, hash] of this.hashes) for (const [field, value] of hash) changes.push(JSON.stringify(['h', hkey, field, value]) + '\n')
    await writeFileAtomic(this.path, changes.join(''), {mode: 0o600})
    await this.handle.close()
    this.handle = await open(this.path, 'a', 0o600)
    this.lines = changes.length
    this.bytes = (await this.handle.stat()).size
  }
}
