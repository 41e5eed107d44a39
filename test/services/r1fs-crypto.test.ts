// R1FS encryption at rest: chunk boundaries, arbitrary input chunking, and every kind of tampering refused.
import {randomBytes} from 'node:crypto'
import {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {describe, expect, it} from 'vitest'
import {CHUNK_BYTES, CidHasher, cidOf, decryptStream, encryptStream} from '../../src/services/r1fs-crypto.js'

async function through(input: Buffer, transform: NodeJS.ReadWriteStream, pieces = 1): Promise<Buffer> {
  const step = Math.max(1, Math.ceil(input.length / pieces))
  const parts = Array.from({length: Math.ceil(input.length / step)}, (_, i) => input.subarray(i * step, (i + 1) * step))
  const out: Buffer[] = []
  await pipeline(Readable.from(parts.length ? parts : [Buffer.alloc(0)]), transform, new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk)
      callback()
    },
  }))
  return Buffer.concat(out)
}

const HEADER = 8 + 12
const TAG = 16

describe('encryptStream / decryptStream', () => {
  it.each([0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES, 3 * CHUNK_BYTES + 5])('round-trips %i bytes fed in odd pieces', async (size) => {
    const plain = randomBytes(size)
    const sealed = await through(plain, encryptStream('pw'), 7)
    expect(sealed.length).toBe(HEADER + Math.max(1, Math.ceil(size / CHUNK_BYTES)) * TAG + size)
    expect((await through(sealed, decryptStream('pw'), 13)).equals(plain)).toBe(true)
  })

  it('uses a fresh nonce each time: the same bytes never seal the same', async () => {
    const plain = randomBytes(1000)
    expect((await through(plain, encryptStream('pw'))).equals(await through(plain, encryptStream('pw')))).toBe(false)
  })

  it('refuses a wrong secret, a flipped bit, a dropped last chunk, swapped chunks and a foreign file', async () => {
    const plain = randomBytes(3 * CHUNK_BYTES + 100)
    const sealed = await through(plain, encryptStream('pw'))
    const block = CHUNK_BYTES + TAG
    const flipped = Buffer.from(sealed)
    flipped[HEADER + 10]! ^= 1
    const truncated = sealed.subarray(0, HEADER + 3 * block)
    const swapped = Buffer.concat([sealed.subarray(0, HEADER), sealed.subarray(HEADER + block, HEADER + 2 * block), sealed.subarray(HEADER, HEADER + block), sealed.subarray(HEADER + 2 * block)])
    for (const [bytes, secret] of [[sealed, 'other'], [flipped, 'pw'], [truncated, 'pw'], [swapped, 'pw']] as const) {
      await expect(through(bytes, decryptStream(secret))).rejects.toThrow(/does not match its secret/)
    }
    await expect(through(Buffer.from('plain text, not sealed at all'), decryptStream('pw'))).rejects.toThrow(/not an R1FS encrypted file/)
    await expect(through(sealed.subarray(0, 10), decryptStream('pw'))).rejects.toThrow(/truncated/)
  })
})

describe('cids', () => {
  it('depend on the name, the content and the secret, and not on how the bytes arrive', () => {
    const bytes = randomBytes(5000)
    const hasher = new CidHasher('a.bin')
    hasher.update(bytes.subarray(0, 123))
    hasher.update(bytes.subarray(123))
    expect(hasher.digest()).toBe(cidOf(bytes, 'a.bin'))
    const all = [cidOf(bytes, 'a.bin'), cidOf(bytes, 'b.bin'), cidOf(bytes, 'a.bin', 's'), cidOf(bytes, 'a.bin', 't'), cidOf(Buffer.concat([bytes, Buffer.from([0])]), 'a.bin')]
    expect(new Set(all).size).toBe(all.length)
    // the name's length is hashed too: moving bytes between name and content changes the cid
    expect(cidOf(Buffer.from('bc'), 'a')).not.toBe(cidOf(Buffer.from('c'), 'ab'))
  })
})
