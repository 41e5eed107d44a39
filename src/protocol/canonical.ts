/**
 * Ratio1 canonical JSON (the text that EE_HASH is computed over), and a wire parser that keeps
 * every number's token text so that a message signed by Python verifies byte for byte.
 * The rules are those of `test/fixtures/vectors/ratio1-signing.json` (`canonicalization_rules`).
 */

/** A JSON number as it appeared on the wire: its token decides Python int vs float (rule 7). */
export class WireNumber {
  constructor(readonly text: string) {}

  /** Python reads any token with '.', 'e' or 'E' (or NaN/Infinity) as a float, the rest as an int. */
  get isFloat(): boolean {
    return !/^-?\d+$/.test(this.text)
  }

  valueOf(): number {
    return Number(this.text)
  }

  toJSON(): number {
    return Number(this.text)
  }
}

/** Reserved names dropped from the hashed dict, at the top level only (rule 1). */
export const SIGNING_FIELDS = ['EE_SIGN', 'EE_SENDER', 'EE_HASH', 'EE_ETH_SIGN', 'EE_ETH_SENDER', 'SIGN_CANON_V'] as const

/** `v2` = Python float repr; `v1` = the SDK's legacy float encoder (trailing zeros stripped, twice). */
export type FloatStyle = 'v2' | 'v1'

/** Python's `repr(float)`: shortest round-trip digits, always a '.' or an exponent (rule 6). */
export function pythonFloatRepr(x: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0'
  const [mantissa, expText] = x.toExponential().split('e')
  const exp = Number(expText)
  const negative = mantissa.startsWith('-')
  const digits = mantissa.replace('-', '').replace('.', '')
  let text: string
  if (exp < -4 || exp >= 16) {
    const abs = String(Math.abs(exp)).padStart(2, '0')
    text = digits[0] + (digits.length > 1 ? '.' + digits.slice(1) : '') + 'e' + (exp < 0 ? '-' : '+') + abs
  } else if (exp >= 0) {
    text = digits.length <= exp + 1 ? digits + '0'.repeat(exp + 1 - digits.length) + '.0' : digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1)
  } else {
    text = '0.' + '0'.repeat(-exp - 1) + digits
  }
  return negative ? '-' + text : text
}

/** The legacy (v1) encoder: repr without trailing '0's then '.', applied twice by dump/parse/dump. */
function legacyFloatRepr(x: number): string {
  const strip = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s)
  const once = strip(pythonFloatRepr(x))
  if (!/[.eE]/.test(once)) return once // re-parsed as an int: stays as is
  const again = Number(once)
  return Number.isFinite(again) ? strip(pythonFloatRepr(again)) : 'null'
}

function renderFloat(x: number, style: FloatStyle): string {
  if (!Number.isFinite(x)) return 'null' // rule 3
  return style === 'v2' ? pythonFloatRepr(x) : legacyFloatRepr(x)
}

/** Renders a number the way Python would after json.loads of the same token. */
function renderNumber(value: number | bigint | WireNumber, style: FloatStyle): string {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof WireNumber) {
    return value.isFloat ? renderFloat(Number(value.text), style) : BigInt(value.text).toString()
  }
  if (!Number.isFinite(value)) return 'null'
  // A JS integer is sent (and hashed) as a Python int; anything else as a float.
  if (Number.isInteger(value)) return Number.isSafeInteger(value) ? String(value) : BigInt(value).toString()
  // The event path's shortcut: JS and Python both print the shortest round-trip digits, and where
  // Python uses positional notation (1e-4 ≤ |x| < 1e16) a non-integer prints the same in both.
  if (style === 'v2' && (value >= 1e-4 || value <= -1e-4)) return String(value)
  return renderFloat(value, style)
}

const SHORT_ESCAPES: Record<number, string> = {0x22: '\\"', 0x5c: '\\\\', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t', 0x08: '\\b', 0x0c: '\\f'}
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/

/** Whether canonical JSON escapes anything in `value` (`"`, `\\` or a control character): most strings it copies as they are. */
export function needsEscape(value: string): boolean {
  return NEEDS_ESCAPE.test(value)
}

/** Python `json.dumps(ensure_ascii=False)` string escaping (rule 8). */
export function pythonJsonString(value: string): string {
  if (!needsEscape(value)) return '"' + value + '"'
  let out = '"'
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0x22 || c === 0x5c || c < 0x20) out += SHORT_ESCAPES[c] ?? '\\u' + c.toString(16).padStart(4, '0')
    else out += value[i]
  }
  return out + '"'
}

