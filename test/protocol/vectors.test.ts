import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {parseWireJson, signingCanonical} from '../../src/protocol/canonical.js'
import {generateIdentity, identityFromPem, identityFromPrivateKey, identityToPem, isAddress} from '../../src/protocol/identity.js'
import {signMessage, verifyMessage, wireText} from '../../src/protocol/signing.js'

interface VectorRecord {
  id: string
  canonical?: string
  EE_HASH?: string | null
  EE_SENDER?: string
  SIGN_CANON_V?: string | null
  signed_wire_json: string
  reference_verify: {valid: boolean; message: string}
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors/ratio1-signing.json', import.meta.url), 'utf8')) as {
  keys: Record<string, {private_key_hex: string; private_key_pem_pkcs8: string; address: string}>
  positives: VectorRecord[]
  compat: VectorRecord[]
  negatives: VectorRecord[]
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

describe('Ratio1 reference vectors', () => {
  it.each(vectors.positives.map((v) => [v.id, v] as const))('positive %s: canonical, EE_HASH and signature', (_id, vector) => {
    const wire = parseWireJson(vector.signed_wire_json) as Record<string, unknown>
    const canonical = signingCanonical(wire, {version: 'v2'})
    expect(canonical).toBe(vector.canonical)
    expect(sha256(canonical)).toBe(vector.EE_HASH)
    const verdict = verifyMessage(wire)
    expect(verdict.valid).toBe(true)
    expect(verdict.valid && verdict.hash).toBe(vector.EE_HASH)
    expect(vector.reference_verify.valid).toBe(true)
  })

  it.each([...vectors.compat, ...vectors.negatives].map((v) => [v.id, v] as const))('%s: same verdict as reference_verify', (_id, vector) => {
    const verdict = verifyMessage(parseWireJson(vector.signed_wire_json))
    expect(verdict.valid).toBe(vector.reference_verify.valid)
    if (!vector.reference_verify.valid) expect(verdict.reason).toBe(vector.reference_verify.message)
  })

  it.each(vectors.compat.filter((v) => v.canonical).map((v) => [v.id, v] as const))('compat %s: reproduces the hashed string', (_id, vector) => {
    const wire = parseWireJson(vector.signed_wire_json) as Record<string, unknown>
    const version = vector.SIGN_CANON_V === 'v2' ? 'v2' : vector.SIGN_CANON_V === 'v1' ? 'v1' : 'none'
    const style = version === 'none' && vector.reference_verify.valid ? (signingCanonical(wire, {version: 'none', style: 'v2'}) === vector.canonical ? 'v2' : 'v1') : undefined
    const canonical = signingCanonical(wire, {version, style})
    if (vector.reference_verify.valid) expect(canonical).toBe(vector.canonical)
    if (vector.EE_HASH && vector.reference_verify.valid) expect(sha256(canonical)).toBe(vector.EE_HASH)
  })

  it('keys: address from the raw scalar and from the PKCS#8 PEM', () => {
    for (const key of Object.values(vectors.keys)) {
      expect(identityFromPrivateKey(new Uint8Array(Buffer.from(key.private_key_hex, 'hex'))).address).toBe(key.address)
      expect(identityFromPem(key.private_key_pem_pkcs8).address).toBe(key.address)
    }
  })

  it('a generated identity is a valid key, new each time, and its PKCS#8 PEM gives it back', () => {
    const identities = Array.from({length: 200}, () => generateIdentity())
    expect(new Set(identities.map((i) => i.address)).size).toBe(200)
    for (const identity of identities.slice(0, 20)) {
      expect(isAddress(identity.address)).toBe(true)
      expect(identityFromPem(identityToPem(identity)).address).toBe(identity.address)
      expect(identityFromPrivateKey(identity.privateKey).address).toBe(identity.address)
    }
  })

  it('r1 signs what the reference verifier accepts: a re-signed vector keeps its canonical string', () => {
    const k1 = identityFromPrivateKey(new Uint8Array(Buffer.from(vectors.keys.k1.private_key_hex, 'hex')))
    for (const vector of vectors.positives) {
      const wire = parseWireJson(vector.signed_wire_json) as Record<string, unknown>
      const signed = signMessage(wire, k1)
      expect(signed.EE_HASH).toBe(vector.EE_HASH)
      expect(signed.EE_SENDER).toBe(vectors.keys.k1.address)
      // Through the wire text and back: numbers keep their form, the signature verifies.
      const again = parseWireJson(wireText(signed))
      expect(verifyMessage(again)).toMatchObject({valid: true, hash: vector.EE_HASH})
    }
  })

  it('every single-character tamper of a signed vector is rejected', () => {
    const vector = vectors.positives.find((v) => v.id === 'cmd_update_config_basic')!
    const text = vector.signed_wire_json
    let checked = 0
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]
      const replacement = /[0-9]/.test(ch) ? String((Number(ch) + 1) % 10) : /[a-z]/.test(ch) ? ch.toUpperCase() : /[A-Z]/.test(ch) ? ch.toLowerCase() : undefined
      if (!replacement) continue
      const mutated = text.slice(0, i) + replacement + text.slice(i + 1)
      let parsed: unknown
      try {
        parsed = parseWireJson(mutated)
      } catch {
        continue
      }
      const record = parsed as Record<string, unknown>
      // Changing a key's case can make it an unhashed name (e.g. ee_eth_sign) — still not the same message.
      const verdict = verifyMessage(record)
      const onlyUnhashed = ['EE_ETH_SIGN', 'EE_ETH_SENDER'].some((k) => !(k in record))
      if (verdict.valid && onlyUnhashed) continue
      // Base64 '=' padding and letter case in unhashed EE_ETH_* values do not matter to the reference either.
      const inEth = /"EE_ETH_(SIGN|SENDER)": "[^"]*$/.test(text.slice(0, i + 1))
      if (inEth) continue
      expect(verdict.valid, `mutation at ${i} (${ch}→${replacement}) accepted`).toBe(false)
      checked++
    }
    expect(checked).toBeGreaterThan(200)
  })
})
