// CStore and R1FS behaviour, the same suite on the embedded backends (data dir) and on NATS JetStream
// (a real nats-server): values, odd keys, hashes, files, secrets, quota, reopening.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import {afterEach, describe, expect, it} from 'vitest'
import {startNatsServer} from '../../bench/servers.js'
import {openServices, type NodeServices} from '../../src/services/index.js'
import {skipWithout} from '../broker/helpers.js'

const ODD_KEYS = ['', 'a/b/../c', 'ünï-cödé 🚀', 'with space', 'dots.and*wild>cards', '%2F..%00', 'x'.repeat(300), 'tab\tnew\nline', 'C:\\windows\\path']
const VALUES = [0, -1.5, 'text', '', true, false, [1, 'two', null, {three: 3}], {nested: {deep: ['ok', {x: null}]}, 'key with space': 1}]

/** Bytes with every value 0x00..0xFF, in a pattern that is not periodic in 64 KiB chunks. */
function binary(size: number): Buffer {
  const bytes = Buffer.alloc(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 7919 + (i >> 10)) & 0xff
  return bytes
}

interface Backend {
  /** Opens the services (again) on the same storage. */
  open(options?: {quotaBytes?: number}): Promise<NodeServices>
  dispose(): Promise<void>
}

const backends: Array<{name: string; skip?: string; make(): Promise<Backend>}> = [
  {
    name: 'embedded',
    async make() {
      const dir = mkdtempSync(join(tmpdir(), 'r1-services-'))
      return {open: (options) => openServices({dataDir: dir, ...options}), dispose: async () => rmSync(dir, {recursive: true, force: true})}
    },
  },
  {
    name: 'NATS JetStream',
    skip: skipWithout('nats-server'),
    async make() {
      const dir = mkdtempSync(join(tmpdir(), 'r1-services-'))
      const nats = await startNatsServer()
      return {
        open: (options) => openServices({dataDir: dir, cstore: nats.url, r1fs: nats.url, ...options}),
        async dispose() {
          await nats.stop()
          rmSync(dir, {recursive: true, force: true})
        },
      }
    },
  },
]

