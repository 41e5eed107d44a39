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

const CSTORE_BUCKET = 'r1-cstore'
const R1FS_BUCKET = 'r1-r1fs'

type NatsConnection = Awaited<ReturnType<typeof import('@nats-io/transport-node').connect>>
type KV = Awaited<ReturnType<import('@nats-io/kv').Kvm['create']>>
type ObjectStore = Awaited<ReturnType<import('@nats-io/obj').Objm['create']>>

/** A NATS URL as shown in messages: without its user and password. */
function shown(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//')
}

async function connectNats(url: string, what: string): Promise<NatsConnection> {
  if (!/^(nats|tls):\/\/[^\s/]+\/?$/.test(url)) {
    throw new R1Error(`--${what} ${shown(url)}: not a NATS URL`, ExitCode.USAGE, {code: 'NATS_URL', hint: `Pass --${what} nats://host:4222 (or leave it out for the embedded store on the data dir).`})
  }
  const {connect} = await import('@nats-io/transport-node')
  try {
    return await connect({servers: url, name: `r1 node ${what}`, maxReconnectAttempts: -1})
  } catch (error) {
    throw new R1Error(`Cannot reach NATS at ${shown(url)} for ${what}: ${(error as Error).message}`, ExitCode.UNREACHABLE, {
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

/**
 * Plain keys are one KV entry each (`k.<key>`). A hash is one entry (`h.<hkey>`, a JSON object): reading
 * it whole is consistent (listing per-field keys while others write misses some), and hset is a
 * compare-and-set on its revision, retried on conflict, so concurrent writers on any node lose nothing;
 * this node's own hsets on one hash take turns. A hash is bounded by the server's message size (1 MiB by default).
 */
export class NatsCStore implements CStore {
  private readonly turns = new Map<string, Promise<unknown>>()

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

  async get(key: string): Promise<JsonValue> {
    const entry = await this.kv.get(`k.${token(key)}`)
    return entry && entry.operation === 'PUT' ? (JSON.parse(entry.string()) as JsonValue) : null
  }

  async set(key: string, value: JsonValue): Promise<boolean> {
    if (value === null) await this.kv.delete(`k.${token(key)}`)
    else await this.kv.put(`k.${token(key)}`, JSON.stringify(value))
    return true
  }

  async hget(hkey: string, field: string): Promise<JsonValue> {
    return (await this.hgetall(hkey))[field] ?? null
  }

  hset(hkey: string, field: string, value: JsonValue): Promise<boolean> {
    return this.inTurn(hkey, async () => {
      const key = `h.${token(hkey)}`
      for (let attempt = 1; ; attempt++) {
        const entry = await this.kv.get(key)
        const hash = entry && entry.operation === 'PUT' ? (JSON.parse(entry.string()) as Record<string, JsonValue>) : {}
        if (value === null) delete hash[field]
        else hash[field] = value
        try {
          if (entry) await this.kv.update(key, JSON.stringify(hash), entry.revision)
          else await this.kv.create(key, JSON.stringify(hash))
          return true
        } catch (error) {
          // another node changed the hash in between: read it again
          if (attempt >= 100 || !/wrong last sequence|key exists/i.test((error as Error).message)) throw error
        }
      }
    })
  }

  async hgetall(hkey: string): Promise<Record<string, JsonValue>> {
    const entry = await this.kv.get(`h.${token(hkey)}`)
    return entry && entry.operation === 'PUT' ? (JSON.parse(entry.string()) as Record<string, JsonValue>) : {}
  }

  async hkeys(hkey: string): Promise<string[]> {
    return Object.keys(await this.hgetall(hkey))
  }

  async keys(): Promise<string[]> {
    const out: string[] = []
    for await (const key of await this.kv.keys('k.*')) out.push(untoken(key.slice(2)))
    return out
  }

  async close(): Promise<void> {
    await Promise.all(this.turns.values())
    await this.connection.drain()
  }

  /** Runs `work` after this node's earlier writes to the same hash. */
  private inTurn<T>(hkey: string, work: () => Promise<T>): Promise<T> {
    const next = (this.turns.get(hkey) ?? Promise.resolve()).then(work, work)
    const settled = next.catch(() => undefined)
    this.turns.set(hkey, settled)
    void settled.then(() => {
      if (this.turns.get(hkey) === settled) this.turns.delete(hkey)
    })
    return next
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
  return new R1Error(`NATS at ${shown(url)} has no usable JetStream for ${what}: ${(error as Error).message}`, ExitCode.FAILURE, {
    code: 'NATS_JETSTREAM',
    hint: 'Start nats-server with JetStream enabled (nats-server -js -sd <dir>).',
    cause: error,
  })
}
