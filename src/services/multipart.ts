import type {FileHandle} from 'node:fs/promises'
import type {Readable} from 'node:stream'

/**
 * A bounded, streaming multipart/form-data reader for R1FS's add_file: the part carrying a file name
 * is written to `file` as it arrives (never held in memory), the other parts are small text fields
 * (`body`), kept up to FIELD_LIMIT bytes in all. Anything malformed is a MultipartError.
 */

const FIELD_LIMIT = 64 * 1024
const HEADER_LIMIT = 8 * 1024
/** File bytes are written in pieces of about this size (one write per network chunk is slow). */
const WRITE_BYTES = 1024 * 1024

export class MultipartError extends Error {}

/** The file part outgrew what `reserve` allowed (readMultipart's caller words the error). */
export class MultipartFileTooLarge extends MultipartError {}

export interface MultipartUpload {
  /** The file part's name (`filename=` of its Content-Disposition); undefined when no part had one. */
  filename?: string
  fileField?: string
  fileBytes: number
  fields: Record<string, string>
}

/** The boundary of a `multipart/form-data` Content-Type, or undefined. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\s*;/i.test(contentType)) return undefined
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType)
  return match ? (match[1] ?? match[2]) : undefined
}

interface PartHeaders {
  name?: string
  filename?: string
}

function parsePartHeaders(text: string): PartHeaders {
  const disposition = text.split('\r\n').find((line) => /^content-disposition\s*:/i.test(line))
  if (!disposition) throw new MultipartError('a part has no Content-Disposition header')
  const param = (key: string) => {
    const match = new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"|;\\s*${key}=([^;\\s]+)`, 'i').exec(disposition)
    if (!match) return undefined
    return match[1] === undefined ? match[2] : match[1].replace(/\\(.)/g, '$1')
  }
  const star = /;\s*filename\*=utf-8''([^;\s]+)/i.exec(disposition)
  let filename: string | undefined
  try {
    filename = star ? decodeURIComponent(star[1]!) : param('filename')
  } catch {
    throw new MultipartError(`a part's filename* is not valid percent-encoded UTF-8`)
  }
  // browsers and undici send the name's UTF-8 bytes as they are: the header was read as latin1
  return {name: param('name'), filename: filename === undefined || star ? filename : Buffer.from(filename, 'latin1').toString('utf8')}
}

/** `reserve(bytes)` is asked before file bytes are written; false stops the upload (MultipartFileTooLarge). */
export async function readMultipart(body: Readable, boundary: string, file: FileHandle, reserve: (bytes: number) => boolean = () => true): Promise<MultipartUpload> {
  const delimiter = Buffer.from(`\r\n--${boundary}`)
  const upload: MultipartUpload = {fileBytes: 0, fields: {}}
  let fieldBytes = 0
  // the first delimiter has no CRLF before it: pretend it had one
  let buffer = Buffer.from('\r\n')
  let state: 'preamble' | 'after-delimiter' | 'headers' | 'body' | 'done' = 'preamble'
  let part: PartHeaders | undefined
  let toFile = false
  let field: Buffer[] = []
  let unwritten: Buffer[] = []
  let unwrittenBytes = 0

  const flushFile = async () => {
    if (unwrittenBytes === 0) return
    const data = Buffer.concat(unwritten)
    unwritten = []
    unwrittenBytes = 0
    await file.write(data)
  }
  const emit = async (data: Buffer) => {
    if (data.length === 0) return
    if (toFile) {
      if (!reserve(data.length)) throw new MultipartFileTooLarge(`the file exceeds the room left after ${upload.fileBytes} bytes`)
      upload.fileBytes += data.length
      // a view: the parser never changes a buffer it has read, it makes new ones
      unwritten.push(data)
      unwrittenBytes += data.length
      if (unwrittenBytes >= WRITE_BYTES) await flushFile()
      return
    }
    fieldBytes += data.length
    if (fieldBytes > FIELD_LIMIT) throw new MultipartError(`the form's text fields exceed ${FIELD_LIMIT} bytes`)
    field.push(data)
  }
  const endPart = () => {
    if (!toFile && part?.name !== undefined) upload.fields[part.name] = Buffer.concat(field).toString('utf8')
    field = []
    toFile = false
  }

  // the caller drains or answers the request after a stop here: do not destroy it
  for await (const chunk of body.iterator({destroyOnReturn: false})) {
    buffer = Buffer.concat([buffer, chunk as Buffer])
    for (;;) {
      if (state === 'preamble') {
        const at = buffer.indexOf(delimiter)
        if (at === -1) {
          if (buffer.length > HEADER_LIMIT) throw new MultipartError('no multipart boundary where the form starts')
          break
        }
        buffer = buffer.subarray(at + delimiter.length)
        state = 'after-delimiter'
      } else if (state === 'after-delimiter') {
        if (buffer.length < 2) break
        const next = buffer.subarray(0, 2).toString('latin1')
        if (next === '--') {
          state = 'done'
          break
        }
        if (next !== '\r\n') throw new MultipartError('a multipart boundary is not followed by a line break')
        buffer = buffer.subarray(2)
        state = 'headers'
      } else if (state === 'headers') {
        const at = buffer.indexOf('\r\n\r\n')
        if (at === -1) {
          if (buffer.length > HEADER_LIMIT) throw new MultipartError(`a part's headers exceed ${HEADER_LIMIT} bytes`)
          break
        }
        part = parsePartHeaders(buffer.subarray(0, at).toString('latin1'))
        buffer = buffer.subarray(at + 4)
        toFile = part.filename !== undefined && upload.fileField === undefined
        if (toFile) {
          upload.filename = part.filename
          upload.fileField = part.name
        }
        state = 'body'
      } else if (state === 'body') {
        const at = buffer.indexOf(delimiter)
        if (at === -1) {
          // keep what could be the start of a delimiter
          const safe = Math.max(0, buffer.length - delimiter.length + 1)
          await emit(buffer.subarray(0, safe))
          buffer = buffer.subarray(safe)
          break
        }
        await emit(buffer.subarray(0, at))
        await flushFile()
        endPart()
        buffer = buffer.subarray(at + delimiter.length)
        state = 'after-delimiter'
      } else break
    }
    if (state === 'done') break
  }
  if (state !== 'done') throw new MultipartError('the form ends before its closing boundary')
  return upload
}
