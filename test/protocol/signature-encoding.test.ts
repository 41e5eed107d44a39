import {describe, expect, it} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {signMessage, verifyMessage} from '../../src/protocol/signing.js'
import {decodeSigned, encodeSigned} from '../../src/protocol/wire.js'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

describe('EE_SIGN has one encoding', () => {
  it('refuses a signature whose last character differs only in spare bits (same bytes once decoded)', () => {
    const identity = generateIdentity()
    let tried = 0
    for (let i = 0; i < 40; i++) {
      const signed = signMessage({ACTION: 'DELETE_CONFIG', PAYLOAD: 'keep', N: i}, identity)
      expect(verifyMessage(signed).valid).toBe(true)
      const body = signed.EE_SIGN.replace(/=+$/, '')
      const padding = signed.EE_SIGN.slice(body.length)
      const last = body.at(-1)!
      const bytes = Buffer.from(signed.EE_SIGN, 'base64url')
      for (const other of ALPHABET) {
        if (other === last) continue
        const forged = body.slice(0, -1) + other + padding
        if (!Buffer.from(forged, 'base64url').equals(bytes)) continue
        tried++
        expect(verifyMessage({...signed, EE_SIGN: forged})).toMatchObject({valid: false, reason: 'EE_SIGN is not canonical base64'})
      }
      expect(verifyMessage({...signed, EE_SIGN: body})).toMatchObject({valid: true}) // unpadded is the same encoding
    }
    expect(tried).toBeGreaterThan(0)
  })

  it('the frame decoder refuses it too, on its fast path for r1-made frames (a mutated DELETE_CONFIG was applied once)', () => {
    const identity = generateIdentity()
    let tried = 0
    for (let i = 0; i < 40; i++) {
      const {text} = encodeSigned({ACTION: 'DELETE_CONFIG', PAYLOAD: 'keep', N: i}, identity)
      expect(decodeSigned(text)).toMatchObject({ok: true, exact: true})
      const sign = /"EE_SIGN":"([^"]+)"/.exec(text)![1]!
      const body = sign.replace(/=+$/, '')
      const bytes = Buffer.from(sign, 'base64url')
      for (const other of ALPHABET) {
        const forged = body.slice(0, -1) + other + sign.slice(body.length)
        if (other === body.at(-1) || !Buffer.from(forged, 'base64url').equals(bytes)) continue
        tried++
        expect(decodeSigned(text.replace(sign, forged))).toMatchObject({ok: false, reason: 'BAD_SIGNATURE'})
      }
    }
    expect(tried).toBeGreaterThan(0)
  })
})
