import {createHash, type Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {appendFile, mkdir, rm} from 'node:fs/promises'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {R1Error} from '../errors.js'
import {assertCommandLimits} from '../protocol/limits.js'
import type {PayloadOf, ResultOf} from '../protocol/messages.js'
import {R1FS_CHUNK_BYTES, R1FS_LIST_PAGE, type R1fsAdd, type ServiceAction} from '../protocol/services.js'
import type {NodeServices, R1fsFile} from '../services/types.js'
import type {CommandMeta} from './contract.js'

/**
 * The CStore and R1FS actions of the signed protocol (PROTOCOL.md, "CStore and R1FS"), answered by the server for
 * allow-listed senders over the node's services. R1FS uploads are spooled to one file per upload on disk
 * (emptied at start), hashed as they arrive and handed to the store as a stream once complete and
 * verified; downloads keep a reader per sender and file so that sequential chunks cost one pass.
 */

export interface ServiceActionLimits {
  /** Uploads (and, separately, downloads) in progress per sender. */
  perSender: number
  /** An upload or download with no chunk for this long is dropped. */
  idleMs: number
}

const DEFAULT_LIMITS: ServiceActionLimits = {perSender: 4, idleMs: 60_000}

interface Upload {
  sender: string
  id: string
  first: Omit<R1fsAdd, 'INDEX' | 'DATA'>
  file: string
  digest: Hash
  received: number
  bytes: number
  lastActive: number
  chain: Promise<unknown>
  discarded: boolean
}

interface Download {
  key: string
  sender: string
  file: R1fsFile
  stream: Readable
  iterator: AsyncIterator<Buffer>
  /** Bytes read from the stream but not sent yet. */
  pending: Buffer
  /** File offset of `pending`'s first byte. */
  position: number
  lastActive: number
  chain: Promise<unknown>
}

const failed = (message: string) => new R1Error(message, 1)

export class ServiceActions {
  private readonly uploads = new Map<string, Upload>()
  private readonly downloads = new Map<string, Download>()

  private constructor(
    private readonly spoolDir: string,
    private readonly services: () => NodeServices | undefined,
    private readonly limits: ServiceActionLimits,
    private readonly now: () => number,
  ) {}

  /** Empties the spool dir (partial uploads do not survive a restart). `services` is read at each command (a node may have none). */
  static async open(spoolDir: string, services: () => NodeServices | undefined, limits: Partial<ServiceActionLimits> = {}, now: () => number = Date.now): Promise<ServiceActions> {
    await rm(spoolDir, {recursive: true, force: true})
    await mkdir(spoolDir, {recursive: true, mode: 0o700})
    return new ServiceActions(spoolDir, services, {...DEFAULT_LIMITS, ...limits}, now)
  }

  /** Runs one service action (payload already checked against its schema); a failure throws and changes nothing. */
  async run<A extends ServiceAction>(action: A, payload: PayloadOf<A>, meta: CommandMeta): Promise<ResultOf<A>> {
    assertCommandLimits(action, payload)
    const services = this.services()
    if (!services) throw failed('This node runs no CStore/R1FS services')
    const secret = (payload as {SECRET?: string} | null | undefined)?.SECRET
    if (secret !== undefined && !meta.encrypted) throw failed(`${action} carries a SECRET: it is accepted only encrypted to this node's key (EE_IS_ENCRYPTED)`)
    return (await this.dispatch(action, payload, meta.sender, services)) as ResultOf<A>
  }

  private async dispatch(action: ServiceAction, payload: unknown, sender: string, services: NodeServices): Promise<unknown> {
    const {cstore, r1fs} = services
    switch (action) {
      case 'R1_CSTORE_GET': {
        const {KEY} = payload as PayloadOf<'R1_CSTORE_GET'>
        return {KEY, VALUE: await cstore.get(KEY)}
      }
      case 'R1_CSTORE_SET': {
        const {KEY, VALUE} = payload as PayloadOf<'R1_CSTORE_SET'>
        return {KEY, STORED: await cstore.set(KEY, VALUE)}
      }
      case 'R1_CSTORE_HGET': {
        const {HKEY, FIELD} = payload as PayloadOf<'R1_CSTORE_HGET'>
        return {HKEY, FIELD, VALUE: await cstore.hget(HKEY, FIELD)}
      }
      case 'R1_CSTORE_HSET': {
        const {HKEY, FIELD, VALUE} = payload as PayloadOf<'R1_CSTORE_HSET'>
        return {HKEY, FIELD, STORED: await cstore.hset(HKEY, FIELD, VALUE)}
      }
      case 'R1_CSTORE_HGETALL': {
        const {HKEY} = payload as PayloadOf<'R1_CSTORE_HGETALL'>
        return {HKEY, FIELDS: await cstore.hgetall(HKEY)}
      }
      case 'R1_CSTORE_HKEYS': {
        const {HKEY} = payload as PayloadOf<'R1_CSTORE_HKEYS'>
        return {HKEY, FIELDS: await cstore.hkeys(HKEY)}
      }
      case 'R1_R1FS_ADD':
        return this.add(sender, payload as R1fsAdd, services)
      case 'R1_R1FS_GET':
        return this.get(sender, payload as PayloadOf<'R1_R1FS_GET'>, services)
      case 'R1_R1FS_LS': {
        const after = (payload as PayloadOf<'R1_R1FS_LS'>)?.AFTER
        const files = (await r1fs.list()).filter((f) => after === undefined || f.cid > after).sort((a, b) => (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0))
        const page = files.slice(0, R1FS_LIST_PAGE)
        return {
          FILES: page.map((f) => ({CID: f.cid, FILENAME: f.filename, SIZE: f.size, ENCRYPTED: f.encrypted, ADDED: f.added})),
          NEXT: files.length > page.length ? page[page.length - 1].cid : null,
        }
      }
      case 'R1_R1FS_RM': {
        const {CID} = payload as PayloadOf<'R1_R1FS_RM'>
        for (const download of this.downloads.values()) if (download.key.startsWith(`${sender}\0${CID}\0`)) this.dropDownload(download)
        return {CID, DELETED: await r1fs.delete(CID)}
      }
    }
  }

  // ---- uploads

  private async add(sender: string, chunk: R1fsAdd, services: NodeServices): Promise<ResultOf<'R1_R1FS_ADD'>> {
    const key = `${sender}\0${chunk.UPLOAD}`
    const {INDEX: _index, DATA: _data, ...first} = chunk
    let upload = this.uploads.get(key)
    if (upload && JSON.stringify(upload.first) !== JSON.stringify(first)) {
      await this.discard(upload)
      throw failed(`Chunk ${chunk.INDEX} of upload ${chunk.UPLOAD} does not match its first chunk (FILENAME, SIZE, SHA256, COUNT and SECRET must stay the same); upload discarded`)
    }
    if (!upload) {
      if (chunk.INDEX !== 0) throw failed(`No upload ${chunk.UPLOAD} in progress (it expired, or a chunk was refused): send it again from chunk 0`)
      const inProgress = [...this.uploads.values()].filter((u) => u.sender === sender).length
      if (inProgress >= this.limits.perSender) {
        throw failed(`Too many R1FS uploads in progress from ${sender} (${inProgress}); finish one, or wait ${Math.round(this.limits.idleMs / 1000)} s for abandoned ones to expire`)
      }
      // a file that cannot fit is refused at its first chunk, before the client sends the rest
      await services.r1fs.checkRoom(chunk.SIZE)
      upload = {sender, id: chunk.UPLOAD, first, file: join(this.spoolDir, `${createHash('sha256').update(sender).digest('hex').slice(0, 16)}-${chunk.UPLOAD}`), digest: createHash('sha256'), received: 0, bytes: 0, lastActive: this.now(), chain: Promise.resolve(), discarded: false}
      this.uploads.set(key, upload)
    }
    upload.lastActive = this.now()
    const current = upload
    const step = current.chain.then(() => this.write(current, chunk, services))
    current.chain = step.catch(() => undefined)
    return step
  }

  private async write(upload: Upload, chunk: R1fsAdd, services: NodeServices): Promise<ResultOf<'R1_R1FS_ADD'>> {
    const state = (cid: string | null) => ({UPLOAD: upload.id, RECEIVED: upload.received, COUNT: upload.first.COUNT, CID: cid})
    if (upload.discarded) throw failed(`Upload ${upload.id} was discarded; send it again from chunk 0`)
    // a chunk sent again (its answer was lost) is accepted once
    if (chunk.INDEX < upload.received) return state(null)
    if (chunk.INDEX > upload.received) {
      await this.discard(upload)
      throw failed(`Chunk ${chunk.INDEX} of upload ${upload.id} came before chunk ${upload.received}: chunks go in order; upload discarded`)
    }
    const data = Buffer.from(chunk.DATA, 'base64')
    const last = chunk.INDEX === upload.first.COUNT - 1
    const expected = last ? upload.first.SIZE - upload.bytes : R1FS_CHUNK_BYTES
    if (data.length !== expected) {
      await this.discard(upload)
      throw failed(`Chunk ${chunk.INDEX} of upload ${upload.id} holds ${data.length} bytes; expected ${expected} (chunks of ${R1FS_CHUNK_BYTES} bytes, SIZE ${upload.first.SIZE} in all); upload discarded`)
    }
    try {
      await appendFile(upload.file, data, {mode: 0o600})
    } catch (error) {
      await this.discard(upload)
      throw failed(`Cannot spool upload ${upload.id}: ${(error as Error).message}; upload discarded`)
    }
    upload.digest.update(data)
    upload.received++
    upload.bytes += data.length
    if (!last) return state(null)
    try {
      const actual = upload.digest.digest('hex')
      if (actual !== upload.first.SHA256) throw failed(`The bytes of upload ${upload.id} hash to ${actual.slice(0, 12)}…, not SHA256 ${upload.first.SHA256.slice(0, 12)}…; nothing stored`)
      const {FILENAME, SECRET} = upload.first
      const cid = await services.r1fs.add(createReadStream(upload.file), {filename: FILENAME, ...(SECRET === undefined ? {} : {secret: SECRET})})
      return state(cid)
    } finally {
      await this.discard(upload)
    }
  }

  private async discard(upload: Upload): Promise<void> {
    upload.discarded = true
    const key = `${upload.sender}\0${upload.id}`
    if (this.uploads.get(key) === upload) this.uploads.delete(key)
    await rm(upload.file, {force: true})
  }

  // ---- downloads

  private async get(sender: string, request: PayloadOf<'R1_R1FS_GET'>, services: NodeServices): Promise<ResultOf<'R1_R1FS_GET'>> {
    const secretTag = request.SECRET === undefined ? '' : createHash('sha256').update(request.SECRET).digest('hex')
    const key = `${sender}\0${request.CID}\0${secretTag}`
    let download = this.downloads.get(key)
    if (download && download.position > request.OFFSET) {
      this.dropDownload(download)
      download = undefined
    }
    if (!download) {
      const file = await services.r1fs.get(request.CID, request.SECRET)
      if (!file) return null
      const mine = [...this.downloads.values()].filter((d) => d.sender === sender)
      if (mine.length >= this.limits.perSender) this.dropDownload(mine.sort((a, b) => a.lastActive - b.lastActive)[0])
      const stream = file.stream()
      download = {key, sender, file, stream, iterator: stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>, pending: Buffer.alloc(0), position: 0, lastActive: this.now(), chain: Promise.resolve()}
      this.downloads.set(key, download)
    }
    download.lastActive = this.now()
    const current = download
    const step = current.chain.then(() => this.read(current, request.OFFSET))
    current.chain = step.catch(() => undefined)
    return step
  }

  /** The chunk at `offset` (skipping what comes before it), from the download's stream. */
  private async read(download: Download, offset: number): Promise<NonNullable<ResultOf<'R1_R1FS_GET'>>> {
    const {file} = download
    const want = Math.max(0, Math.min(R1FS_CHUNK_BYTES, file.size - offset))
    try {
      while (download.position + download.pending.length < offset + want) {
        const next = await download.iterator.next()
        if (next.done) break
        download.pending = Buffer.concat([download.pending, next.value])
        // skip what lies before the offset asked for, so memory stays about one chunk
        const skip = Math.min(download.pending.length, Math.max(0, offset - download.position))
        download.pending = download.pending.subarray(skip)
        download.position += skip
      }
    } catch (error) {
      this.dropDownload(download)
      throw failed(`Cannot read ${download.key.split('\0')[1]}: ${(error as Error).message}`)
    }
    const start = Math.max(0, offset - download.position)
    const data = download.pending.subarray(start, start + want)
    download.pending = download.pending.subarray(start + want)
    download.position = offset + data.length
    if (download.position >= file.size) this.dropDownload(download)
    return {CID: download.key.split('\0')[1], FILENAME: file.filename, SIZE: file.size, OFFSET: offset, DATA: data.toString('base64')}
  }

  private dropDownload(download: Download): void {
    if (this.downloads.get(download.key) === download) this.downloads.delete(download.key)
    download.stream.destroy()
  }

  /** Drops uploads and downloads idle for longer than the limit. */
  expire(): void {
    const now = this.now()
    for (const upload of this.uploads.values()) if (now - upload.lastActive > this.limits.idleMs) void this.discard(upload)
    for (const download of this.downloads.values()) if (now - download.lastActive > this.limits.idleMs) this.dropDownload(download)
  }

  async close(): Promise<void> {
    for (const download of this.downloads.values()) this.dropDownload(download)
    await Promise.all([...this.uploads.values()].map((u) => this.discard(u)))
    await rm(this.spoolDir, {recursive: true, force: true})
  }
}
