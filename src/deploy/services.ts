import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {open, rename, rm, stat} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {syncDir} from '../files.js'
import {COMMAND_LIMITS} from '../protocol/limits.js'
import {R1FS_CHUNK_BYTES} from '../protocol/services.js'
import {CID_PATTERN, CidHasher} from '../services/r1fs-crypto.js'
import type {JsonValue} from '../services/types.js'
import type {NodeLink} from '../fleet/engine.js'
import {formatBytes} from '../ui/bytes.js'

/**
 * `r1 cstore …` and `r1 r1fs …`: a node's CStore and R1FS over the signed protocol (the R1_CSTORE_* and
 * R1_R1FS_* actions), one operation per target through `manage`. A payload carrying a file's secret
 * travels encrypted to the node's key.
 */

/**
 * A value given on the command line: JSON (`42`, `true`, `null`, `"text"`, `{"a": 1}`), or with
 * `asString` the text as it is. Text that is not JSON is a usage error, never guessed at.
 */
export function parseStoreValue(raw: string, asString = false): JsonValue {
  if (asString) return raw
  try {
    return JSON.parse(raw) as JsonValue
  } catch {
    const shown = raw.length > 40 ? `${raw.slice(0, 40)}…` : raw
    throw new R1Error(`The value ${JSON.stringify(shown)} is not JSON.`, ExitCode.USAGE, {
      code: 'VALUE_NOT_JSON',
      hint: `Pass --string to store it as text, or quote it as JSON: '${JSON.stringify(shown)}'.`,
    })
  }
}

const notFound = (message: string, code: string, hint: string) => new R1Error(message, ExitCode.FAILURE, {code, hint})

export async function cstoreGet(link: NodeLink, key: string): Promise<{key: string; value: JsonValue}> {
  const {VALUE} = await link.request('R1_CSTORE_GET', {KEY: key})
  if (VALUE === null) throw notFound(`Key ${JSON.stringify(key)} is not set on ${link.alias}`, 'KEY_NOT_FOUND', `Set it with: r1 cstore set ${shellWord(key)} <json>`)
  return {key, value: VALUE}
}

export async function cstoreSet(link: NodeLink, key: string, value: JsonValue): Promise<{key: string; stored: boolean; deleted?: true}> {
  const {STORED} = await link.request('R1_CSTORE_SET', {KEY: key, VALUE: value})
  if (!STORED) throw new R1Error(`${link.alias} did not store key ${JSON.stringify(key)}`, ExitCode.FAILURE, {code: 'NOT_STORED'})
  return {key, stored: true, ...(value === null ? {deleted: true as const} : {})}
}

export async function cstoreHget(link: NodeLink, hkey: string, field: string): Promise<{hkey: string; field: string; value: JsonValue}> {
  const {VALUE} = await link.request('R1_CSTORE_HGET', {HKEY: hkey, FIELD: field})
  if (VALUE === null) throw notFound(`Field ${JSON.stringify(field)} of hash ${JSON.stringify(hkey)} is not set on ${link.alias}`, 'KEY_NOT_FOUND', `r1 cstore hgetall ${shellWord(hkey)} lists the fields it has.`)
  return {hkey, field, value: VALUE}
}

export async function cstoreHset(link: NodeLink, hkey: string, field: string, value: JsonValue): Promise<{hkey: string; field: string; stored: boolean; deleted?: true}> {
  const {STORED} = await link.request('R1_CSTORE_HSET', {HKEY: hkey, FIELD: field, VALUE: value})
  if (!STORED) throw new R1Error(`${link.alias} did not store field ${JSON.stringify(field)} of ${JSON.stringify(hkey)}`, ExitCode.FAILURE, {code: 'NOT_STORED'})
  return {hkey, field, stored: true, ...(value === null ? {deleted: true as const} : {})}
}

/** Every field of a hash; an unknown hash has none (`{}`, not an error, as in Ratio1). */
export async function cstoreHgetall(link: NodeLink, hkey: string): Promise<{hkey: string; fields: Record<string, JsonValue>}> {
  const {FIELDS} = await link.request('R1_CSTORE_HGETALL', {HKEY: hkey})
  return {hkey, fields: FIELDS}
}

