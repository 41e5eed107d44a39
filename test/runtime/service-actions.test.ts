import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {sessionConnector} from '../../src/deploy/link.js'
import type {NodeLink} from '../../src/fleet/engine.js'
import {localFile, r1fsAdd, r1fsGet, r1fsList} from '../../src/deploy/services.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {R1FS_CHUNK_BYTES} from '../../src/protocol/services.js'
import {openServices, type NodeServices} from '../../src/services/index.js'
import {startTestNode, type TestNode} from '../server/helpers.js'

/** The CStore and R1FS actions against a real node server whose core has the real embedded services. */

const bytesOf = (size: number) => {
  const bytes = randomBytes(size)
  bytes[0] = 0x00
  bytes[size - 1] = 0xff
  return bytes
}
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

async function withServices(dir: string, quotaBytes?: number): Promise<NodeServices> {
  return openServices({dataDir: dir, ...(quotaBytes === undefined ? {} : {quotaBytes})})
}

describe('service actions on a node', () => {
  let root: string
  let services: NodeServices
  let t: TestNode
  let link: NodeLink

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'r1-service-actions-'))
    services = await withServices(join(root, 'services'))
    t = await startTestNode({core: {services}})
    link = await sessionConnector(t.client)({name: 'n', url: t.node.url, address: t.node.address})
  })

  afterAll(async () => {
    await link?.close()
    await t?.dispose()
    await services?.cstore.close()
    await services?.r1fs.close()
    await rm(root, {recursive: true, force: true})
  })

  it('reads and writes keys and hashes: any JSON, odd keys, null deletes, missing reads as null', async () => {
    const key = 'odd/kéy with spaces\u0001'
    expect(await link.request('R1_CSTORE_SET', {KEY: key, VALUE: {a: [1, 2.5, null, 'x']}})).toEqual({KEY: key, STORED: true})
    expect(await link.request('R1_CSTORE_GET', {KEY: key})).toEqual({KEY: key, VALUE: {a: [1, 2.5, null, 'x']}})
    expect(await link.request('R1_CSTORE_GET', {KEY: 'never'})).toEqual({KEY: 'never', VALUE: null})
    await link.request('R1_CSTORE_SET', {KEY: key, VALUE: null})
    expect((await link.request('R1_CSTORE_GET', {KEY: key})).VALUE).toBeNull()
    await link.request('R1_CSTORE_HSET', {HKEY: 'h', FIELD: 'f1', VALUE: 1})
    await link.request('R1_CSTORE_HSET', {HKEY: 'h', FIELD: 'f2', VALUE: 'two'})
    expect(await link.request('R1_CSTORE_HGET', {HKEY: 'h', FIELD: 'f2'})).toEqual({HKEY: 'h', FIELD: 'f2', VALUE: 'two'})
    expect(await link.request('R1_CSTORE_HGETALL', {HKEY: 'h'})).toEqual({HKEY: 'h', FIELDS: {f1: 1, f2: 'two'}})
    expect((await link.request('R1_CSTORE_HKEYS', {HKEY: 'h'})).FIELDS.sort()).toEqual(['f1', 'f2'])
    await link.request('R1_CSTORE_HSET', {HKEY: 'h', FIELD: 'f1', VALUE: null})
    expect((await link.request('R1_CSTORE_HGETALL', {HKEY: 'h'})).FIELDS).toEqual({f2: 'two'})
    expect((await link.request('R1_CSTORE_HGETALL', {HKEY: 'none'})).FIELDS).toEqual({})
    // what the node stored is what its services hold (the HTTP APIs and plugins see the same)
    expect(await services.cstore.hget('h', 'f2')).toBe('two')
  })

  it('adds a file bigger than one frame in chunks, encrypted with a secret, and reads it back', async () => {
    const bytes = bytesOf(2 * R1FS_CHUNK_BYTES + 12_345)
    const path = join(root, 'big.bin')
    await writeFile(path, bytes)
    const added = await r1fsAdd(link, await localFile(path), 'a secret')
    expect(added).toMatchObject({filename: 'big.bin', size: bytes.length, encrypted: true})
    const out = join(root, 'back.bin')
    const got = await r1fsGet(link, added.cid, 'a secret', {path: out, force: false})
    expect(got).toEqual({cid: added.cid, filename: 'big.bin', size: bytes.length, path: out})
    expect(sha(await readFile(out))).toBe(sha(bytes))
    // a chunk from the middle, out of sequence, is the right bytes too
    const middle = await link.request('R1_R1FS_GET', {CID: added.cid, OFFSET: 1000, SECRET: 'a secret'}, {encrypted: true})
    expect(Buffer.from(middle!.DATA, 'base64').equals(bytes.subarray(1000, 1000 + R1FS_CHUNK_BYTES))).toBe(true)
    // a wrong secret and an unknown CID are both "no such file"
    expect(await link.request('R1_R1FS_GET', {CID: added.cid, OFFSET: 0, SECRET: 'wrong'}, {encrypted: true})).toBeNull()
    expect(await link.request('R1_R1FS_GET', {CID: 'no-such-cid', OFFSET: 0})).toBeNull()
    expect((await r1fsList(link)).files).toContainEqual(expect.objectContaining({cid: added.cid, filename: 'big.bin', size: bytes.length, encrypted: true}))
    expect(await link.request('R1_R1FS_RM', {CID: added.cid})).toEqual({CID: added.cid, DELETED: true})
    expect(await link.request('R1_R1FS_RM', {CID: added.cid})).toEqual({CID: added.cid, DELETED: false})
    expect(await link.request('R1_R1FS_GET', {CID: added.cid, OFFSET: 0, SECRET: 'a secret'}, {encrypted: true})).toBeNull()
  })

  it('a download whose bytes do not match the CID (the copy was damaged on the node) leaves no file', async () => {
    const path = join(root, 'fragile.bin')
    await writeFile(path, bytesOf(R1FS_CHUNK_BYTES + 100))
    const {cid} = await r1fsAdd(link, await localFile(path), undefined)
    const stored = join(root, 'services', 'r1fs', 'files', cid.slice(0, 2), cid)
    const damaged = await readFile(stored)
    damaged[R1FS_CHUNK_BYTES + 50] ^= 0x01
    await writeFile(stored, damaged)
    const out = join(root, 'fragile-back.bin')
    await expect(r1fsGet(link, cid, undefined, {path: out, force: false})).rejects.toMatchObject({code: 'R1FS_CORRUPT', message: expect.stringContaining('nothing written')})
    expect(existsSync(out)).toBe(false)
    expect((await readdir(root)).filter((name) => name.includes('fragile-back'))).toEqual([])
  })

  it('an empty file is one empty chunk', async () => {
    const path = join(root, 'empty.txt')
    await writeFile(path, '')
    const {cid} = await r1fsAdd(link, await localFile(path), undefined)
    const out = join(root, 'empty-back.txt')
    expect((await r1fsGet(link, cid, undefined, {path: out, force: false})).size).toBe(0)
    expect((await readFile(out)).length).toBe(0)
  })

  it('refuses a SECRET sent in the clear, and changes nothing', async () => {
    const data = Buffer.from('secret stuff')
    const chunk = {UPLOAD: 'clear-upload-1', FILENAME: 'a.txt', SIZE: data.length, SHA256: sha(data), INDEX: 0, COUNT: 1, DATA: data.toString('base64'), SECRET: 'in the clear'}
    await expect(link.request('R1_R1FS_ADD', chunk)).rejects.toThrow(/accepted only encrypted/)
    await expect(link.request('R1_R1FS_GET', {CID: 'x', OFFSET: 0, SECRET: 'in the clear'})).rejects.toThrow(/accepted only encrypted/)
    expect((await r1fsList(link)).files.some((f) => f.filename === 'a.txt')).toBe(false)
  })

  it('drops an upload whose chunks come out of order, and stores nothing whose hash does not match', async () => {
    const data = bytesOf(R1FS_CHUNK_BYTES + 10)
    const base = {FILENAME: 'parts.bin', SIZE: data.length, SHA256: sha(data), COUNT: 2}
    const chunk = (index: number) => data.subarray(index * R1FS_CHUNK_BYTES, (index + 1) * R1FS_CHUNK_BYTES).toString('base64')
    await expect(link.request('R1_R1FS_ADD', {...base, UPLOAD: 'order-test-1', INDEX: 1, DATA: chunk(1)})).rejects.toThrow(/send it again from chunk 0/)
    expect(await link.request('R1_R1FS_ADD', {...base, UPLOAD: 'order-test-2', INDEX: 0, DATA: chunk(0)})).toMatchObject({RECEIVED: 1, CID: null})
    // the same chunk again (its answer lost) is accepted once
    expect(await link.request('R1_R1FS_ADD', {...base, UPLOAD: 'order-test-2', INDEX: 0, DATA: chunk(0)})).toMatchObject({RECEIVED: 1, CID: null})
    const bad = {...base, SHA256: sha(Buffer.from('other'))}
    await link.request('R1_R1FS_ADD', {...bad, UPLOAD: 'hash-test-1', INDEX: 0, DATA: chunk(0)})
    await expect(link.request('R1_R1FS_ADD', {...bad, UPLOAD: 'hash-test-1', INDEX: 1, DATA: chunk(1)})).rejects.toThrow(/hash to .* not SHA256 .*nothing stored/)
    // a chunk that changes the upload's FILENAME drops it
    await expect(link.request('R1_R1FS_ADD', {...base, FILENAME: 'renamed.bin', UPLOAD: 'order-test-2', INDEX: 1, DATA: chunk(1)})).rejects.toThrow(/does not match its first chunk/)
    // a chunk of the wrong size drops it too
    await link.request('R1_R1FS_ADD', {...base, UPLOAD: 'size-test-1', INDEX: 0, DATA: chunk(0)})
    await expect(link.request('R1_R1FS_ADD', {...base, UPLOAD: 'size-test-1', INDEX: 1, DATA: Buffer.from('short').toString('base64')})).rejects.toThrow(/holds 5 bytes; expected 10/)
    expect((await r1fsList(link)).files.some((f) => f.filename === 'parts.bin' || f.filename === 'renamed.bin')).toBe(false)
  })

  it('payloads that do not fit the schemas are refused before they are sent, naming the field', async () => {
    await expect(link.request('R1_CSTORE_GET', {KEY: ''})).rejects.toMatchObject({code: 'INVALID_COMMAND', message: expect.stringContaining('KEY')})
    await expect(link.request('R1_R1FS_ADD', {UPLOAD: 'count-test', FILENAME: 'x', SIZE: 10, SHA256: sha(Buffer.alloc(10)), INDEX: 0, COUNT: 2, DATA: ''})).rejects.toMatchObject({code: 'INVALID_COMMAND', message: expect.stringContaining('COUNT')})
    await expect(link.request('R1_R1FS_ADD', {UPLOAD: 'name-test', FILENAME: 'a/x', SIZE: 0, SHA256: sha(Buffer.alloc(0)), INDEX: 0, COUNT: 1, DATA: ''})).rejects.toMatchObject({code: 'INVALID_COMMAND', message: expect.stringContaining('FILENAME')})
  })

  it('refuses every service action from a sender not on the allow-list', async () => {
    const stranger = await sessionConnector(generateIdentity())({name: 'n', url: t.node.url, address: t.node.address})
    try {
      await expect(stranger.request('R1_CSTORE_GET', {KEY: 'k'})).rejects.toMatchObject({code: 'REJECTED_NOT_ALLOWED'})
      await expect(stranger.request('R1_R1FS_LS', null)).rejects.toMatchObject({code: 'REJECTED_NOT_ALLOWED'})
    } finally {
      await stranger.close()
    }
  })
})