for (const backend of backends) {
  describe.skipIf(backend.skip)(`services on the ${backend.name} backend`, () => {
    const opened: NodeServices[] = []
    let current: Backend | undefined
    const open = async (options?: {quotaBytes?: number}) => {
      current ??= await backend.make()
      const services = await current.open(options)
      opened.push(services)
      return services
    }
    const close = async (services: NodeServices) => {
      opened.splice(opened.indexOf(services), 1)
      await services.cstore.close()
      await services.r1fs.close()
    }
    afterEach(async () => {
      for (const services of opened.splice(0)) {
        await services.cstore.close()
        await services.r1fs.close()
      }
      await current?.dispose()
      current = undefined
    })

    it('round-trips JSON values under odd keys and fields; missing is null; null deletes', async () => {
      const {cstore} = await open()
      for (const [i, key] of ODD_KEYS.entries()) {
        expect(await cstore.get(key)).toBeNull()
        const value = VALUES[i % VALUES.length]!
        expect(await cstore.set(key, value)).toBe(true)
        expect(await cstore.get(key)).toEqual(value)
        expect(await cstore.hset(key, key, value)).toBe(true)
        expect(await cstore.hget(key, key)).toEqual(value)
      }
      expect((await cstore.keys()).sort()).toEqual([...ODD_KEYS].sort())
      expect(await cstore.hgetall('no such hash')).toEqual({})
      expect(await cstore.hget('no such hash', 'f')).toBeNull()
      expect(await cstore.set(ODD_KEYS[1]!, null)).toBe(true)
      expect(await cstore.get(ODD_KEYS[1]!)).toBeNull()
      expect(await cstore.keys()).not.toContain(ODD_KEYS[1])
      // a plain key and a hash of the same name are separate
      expect(await cstore.hget(ODD_KEYS[1]!, ODD_KEYS[1]!)).toEqual(VALUES[1])
    })

    it('takes 50 concurrent hset calls on one hash and returns every field', async () => {
      const {cstore} = await open()
      const fields = Array.from({length: 50}, (_, i) => `field/${i} ü`)
      const results = await Promise.all(fields.map((field, i) => cstore.hset('jobs', field, {i, field})))
      expect(results.every((ok) => ok === true)).toBe(true)
      const all = await cstore.hgetall('jobs')
      expect(Object.keys(all).sort()).toEqual([...fields].sort())
      for (const [i, field] of fields.entries()) expect(all[field]).toEqual({i, field})
      expect((await cstore.hkeys('jobs')).sort()).toEqual([...fields].sort())
      await cstore.hset('jobs', fields[0]!, null)
      expect(await cstore.hkeys('jobs')).toHaveLength(49)
    })

    it('stores files under stable sha256-based cids, streams them back, lists and deletes them', async () => {
      const {r1fs} = await open()
      const bytes = binary(300 * 1024)
      const cid = await r1fs.add(bytes, {filename: 'data ü/../x.bin'})
      expect(cid).toMatch(/^[0-9a-f]{64}$/)
      expect(await r1fs.add(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), {filename: 'data ü/../x.bin'})).toBe(cid)
      expect(await r1fs.add(bytes, {filename: 'other.bin'})).not.toBe(cid)
      const file = await r1fs.get(cid)
      expect(file).toMatchObject({filename: 'data ü/../x.bin', size: bytes.length})
      expect((await buffer(file!.stream())).equals(bytes)).toBe(true)
      const empty = await r1fs.add(Buffer.alloc(0), {filename: 'empty'})
      expect((await buffer((await r1fs.get(empty))!.stream())).length).toBe(0)
      const listed = await r1fs.list()
      expect(listed.map((e) => e.cid).sort()).toEqual([cid, empty, await r1fs.add(bytes, {filename: 'other.bin'})].sort())
      expect(listed.find((e) => e.cid === cid)).toMatchObject({filename: 'data ü/../x.bin', size: bytes.length, encrypted: false})
      expect(await r1fs.delete(cid)).toBe(true)
      expect(await r1fs.delete(cid)).toBe(false)
      expect(await r1fs.get(cid)).toBeUndefined()
      expect(await r1fs.get('not-a-cid/../../etc/passwd')).toBeUndefined()
      expect(await r1fs.get('0'.repeat(64))).toBeUndefined()
    })

    it('encrypts with the secret: the right secret reads, a wrong or missing one finds nothing', async () => {
      const {r1fs} = await open()
      const bytes = binary(200 * 1024 + 17)
      const cid = await r1fs.add(bytes, {filename: 'secret.bin', secret: 'correct horse'})
      expect(await r1fs.add(bytes, {filename: 'secret.bin', secret: 'correct horse'})).toBe(cid)
      expect(await r1fs.add(bytes, {filename: 'secret.bin'})).not.toBe(cid)
      expect(await r1fs.get(cid, 'wrong')).toBeUndefined()
      expect(await r1fs.get(cid)).toBeUndefined()
      const file = await r1fs.get(cid, 'correct horse')
      expect((await buffer(file!.stream())).equals(bytes)).toBe(true)
      expect((await r1fs.list()).find((e) => e.cid === cid)).toMatchObject({encrypted: true, size: bytes.length})
    })

    it('refuses a file over the quota with a clear error and keeps what was stored', async () => {
      const {r1fs} = await open({quotaBytes: 512 * 1024})
      const small = await r1fs.add(binary(100 * 1024), {filename: 'small'})
      await expect(r1fs.add(Readable.from([binary(300 * 1024), binary(300 * 1024)]), {filename: 'big'})).rejects.toThrow(/R1FS is full: the file does not fit in the 512 KiB quota/)
      expect((await r1fs.list()).map((e) => e.cid)).toEqual([small])
      expect((await buffer((await r1fs.get(small))!.stream())).length).toBe(100 * 1024)
      // concurrent adds count each other: what is stored never exceeds the quota
      const results = await Promise.allSettled(Array.from({length: 4}, (_, i) => r1fs.add(Readable.from([binary(64 * 1024), binary(96 * 1024 + i)]), {filename: `c${i}`})))
      expect(results.filter((r) => r.status === 'rejected').length).toBeGreaterThan(0)
      const stored = (await r1fs.list()).reduce((sum, e) => sum + e.size, 0)
      expect(stored).toBeLessThanOrEqual(512 * 1024)
    })

    it('keeps keys, hashes and files when reopened', async () => {
      const first = await open()
      await first.cstore.set('k', {v: 1})
      await first.cstore.hset('h', 'f', [1, 2])
      const cid = await first.r1fs.add(binary(70_000), {filename: 'kept', secret: 's'})
      await close(first)
      const again = await open()
      expect(await again.cstore.get('k')).toEqual({v: 1})
      expect(await again.cstore.hgetall('h')).toEqual({f: [1, 2]})
      expect((await buffer((await again.r1fs.get(cid, 's'))!.stream())).equals(binary(70_000))).toBe(true)
    })
  })
}

