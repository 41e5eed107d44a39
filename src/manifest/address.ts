import {ECDH} from 'node:crypto'
import {ADDRESS_PATTERN} from './patterns.js'

/**
 * Whether a compressed point lies on secp256k1. OpenSSL decompresses it (y² = x³ + 7 must have a
 * root), which is the check libsecp256k1's publicKeyVerify makes, without loading a native module
 * (and without building a key object: a fleet of a thousand targets checks a thousand addresses).
 */
function onCurve(key: Uint8Array): boolean {
  try {
    ECDH.convertKey(key, 'secp256k1', undefined, undefined, 'uncompressed')
    return true
  } catch {
    return false
  }
}

/** The 33-byte compressed public key inside a `0xai_` address, or undefined if it is not one. */
export function addressPublicKey(address: string): Uint8Array | undefined {
  if (!ADDRESS_PATTERN.test(address)) return undefined
  const bytes = Buffer.from(address.slice(5), 'base64url')
  return bytes.length === 33 ? new Uint8Array(bytes) : undefined
}

/** Why `address` is not a node address (0xai_ + URL-safe base64 of a compressed secp256k1 point), or undefined if it is one. */
export function checkNodeAddress(address: string): string | undefined {
  if (address.startsWith('aixp_')) return `node address uses the legacy prefix aixp_; write it as 0xai_${address.slice(5)}`
  if (!address.startsWith('0xai_')) return `node address "${address}" must start with 0xai_`
  const body = address.slice(5)
  if (body.length !== 44) return `node address must have 44 characters after 0xai_, this one has ${body.length}`
  const bad = body.match(/[^A-Za-z0-9_-]/)
  if (bad) return `node address contains "${bad[0]}", which is not URL-safe base64 (A-Z a-z 0-9 - _)`
  const key = addressPublicKey(address)
  if (!key) return 'node address does not decode to 33 bytes'
  if (key[0] !== 2 && key[0] !== 3) return `node address does not hold a compressed public key (first byte 0x${key[0].toString(16).padStart(2, '0')}, expected 0x02 or 0x03)`
  if (!onCurve(key)) return 'node address is not a point on the secp256k1 curve'
  return undefined
}

/** Where a node's address comes from: the node itself, not the user's own key. */
export const NODE_ADDRESS_HINT = 'copy it from `r1 node info --node <url>` (or the address `r1 node start` prints)'
