import {createHash} from 'node:crypto'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {R1Error} from '../errors.js'
import {BUNDLE_CHUNK_BYTES, type BundlePut} from '../protocol/messages.js'

/**
 * Bundle reassembly (R1_BUNDLE_PUT): chunks are spooled to disk, one file per chunk under the spool
 * dir (emptied at start), never held in memory. Each sender has its own few upload slots; an upload
 * idle for `idleMs` is dropped, and so is one with a refused chunk. A complete bundle is checked
 * (SIZE and sha256) and only then handed to the store. A bundle sent in one chunk (most are) is
 * complete as it arrives: checked and stored from that chunk, with no spool file and no slot.
 */
export interface BundleStore {
  hasBundle(hash: string): boolean
  putBundle(hash: string, bytes: Uint8Array): Promise<void>
}

export interface UploadLimits {
  /** Uploads in progress per sender. */
  perSender: number
  /** An upload with no chunk for this long is dropped. */
  idleMs: number
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = {perSender: 4, idleMs: 60_000}

export interface BundlePutResult {
  HASH: string
  RECEIVED: number
  COUNT: number
  STORED: boolean
}

interface Upload {
  sender: string
  hash: string
  size: number
  count: number
  dir: string
  /** Bytes of each chunk received (undefined: not yet). */
  chunkBytes: Array<number | undefined>
  received: number
  bytes: number
  lastActive: number
  /** Chunks of one upload are written one after another. */
  chain: Promise<unknown>
  discarded: boolean
}

export class BundleUploads {
  private readonly uploads = new Map<string, Upload>()
  private nextId = 0

  private constructor(
    readonly spoolDir: string,
    private readonly store: BundleStore,
    private readonly limits: UploadLimits,
    private readonly now: () => number,
  ) {}

  /** Empties the spool dir (partial uploads do not survive a restart) and returns the reassembler. */
  static async open(spoolDir: string, store: BundleStore, limits: Partial<UploadLimits> = {}, now: () => number = Date.now): Promise<BundleUploads> {
    await rm(spoolDir, {recursive: true, force: true})
    await mkdir(spoolDir, {recursive: true, mode: 0o700})
    return new BundleUploads(spoolDir, store, {...DEFAULT_UPLOAD_LIMITS, ...limits}, now)
  }

  /** Uploads in progress (of one sender). */
  count(sender?: string): number {
    let n = 0
    for (const upload of this.uploads.values()) if (sender === undefined || upload.sender === sender) n++
    return n
  }

  async put(sender: string, chunk: BundlePut): Promise<BundlePutResult> {
    if (this.store.hasBundle(chunk.HASH)) return {HASH: chunk.HASH, RECEIVED: chunk.COUNT, COUNT: chunk.COUNT, STORED: true}
    const key = `${sender} ${chunk.HASH}`
    let upload = this.uploads.get(key)
    if (upload && (upload.size !== chunk.SIZE || upload.count !== chunk.COUNT)) {
      await this.discard(upload)
      upload = undefined
    }
    if (!upload && chunk.COUNT === 1) return this.putWhole(chunk)
    if (!upload) {
      const inProgress = this.count(sender)
      if (inProgress >= this.limits.perSender) {
        throw new R1Error(
          `Too many bundle uploads in progress from ${sender} (${inProgress}); finish one, or wait ${Math.round(this.limits.idleMs / 1000)} s for abandoned ones to expire`,
          1,
        )
      }
      const dir = join(this.spoolDir, `${++this.nextId}-${chunk.HASH.slice(0, 16)}`)
      upload = {sender, hash: chunk.HASH, size: chunk.SIZE, count: chunk.COUNT, dir, chunkBytes: new Array(chunk.COUNT), received: 0, bytes: 0, lastActive: this.now(), chain: mkdir(dir, {recursive: true}).catch(() => undefined), discarded: false}
      this.uploads.set(key, upload)
    }
    upload.lastActive = this.now()
    const data = Buffer.from(chunk.DATA, 'base64')
    if (data.length > BUNDLE_CHUNK_BYTES) {
      await this.discard(upload)
      throw new R1Error(`Chunk ${chunk.INDEX} holds ${data.length} bytes; at most ${BUNDLE_CHUNK_BYTES} per chunk; upload discarded`, 1)
    }
    const current = upload
    const step = current.chain.then(() => this.write(current, chunk.INDEX, data))
    current.chain = step.catch(() => undefined)
    return step
  }

