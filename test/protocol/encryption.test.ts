import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {deflateSync} from 'node:zlib'
import {describe, expect, it} from 'vitest'
import {
  DecryptionError,
  decrypt,
  decryptCommand,
  deriveSharedKey,
  encrypt,
  encryptCommandPayload,
  MAX_PLAINTEXT_BYTES,
  tryDecrypt,
} from '../../src/protocol/encryption.js'
import {generateIdentity, identityFromPrivateKey, type Identity} from '../../src/protocol/identity.js'

// Reference vectors made by Ratio1's own Python SDK (see the file's `about` and `generator`).
interface Vector {
  id: string
  format: 'single' | 'multi'
  sender: string
  sender_address: string
  receivers: string[]
  receiver_addresses: string[]
  hkdf_info_utf8: string
  plaintext: string
  ciphertext_b64: string
  ecdh_shared_secret_hex_k1_k2: string
  derived_key_hex_k1_k2: string
  reference_decrypt: Record<string, string | null>
  reference_decrypt_by_non_receiver: Record<string, string | null>
}
const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/vectors/ratio1-signing.json'), 'utf8')) as {
  keys: Record<string, {private_key_hex: string; address: string}>
  encryption: Vector[]
}
const key = (name: string): Identity => identityFromPrivateKey(new Uint8Array(Buffer.from(vectors.keys[name].private_key_hex, 'hex')))
const [k1, k2, k3] = [key('k1'), key('k2'), key('k3')]

describe('Ratio1 encryption vectors', () => {
  it('are all there', () => {
    expect(vectors.encryption.map((v) => v.format).sort()).toEqual(['multi', 'single', 'single', 'single'])
  })

  it('derive the recorded key for k1 → k2, from either side', () => {
    const v = vectors.encryption[0]
    expect(v.hkdf_info_utf8).toBe('0xai handshake data')
    expect(deriveSharedKey(k1.privateKey, k2.address).toString('hex')).toBe(v.derived_key_hex_k1_k2)
    expect(deriveSharedKey(k2.privateKey, k1.address).toString('hex')).toBe(v.derived_key_hex_k1_k2)
  })

  for (const v of vectors.encryption) {
    it(`${v.id}: every receiver decrypts, a non-receiver does not`, () => {
      expect(v.sender_address).toBe(k1.address)
      for (const [name, expected] of Object.entries(v.reference_decrypt)) {
        expect(decrypt(v.ciphertext_b64, v.sender_address, key(name))).toBe(expected ?? v.plaintext)
      }
      for (const name of Object.keys(v.reference_decrypt_by_non_receiver)) {
        expect(() => decrypt(v.ciphertext_b64, v.sender_address, key(name))).toThrow(DecryptionError)
      }
      // The wrong sender gives the wrong key.
      expect(tryDecrypt(v.ciphertext_b64, k3.address, k2)).toBeUndefined()
    })
  }
})