/** Orders strings by Unicode code point, as Python does (rule 5), not by UTF-16 code unit. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (astral code points) must sort after U+E000..U+FFFF.
    if (x >= 0xd800) x = x <= 0xdfff ? x + 0x2000 : x - 0x800
    if (y >= 0xd800) y = y <= 0xdfff ? y + 0x2000 : y - 0x800
    return x - y
  }
  return a.length - b.length
}

/** `"KEY":` for keys seen before (events repeat the same few keys); null marks a key that needs code-point sorting. */
const keyPrefixes = new Map<string, string | null>()
const MAX_CACHED_KEYS = 10_000
const MAX_CACHED_KEY_LENGTH = 64

function keyPrefix(key: string): string | null {
  let prefix = keyPrefixes.get(key)
  if (prefix !== undefined) return prefix
  prefix = pythonJsonString(key) + ':'
  // UTF-16 order is code-point order unless a surrogate meets U+E000..U+FFFF: only such keys need more than the native sort.
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) >= 0xd800) prefix = null
  if (keyPrefixes.size < MAX_CACHED_KEYS && key.length <= MAX_CACHED_KEY_LENGTH) keyPrefixes.set(key, prefix)
  return prefix
}

/** An object whose keys are already in code-point order. */
function canonicalObject(record: Record<string, unknown>, keys: string[], style: FloatStyle): string {
  let out = '{'
  for (const key of keys) {
    const item = record[key]
    if (item !== undefined) out += (out.length === 1 ? '' : ',') + pythonJsonString(key) + ':' + canonicalJson(item, style)
  }
  return out + '}'
}

/** Serializes any JSON-like value (plain JS or wire-parsed) as canonical JSON: sorted keys, no spaces. */
export function canonicalJson(value: unknown, style: FloatStyle = 'v2'): string {
  if (value === null || value === undefined) return 'null'
  switch (typeof value) {
    case 'string':
      return pythonJsonString(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
    case 'bigint':
      return renderNumber(value, style)
    case 'object': {
      if (value instanceof WireNumber) return renderNumber(value, style)
      if (Array.isArray(value)) {
        let out = '['
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i], style)
        return out + ']'
      }
      const record = value as Record<string, unknown>
      const keys = Object.keys(record).sort()
      let out = '{'
      for (const key of keys) {
        const prefix = keyPrefix(key)
        if (prefix === null) return canonicalObject(record, keys.sort(compareCodePoints), style)
        const item = record[key]
        if (item !== undefined) out += (out.length === 1 ? '' : ',') + prefix + canonicalJson(item, style)
      }
      return out + '}'
    }
    default:
      return 'null'
  }
}

/**
 * The exact string Ratio1 hashes for a message: top-level signing fields dropped (rule 1),
 * `SIGN_CANON_V: "v2"` put back for v2 (rule 2).
 */
export function signingCanonical(message: Record<string, unknown>, options: {version: 'v2' | 'v1' | 'none'; style?: FloatStyle} = {version: 'v2'}): string {
  const hashed: Record<string, unknown> = Object.create(null)
  for (const key of Object.keys(message)) {
    if ((SIGNING_FIELDS as readonly string[]).includes(key)) continue
    hashed[key] = message[key]
  }
  if (options.version === 'v2') hashed.SIGN_CANON_V = 'v2'
  return canonicalJson(hashed, options.style ?? (options.version === 'v1' ? 'v1' : 'v2'))
}

