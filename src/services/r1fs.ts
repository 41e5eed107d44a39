import {randomBytes} from 'node:crypto'
import {mkdir, open, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable, Transform, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {ExitCode, R1Error} from '../errors.js'
import {CID_PATTERN, CidHasher, decryptStream, encryptStream, secretCheck, secretMatches} from './r1fs-crypto.js'
import type {R1fs, R1fsEntry, R1fsFile} from './types.js'
import {formatBytes} from '../ui/bytes.js'

/** What a blob store keeps next to each file's stored bytes. */
export interface BlobMeta {
  filename: string
  /** Plaintext size. */
  size: number
  /** Bytes on disk (the encrypted format's when encrypted). */
  stored: number
  added: string
  /** Set when encrypted: tells a wrong secret from the right one (see r1fs-crypto.ts). */
  check?: string
}

/** Where R1FS keeps stored bytes and their metadata: the data dir, or a NATS object store. */
export interface BlobStore {
  /** Bytes the store uses now (for the quota). */
  usedBytes(): Promise<number>
  meta(cid: string): Promise<BlobMeta | undefined>
  /** Takes the fully written, fsynced spool file (moved or copied, then removed) and records it under cid; durable once resolved. */
  put(cid: string, spoolFile: string, meta: BlobMeta): Promise<void>
  open(cid: string): Promise<Readable>
  delete(cid: string): Promise<boolean>
  list(): Promise<Array<{cid: string; meta: BlobMeta}>>
  close(): Promise<void>
}

export interface R1fsOptions {
  /** Folder for uploads being written (same filesystem as the embedded store's files); emptied on open. */
  spoolDir: string
  /** Disk space all stored files may take, in bytes; undefined: no limit. */
  quotaBytes?: number
}

/**
 * R1FS over a blob store: content addressing, encryption, the quota and crash safety are here, so every
 * backend behaves the same. A file is streamed once to a spool file (hashed and, with a secret, encrypted
 * on the way), fsynced, then handed to the store: an interrupted add leaves only a spool file, removed
 * on the next open.
 */
export class BlobR1fs implements R1fs {
  /** Bytes of adds in progress, counted against the quota with what is stored. */
  private reserved = 0
  /** Bytes stored by adds since open: an add counts those finished after it read the store's use. */
  private committed = 0

  private constructor(
    private readonly store: BlobStore,
    private readonly options: R1fsOptions,
  ) {}

  static async open(store: BlobStore, options: R1fsOptions): Promise<BlobR1fs> {
    await rm(options.spoolDir, {recursive: true, force: true})
    await mkdir(options.spoolDir, {recursive: true, mode: 0o700})
    return new BlobR1fs(store, options)
  }

  async checkRoom(size: number): Promise<void> {
    const quota = this.options.quotaBytes
    if (quota === undefined) return
    const used = (await this.store.usedBytes()) + this.reserved
    if (used + size > quota) throw quotaError(quota, used)
  }

  async add(source: Readable | Buffer, options: {filename: string; secret?: string}): Promise<string> {
    const secret = options.secret === '' ? undefined : options.secret
    const hasher = new CidHasher(options.filename, secret)
    const spool = join(this.options.spoolDir, `${randomBytes(8).toString('hex')}.part`)
    const committedBefore = this.committed
    const storeUsed = this.options.quotaBytes === undefined ? 0 : await this.store.usedBytes()
    const used = () => storeUsed + this.committed - committedBefore
    let size = 0
    let stored = 0
    const quota = this.options.quotaBytes
    const handle = await open(spool, 'wx', 0o600)
    try {
      const hash = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hasher.update(chunk)
          size += chunk.length
          callback(null, chunk)
        },
      })
      const sink = new Writable({
        write: (chunk: Buffer, _encoding, callback) => {
          if (quota !== undefined && used() + this.reserved + chunk.length > quota) {
            callback(quotaError(quota, used() + this.reserved))
            return
          }
          this.reserved += chunk.length
          stored += chunk.length
          handle.write(chunk).then(() => callback(), callback)
        },
      })
      const input = Buffer.isBuffer(source) ? Readable.from([source]) : source
      await (secret === undefined ? pipeline(input, hash, sink) : pipeline(input, hash, encryptStream(secret), sink))
      await handle.sync()
    } catch (error) {
      this.reserved -= stored
      await handle.close()
      await rm(spool, {force: true})
      throw error
    }
    await handle.close()
    const cid = hasher.digest()
    try {
      if (!(await this.store.meta(cid))) {
        const meta: BlobMeta = {filename: options.filename, size, stored, added: new Date().toISOString(), ...(secret === undefined ? {} : {check: secretCheck(secret)})}
        await this.store.put(cid, spool, meta)
        this.committed += stored
      }
    } finally {
      this.reserved -= stored
      await rm(spool, {force: true})
    }
    return cid
  }

  async get(cid: string, secret?: string): Promise<R1fsFile | undefined> {
    if (!CID_PATTERN.test(cid)) return undefined
    const meta = await this.store.meta(cid)
    if (!meta) return undefined
    if (meta.check !== undefined && (!secret || !secretMatches(secret, meta.check))) return undefined
    const store = this.store
    return {
      filename: meta.filename,
      size: meta.size,
      stream(): Readable {
        const out = meta.check === undefined ? new Transform({transform: (chunk, _encoding, callback) => callback(null, chunk)}) : decryptStream(secret!)
        store.open(cid).then(
          (stored) => {
            stored.on('error', (error) => out.destroy(error))
            stored.pipe(out)
          },
          (error: Error) => out.destroy(error),
        )
        return out
      },
    }
  }

  async delete(cid: string): Promise<boolean> {
    return CID_PATTERN.test(cid) && this.store.delete(cid)
  }

  async list(): Promise<R1fsEntry[]> {
    const entries = await this.store.list()
    return entries.map(({cid, meta}) => ({cid, filename: meta.filename, size: meta.size, encrypted: meta.check !== undefined, added: meta.added})).sort((a, b) => a.added.localeCompare(b.added) || a.cid.localeCompare(b.cid))
  }

  close(): Promise<void> {
    return this.store.close()
  }
}

function quotaError(quota: number, used: number): R1Error {
  return new R1Error(`R1FS is full: the file does not fit in the ${formatBytes(quota)} quota (${formatBytes(used)} used)`, ExitCode.FAILURE, {
    code: 'R1FS_QUOTA',
    hint: 'Delete files no longer needed (r1 r1fs rm <cid>), or start the node with a larger --r1fs-quota.',
  })
}
