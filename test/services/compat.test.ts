// The published Ratio1 client (@ratio1/edge-sdk-ts) against a real `r1 node start` (built CLI): CStore and
// R1FS round trips, a 96 MiB file streamed with the node's memory bounded, restart, kill -9 after ack, two
// nodes sharing one NATS.
// Needs `npm run build`.
import {createHash} from 'node:crypto'
import {createReadStream, openAsBlob, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {EdgeSdk} from '@ratio1/edge-sdk-ts'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {startNatsServer} from '../../bench/servers.js'
import {skipWithout} from '../broker/helpers.js'
import {r1, startNode, tempRoot, type NodeProcess} from '../deploy/nodes.js'

type ServicesNode = NodeProcess & {cstoreUrl: string; r1fsUrl: string}

const root = tempRoot('r1-services-compat-')
const dataDir = join(root.dir, 'node')
let node: ServicesNode
let sdk: EdgeSdk

async function start(): Promise<void> {
  node = (await startNode({dataDir})) as ServicesNode
  sdk = new EdgeSdk({cstoreUrl: node.cstoreUrl, r1fsUrl: node.r1fsUrl})
}

beforeAll(start)
afterAll(async () => {
  await node?.stop()
  root.dispose()
})

/** Bytes with every value 0x00..0xFF, runs of 0x00 and 0xFF included. */
function binary(size: number): Buffer {
  const bytes = Buffer.alloc(size)
  for (let i = 0; i < size; i++) bytes[i] = i % 1024 < 64 ? 0x00 : i % 1024 < 128 ? 0xff : (i * 31 + (i >> 12)) & 0xff
  return bytes
}

/** The node's resident and peak resident memory (kB), from /proc. */
function memoryKb(pid: number): {rss: number; peak: number} {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1])
  return {rss: field('VmRSS'), peak: field('VmHWM')}
}

async function sha256Of(stream: AsyncIterable<Uint8Array>): Promise<{hash: string; size: number}> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of stream) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return {hash: hash.digest('hex'), size}
}

const ODD_KEYS = ['plain', 'ünï/cödé 🚀', 'a b&c=d?e#f', '../../etc/passwd', 'dots.and*wild>cards', '%00%2F', 'k'.repeat(500)]
const VALUES: unknown[] = [{nested: {list: [1, 'two', null, true]}}, 'text with "quotes" and \n newline', 42.5, false, [], {}, ['ü', {'key with space': -0.25}]]

