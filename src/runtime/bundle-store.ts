import {createHash} from 'node:crypto'
import {readFileSync, readdirSync, rmSync, statSync, type Stats} from 'node:fs'
import {join} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {writeFileAtomic} from '../files.js'
import {formatBytes} from '../ui/bytes.js'

const HASH = /^[0-9a-f]{64}$/

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export interface BundleStoreOptions {
  /** Disk space all stored bundles may take (default 512 MiB); a put that collection cannot make room for is refused. */
  quotaBytes?: number
  /**
   * A bundle nothing references is kept this long after it was stored or last asked for (default 15 min),
   * so a deploy's upload is not collected before the UPDATE_CONFIG that uses it arrives.
   */
  graceMs?: number
  /** Hashes that kept pipeline versions (current, archived, history) reference: never collected. */
  referenced?: () => Iterable<string>
  /** A corrupt bundle removed, bundles collected (default: stderr). */
  onWarning?: (message: string) => void
}

export const DEFAULT_BUNDLE_QUOTA_BYTES = 512 * 1024 * 1024
export const DEFAULT_BUNDLE_GRACE_MS = 15 * 60_000

interface Entry {
  hash?: string
  file: string
  size: number
  mtimeMs: number
}

/**
 * Bundles stored by hash: `<dir>/<sha256>.mjs`. A bundle is re-hashed whenever its size or mtime is not
 * the one last verified, so `has` stays cheap and a truncated or altered file is found, removed and
 * reported missing (the next deploy uploads it again).
 *
 * What the folder holds is listed once (the first collection, at the node's start) and then kept by the
 * store's own writes and removals, so neither the quota check of a put nor the collection after each
 * change lists and stats the folder again. A put that would not fit lists it afresh before refusing (a
 * bundle removed by hand no longer counts); files put there by hand, or a temp file a failed write could
 * not remove, are seen at the next listing.
 */
export class BundleStore {
  readonly quotaBytes: number
  readonly graceMs: number
  private readonly verified = new Map<string, {size: number; mtimeMs: number; ino: number}>()
  /** Bundles being written, by hash. */
  private readonly writing = new Map<string, Promise<true>>()
  /** hash → when it was last stored or asked for (ms). */
  private readonly wanted = new Map<string, number>()
  /** The folder's bundles and leftover temp files by path: listed once, then kept by this store's writes and removals. */
  private index?: Map<string, Entry>
  private readonly referenced: () => Iterable<string>
  private readonly onWarning: (message: string) => void

  constructor(
    readonly dir: string,
    options: BundleStoreOptions = {},
  ) {
    this.quotaBytes = options.quotaBytes ?? DEFAULT_BUNDLE_QUOTA_BYTES
    this.graceMs = options.graceMs ?? DEFAULT_BUNDLE_GRACE_MS
    this.referenced = options.referenced ?? (() => [])
    this.onWarning = options.onWarning ?? ((message) => process.stderr.write(`r1 node: ${message}\n`))
  }

  path(hash: string): string {
    if (!HASH.test(hash)) throw new R1Error(`Not a bundle hash (64 hex digits): ${hash}`, ExitCode.USAGE, {code: 'BAD_BUNDLE_HASH'})
    return join(this.dir, `${hash}.mjs`)
  }

  /** Whether an intact bundle with this hash is stored (a corrupt one is removed and reported missing). */
  has(hash: string): boolean {
    if (!HASH.test(hash)) return false
    const ok = this.verify(hash)
    if (ok) this.wanted.set(hash, Date.now())
    return ok
  }

  /**
   * Stores bytes under their hash after checking that they hash to it and that they fit the quota;
   * false when an intact copy was already stored (nothing written).
   */
  async put(hash: string, bytes: Uint8Array): Promise<boolean> {
    const actual = sha256Hex(bytes)
    if (actual !== hash) {
      throw new R1Error(`Bundle content does not match its hash: expected ${hash}, got ${actual}`, ExitCode.REJECTED, {code: 'BUNDLE_HASH_MISMATCH', hint: 'Upload the bundle again; it was corrupted in transit.'})
    }
    // the same bundle put twice at once (two deploys racing) is written once: the second finds it stored
    const inFlight = this.writing.get(hash)
    if (inFlight) return inFlight.then(() => false, () => this.put(hash, bytes))
    if (this.has(hash)) return false
    const writing = this.write(hash, bytes)
    this.writing.set(hash, writing)
    try {
      return await writing
    } finally {
      this.writing.delete(hash)
    }
  }