describe('encrypt / decrypt', () => {
  const texts = ['', 'postgres://u:p@db/x', 'Zürich 日本 🚀 "quotes" \\ newline\n', 'x'.repeat(100_000)]

  it('round trips, single receiver, both formats', () => {
    for (const text of texts) {
      expect(decrypt(encrypt(text, k2.address, k1), k1.address, k2)).toBe(text)
      const multi = encrypt(text, [k2.address, k3.address], k1)
      expect(decrypt(multi, k1.address, k2)).toBe(text)
      expect(decrypt(multi, k1.address, k3)).toBe(text)
    }
  })

  it('compresses a single-receiver plaintext from 16 KiB on (flag 0x01) and seals a shorter one as it is (flag 0x00)', () => {
    const flagOf = (b64: string) => Buffer.from(b64, 'base64')[12]
    const short = encrypt('{"ACTION":"R1_STATE"}', k2.address, k1)
    const middling = encrypt('x'.repeat(16 * 1024 - 1), k2.address, k1)
    const long = encrypt('x'.repeat(16 * 1024), k2.address, k1)
    expect([flagOf(short), flagOf(middling), flagOf(long)]).toEqual([0x00, 0x00, 0x01])
    expect(Buffer.from(long, 'base64').length).toBeLessThan(4096)
    expect(decrypt(short, k1.address, k2)).toBe('{"ACTION":"R1_STATE"}')
    expect(decrypt(middling, k1.address, k2)).toBe('x'.repeat(16 * 1024 - 1))
    expect(decrypt(long, k1.address, k2)).toBe('x'.repeat(16 * 1024))
  })

  it('keys kept per peer stay right: many peers, both sides, again and again; a non-key address is refused each time', () => {
    const peers = Array.from({length: 50}, () => generateIdentity())
    for (let round = 0; round < 2; round++) {
      for (const peer of peers) {
        expect(decrypt(encrypt(`to ${peer.address}`, peer.address, k1), k1.address, peer)).toBe(`to ${peer.address}`)
        expect(decrypt(encrypt(`from ${peer.address}`, k1.address, peer), peer.address, k1)).toBe(`from ${peer.address}`)
      }
    }
    expect(deriveSharedKey(k1.privateKey, peers[0]!.address).equals(deriveSharedKey(peers[0]!.privateKey, k1.address))).toBe(true)
    // a changed copy of a returned key leaves the kept one alone
    deriveSharedKey(k1.privateKey, k2.address).fill(0)
    expect(deriveSharedKey(k1.privateKey, k2.address).toString('hex')).toBe(vectors.encryption[0]!.derived_key_hex_k1_k2)
    const notAKey = `0xai_${Buffer.alloc(33, 0xff).toString('base64url')}`
    for (let i = 0; i < 2; i++) expect(() => encrypt('x', notAKey, k1)).toThrow(DecryptionError)
  })

  it('a single-receiver package whose nonce happens to start like zlib data still opens', () => {
    let sealed: string
    let bytes: Buffer
    do {
      sealed = encrypt('nonce like a zlib header', k2.address, k1)
      bytes = Buffer.from(sealed, 'base64')
    } while (!((bytes[0]! & 0x0f) === 8 && ((bytes[0]! << 8) | bytes[1]!) % 31 === 0))
    expect(decrypt(sealed, k1.address, k2)).toBe('nonce like a zlib header')
  })

  it('is randomized: the same plaintext twice gives two ciphertexts', () => {
    expect(encrypt('same', k2.address, k1)).not.toBe(encrypt('same', k2.address, k1))
  })

  it('never uses a nonce twice, across refills of the nonce pool (341 nonces each)', () => {
    const nonceOf = (sealed: string) => Buffer.from(sealed, 'base64').subarray(0, 12).toString('hex')
    const first = encrypt('same', k2.address, k1)
    const seen = new Set([nonceOf(first)])
    for (let i = 0; i < 2000; i++) seen.add(nonceOf(encrypt('same', k2.address, k1)))
    expect(seen.size).toBe(2001)
    expect(decrypt(first, k1.address, k2)).toBe('same')
  })

  it('the same long plaintext to many receivers in a row (compressed once): each opens only its own, and a changed plaintext is compressed afresh', () => {
    const bundle = JSON.stringify({ACTION: 'R1_BUNDLE_PUT', PAYLOAD: {DATA: Buffer.alloc(40_000, 7).toString('base64')}})
    const peers = Array.from({length: 5}, () => generateIdentity())
    const sealed = peers.map((peer) => encrypt(bundle, peer.address, k1))
    expect(new Set(sealed).size).toBe(peers.length)
    peers.forEach((peer, i) => {
      expect(decrypt(sealed[i]!, k1.address, peer)).toBe(bundle)
      expect(() => decrypt(sealed[i]!, k1.address, peers[(i + 1) % peers.length]!)).toThrow(DecryptionError)
    })
    const changed = bundle.replace('"DATA":"B', '"DATA":"C')
    expect(decrypt(encrypt(changed, k2.address, k1), k1.address, k2)).toBe(changed)
    expect(decrypt(encrypt(bundle, k2.address, k1), k1.address, k2)).toBe(bundle)
  })

  it('a throwaway sender: only the receiver can read it', () => {
    const ephemeral = generateIdentity()
    const data = encrypt('secret', k2.address, ephemeral)
    expect(decrypt(data, ephemeral.address, k2)).toBe('secret')
    expect(tryDecrypt(data, ephemeral.address, k1)).toBeUndefined()
    expect(tryDecrypt(data, k1.address, k2)).toBeUndefined()
  })

  it('rejects a tampered nonce, ciphertext or tag, a wrong key, and garbage', () => {
    const data = Buffer.from(encrypt('postgres://u:p@db/x', k2.address, k1), 'base64')
    const flip = (i: number) => {
      const copy = Buffer.from(data)
      copy[i] ^= 0x01
      return copy.toString('base64')
    }
    for (const i of [0, 11, 13, data.length - 17, data.length - 1]) {
      expect(() => decrypt(flip(i), k1.address, k2), `byte ${i}`).toThrow(DecryptionError)
    }
    expect(() => decrypt(data.subarray(0, data.length - 1).toString('base64'), k1.address, k2)).toThrow(DecryptionError)
    expect(() => decrypt(data.toString('base64'), k1.address, k3)).toThrow(DecryptionError)
    expect(() => decrypt('AAAA', k1.address, k2)).toThrow(DecryptionError)
    expect(() => decrypt('not base64!', k1.address, k2)).toThrow(DecryptionError)
    expect(() => decrypt(data.toString('base64'), '0xai_nope', k2)).toThrow(DecryptionError)
  })

  it('refuses to inflate past MAX_PLAINTEXT_BYTES (a zlib bomb), in either format', () => {
    const big = 'a'.repeat(MAX_PLAINTEXT_BYTES + 1)
    expect(() => decrypt(encrypt(big, k2.address, k1), k1.address, k2)).toThrow(/inflates past/)
    expect(() => decrypt(encrypt(big, [k2.address], k1), k1.address, k2)).toThrow(/inflates past/)
    expect(() => decrypt(deflateSync(Buffer.alloc(MAX_PLAINTEXT_BYTES + 1)).toString('base64'), k1.address, k2)).toThrow(DecryptionError)
  })

  it('rejects a tampered multi-receiver package', () => {
    const vector = vectors.encryption.find((v) => v.format === 'multi')!
    const pkg = JSON.parse((vector as unknown as {parsed: {package_json: string}}).parsed.package_json)
    const pack = (p: unknown) => deflateSync(Buffer.from(JSON.stringify(p), 'utf8')).toString('base64')
    expect(decrypt(pack(pkg), k1.address, k2)).toBe(vector.plaintext)
    const d = pkg.d as string
    expect(() => decrypt(pack({...pkg, d: (d[0] === '0' ? '1' : '0') + d.slice(1)}), k1.address, k2)).toThrow(DecryptionError)
    const wrapped = pkg.k[0].k as string
    const badKey = {...pkg, k: [{...pkg.k[0], k: wrapped.slice(0, -2) + (wrapped.endsWith('00') ? '01' : '00')}, pkg.k[1]]}
    expect(() => decrypt(pack(badKey), k1.address, k2)).toThrow(DecryptionError)
    expect(decrypt(pack(badKey), k1.address, k3)).toBe(vector.plaintext)
  })
})