/** The field names of a hash, without their values; an unknown hash has none (`[]`). */
export async function cstoreHkeys(link: NodeLink, hkey: string): Promise<{hkey: string; fields: string[]}> {
  const {FIELDS} = await link.request('R1_CSTORE_HKEYS', {HKEY: hkey})
  return {hkey, fields: FIELDS}
}

/** A local file to add: read once to hash it (the node checks the hash before it stores anything). */
export interface LocalFile {
  path: string
  filename: string
  size: number
  sha256: string
}

/** Size and sha256 of a file to add, streamed (a large file is never held in memory). A missing file is a usage error. */
export async function localFile(path: string, filename?: string): Promise<LocalFile> {
  let size: number
  try {
    const info = await stat(path)
    if (!info.isFile()) throw new Error('not a regular file')
    size = info.size
  } catch (error) {
    throw new R1Error(`Cannot read ${path}: ${(error as Error).message}`, ExitCode.USAGE, {code: 'FILE_UNREADABLE', hint: 'Name a file to add: r1 r1fs add <file>'})
  }
  const digest = createHash('sha256')
  for await (const chunk of createReadStream(path)) digest.update(chunk as Buffer)
  return {path, filename: filename ?? basename(path), size, sha256: digest.digest('hex')}
}

/** Uploads a file in chunks (R1_R1FS_ADD, in order); resolves with the CID the node stored it under. */
export async function r1fsAdd(link: NodeLink, file: LocalFile, secret: string | undefined): Promise<{cid: string; filename: string; size: number; encrypted: boolean}> {
  const upload = randomBytes(12).toString('hex')
  const count = Math.max(1, Math.ceil(file.size / R1FS_CHUNK_BYTES))
  const handle = await open(file.path, 'r')
  try {
    const buffer = Buffer.alloc(R1FS_CHUNK_BYTES)
    for (let index = 0; index < count; index++) {
      const {bytesRead} = await handle.read(buffer, 0, Math.min(R1FS_CHUNK_BYTES, file.size - index * R1FS_CHUNK_BYTES), index * R1FS_CHUNK_BYTES)
      const payload = {UPLOAD: upload, FILENAME: file.filename, SIZE: file.size, SHA256: file.sha256, INDEX: index, COUNT: count, DATA: buffer.subarray(0, bytesRead).toString('base64'), ...(secret === undefined ? {} : {SECRET: secret})}
      const result = await link.request('R1_R1FS_ADD', payload, {encrypted: secret !== undefined})
      if (result.CID !== null) return {cid: result.CID, filename: file.filename, size: file.size, encrypted: secret !== undefined}
    }
  } finally {
    await handle.close()
  }
  throw new R1Error(`${link.alias} did not store ${file.filename} after all ${count} chunks`, ExitCode.FAILURE, {code: 'NOT_STORED'})
}

/**
 * Downloads a file chunk by chunk (R1_R1FS_GET) and checks the bytes against the CID (the content
 * address of the name, the bytes and the secret). To a file: into a temp file beside it, fsynced and
 * renamed once complete and checked, so an interrupted or corrupt download leaves no file; an existing
 * file is kept unless `force`. Without a path, the stored file name in the current folder; `-` is stdout
 * (where a mismatch can only be reported after the bytes).
 */