  private async write(hash: string, bytes: Uint8Array): Promise<true> {
    if (this.usage() + bytes.length > this.quotaBytes) {
      this.index = undefined // listed afresh: the quota is decided on what the folder really holds
      this.collect()
      const used = this.usage()
      if (used + bytes.length > this.quotaBytes) {
        throw new R1Error(`Bundle ${hash.slice(0, 12)}… (${formatBytes(bytes.length)}) does not fit this node's bundle quota: ${formatBytes(used)} of ${formatBytes(this.quotaBytes)} used by bundles that kept pipeline versions or recent uploads need`, ExitCode.REJECTED, {
          code: 'BUNDLE_QUOTA',
          hint: 'Delete pipelines (or their archived versions) that are no longer needed, or start the node with a larger bundle quota.',
        })
      }
    }
    await writeFileAtomic(this.path(hash), bytes)
    this.wanted.set(hash, Date.now())
    this.remember(hash)
    return true
  }

  /** Bytes taken by stored bundles. */
  usage(): number {
    let total = 0
    for (const entry of this.entries().values()) if (entry.hash) total += entry.size
    return total
  }

  /**
   * Removes bundles that no kept pipeline version references and that were not stored or asked for
   * within the grace period (and leftovers of interrupted writes); returns the removed hashes.
   */
  collect(now = Date.now()): string[] {
    const keep = new Set(this.referenced())
    const removed: string[] = []
    let freed = 0
    const entries = this.entries()
    for (const entry of [...entries.values()]) {
      if (entry.hash && keep.has(entry.hash)) continue
      const lastWanted = Math.max(entry.mtimeMs, (entry.hash && this.wanted.get(entry.hash)) || 0)
      if (now - lastWanted < this.graceMs) continue
      try {
        rmSync(entry.file, {force: true})
      } catch {
        continue // tried again after the next change
      }
      entries.delete(entry.file)
      freed += entry.size
      if (entry.hash) {
        removed.push(entry.hash)
        this.verified.delete(entry.hash)
        this.wanted.delete(entry.hash)
      }
    }
    if (removed.length > 0) this.onWarning(`removed ${removed.length} bundle(s) no kept pipeline version uses (${formatBytes(freed)} freed)`)
    return removed
  }

  /** The index, listing the folder when there is none yet. */
  private entries(): Map<string, Entry> {
    if (this.index) return this.index
    const index = new Map<string, Entry>()
    let names: string[] = []
    try {
      names = readdirSync(this.dir)
    } catch {
      // none yet: the first put makes the folder
    }
    for (const name of names) {
      const hash = name.endsWith('.mjs') ? name.slice(0, -4) : undefined
      const temp = name.startsWith('.') && name.endsWith('.tmp')
      if (!(hash && HASH.test(hash)) && !temp) continue
      const file = join(this.dir, name)
      try {
        const stats = statSync(file)
        index.set(file, {...(hash && HASH.test(hash) ? {hash} : {}), file, size: stats.size, mtimeMs: stats.mtimeMs})
      } catch {
        // removed meanwhile
      }
    }
    return (this.index = index)
  }

  private verify(hash: string): boolean {
    const file = this.path(hash)
    let stats: Stats
    try {
      stats = statSync(file)
    } catch {
      this.verified.delete(hash)
      this.index?.delete(file)
      return false
    }
    const known = this.verified.get(hash)
    if (known && known.size === stats.size && known.mtimeMs === stats.mtimeMs && known.ino === stats.ino) return true
    let actual: string
    try {
      actual = sha256Hex(readFileSync(file))
    } catch {
      return false
    }
    if (actual !== hash) {
      this.verified.delete(hash)
      this.index?.delete(file)
      try {
        rmSync(file, {force: true})
      } catch {
        // reported missing either way; the upload overwrites it
      }
      this.onWarning(`bundle ${hash.slice(0, 12)}… was corrupt on disk (${stats.size} bytes hashing to ${actual.slice(0, 12)}…): removed; the next deploy uploads it again`)
      return false
    }
    this.intact(hash, file, stats)
    return true
  }

  private remember(hash: string): void {
    const file = this.path(hash)
    try {
      this.intact(hash, file, statSync(file))
    } catch {
      this.verified.delete(hash)
      this.index?.delete(file)
    }
  }

  /** Records `file` as the intact bundle `hash`, as `stats` describe it. */
  private intact(hash: string, file: string, stats: Stats): void {
    this.verified.set(hash, {size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino})
    this.index?.set(file, {hash, file, size: stats.size, mtimeMs: stats.mtimeMs})
  }
}

