// canonicalJson's shortcuts (String() for positional floats and integers, the native key sort, cached
// key prefixes) against the general rules they stand in for.
import {describe, expect, it} from 'vitest'
import {canonicalJson, compareCodePoints, parseWireJson, pythonFloatRepr, WireJsonError} from '../../src/protocol/canonical.js'

/** Deterministic doubles over many magnitudes (a small LCG, so a failure reproduces). */
function doubles(count: number): number[] {
  let state = 12345
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  const out: number[] = []
  for (let i = 0; i < count; i++) {
    const magnitude = Math.floor(next() * 44) - 22 // 1e-22 .. 1e21
    const x = (next() + 0.0001) * 10 ** magnitude * (next() < 0.5 ? -1 : 1)
    out.push(x, Math.round(x), Number(x.toPrecision(1 + Math.floor(next() * 17))))
  }
  return out.concat([1e-4, -1e-4, 9.999999999999999e-5, 1e16 - 2, 1e16, 2 ** 53 + 2, 1e21, 1e21 - 65536, 0.1 + 0.2, 5e-324, Number.MAX_VALUE])
}

describe('canonicalJson numbers', () => {
  it('prints every non-integer as Python repr does, and every integer as a Python int', () => {
    for (const x of doubles(20_000)) {
      const expected = Number.isInteger(x) ? BigInt(x).toString() : pythonFloatRepr(x)
      expect(canonicalJson(x), String(x)).toBe(expected)
    }
    expect(canonicalJson(-0)).toBe('0')
    expect(canonicalJson([Number.NaN, Infinity])).toBe('[null,null]')
  })
})

describe('canonicalJson keys', () => {
  it('orders keys by code point, also when surrogates meet U+E000..U+FFFF, the first time and from the cache', () => {
    const record = {'\uffff': 1, '\u{1f600}': 2, b: 3, '\ue000': 4, A: 5, é: 6}
    const expected = '{' + Object.keys(record).sort(compareCodePoints).map((k) => `"${k}":${record[k as keyof typeof record]}`).join(',') + '}'
    expect(expected.indexOf('\u{1f600}')).toBeGreaterThan(expected.indexOf('\uffff'))
    expect(canonicalJson(record)).toBe(expected)
    expect(canonicalJson(record)).toBe(expected)
    expect(canonicalJson({'a"b': 1, 'a\nb': {z: undefined, y: [true, null]}})).toBe('{"a\\nb":{"y":[true,null]},"a\\"b":1}')
  })

  it('gives the same text for many distinct and long keys (past the cache bounds)', () => {
    const record: Record<string, number> = {}
    for (let i = 0; i < 12_000; i++) record[`K${i}_${'x'.repeat(i % 100)}`] = i
    const text = canonicalJson(record)
    const parsed = JSON.parse(text) as Record<string, number>
    expect(Object.keys(parsed)).toEqual(Object.keys(record).sort(compareCodePoints))
    expect(canonicalJson(record)).toBe(text)
  })
})

describe('parseWireJson strings', () => {
  it('reads plain runs, escapes after a long plain run, an escaped quote and a \\u escape as JSON.parse does', () => {
    const plain = 'A'.repeat(40_000)
    for (const value of [plain, `${plain}"quoted"`, `${plain}\\back\\slash`, `${plain}\nline\ttab`, `é ${plain} ü 日本 🚀`, '', '\u0001', `${plain}\\`, `${plain}\ud800 lone`]) {
      const text = JSON.stringify({K: value, L: [value, 'next']})
      expect(parseWireJson(text)).toEqual({K: value, L: [value, 'next']})
    }
    expect(parseWireJson('"ab\\u0041\\"c"')).toBe('abA"c')
  })

  it('refuses a raw control character after a long plain run, and an unterminated string', () => {
    expect(() => parseWireJson(`"${'A'.repeat(10_000)}\u0001"`)).toThrow(WireJsonError)
    expect(() => parseWireJson(`"${'A'.repeat(10_000)}`)).toThrow(/unterminated string/)
    expect(() => parseWireJson(`"${'A'.repeat(10_000)}\\"`)).toThrow(/unterminated string/)
  })
})