describe.skipIf(skipWithout('nats-server'))('two nodes on one NATS', () => {
  it('see each other’s keys, hashes and files; embedded nodes do not', async () => {
    const nats = await startNatsServer()
    const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'r1-services-')))
    const [a, b] = await Promise.all(dirs.slice(0, 2).map((dir) => openServices({dataDir: dir, cstore: nats.url, r1fs: nats.url})))
    const local = await openServices({dataDir: dirs[2]!})
    try {
      await a!.cstore.set('shared/key', {from: 'a'})
      await b!.cstore.hset('shared-hash', 'b', 2)
      const cid = await a!.r1fs.add(binary(150_000), {filename: 'from-a', secret: 'fleet'})
      expect(await b!.cstore.get('shared/key')).toEqual({from: 'a'})
      expect(await a!.cstore.hgetall('shared-hash')).toEqual({b: 2})
      expect((await buffer((await b!.r1fs.get(cid, 'fleet'))!.stream())).equals(binary(150_000))).toBe(true)
      expect(await local.cstore.get('shared/key')).toBeNull()
      expect(await local.r1fs.get(cid, 'fleet')).toBeUndefined()
      // both nodes writing one hash at once: every field lands (compare-and-set, retried)
      await Promise.all(Array.from({length: 60}, (_, i) => (i % 2 ? a! : b!).cstore.hset('contended', `f${i}`, i)))
      expect(Object.keys(await b!.cstore.hgetall('contended')).sort()).toEqual(Array.from({length: 60}, (_, i) => `f${i}`).sort())
      expect(await b!.r1fs.delete(cid)).toBe(true)
      expect(await a!.r1fs.get(cid, 'fleet')).toBeUndefined()
    } finally {
      for (const services of [a!, b!, local]) {
        await services.cstore.close()
        await services.r1fs.close()
      }
      await nats.stop()
      for (const dir of dirs) rmSync(dir, {recursive: true, force: true})
    }
  })

  it('reports an unreachable NATS and a malformed URL clearly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'r1-services-'))
    try {
      await expect(openServices({dataDir: dir, cstore: 'nats://127.0.0.1:1'})).rejects.toMatchObject({code: 'NATS_UNREACHABLE', message: expect.stringContaining('Cannot reach NATS at nats://127.0.0.1:1 for cstore')})
      await expect(openServices({dataDir: dir, r1fs: 'http://user:pw@example'})).rejects.toMatchObject({code: 'NATS_URL', message: '--r1fs http://example: not a NATS URL'})
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