export async function r1fsGet(link: NodeLink, cid: string, secret: string | undefined, destination: {path?: string; force: boolean}): Promise<{cid: string; filename: string; size: number; path: string | null}> {
  const notFoundError = () =>
    notFound(`No file ${cid} on ${link.alias}${secret === undefined ? '' : ', or the secret is wrong'}`, 'R1FS_NOT_FOUND', secret === undefined ? '`r1 r1fs ls` lists the files; an encrypted file needs its secret (--secret-file, --secret-env or --secret-stdin).' : 'Check the CID (`r1 r1fs ls`) and the secret.')
  const first = await link.request('R1_R1FS_GET', {CID: cid, OFFSET: 0, ...(secret === undefined ? {} : {SECRET: secret})}, {encrypted: secret !== undefined})
  if (!first) throw notFoundError()
  const toStdout = destination.path === '-'
  const path = toStdout ? null : (destination.path ?? join(process.cwd(), safeName(first.FILENAME, cid)))
  if (path && !destination.force && (await exists(path))) {
    throw new R1Error(`${path} already exists: nothing written`, ExitCode.FAILURE, {code: 'FILE_EXISTS', hint: 'Pass --force to replace it, or -o <file> to write elsewhere.'})
  }
  const temp = path ? join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.part`) : undefined
  const handle = temp ? await open(temp, 'wx', 0o600) : undefined
  // a CID of another form (not an r1 node's) cannot be checked here
  const hasher = CID_PATTERN.test(cid) ? new CidHasher(first.FILENAME, secret) : undefined
  try {
    let chunk = first
    for (;;) {
      const data = Buffer.from(chunk.DATA, 'base64')
      hasher?.update(data)
      if (handle) await handle.write(data)
      else await writeStdout(data)
      const offset = chunk.OFFSET + data.length
      if (offset >= chunk.SIZE || data.length === 0) {
        if (offset !== chunk.SIZE) throw new R1Error(`${link.alias} sent ${offset} of ${chunk.SIZE} bytes of ${cid}`, ExitCode.FAILURE, {code: 'R1FS_SHORT_READ'})
        break
      }
      const next = await link.request('R1_R1FS_GET', {CID: cid, OFFSET: offset, ...(secret === undefined ? {} : {SECRET: secret})}, {encrypted: secret !== undefined})
      if (!next) throw notFoundError()
      chunk = next
    }
    if (hasher && hasher.digest() !== cid) throw new R1Error(`The bytes ${link.alias} sent do not match CID ${cid}${path ? ': nothing written' : ''}`, ExitCode.FAILURE, {code: 'R1FS_CORRUPT', hint: 'Try again; if it persists, the copy on that node is damaged.'})
    if (handle && temp && path) {
      await handle.sync()
      await handle.close()
      await rename(temp, path)
      await syncDir(dirname(path))
    }
  } catch (error) {
    await handle?.close().catch(() => undefined)
    if (temp) await rm(temp, {force: true})
    throw error
  }
  return {cid, filename: first.FILENAME, size: first.SIZE, path}
}

export interface R1fsListing {
  files: Array<{cid: string; filename: string; size: number; encrypted: boolean; added: string}>
}

/** Every file the node stores, page by page (R1_R1FS_LS). */
export async function r1fsList(link: NodeLink): Promise<R1fsListing> {
  const files: R1fsListing['files'] = []
  let after: string | undefined
  do {
    const page = await link.request('R1_R1FS_LS', after === undefined ? null : {AFTER: after})
    for (const f of page.FILES) files.push({cid: f.CID, filename: f.FILENAME, size: f.SIZE, encrypted: f.ENCRYPTED, added: f.ADDED})
    after = page.NEXT ?? undefined
  } while (after !== undefined)
  return {files}
}

export async function r1fsRm(link: NodeLink, cid: string): Promise<{cid: string; deleted: true}> {
  const {DELETED} = await link.request('R1_R1FS_RM', {CID: cid})
  if (!DELETED) throw notFound(`No file ${cid} on ${link.alias}`, 'R1FS_NOT_FOUND', '`r1 r1fs ls` lists the files.')
  return {cid, deleted: true}
}

/** A stored file name as a local one: its last path part, never `.`/`..` or empty (then the CID). */
function safeName(filename: string, cid: string): string {
  const name = basename(filename.replaceAll('\\', '/'))
  return name === '' || name === '.' || name === '..' ? cid : name
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

function writeStdout(data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(data, (error) => (error ? reject(error) : resolve())))
}

/** A key as it would be typed in a shell (quoted when it needs to be), for hints. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_./:-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`
}

/** A value argument: the text as given, or stdin's (one trailing newline dropped) for `-`, at most what one command may carry. */
export async function readValueArg(arg: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  if (arg !== '-') return arg
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    size += buffer.length
    if (size > COMMAND_LIMITS.maxPayloadBytes) {
      throw new R1Error(`The value on stdin is over ${formatBytes(COMMAND_LIMITS.maxPayloadBytes)}, more than one command may carry.`, ExitCode.USAGE, {code: 'VALUE_TOO_LARGE', hint: 'Store large data in R1FS (r1 r1fs add <file>) and its CID in CStore.'})
    }
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}
