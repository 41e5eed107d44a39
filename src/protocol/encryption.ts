import {createCipheriv, createDecipheriv, hkdfSync, randomBytes} from 'node:crypto'
import {deflateSync, inflateSync} from 'node:zlib'
import secp256k1 from 'secp256k1'
import {parseWireJson, toPlain} from './canonical.js'
import {type Identity, normalizeAddress, publicKeyFromAddress} from './identity.js'
import {fromStandardBase64} from './base64.js'

/**
 * Ratio1's end-to-end encryption (`EE_ENCRYPTED_DATA`, ratio1_sdk `ratio1/bc/ec.py`):
 * key = HKDF-SHA256(ECDH secp256k1 x-coordinate, no salt, info "0xai handshake data", 32 bytes),
 * cipher = AES-256-GCM, random 12-byte nonce, no associated data, plaintext zlib-compressed (see the flag).
 *
 * - one receiver: base64(nonce 12 | flag | ciphertext | tag 16), the flag 0x01 when the plaintext was
 *   compressed (from 16 KiB on) and 0x00 when not
 * - several receivers: base64(zlib(JSON {M: true, c: "01", n, d, k: [{a: address, k: hex(nonce | wrapped key | tag)}]})),
 *   the data under a random key that is wrapped once per receiver.
 *
 * Either side derives the same key (sender private × receiver public = receiver private × sender
 * public), so whoever holds the sender's private key can decrypt too: encrypt from a throwaway
 * identity when only the receiver may read the data.
 */

export const ENCRYPTION_INFO = '0xai handshake data'
export const EE_IS_ENCRYPTED = 'EE_IS_ENCRYPTED'
export const EE_ENCRYPTED_DATA = 'EE_ENCRYPTED_DATA'

const NONCE_BYTES = 12
const TAG_BYTES = 16
const FLAG_PLAIN = 0x00
const FLAG_COMPRESSED = 0x01
/**
 * A single-receiver plaintext shorter than this is sealed as it is: most frames and commands are (replies,
 * notifications, a state with its heartbeat). Deflating a few KiB costs the sender more CPU than its bytes
 * cost the broker, and a node answering a fleet spends that CPU on every answer.
 */
const COMPRESS_FROM_BYTES = 16 * 1024
/** Decompression stops here: a frame is at most 1 MiB, and a zlib bomb must not take the node's memory. */
export const MAX_PLAINTEXT_BYTES = 16 * 1024 * 1024

/** Data that does not decrypt: wrong key, wrong sender, not a receiver, or tampered. */
export class DecryptionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DecryptionError'
  }
}

/** The 32-byte AES key two identities share (sender private key × receiver public key, or the reverse). */
export function deriveSharedKey(privateKey: Uint8Array, peerAddress: string): Buffer {
  return Buffer.from(sharedKey(privateKey, peerAddress))
}

/**
 * Shared keys already derived, per private key (the same Uint8Array: an identity's) and peer address.
 * One secp256k1 multiplication per peer instead of one per message: a CLI talking to a thousand nodes,
 * or a node sealing every frame to its client, derives each key once. Past MAX_SHARED_KEYS per private
 * key the least recently used go. The multiplication is libsecp256k1's (the `secp256k1` package that
 * signs), an order of magnitude faster than OpenSSL's generic curve code behind node:crypto's ECDH.
 */
const sharedKeys = new WeakMap<Uint8Array, Map<string, Buffer>>()
const MAX_SHARED_KEYS = 20_000

function sharedKey(privateKey: Uint8Array, peerAddress: string): Buffer {
  let keys = sharedKeys.get(privateKey)
  if (!keys) sharedKeys.set(privateKey, (keys = new Map()))
  let key = keys.get(peerAddress)
  if (key) {
    keys.delete(peerAddress) // most recently used last
  } else {
    const peer = publicKeyFromAddress(peerAddress)
    if (!peer) throw new DecryptionError(`not a node address: ${JSON.stringify(peerAddress.slice(0, 60))}`)
    // the x coordinate of the shared point, as Ratio1 (and OpenSSL's ECDH) takes it
    const secret = secp256k1.ecdh(peer, privateKey, {hashfn: (x: Uint8Array) => x}, new Uint8Array(32))
    key = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), ENCRYPTION_INFO, 32))
    if (keys.size >= MAX_SHARED_KEYS) keys.delete(keys.keys().next().value!)
  }
  keys.set(peerAddress, key)
  return key
}

/**
 * Nonces are cut from a pool the CSPRNG fills 341 at a time (4,092 bytes, just under 4 KiB), each used once,
 * each pool a fresh buffer: one call to it per 341 frames instead of one per frame (a node answering a
 * fleet, a CLI commanding one, seals one per message).
 */
const NONCE_POOL_BYTES = 341 * NONCE_BYTES
let noncePool = Buffer.alloc(0)
let nonceOffset = 0

function freshNonce(): Buffer {
  if (nonceOffset + NONCE_BYTES > noncePool.length) {
    noncePool = randomBytes(NONCE_POOL_BYTES)
    nonceOffset = 0
  }
  nonceOffset += NONCE_BYTES
  return noncePool.subarray(nonceOffset - NONCE_BYTES, nonceOffset)
}