describe('encrypted commands (EE_IS_ENCRYPTED)', () => {
  const envelope = (fields: object, dest: string | string[] = k2.address) => ({
    ...fields,
    EE_DEST: dest,
    INITIATOR_ID: 'cli',
    SESSION_ID: 'cli',
    EE_SENDER: k1.address,
    TIME: '2026-12-03 12:00:00.000000',
  })
  const command = {ACTION: 'UPDATE_CONFIG', PAYLOAD: {NAME: 'p', TYPE: 'Void', PLUGINS: []}}

  it('encryptCommandPayload replaces ACTION and PAYLOAD; decryptCommand puts them back', () => {
    const fields = encryptCommandPayload(command, k2.address, k1)
    expect(Object.keys(fields).sort()).toEqual(['EE_ENCRYPTED_DATA', 'EE_IS_ENCRYPTED'])
    expect(fields.EE_IS_ENCRYPTED).toBe(true)
    expect(fields.EE_ENCRYPTED_DATA).not.toContain('UPDATE_CONFIG')
    const opened = decryptCommand(envelope(fields), k2)
    expect(opened).toEqual({ok: true, message: {...envelope({}), EE_IS_ENCRYPTED: true, ...command}})
  })

  it('opens the command Ratio1 encrypted (the enc_single_command and multi vectors)', () => {
    for (const v of vectors.encryption.filter((x) => x.plaintext.startsWith('{"ACTION"'))) {
      const dest = v.format === 'multi' ? v.receiver_addresses : v.receiver_addresses[0]
      const opened = decryptCommand(envelope({EE_IS_ENCRYPTED: true, EE_ENCRYPTED_DATA: v.ciphertext_b64}, dest), k2)
      expect(opened.ok).toBe(true)
      if (opened.ok) {
        expect(opened.message.ACTION).toBe('UPDATE_CONFIG')
        expect(opened.message.PAYLOAD).toEqual(JSON.parse(v.plaintext).PAYLOAD)
        expect(opened.message.EE_ENCRYPTED_DATA).toBeUndefined()
      }
    }
  })

  it('refuses a command for another node, a tampered one, and a mixed one', () => {
    const fields = encryptCommandPayload(command, k2.address, k1)
    expect(decryptCommand(envelope(fields), k3)).toMatchObject({ok: false, reason: 'NOT_FOR_THIS_NODE'})
    expect(decryptCommand({...envelope(fields), EE_DEST: k3.address}, k3)).toMatchObject({ok: false, reason: 'DECRYPT_FAILED'})
    const data = Buffer.from(fields.EE_ENCRYPTED_DATA, 'base64')
    data[20] ^= 1
    expect(decryptCommand(envelope({...fields, EE_ENCRYPTED_DATA: data.toString('base64')}), k2)).toMatchObject({ok: false, reason: 'DECRYPT_FAILED'})
    expect(decryptCommand(envelope({...fields, ACTION: 'DELETE_CONFIG'}), k2)).toMatchObject({ok: false, reason: 'INVALID_MESSAGE'})
    expect(decryptCommand(envelope({EE_IS_ENCRYPTED: true}), k2)).toMatchObject({ok: false, reason: 'INVALID_MESSAGE'})
    const notCommand = {EE_IS_ENCRYPTED: true, EE_ENCRYPTED_DATA: encrypt('[1, 2]', k2.address, k1)}
    expect(decryptCommand(envelope(notCommand), k2)).toMatchObject({ok: false, reason: 'INVALID_MESSAGE'})
  })

  it('a plain command passes through', () => {
    const plain = envelope(command)
    expect(decryptCommand(plain, k2)).toEqual({ok: true, message: plain})
  })
})

