import {createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual, type Hash, type Hmac} from 'node:crypto'
import {Transform, type TransformCallback} from 'node:stream'

/**
 * R1FS content addresses and encryption at rest.
 *
 * A cid is 64 hex digits: SHA-256 (HMAC-SHA-256 keyed by the secret for an encrypted file, so that
 * the cid reveals nothing about the content to whoever lacks the secret) over a version tag, the
 * file name's length and bytes, then the content. The same bytes and name (and secret) always give
 * the same cid; a different name or secret gives another file.
 *
 * An encrypted file is stored as `R1FSAES1` + a random 12-byte nonce, then the plaintext in
 * 64 KiB chunks, each AES-256-GCM-sealed (16-byte tag) under a key derived from the secret
 * (SHA-256 of the secret, as Ratio1 keys its AES-GCM, then HMAC-separated per use). Chunk i's
 * nonce is the file nonce with its last 4 bytes XOR i; its additional data is i and whether it is
 * the last chunk, so chunks cannot be reordered, dropped or the file truncated unnoticed. A file is
 * encrypted and decrypted chunk by chunk: never held in memory whole.
 */

export const CHUNK_BYTES = 64 * 1024
const TAG_BYTES = 16
const MAGIC = Buffer.from('R1FSAES1')
const HEADER_BYTES = MAGIC.length + 12
const CID_TAG = Buffer.from('r1fs/1\0')
export const CID_PATTERN = /^[0-9a-f]{64}$/

interface SecretKeys {
  encryption: Buffer
  cid: Buffer
  check: Buffer
}

function secretKeys(secret: string): SecretKeys {
  const root = createHash('sha256').update(secret, 'utf8').digest()
  const derive = (use: string) => createHmac('sha256', root).update(use).digest()
  return {encryption: derive('r1fs encryption'), cid: derive('r1fs cid'), check: derive('r1fs check')}
}

/** Hashes a file's name then content into its cid (keyed by the secret when there is one). */
export class CidHasher {
  private readonly hash: Hash | Hmac

  constructor(filename: string, secret?: string) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secretKeys(secret).cid)
    const name = Buffer.from(filename, 'utf8')
    const length = Buffer.alloc(4)
    length.writeUInt32BE(name.length)
    this.hash.update(CID_TAG).update(length).update(name)
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk)
  }

  digest(): string {
    return this.hash.digest('hex')
  }
}

/** The cid of bytes held in memory (JSON and YAML documents). */
export function cidOf(bytes: Uint8Array, filename: string, secret?: string): string {
  const hasher = new CidHasher(filename, secret)
  hasher.update(bytes)
  return hasher.digest()
}

/** What is stored next to an encrypted file to tell a wrong secret from the right one without decrypting. */
export function secretCheck(secret: string): string {
  return secretKeys(secret).check.toString('hex')
}

export function secretMatches(secret: string, check: string): boolean {
  const expected = secretKeys(secret).check
  const given = Buffer.from(check, 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

function chunkNonce(base: Buffer, index: number): Buffer {
  const nonce = Buffer.from(base)
  nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ index) >>> 0, 8)
  return nonce
}

function chunkAad(index: number, last: boolean): Buffer {
  const aad = Buffer.alloc(5)
  aad.writeUInt32BE(index)
  aad[4] = last ? 1 : 0
  return aad
}

/** Plaintext in, the encrypted file format out. */
export function encryptStream(secret: string): Transform {
  const key = secretKeys(secret).encryption
  const nonce = randomBytes(12)
  let pending: Buffer[] = []
  let pendingBytes = 0
  let index = 0
  const seal = (plain: Buffer, last: boolean): Buffer => {
    const cipher = createCipheriv('aes-256-gcm', key, chunkNonce(nonce, index))
    cipher.setAAD(chunkAad(index, last))
    index++
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
  }
  return new Transform({
    construct(callback) {
      this.push(Buffer.concat([MAGIC, nonce]))
      callback()
    },
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      pending.push(chunk)
      pendingBytes += chunk.length
      // a full chunk is sealed as "not last" only once more bytes follow it
      if (pendingBytes > CHUNK_BYTES) {
        let all = Buffer.concat(pending)
        while (all.length > CHUNK_BYTES) {
          this.push(seal(all.subarray(0, CHUNK_BYTES), false))
          all = all.subarray(CHUNK_BYTES)
        }
        pending = [all]
        pendingBytes = all.length
      }
      callback()
    },
    flush(callback: TransformCallback) {
      this.push(seal(Buffer.concat(pending), true))
      callback()
    },
  })
}

/** The encrypted file format in, plaintext out; a wrong key, a changed or truncated file errors the stream. */
export function decryptStream(secret: string): Transform {
  const key = secretKeys(secret).encryption
  let nonce: Buffer | undefined
  let buffer: Buffer = Buffer.alloc(0)
  let index = 0
  const open = (sealed: Buffer, last: boolean): Buffer => {
    const decipher = createDecipheriv('aes-256-gcm', key, chunkNonce(nonce!, index))
    decipher.setAAD(chunkAad(index, last))
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    index++
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()])
  }
  const sealedChunk = CHUNK_BYTES + TAG_BYTES
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      try {
        if (!nonce) {
          if (buffer.length < HEADER_BYTES) return callback()
          if (!buffer.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an R1FS encrypted file')
          nonce = Buffer.from(buffer.subarray(MAGIC.length, HEADER_BYTES))
          buffer = buffer.subarray(HEADER_BYTES)
        }
        while (buffer.length > sealedChunk) {
          this.push(open(buffer.subarray(0, sealedChunk), false))
          buffer = buffer.subarray(sealedChunk)
        }
        callback()
      } catch (error) {
        callback(decryptError(error))
      }
    },
    flush(callback: TransformCallback) {
      try {
        if (!nonce || buffer.length < TAG_BYTES) throw new Error('the encrypted file is truncated')
        this.push(open(buffer, true))
        callback()
      } catch (error) {
        callback(decryptError(error))
      }
    },
  })
}

function decryptError(error: unknown): Error {
  const message = (error as Error).message
  return new Error(/auth/i.test(message) ? 'the encrypted file does not match its secret (changed or corrupt on disk)' : message)
}