/** Thrown by {@link parseWireJson} with the character offset of the problem. */
export class WireJsonError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at character ${position}`)
    this.name = 'WireJsonError'
  }
}

const MAX_DEPTH = 256

/** What ends the plain run of a JSON string before its closing quote: an escape, or a control character (an error). */
// eslint-disable-next-line no-control-regex
const ESCAPE_OR_CONTROL = /[\\\u0000-\u001f]/

/**
 * Parses JSON text (plus Python's NaN / Infinity / -Infinity tokens) keeping each number as a
 * {@link WireNumber}. Objects have a null prototype (no `__proto__` tricks); a repeated key keeps
 * the last value, as Python does. Nesting deeper than 256 levels is an error, not a stack overflow.
 */
export function parseWireJson(text: string): unknown {
  let i = 0
  const fail = (what: string): never => {
    throw new WireJsonError(what, i)
  }
  const skipSpace = () => {
    for (;;) {
      const c = text.charCodeAt(i)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++
      else return
    }
  }
  const parseString = (): string => {
    i++ // opening quote
    // most strings hold no escape (a base64 blob holds tens of KiB without one): found with native scans
    const close = text.indexOf('"', i)
    if (close >= 0) {
      const plain = text.slice(i, close)
      if (!ESCAPE_OR_CONTROL.test(plain)) {
        i = close + 1
        return plain
      }
    }
    let out = ''
    let start = i
    for (;;) {
      if (i >= text.length) fail('unterminated string')
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        out += text.slice(start, i)
        i++
        return out
      }
      if (c < 0x20) fail('control character in string')
      if (c !== 0x5c) {
        i++
        continue
      }
      out += text.slice(start, i)
      const e = text[i + 1]
      i += 2
      switch (e) {
        case '"':
          out += '"'
          break
        case '\\':
          out += '\\'
          break
        case '/':
          out += '/'
          break
        case 'b':
          out += '\b'
          break
        case 'f':
          out += '\f'
          break
        case 'n':
          out += '\n'
          break
        case 'r':
          out += '\r'
          break
        case 't':
          out += '\t'
          break
        case 'u': {
          const hex = text.slice(i, i + 4)
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape')
          out += String.fromCharCode(parseInt(hex, 16))
          i += 4
          break
        }
        default:
          i -= 1
          fail('bad escape')
      }
      start = i
    }
  }
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
  const parseValue = (depth: number): unknown => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`)
    skipSpace()
    const c = text[i]
    if (c === '{') {
      i++
      const object: Record<string, unknown> = Object.create(null)
      skipSpace()
      if (text[i] === '}') {
        i++
        return object
      }
      for (;;) {
        skipSpace()
        if (text[i] !== '"') fail('expected a string key')
        const key = parseString()
        skipSpace()
        if (text[i] !== ':') fail("expected ':'")
        i++
        object[key] = parseValue(depth + 1)
        skipSpace()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === '}') {
          i++
          return object
        }
        fail("expected ',' or '}'")
      }
    }
    if (c === '[') {
      i++
      const array: unknown[] = []
      skipSpace()
      if (text[i] === ']') {
        i++
        return array
      }
      for (;;) {
        array.push(parseValue(depth + 1))
        skipSpace()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === ']') {
          i++
          return array
        }
        fail("expected ',' or ']'")
      }
    }
    if (c === '"') return parseString()
    if (text.startsWith('true', i)) return (i += 4), true
    if (text.startsWith('false', i)) return (i += 5), false
    if (text.startsWith('null', i)) return (i += 4), null
    if (text.startsWith('NaN', i)) return (i += 3), new WireNumber('NaN')
    if (text.startsWith('Infinity', i)) return (i += 8), new WireNumber('Infinity')
    if (text.startsWith('-Infinity', i)) return (i += 9), new WireNumber('-Infinity')
    NUMBER.lastIndex = i
    const match = NUMBER.exec(text)
    if (match && match[0].length > 0) {
      i += match[0].length
      return new WireNumber(match[0])
    }
    return fail(i >= text.length ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[i])}`)
  }
  const value = parseValue(0)
  skipSpace()
  if (i < text.length) fail('unexpected text after the JSON value')
  return value
}

/** Converts a wire-parsed value to plain JS (numbers as `number`; NaN/Infinity as null). */
export function toPlain(value: unknown): unknown {
  if (value instanceof WireNumber) {
    const n = Number(value.text)
    return Number.isFinite(n) ? n : null
  }
  if (Array.isArray(value)) return value.map(toPlain)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      // A plain object may get `__proto__` as an own data property, never as the prototype.
      Object.defineProperty(out, key, {value: toPlain((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true})
    }
    return out
  }
  return value
}