function seal(key: Uint8Array, data: Uint8Array): {nonce: Buffer; sealed: Buffer} {
  const nonce = freshNonce()
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  const sealed = Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()])
  return {nonce, sealed}
}

function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Buffer {
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) throw new DecryptionError('encrypted data is too short')
  const decipher = createDecipheriv('aes-256-gcm', key, nonce)
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()])
  } catch {
    throw new DecryptionError('authentication failed (wrong key, wrong sender or tampered data)')
  }
}

function inflate(data: Uint8Array): Buffer {
  try {
    return inflateSync(data, {maxOutputLength: MAX_PLAINTEXT_BYTES})
  } catch {
    throw new DecryptionError(`decrypted data is not zlib data, or inflates past ${MAX_PLAINTEXT_BYTES} bytes`)
  }
}

/**
 * The last plaintext compressed and its zlib bytes: the same command sealed to each node of a fleet (a
 * bundle chunk to a thousand nodes) is compressed once, and only the sealing is per node.
 */
let lastDeflated: {plaintext: string; bytes: Buffer} | undefined

function deflateText(plaintext: string, bytes: Buffer): Buffer {
  if (lastDeflated?.plaintext !== plaintext) lastDeflated = {plaintext, bytes: deflateSync(bytes)}
  return lastDeflated.bytes
}

/**
 * Encrypts `plaintext` from `sender` to one receiver address (Ratio1's single format) or to a list
 * of them (the multi format, which each receiver opens with its own key). Returns standard base64.
 */
export function encrypt(plaintext: string, receiver: string | readonly string[], sender: Identity): string {
  const bytes = Buffer.from(plaintext, 'utf8')
  if (typeof receiver === 'string') {
    // below COMPRESS_FROM_BYTES deflate costs more than it saves: flag 0x00, as Ratio1's `compressed=False`
    const small = bytes.length < COMPRESS_FROM_BYTES
    const {nonce, sealed} = seal(sharedKey(sender.privateKey, receiver), small ? bytes : deflateText(plaintext, bytes))
    return Buffer.concat([nonce, Buffer.of(small ? FLAG_PLAIN : FLAG_COMPRESSED), sealed]).toString('base64')
  }
  const compressed = deflateSync(bytes)
  if (receiver.length === 0) throw new Error('encrypt: no receiver')
  const dataKey = randomBytes(32)
  const data = seal(dataKey, compressed)
  const keys = receiver.map((address) => {
    const wrapped = seal(sharedKey(sender.privateKey, address), dataKey)
    return {a: address, k: Buffer.concat([wrapped.nonce, wrapped.sealed]).toString('hex')}
  })
  const pkg = {M: true, c: '01', n: data.nonce.toString('hex'), d: data.sealed.toString('hex'), k: keys}
  return deflateSync(Buffer.from(JSON.stringify(pkg), 'utf8')).toString('base64')
}

/**
 * Decrypts what `senderAddress` encrypted to `receiver` (either format, multi first as Ratio1's
 * reference does). Throws {@link DecryptionError} when it does not decrypt.
 */
export function decrypt(data: string, senderAddress: string, receiver: Identity): string {
  const bytes = typeof data === 'string' ? fromStandardBase64(data) : undefined
  if (!bytes) throw new DecryptionError('encrypted data is not base64')
  const multi = multiPackage(bytes)
  if (multi) return decryptMulti(multi, senderAddress, receiver)
  if (bytes.length < NONCE_BYTES + 1 + TAG_BYTES) throw new DecryptionError('encrypted data is too short')
  const key = sharedKey(receiver.privateKey, senderAddress)
  const flag = bytes[NONCE_BYTES]
  const plain = open(key, bytes.subarray(0, NONCE_BYTES), bytes.subarray(NONCE_BYTES + 1))
  return (flag ? inflate(plain) : plain).toString('utf8')
}

/** Like {@link decrypt}, undefined instead of an error. */
export function tryDecrypt(data: string, senderAddress: string, receiver: Identity): string | undefined {
  try {
    return decrypt(data, senderAddress, receiver)
  } catch {
    return undefined
  }
}

interface MultiPackage {
  c: string
  n: string
  d: string
  k: Array<{a: string; k: string}>
}

/** Whether `bytes` start with a zlib header (RFC 1950: deflate, and CMF·256 + FLG a multiple of 31), as every multi package does. */
function zlibHeader(bytes: Buffer): boolean {
  return bytes.length >= 2 && (bytes[0]! & 0x0f) === 8 && (bytes[0]! >> 4) <= 7 && ((bytes[0]! << 8) | bytes[1]!) % 31 === 0
}

function multiPackage(bytes: Buffer): MultiPackage | undefined {
  // a single-receiver package starts with its random nonce: no inflate attempt (and its error) unless it could be zlib
  if (!zlibHeader(bytes)) return undefined
  let pkg: unknown
  try {
    pkg = JSON.parse(inflateSync(bytes, {maxOutputLength: MAX_PLAINTEXT_BYTES}).toString('utf8'))
  } catch {
    return undefined
  }
  if (!pkg || typeof pkg !== 'object' || (pkg as {M?: unknown}).M !== true) return undefined
  const {c, n, d, k} = pkg as Record<string, unknown>
  const hex = (v: unknown) => typeof v === 'string' && /^([0-9a-f]{2})*$/i.test(v)
  if (!hex(c) || !hex(n) || !hex(d) || !Array.isArray(k)) throw new DecryptionError('malformed multi-receiver package')
  return pkg as MultiPackage
}