  /** Drops uploads idle for longer than the limit. */
  expire(): void {
    const now = this.now()
    for (const upload of this.uploads.values()) if (now - upload.lastActive > this.limits.idleMs) void this.discard(upload)
  }

  async close(): Promise<void> {
    await Promise.all([...this.uploads.values()].map((u) => this.discard(u)))
    await rm(this.spoolDir, {recursive: true, force: true})
  }

  private async write(upload: Upload, index: number, data: Buffer): Promise<BundlePutResult> {
    const {hash} = upload
    if (upload.discarded) throw new R1Error(`Upload of bundle ${hash.slice(0, 12)}… was discarded; send it again from chunk 0`, 1)
    const previous = upload.chunkBytes[index]
    if (upload.bytes - (previous ?? 0) + data.length > upload.size) {
      await this.discard(upload)
      throw new R1Error(`Bundle ${hash.slice(0, 12)}… chunks exceed its SIZE ${upload.size}; upload discarded`, 1)
    }
    try {
      await writeFile(join(upload.dir, String(index)), data)
    } catch (error) {
      await this.discard(upload)
      throw new R1Error(`Cannot spool bundle ${hash.slice(0, 12)}…: ${(error as Error).message}; upload discarded`, 1)
    }
    if (previous === undefined) upload.received++
    upload.bytes += data.length - (previous ?? 0)
    upload.chunkBytes[index] = data.length
    if (upload.received < upload.count) return {HASH: hash, RECEIVED: upload.received, COUNT: upload.count, STORED: false}
    try {
      const parts: Buffer[] = []
      for (let i = 0; i < upload.count; i++) parts.push(await readFile(join(upload.dir, String(i))))
      await this.store.putBundle(hash, checked(hash, upload.size, Buffer.concat(parts)))
    } finally {
      await this.discard(upload)
    }
    return {HASH: hash, RECEIVED: upload.count, COUNT: upload.count, STORED: true}
  }

  /** A bundle in one chunk: checked and stored as it is. */
  private async putWhole(chunk: BundlePut): Promise<BundlePutResult> {
    const data = Buffer.from(chunk.DATA, 'base64')
    if (data.length > BUNDLE_CHUNK_BYTES) throw new R1Error(`Chunk ${chunk.INDEX} holds ${data.length} bytes; at most ${BUNDLE_CHUNK_BYTES} per chunk; nothing stored`, 1)
    await this.store.putBundle(chunk.HASH, checked(chunk.HASH, chunk.SIZE, data))
    return {HASH: chunk.HASH, RECEIVED: 1, COUNT: 1, STORED: true}
  }

  /** Frees the slot and the spool files. */
  private async discard(upload: Upload): Promise<void> {
    upload.discarded = true
    const key = `${upload.sender} ${upload.hash}`
    if (this.uploads.get(key) === upload) this.uploads.delete(key)
    await rm(upload.dir, {recursive: true, force: true})
  }
}

/** The bundle's bytes when they are SIZE long and hash to HASH; otherwise why not (nothing is stored). */
function checked(hash: string, size: number, bytes: Buffer): Uint8Array {
  if (bytes.length !== size) throw new R1Error(`Bundle ${hash.slice(0, 12)}… has ${bytes.length} bytes, SIZE says ${size}; upload discarded`, 1)
  const actual = createHash('sha256').update(bytes).digest('hex')
  if (actual !== hash) throw new R1Error(`Bundle bytes hash to ${actual.slice(0, 12)}…, not ${hash.slice(0, 12)}…; upload discarded, nothing stored`, 1)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
