import * as zlib from 'node:zlib'

/**
 * On-disk record format of the event journal, one record per line:
 *
 *   <crc32 of the rest of the line, 8 lowercase hex> <EE_MESSAGE_SEQ decimal> <event canonical JSON>\n
 *
 * The JSON is the event's canonical form (protocol/canonical.ts: what a node signs), so history is
 * signed straight from the record's bytes. JSON never holds a raw newline, so `\n` ends a record. The seq in the header lets the reader
 * index and skip records without parsing JSON; the checksum catches torn and corrupt records.
 */

export const SEGMENT_SUFFIX = '.jrnl'
const SEGMENT_NAME = /^(\d{1,20})\.jrnl$/
/** Bytes before the checksummed part: 8 hex digits and a space. */
export const HEADER_BYTES = 9
const NEWLINE = 0x0a
const SPACE = 0x20

export function segmentName(firstSeq: number): string {
  return String(firstSeq).padStart(16, '0') + SEGMENT_SUFFIX
}

/** The first seq of a segment file, or undefined when the name is not a segment's. */
export function parseSegmentName(name: string): number | undefined {
  const match = SEGMENT_NAME.exec(name)
  if (!match) return undefined
  const seq = Number(match[1])
  return Number.isSafeInteger(seq) && seq > 0 ? seq : undefined
}

// zlib.crc32 exists from Node 20.15; r1 supports 20.12, so keep a table-driven fallback.
const nativeCrc32 = (zlib as {crc32?: (data: Uint8Array) => number}).crc32
let table: Int32Array | undefined
function crc32Fallback(data: Uint8Array, start: number, end: number): number {
  if (!table) {
    table = new Int32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      table[n] = c
    }
  }
  let crc = -1
  for (let i = start; i < end; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8)
  return (crc ^ -1) >>> 0
}

export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  if (nativeCrc32) return nativeCrc32(start === 0 && end === data.length ? data : data.subarray(start, end)) >>> 0
  return crc32Fallback(data, start, end)
}

const HEX = '0123456789abcdef'

/**
 * Encodes one record into `buffer` at `offset`; returns the bytes written, or -1 when it does not fit
 * (the caller flushes and retries, or allocates a larger buffer).
 */
export function encodeRecord(buffer: Buffer, offset: number, seq: number, json: Uint8Array): number {
  const bodyStart = offset + HEADER_BYTES
  // seq: at most 16 digits (a safe integer), then a space; the JSON; the newline
  if (bodyStart + 17 + json.length + 1 > buffer.length) return -1
  let p = bodyStart + buffer.write(String(seq), bodyStart, 'latin1')
  buffer[p++] = SPACE
  buffer.set(json, p)
  p += json.length
  buffer[p++] = NEWLINE
  const written = p - bodyStart
  // The checksum covers `<seq> <json>` (not the newline), so a record torn right before its newline is still caught as torn.
  const crc = crc32(buffer, bodyStart, bodyStart + written - 1)
  for (let i = 7, c = crc; i >= 0; i--, c >>>= 4) buffer[offset + i] = HEX.charCodeAt(c & 0xf)
  buffer[offset + 8] = SPACE
  return HEADER_BYTES + written
}

export type DecodedRecord =
  | {ok: true; seq: number; start: number; end: number; jsonStart: number}
  | {ok: false; start: number; end: number; reason: string}

/**
 * Decodes the record starting at `start` in `data[..limit]`. `end` is the offset after its newline.
 * Returns undefined when no newline follows within `limit` (an incomplete record).
 */
export function decodeRecord(data: Buffer, start: number, limit: number): DecodedRecord | undefined {
  const newline = data.indexOf(NEWLINE, start)
  if (newline === -1 || newline >= limit) return undefined
  const end = newline + 1
  if (newline - start < HEADER_BYTES + 3 || data[start + 8] !== SPACE) return {ok: false, start, end, reason: 'malformed header'}
  const expected = parseInt(data.toString('latin1', start, start + 8), 16)
  if (!Number.isFinite(expected) || crc32(data, start + HEADER_BYTES, newline) !== expected) return {ok: false, start, end, reason: 'checksum mismatch'}
  let seq = 0
  let i = start + HEADER_BYTES
  for (; i < newline && data[i] !== SPACE; i++) {
    const digit = data[i]! - 0x30
    if (digit < 0 || digit > 9) return {ok: false, start, end, reason: 'malformed seq'}
    seq = seq * 10 + digit
  }
  if (i === start + HEADER_BYTES || i >= newline || !Number.isSafeInteger(seq)) return {ok: false, start, end, reason: 'malformed seq'}
  return {ok: true, seq, start, end, jsonStart: i + 1}
}
