import {createHash} from 'node:crypto'
import secp256k1 from 'secp256k1'
import {canonicalJson, signingCanonical, WireNumber} from './canonical.js'
import {addressFromPublicKey, type Identity, publicKeyFromAddress} from './identity.js'

/**
 * Ratio1 message signing (ARCHITECTURE.md §5): EE_HASH = sha256 hex of the canonical string,
 * EE_SIGN = ECDSA secp256k1 (SHA-256 over the 32 digest bytes), DER, URL-safe base64 with padding,
 * EE_SENDER = the signer's address.
 */
export interface SignedFields {
  SIGN_CANON_V: 'v2'
  EE_HASH: string
  EE_SIGN: string
  EE_SENDER: string
}

export type Signed<T> = T & SignedFields

function sha256(data: string | Uint8Array): Buffer {
  return createHash('sha256').update(data).digest()
}

/** Signs a message (a plain object with UPPERCASE keys). Returns a new object; the input is untouched. */
export function signMessage<T extends Record<string, unknown>>(message: T, identity: Identity): Signed<T> {
  const canonical = signingCanonical(message, {version: 'v2'})
  const digest = sha256(canonical)
  const {signature} = secp256k1.ecdsaSign(sha256(digest), identity.privateKey)
  const der = secp256k1.signatureExport(signature)
  return {
    ...message,
    SIGN_CANON_V: 'v2',
    EE_HASH: digest.toString('hex'),
    EE_SIGN: Buffer.from(der).toString('base64').replace(/\+/g, '-').replace(/\//g, '_'),
    EE_SENDER: identity.address,
  }
}

/**
 * The wire text of a message: canonical JSON of the whole object (signing fields included),
 * so the numbers on the wire are exactly the numbers that were hashed.
 */
export function wireText(message: Record<string, unknown>): string {
  return canonicalJson(message)
}

export type Verdict =
  | {valid: true; sender: string; hash: string | undefined; reason: 'Signature OK'}
  | {valid: false; reason: string; sender?: string}

const B64URL = /^[A-Za-z0-9_-]+={0,2}$/

/**
 * Verifies a signed message as Ratio1's reference verifier does (verification_rules), including
 * v1 / unversioned messages and signatures without EE_HASH. `message` should come from
 * `parseWireJson` so that numbers keep their wire form; plain objects work for r1-made messages.
 */
/**
 * The DER bytes of an EE_SIGN, or undefined when it is not their one encoding: spare bits or padding
 * that decode to the same bytes would make a tampered frame verify (a signature that is not the one
 * that was sent).
 */
export function signatureBytes(sign: string): Buffer | undefined {
  const der = Buffer.from(sign, 'base64url')
  const unpadded = sign.replace(/=+$/, '')
  return der.toString('base64url') !== unpadded || (unpadded.length !== sign.length && sign.length % 4 !== 0) ? undefined : der
}

export function verifyMessage(message: unknown): Verdict {
  if (message === null || typeof message !== 'object' || Array.isArray(message) || message instanceof WireNumber) return {valid: false, reason: 'not a JSON object'}
  const record = message as Record<string, unknown>
  const {EE_SIGN: sign, EE_SENDER: sender, EE_HASH: hash, SIGN_CANON_V: version} = record
  if (typeof sender !== 'string' || typeof sign !== 'string') return {valid: false, reason: 'EE_SENDER or EE_SIGN missing'}
  const publicKey = publicKeyFromAddress(sender)
  if (!publicKey) return {valid: false, reason: `EE_SENDER ${JSON.stringify(sender.slice(0, 60))} is not a valid address`}
  if (!B64URL.test(sign)) return {valid: false, reason: 'EE_SIGN is not URL-safe base64', sender}
  const der = signatureBytes(sign)
  if (!der) return {valid: false, reason: 'EE_SIGN is not canonical base64', sender}
  let compact: Uint8Array
  try {
    compact = secp256k1.signatureImport(new Uint8Array(der))
  } catch {
    return {valid: false, reason: 'EE_SIGN is not a DER signature', sender}
  }
  // libsecp256k1 only accepts low-S; Ratio1 (OpenSSL) signs and accepts high-S: normalize first.
  secp256k1.signatureNormalize(compact)

  let candidates: string[]
  if (version === 'v2') candidates = [signingCanonical(record, {version: 'v2'})]
  else if (version === 'v1') candidates = [signingCanonical(record, {version: 'v1'})]
  else if (version === undefined) candidates = [signingCanonical(record, {version: 'none', style: 'v2'}), signingCanonical(record, {version: 'none', style: 'v1'})]
  else return {valid: false, reason: 'Unknown signing canon version', sender}

  const normalizedSender = addressFromPublicKey(publicKey)
  if (hash !== undefined && hash !== null) {
    for (const canonical of candidates) {
      const digest = sha256(canonical)
      if (digest.toString('hex') !== hash) continue
      return secp256k1.ecdsaVerify(compact, sha256(digest), publicKey)
        ? {valid: true, sender: normalizedSender, hash: hash as string, reason: 'Signature OK'}
        : {valid: false, reason: 'InvalidSignature', sender}
    }
    return {valid: false, reason: 'Corrupted digest!', sender}
  }
  // No EE_HASH: Ratio1 signed the canonical bytes themselves (ECDSA-SHA256 over the text).
  for (const canonical of candidates) {
    if (secp256k1.ecdsaVerify(compact, sha256(canonical), publicKey)) return {valid: true, sender: normalizedSender, hash: undefined, reason: 'Signature OK'}
  }
  return {valid: false, reason: 'InvalidSignature', sender}
}
