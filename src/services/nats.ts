import {createReadStream} from 'node:fs'
import {rm} from 'node:fs/promises'
import {Readable} from 'node:stream'
import type {ReadableStream as WebReadableStream} from 'node:stream/web'
import {ExitCode, R1Error} from '../errors.js'
import type {BlobMeta, BlobStore} from './r1fs.js'
import type {CStore, JsonValue} from './types.js'

/**
 * The fleet backends on NATS JetStream: CStore in a key-value bucket, R1FS in an object store, so
 * every node pointed at the same NATS sees the same keys and files. The @nats-io modules are loaded
 * only when a node uses them.
 */

export const CSTORE_BUCKET = 'r1-cstore'
export const R1FS_BUCKET = 'r1-r1fs'

type NatsConnection = Awaited<ReturnType<typeof import('@nats-io/transport-node').connect>>
type KV = Awaited<ReturnType<import('@nats-io/kv').Kvm['create']>>
type ObjectStore = Awaited<ReturnType<import('@nats-io/obj').Objm['create']>>

export async function connectNats(url: string, what: string): Promise<NatsConnection> {
  const {connect} = await import('@nats-io/transport-node')
  try {
    return await connect({servers: url, name: `r1 node ${what}`, maxReconnectAttempts: -1})
  } catch (error) {
    throw new R1Error(`Cannot reach NATS at ${url} for ${what}: ${(error as Error).message}`, ExitCode.UNREACHABLE, {
      code: 'NATS_UNREACHABLE',
      hint: `Start nats-server with JetStream (nats-server -js), or check the --${what} URL.`,
    })
  }
}

/** KV keys allow only `[-/_=.a-zA-Z0-9]` and no empty token: each key and field is one base64url token, prefixed so it is never empty. */
function token(text: string): string {
  return 'x' + Buffer.from(text, 'utf8').toString('base64url')
}

function untoken(encoded: string): string {
  return Buffer.from(encoded.slice(1), 'base64url').toString('utf8')
}

export class NatsCStore implements CStore {
  private constructor(
    private readonly connection: NatsConnection,
    private readonly kv: KV,
  ) {}

  static async open(url: string): Promise<NatsCStore> {
    const connection = await connectNats(url, 'cstore')
    try {
      const {Kvm} = await import('@nats-io/kv')
      return new NatsCStore(connection, await new Kvm(connection).create(CSTORE_BUCKET, {history: 1}))
    } catch (error) {
      await connection.close()
      throw jetStreamError(error, url, 'cstore')
    }
  }

  private async read(key: string): Promise<JsonValue> {
    const entry = await this.kv.get(key)
    return entry && entry.operation === 'PUT' ? (JSON.parse(entry.string()) as JsonValue) : null
  }

  private async write(key: string, value: JsonValue): Promise<boolean> {
    if (value === null) await this.kv.delete(key)
    else await this.kv.put(key, JSON.stringify(value))
    return true
  }

  private async list(filter: string): Promise<string[]> {
    const out: string[] = []
    for await (const key of await this.kv.keys(filter)) out.push(key)
    return out
  }

  get(key: string): Promise<JsonValue> {
    return this.read(`k.${token(key)}`)
  }

  set(key: string, value: JsonValue): Promise<boolean> {
    return this.write(`k.${token(key)}`, value)
  }

  hget(hkey: string, field: string): Promise<JsonValue> {
    return this.read(`h.${token(hkey)}.${token(field)}`)
  }

  hset(hkey: string, field: string, value: JsonValue): Promise<boolean> {
    return this.write(`h.${token(hkey)}.${token(field)}`, value)
  }

  async hgetall(hkey: string): Promise<Record<string, JsonValue>> {
    const keys = await this.list(`h.${token(hkey)}.*`)
    const values = await Promise.all(keys.map((key) => this.read(key)))
    const out: Record<string, JsonValue> = {}
    keys.forEach((key, i) => {
      if (values[i] !== null) out[untoken(key.slice(key.lastIndexOf('.') + 1))] = values[i]!
    })
    return out
  }

  async hkeys(hkey: string): Promise<string[]> {
    return Object.keys(await this.hgetall(hkey))
  }

  async keys(): Promise<string[]> {
    return (await this.list('k.*')).map((key) => untoken(key.slice(2)))
  }

  async close(): Promise<void> {
    await this.connection.drain()
  }
}

export class NatsBlobStore implements BlobStore {
  private constructor(
    private readonly connection: NatsConnection,
    private readonly objects: ObjectStore,
  ) {}

  static async open(url: string): Promise<NatsBlobStore> {
    const connection = await connectNats(url, 'r1fs')
    try {
      const {Objm} = await import('@nats-io/obj')
      return new NatsBlobStore(connection, await new Objm(connection).create(R1FS_BUCKET))
    } catch (error) {
      await connection.close()
      throw jetStreamError(error, url, 'r1fs')
    }
  }

  async usedBytes(): Promise<number> {
    return (await this.objects.status()).size
  }

  async meta(cid: string): Promise<BlobMeta | undefined> {
    const info = await this.objects.info(cid)
    if (!info || info.deleted || !info.metadata?.r1fs) return undefined
    return JSON.parse(info.metadata.r1fs) as BlobMeta
  }

  async put(cid: string, spoolFile: string, meta: BlobMeta): Promise<void> {
    const data = Readable.toWeb(createReadStream(spoolFile)) as unknown as globalThis.ReadableStream<Uint8Array>
    await this.objects.put({name: cid, metadata: {r1fs: JSON.stringify(meta)}}, data)
    await rm(spoolFile, {force: true})
  }

  async open(cid: string): Promise<Readable> {
    const result = await this.objects.get(cid)
    if (!result) throw new Error(`R1FS file ${cid} is gone from NATS`)
    const stream = Readable.fromWeb(result.data as unknown as WebReadableStream<Uint8Array>)
    result.error.then(
      (error) => error && stream.destroy(error),
      (error: Error) => stream.destroy(error),
    )
    return stream
  }

  async delete(cid: string): Promise<boolean> {
    if (!(await this.meta(cid))) return false
    await this.objects.delete(cid)
    return true
  }

  async list(): Promise<Array<{cid: string; meta: BlobMeta}>> {
    const out: Array<{cid: string; meta: BlobMeta}> = []
    for (const info of await this.objects.list()) {
      if (!info.deleted && info.metadata?.r1fs) out.push({cid: info.name, meta: JSON.parse(info.metadata.r1fs) as BlobMeta})
    }
    return out
  }

  async close(): Promise<void> {
    await this.connection.drain()
  }
}

function jetStreamError(error: unknown, url: string, what: string): R1Error {
  return new R1Error(`NATS at ${url} has no usable JetStream for ${what}: ${(error as Error).message}`, ExitCode.FAILURE, {
    code: 'NATS_JETSTREAM',
    hint: 'Start nats-server with JetStream enabled (nats-server -js -sd <dir>).',
    cause: error,
  })
}