function decryptMulti(pkg: MultiPackage, senderAddress: string, receiver: Identity): string {
  // Ratio1 matches the receiver's entry by exact address string; the legacy prefix names the same key.
  const mine = pkg.k.find((entry) => entry && typeof entry.a === 'string' && normalizeAddress(entry.a) === receiver.address)
  if (!mine || typeof mine.k !== 'string') throw new DecryptionError(`not encrypted to ${receiver.address}`)
  const wrapped = Buffer.from(mine.k, 'hex')
  const dataKey = open(sharedKey(receiver.privateKey, senderAddress), wrapped.subarray(0, NONCE_BYTES), wrapped.subarray(NONCE_BYTES))
  if (dataKey.length !== 32) throw new DecryptionError('malformed multi-receiver package')
  const plain = open(dataKey, Buffer.from(pkg.n, 'hex'), Buffer.from(pkg.d, 'hex'))
  return (Number.parseInt(pkg.c || '0', 16) ? inflate(plain) : plain).toString('utf8')
}

/** The encrypted fields of a command, in place of its ACTION and PAYLOAD. */
export interface EncryptedCommandFields {
  EE_IS_ENCRYPTED: true
  EE_ENCRYPTED_DATA: string
}

/**
 * Ratio1's encrypted command: `{ACTION, PAYLOAD}` as JSON, encrypted from the session to the node
 * (`EE_DEST`), replaces both fields. Spread the result into the envelope, then sign it as usual
 * (the signature covers the ciphertext).
 */
export function encryptCommandPayload(command: {ACTION: string; PAYLOAD: unknown}, destination: string | readonly string[], sender: Identity): EncryptedCommandFields {
  const text = JSON.stringify({ACTION: command.ACTION, PAYLOAD: command.PAYLOAD})
  return {EE_IS_ENCRYPTED: true, EE_ENCRYPTED_DATA: encrypt(text, destination, sender)}
}

export type DecryptedCommand =
  | {ok: true; message: Record<string, unknown>}
  | {ok: false; reason: 'NOT_FOR_THIS_NODE' | 'DECRYPT_FAILED' | 'INVALID_MESSAGE'; detail: string}

/**
 * Opens a verified `EE_IS_ENCRYPTED` command on the node: checks that `EE_DEST` names `receiver`,
 * decrypts `EE_ENCRYPTED_DATA` from `EE_SENDER` and returns the envelope with the decrypted ACTION
 * and PAYLOAD in place of the ciphertext (`EE_IS_ENCRYPTED: true` stays, so the node knows how it
 * came). Verify the signature and check the allow-list first: the signature covers the ciphertext,
 * and strangers get no decryption work. A message that is not encrypted comes back as it is.
 */
export function decryptCommand(message: Record<string, unknown>, receiver: Identity): DecryptedCommand {
  if (message.EE_IS_ENCRYPTED !== true) return {ok: true, message}
  const dest = Array.isArray(message.EE_DEST) ? message.EE_DEST : [message.EE_DEST]
  if (!dest.some((d) => typeof d === 'string' && normalizeAddress(d) === receiver.address)) {
    return {ok: false, reason: 'NOT_FOR_THIS_NODE', detail: `EE_DEST does not name this node (${receiver.address})`}
  }
  const data = message.EE_ENCRYPTED_DATA
  const sender = message.EE_SENDER
  if (typeof data !== 'string' || typeof sender !== 'string') {
    return {ok: false, reason: 'INVALID_MESSAGE', detail: 'an encrypted command needs EE_ENCRYPTED_DATA and EE_SENDER strings'}
  }
  if ('ACTION' in message || 'PAYLOAD' in message) {
    return {ok: false, reason: 'INVALID_MESSAGE', detail: 'an encrypted command carries ACTION and PAYLOAD only inside EE_ENCRYPTED_DATA'}
  }
  let inner: unknown
  try {
    inner = toPlain(parseWireJson(decrypt(data, sender, receiver)))
  } catch (error) {
    return {ok: false, reason: 'DECRYPT_FAILED', detail: error instanceof Error ? error.message : String(error)}
  }
  if (!inner || typeof inner !== 'object' || Array.isArray(inner) || typeof (inner as {ACTION?: unknown}).ACTION !== 'string') {
    return {ok: false, reason: 'INVALID_MESSAGE', detail: 'the decrypted data is not an {ACTION, PAYLOAD} object'}
  }
  const {ACTION, PAYLOAD} = inner as {ACTION: string; PAYLOAD?: unknown}
  const rest = {...message}
  delete rest.EE_ENCRYPTED_DATA
  return {ok: true, message: {...rest, ACTION, PAYLOAD: PAYLOAD ?? null}}
}
