import {createHash} from 'node:crypto'
import {mkdtemp, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {BundleUploads} from '../../src/runtime/uploads.js'

describe('BundleUploads (spooled reassembly)', () => {
  let dir: string
  const stored = new Map<string, Uint8Array>()
  const store = {hasBundle: (h: string) => stored.has(h), putBundle: async (h: string, b: Uint8Array) => void stored.set(h, Buffer.from(b))}
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'r1-uploads-unit-'))
  })
  afterAll(async () => rm(dir, {recursive: true, force: true}))

  const split = (bytes: Buffer, size: number) => {
    const hash = createHash('sha256').update(bytes).digest('hex')
    const count = Math.max(1, Math.ceil(bytes.length / size))
    return Array.from({length: count}, (_, i) => ({HASH: hash, SIZE: bytes.length, INDEX: i, COUNT: count, DATA: bytes.subarray(i * size, (i + 1) * size).toString('base64')}))
  }

  it('chunks out of order and at once: stored once complete, spool emptied', async () => {
    const uploads = await BundleUploads.open(join(dir, 'a'), store)
    const bytes = Buffer.from('x'.repeat(1000) + 'y'.repeat(1000))
    const chunks = split(bytes, 300)
    const results = await Promise.all([...chunks].reverse().map((c) => uploads.put('alice', c)))
    expect(results.filter((r) => r.STORED)).toHaveLength(1)
    expect(Buffer.from(stored.get(chunks[0]!.HASH)!).equals(bytes)).toBe(true)
    expect(uploads.count()).toBe(0)
    expect(await readdir(join(dir, 'a'))).toEqual([])
  })

  it('bytes that do not hash to HASH: refused, nothing stored, the slot freed', async () => {
    const uploads = await BundleUploads.open(join(dir, 'b'), store, {perSender: 1})
    const [chunk] = split(Buffer.from('real'), 100)
    const lie = {...chunk!, HASH: 'e'.repeat(64)}
    await expect(uploads.put('bob', lie)).rejects.toThrow(/hash to/)
    expect(stored.has(lie.HASH)).toBe(false)
    expect(uploads.count('bob')).toBe(0)
    expect((await uploads.put('bob', chunk!)).STORED).toBe(true)
  })

  it('a bundle in one chunk is stored as it arrives: no spool file, no slot taken', async () => {
    const spool = join(dir, 'd')
    const uploads = await BundleUploads.open(spool, store, {perSender: 1})
    const [big] = split(Buffer.alloc(400, 7), 100) // a chunked upload holds the sender's one slot
    expect((await uploads.put('erin', big!)).STORED).toBe(false)
    const [whole] = split(Buffer.from('one chunk'), 100)
    expect(await uploads.put('erin', whole!)).toEqual({HASH: whole!.HASH, RECEIVED: 1, COUNT: 1, STORED: true})
    expect(Buffer.from(stored.get(whole!.HASH)!).toString()).toBe('one chunk')
    expect(await readdir(spool)).toHaveLength(1) // only the chunked upload's folder
    expect(uploads.count('erin')).toBe(1)
    // a short or forged one is refused the same way, and nothing is stored
    await expect(uploads.put('erin', {...split(Buffer.from('other'), 100)[0]!, SIZE: 4})).rejects.toThrow(/has 5 bytes, SIZE says 4/)
    await uploads.close()
  })

  it('per sender: one sender at its bound is refused, another is not; idle uploads expire', async () => {
    let now = 0
    const uploads = await BundleUploads.open(join(dir, 'c'), store, {perSender: 2, idleMs: 1000}, () => now)
    const first = (seed: number) => split(Buffer.alloc(200, seed), 100)[0]!
    await uploads.put('carol', first(1))
    await uploads.put('carol', first(2))
    await expect(uploads.put('carol', first(3))).rejects.toThrow(/Too many bundle uploads in progress from carol/)
    expect((await uploads.put('dave', first(4))).STORED).toBe(false)
    now = 1001
    uploads.expire()
    expect(uploads.count()).toBe(0)
    expect((await uploads.put('carol', first(3))).RECEIVED).toBe(1)
    await uploads.close()
  })
})
