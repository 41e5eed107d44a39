import type {Readable} from 'node:stream'

/**
 * The node services every plugin and app may use (Ratio1's): CStore, a key-value and hash store, and
 * R1FS, a content-addressed file store. Each has an embedded backend on the node's data dir (the
 * default, always works on one machine) and a NATS JetStream backend for fleets; the HTTP APIs, the
 * signed-protocol actions and the plugin SDK all go through these interfaces.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | {[key: string]: JsonValue}

export interface CStore {
  /** The value, or null when the key is missing. */
  get(key: string): Promise<JsonValue>
  /** Stores a JSON value; null deletes the key. Resolves once durable. */
  set(key: string, value: JsonValue): Promise<boolean>
  hget(hkey: string, field: string): Promise<JsonValue>
  /** Stores one field of a hash; null deletes the field. Resolves once durable. */
  hset(hkey: string, field: string, value: JsonValue): Promise<boolean>
  /** Every field of a hash (`{}` when there is none). */
  hgetall(hkey: string): Promise<Record<string, JsonValue>>
  hkeys(hkey: string): Promise<string[]>
  /** Every plain key (not hash keys): the HTTP API's get_status lists them. */
  keys(): Promise<string[]>
  close(): Promise<void>
}

export interface R1fsEntry {
  cid: string
  filename: string
  /** Stored size in bytes (the plaintext's). */
  size: number
  encrypted: boolean
  /** ISO time it was added. */
  added: string
}

export interface R1fsFile {
  filename: string
  size: number
  /** The plaintext bytes, streamed (a 20 MiB file is never held in memory whole). */
  stream(): Readable
}

export interface R1fs {
  /** Stores the bytes (encrypted with AES-256-GCM keyed by the secret when one is given) and returns the content address. */
  add(source: Readable | Buffer, options: {filename: string; secret?: string}): Promise<string>
  /** Throws R1FS_QUOTA when a file of `size` bytes would not fit now (checked again as it is stored). */
  checkRoom(size: number): Promise<void>
  /** The file, or undefined when the cid is unknown or the secret is wrong. */
  get(cid: string, secret?: string): Promise<R1fsFile | undefined>
  /** True when the cid existed. */
  delete(cid: string): Promise<boolean>
  list(): Promise<R1fsEntry[]>
  close(): Promise<void>
}

export interface NodeServices {
  cstore: CStore
  r1fs: R1fs
}
