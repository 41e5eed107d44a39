import {randomBytes} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {fromStandardBase64, isStandardBase64} from '../../src/protocol/base64.js'

describe('isStandardBase64', () => {
  it('takes what Buffer and Python encode, padded or not, of any length', () => {
    for (let n = 0; n < 40; n++) {
      const text = randomBytes(n).toString('base64')
      expect(isStandardBase64(text)).toBe(true)
      expect(isStandardBase64(text.replace(/=+$/, ''))).toBe(true)
    }
    expect(isStandardBase64(randomBytes(700_000).toString('base64'))).toBe(true)
  })

  it('refuses other alphabets, whitespace, stray or extra padding, and spare bits that do not round trip', () => {
    for (const bad of ['!!not base64!!', 'ab-c', 'ab_c', 'YW Jj', 'YWJj\n', 'YQ===', '=YQ', 'Y=Q=', 'YR==', 'YWJjZA=a', 'A']) {
      expect(isStandardBase64(bad), bad).toBe(false)
    }
  })
})

describe('fromStandardBase64', () => {
  it('gives the bytes standard base64 encodes, and undefined for anything isStandardBase64 refuses', () => {
    const bytes = randomBytes(1000)
    expect(fromStandardBase64(bytes.toString('base64'))?.equals(bytes)).toBe(true)
    expect(fromStandardBase64('')?.length).toBe(0)
    for (const bad of ['ab-c', 'YQ===', 'YR==', 'YWJj\n']) expect(fromStandardBase64(bad), bad).toBeUndefined()
  })
})
