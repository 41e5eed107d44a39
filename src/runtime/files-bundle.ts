import {mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {dirname, join, posix} from 'node:path'
import {ExitCode, R1Error} from '../errors.js'
import {MAX_BUNDLE_BYTES} from '../protocol/messages.js'
import {sha256Hex} from './bundle.js'
import {formatBytes} from '../ui/bytes.js'

/**
 * The files a plugin ships (`files:` in config.yaml) as one content-addressed bundle: a JSON header
 * line `{"format":"r1-files","version":1,"setup"?,"files":[{"path","size","mode"}]}`, then every
 * file's bytes in header order. Its sha256 names it like a code bundle, so it travels and is stored
 * the same way; the setup command is part of it, so it runs once per version of the files.
 */

export interface FilesHeader {
  format: 'r1-files'
  version: 1
  setup?: string
  files: Array<{path: string; size: number; mode: number}>
}

export interface FilesBundle {
  hash: string
  bytes: Uint8Array
  header: FilesHeader
}

/** Packs project-relative `files` (sorted, `/`-separated) of `dir`, with the plugin's setup command. */
export async function packFiles(dir: string, files: readonly string[], setup?: string): Promise<FilesBundle> {
  const header: FilesHeader = {format: 'r1-files', version: 1, ...(setup ? {setup} : {}), files: []}
  const contents: Buffer[] = []
  let total = 0
  for (const path of [...files].sort()) {
    const full = join(dir, path)
    const [bytes, info] = await Promise.all([readFile(full), stat(full)])
    total += bytes.length
    if (total > MAX_BUNDLE_BYTES) {
      throw new R1Error(`The files to ship are over ${formatBytes(MAX_BUNDLE_BYTES)} (at ${path})`, ExitCode.INVALID_CONFIG, {
        code: 'FILES_TOO_LARGE',
        hint: 'Ship less (narrow the `files:` globs) and fetch large data in the plugin, or install it in `setup`.',
      })
    }
    header.files.push({path, size: bytes.length, mode: info.mode & 0o111 ? 0o755 : 0o644})
    contents.push(bytes)
  }
  const bytes = Buffer.concat([Buffer.from(JSON.stringify(header) + '\n'), ...contents])
  return {hash: sha256Hex(bytes), bytes, header}
}

function corrupt(why: string): R1Error {
  return new R1Error(`Not a files bundle: ${why}`, ExitCode.REJECTED, {code: 'FILES_BUNDLE_INVALID'})
}

/** The header of a files bundle, checked: every path relative and inside, sizes adding up to the bytes. */
export function readFilesHeader(bytes: Uint8Array): {header: FilesHeader; offset: number} {
  const end = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(10)
  if (end < 0) throw corrupt('no header line')
  let header: FilesHeader
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(0, end)).toString('utf8')) as FilesHeader
  } catch {
    throw corrupt('the header is not JSON')
  }
  if (header?.format !== 'r1-files' || header.version !== 1 || !Array.isArray(header.files)) throw corrupt('unknown format')
  let size = 0
  const seen = new Set<string>()
  for (const file of header.files) {
    const path = file?.path
    if (typeof path !== 'string' || path === '' || path.startsWith('/') || path.includes('\\') || path.includes('\0') || posix.normalize(path) !== path || path.split('/').includes('..')) {
      throw corrupt(`bad path ${JSON.stringify(path)}`)
    }
    if (seen.has(path)) throw corrupt(`${path} appears twice`)
    seen.add(path)
    if (!Number.isSafeInteger(file.size) || file.size < 0) throw corrupt(`bad size of ${path}`)
    size += file.size
  }
  if (size !== bytes.length - end - 1) throw corrupt(`the files hold ${size} bytes, the bundle ${bytes.length - end - 1}`)
  return {header, offset: end + 1}
}

/** Writes the files of a bundle under `dir` (which must exist); returns its header. */
export async function unpackFiles(bytes: Uint8Array, dir: string): Promise<FilesHeader> {
  const {header, offset} = readFilesHeader(bytes)
  let at = offset
  for (const file of header.files) {
    const target = join(dir, file.path)
    await mkdir(dirname(target), {recursive: true})
    await writeFile(target, bytes.subarray(at, at + file.size), {mode: file.mode === 0o755 ? 0o755 : 0o644})
    at += file.size
  }
  return header
}