describe('CStore through @ratio1/edge-sdk-ts', () => {
  it('announces both URLs and answers get_status in Ratio1’s envelope', async () => {
    expect(node.cstoreUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(node.r1fsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const full = await sdk.cstore.getStatusFull()
    expect(full).toMatchObject({result: {keys: expect.any(Array)}, server_node_addr: node.address, ee_node_address: node.address, ee_node_alias: node.alias, ee_node_ver: expect.any(String), evm_network: 'r1'})
  })

  it('round-trips JSON values under odd keys; a missing key is null', async () => {
    for (const [i, key] of ODD_KEYS.entries()) {
      expect(await sdk.cstore.setValue({key, value: VALUES[i] as object})).toBe(true)
      expect(await sdk.cstore.getValue({key})).toEqual(VALUES[i])
    }
    expect(await sdk.cstore.getValue({key: 'never set'})).toBeNull()
    expect(await sdk.cstore.hget({hkey: 'never', key: 'set'})).toBeNull()
    expect(await sdk.cstore.hgetall({hkey: 'never set'})).toEqual({})
    expect((await sdk.cstore.getStatus()).keys).toEqual(expect.arrayContaining(ODD_KEYS))
  })

  it('takes 50 concurrent hset calls and hgetall returns every field', async () => {
    const fields = Array.from({length: 50}, (_, i) => `worker/${i} ü`)
    const acks = await Promise.all(fields.map((key, i) => sdk.cstore.hset({hkey: 'fleet:jobs', key, value: {i, done: i % 2 === 0}})))
    expect(acks).toEqual(fields.map(() => true))
    const all = await sdk.cstore.hgetall({hkey: 'fleet:jobs'})
    expect(Object.keys(all).sort()).toEqual([...fields].sort())
    expect(await sdk.cstore.hget({hkey: 'fleet:jobs', key: fields[7]!})).toEqual({i: 7, done: false})
  })
})

describe('R1FS through @ratio1/edge-sdk-ts', () => {
  it('round-trips a 256 KiB binary file with 0x00 and 0xFF bytes, by multipart and by base64', async () => {
    const bytes = binary(256 * 1024)
    const {cid} = await sdk.r1fs.addFile({file: bytes, filename: 'weights ü.bin'})
    const res = (await sdk.r1fs.getFile({cid})) as unknown as Response
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true)
    expect(JSON.parse(res.headers.get('x-meta')!)).toEqual({file: 'weights ü.bin', filename: 'weights ü.bin'})
    const base64 = await sdk.r1fs.getFileBase64({cid})
    expect(base64).toEqual({file_base64_str: bytes.toString('base64'), filename: 'weights ü.bin'})
    const again = await sdk.r1fs.addFileBase64({file_base64_str: bytes.toString('base64'), filename: 'weights ü.bin'})
    expect(again.cid).toBe(cid)
  })

  it('streams a 96 MiB file in and out while the node’s memory stays bounded', async () => {
    const size = 96 * 1024 * 1024
    const path = join(root.dir, 'big.bin')
    const chunk = binary(1024 * 1024)
    writeFileSync(path, Buffer.concat(Array.from({length: size / chunk.length}, () => chunk)))
    const expected = await sha256Of(createReadStream(path))
    const before = memoryKb(node.child.pid!)
    const {cid} = await sdk.r1fs.addFile({file: await openAsBlob(path), filename: 'big.bin', secret: 'big secret'})
    const res = (await sdk.r1fs.getFile({cid, secret: 'big secret'})) as unknown as Response
    expect(res.headers.get('content-length')).toBe(String(size))
    // the client fetches with cross-fetch (a Node stream) or the global fetch (a web stream): both iterate
    const got = await sha256Of(res.body as unknown as AsyncIterable<Uint8Array>)
    expect(got).toEqual(expected)
    const after = memoryKb(node.child.pid!)
    // the file is never held whole: the peak grows by well under its size (measured here: ~36 MiB of
    // garbage-collector slack for 32 MiB and ~44 MiB for 96 MiB, so a big file tells streaming apart)
    const growthKb = after.peak - Math.max(before.peak, before.rss)
    expect(growthKb, `node peak RSS grew ${growthKb} kB for a ${size / 1024} kB file`).toBeLessThan(64 * 1024)
  })

  it('round-trips JSON and YAML documents, with and without a secret; a wrong secret finds nothing', async () => {
    const data = {model: 'r1', layers: [1, 2, {deep: 'ü'}], ok: true}
    const json = await sdk.r1fs.addJson({data, fn: 'model.json'})
    expect(JSON.parse(Buffer.from((await sdk.r1fs.getFileBase64({cid: json.cid})).file_base64_str!, 'base64').toString('utf8'))).toEqual(data)
    expect(await sdk.r1fs.calculateJsonCid({data, nonce: 1, fn: 'model.json'})).toEqual({cid: json.cid})
    const yaml = await sdk.r1fs.addYaml({data, fn: 'model.yaml', secret: 'y-secret'})
    expect(await sdk.r1fs.getYaml({cid: yaml.cid, secret: 'y-secret'})).toEqual({file_data: data})
    await expect(sdk.r1fs.getYaml({cid: yaml.cid, secret: 'wrong'})).rejects.toThrow(/status 404/)
    await expect(sdk.r1fs.getFile({cid: yaml.cid})).rejects.toThrow(/status 404/)
    expect(await sdk.r1fs.getFileBase64({cid: yaml.cid, secret: 'wrong'})).toEqual({error: expect.stringMatching(/wrong or missing secret/)})
    const secretFile = await sdk.r1fs.addFileBase64({file_base64_str: Buffer.from('top secret').toString('base64'), filename: 's.txt', secret: 'k'})
    expect(await sdk.r1fs.getFileBase64({cid: secretFile.cid, secret: 'k'})).toEqual({file_base64_str: Buffer.from('top secret').toString('base64'), filename: 's.txt'})
  })

  it('deletes one file and several, with Ratio1’s result shapes', async () => {
    const a = await sdk.r1fs.addJson({data: {a: 1}})
    const b = await sdk.r1fs.addJson({data: {b: 2}})
    expect(await sdk.r1fs.deleteFile({cid: a.cid})).toEqual({success: true, message: `Deleted ${a.cid}.`, cid: a.cid})
    await expect(sdk.r1fs.getFile({cid: a.cid})).rejects.toThrow(/status 404/)
    expect(await sdk.r1fs.deleteFiles({cids: [a.cid, b.cid]})).toEqual({success: [b.cid], failed: [a.cid], total: 2, success_count: 1, failed_count: 1})
  })
})

describe('malformed requests to the node', () => {
  it('get clear errors (bad JSON, huge body, bad multipart, unknown cid) and lose nothing', async () => {
    await sdk.cstore.setValue({key: 'before-bad', value: [1, 2, 3]})
    const filesBefore = (await sdk.r1fs.getStatus()).files
    const post = (url: string, body: string | Buffer, type: string) => fetch(url, {method: 'POST', body, headers: {'content-type': type}})
    const replies = [
      [await post(`${node.cstoreUrl}/set`, '{"key": "before-bad", "value": [', 'application/json'), 400, /not valid JSON/],
      [await post(`${node.cstoreUrl}/set`, Buffer.alloc(9 * 1024 * 1024, 0x20), 'application/json'), 413, /exceeds 8 MiB/],
      [await post(`${node.r1fsUrl}/add_file`, '--XX\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc', 'multipart/form-data; boundary=XX'), 400, /Malformed multipart body/],
      [await fetch(`${node.r1fsUrl}/get_file?cid=${'a'.repeat(64)}`), 404, /No file a{64} here/],
    ] as const
    for (const [reply, status, message] of replies) {
      expect(reply.status).toBe(status)
      expect(((await reply.json()) as {error: string}).error).toMatch(message)
    }
    expect(await sdk.cstore.getValue({key: 'before-bad'})).toEqual([1, 2, 3])
    expect((await sdk.r1fs.getStatus()).files).toBe(filesBefore)
  })
})

describe('durability', () => {
  it('keeps keys, hashes and files across a restart', async () => {
    await sdk.cstore.setValue({key: 'survives', value: {restart: 1}})
    const {cid} = await sdk.r1fs.addFile({file: binary(100_000), filename: 'kept.bin', secret: 'r'})
    await node.stop()
    await start()
    expect(await sdk.cstore.getValue({key: 'survives'})).toEqual({restart: 1})
    expect(await sdk.cstore.getValue({key: ODD_KEYS[1]!})).toEqual(VALUES[1])
    expect(Object.keys(await sdk.cstore.hgetall({hkey: 'fleet:jobs'}))).toHaveLength(50)
    const res = (await sdk.r1fs.getFile({cid, secret: 'r'})) as unknown as Response
    expect(Buffer.from(await res.arrayBuffer()).equals(binary(100_000))).toBe(true)
  })

  it('loses nothing acknowledged when the node is killed with SIGKILL', async () => {
    const acked: string[] = []
    const writes = Array.from({length: 200}, (_, i) =>
      (i % 2 === 0 ? sdk.cstore.setValue({key: `k9/${i}`, value: i}) : sdk.cstore.hset({hkey: 'k9', key: String(i), value: i})).then((ok) => {
        if (ok) acked.push(String(i))
      }),
    )
    const file = sdk.r1fs.addFile({file: binary(300_000), filename: 'k9.bin'})
    await Promise.all(writes)
    const {cid} = await file
    node.child.kill('SIGKILL')
    await node.stop()
    await start()
    expect(acked).toHaveLength(200)
    for (const i of acked.map(Number)) {
      expect(i % 2 === 0 ? await sdk.cstore.getValue({key: `k9/${i}`}) : await sdk.cstore.hget({hkey: 'k9', key: String(i)})).toBe(i)
    }
    const res = (await sdk.r1fs.getFile({cid})) as unknown as Response
    expect(Buffer.from(await res.arrayBuffer()).equals(binary(300_000))).toBe(true)
  })
})

describe.skipIf(skipWithout('nats-server'))('two nodes started with --cstore and --r1fs on one NATS', () => {
  it('share keys, hashes and files through the Ratio1 client', async () => {
    const nats = await startNatsServer()
    const nodes: ServicesNode[] = []
    try {
      for (const name of ['nats-a', 'nats-b']) nodes.push((await startNode({dataDir: join(root.dir, name), extraArgs: ['--cstore', nats.url, '--r1fs', nats.url]})) as ServicesNode)
      const [a, b] = nodes.map((n) => new EdgeSdk({cstoreUrl: n.cstoreUrl, r1fsUrl: n.r1fsUrl}))
      expect(await a!.cstore.setValue({key: 'fleet/ü', value: {from: 'a'}})).toBe(true)
      await Promise.all(Array.from({length: 50}, (_, i) => (i % 2 ? a! : b!).cstore.hset({hkey: 'fleet', key: `f${i}`, value: i})))
      const {cid} = await b!.r1fs.addFile({file: binary(256 * 1024), filename: 'shared.bin', secret: 'fleet'})
      expect(await b!.cstore.getValue({key: 'fleet/ü'})).toEqual({from: 'a'})
      expect(Object.keys(await a!.cstore.hgetall({hkey: 'fleet'}))).toHaveLength(50)
      const res = (await a!.r1fs.getFile({cid, secret: 'fleet'})) as unknown as Response
      expect(Buffer.from(await res.arrayBuffer()).equals(binary(256 * 1024))).toBe(true)
      // the embedded node of the other suites shares nothing
      expect(await sdk.cstore.getValue({key: 'fleet/ü'})).toBeNull()
    } finally {
      for (const n of nodes) await n.stop()
      await nats.stop()
    }
  })
})

describe('r1 node start refusing its services flags', () => {
  it('exits 2 for a --cstore that is not a NATS URL, 7 for an unreachable NATS, 1 for a services port in use; --json errors name the cause', async () => {
    const notNats = await r1(['node', 'start', '--port', '0', '--data-dir', join(root.dir, 'bad-1'), '--cstore', 'http://user:pw@host', '--json'])
    expect(notNats.exitCode).toBe(2)
    expect(notNats.json.error).toMatchObject({code: 'NATS_URL', message: '--cstore http://host: not a NATS URL'})
    const unreachable = await r1(['node', 'start', '--port', '0', '--data-dir', join(root.dir, 'bad-2'), '--r1fs', 'nats://127.0.0.1:1', '--json'])
    expect(unreachable.exitCode).toBe(7)
    expect(unreachable.json.error).toMatchObject({code: 'NATS_UNREACHABLE', hint: expect.stringContaining('nats-server -js')})
    const taken = new URL(node.cstoreUrl).port
    const inUse = await r1(['node', 'start', '--port', '0', '--data-dir', join(root.dir, 'bad-3'), '--cstore-port', taken])
    expect(inUse.exitCode).toBe(1)
    expect(inUse.stderr).toContain(`Cannot serve CStore on 127.0.0.1:${taken}`)
    expect(inUse.stderr).toContain('--cstore-port')
  })
})