describe('service actions on nodes with a quota, or without services', () => {
  it('refuses a file over the R1FS quota and keeps nothing of it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'r1-service-quota-'))
    const services = await withServices(join(root, 'services'), 256 * 1024)
    const t = await startTestNode({core: {services}})
    const link = await sessionConnector(t.client)({name: 'n', url: t.node.url, address: t.node.address})
    try {
      const path = join(root, 'big.bin')
      await writeFile(path, bytesOf(R1FS_CHUNK_BYTES))
      await expect(r1fsAdd(link, await localFile(path), undefined)).rejects.toMatchObject({code: 'REJECTED_EXECUTION_FAILED', message: expect.stringMatching(/quota/i)})
      expect((await r1fsList(link)).files).toEqual([])
    } finally {
      await link.close()
      await t.dispose()
      await services.cstore.close()
      await services.r1fs.close()
      await rm(root, {recursive: true, force: true})
    }
  })

  it('a node without services refuses the actions and says why', async () => {
    const t = await startTestNode()
    const link = await sessionConnector(t.client)({name: 'n', url: t.node.url, address: t.node.address})
    try {
      await expect(link.request('R1_CSTORE_GET', {KEY: 'k'})).rejects.toThrow(/runs no CStore\/R1FS services/)
    } finally {
      await link.close()
      await t.dispose()
    }
  })
})
