import {createHash} from 'node:crypto'
import secp256k1 from 'secp256k1'
import {z} from 'zod'
import {canonicalJson, parseWireJson, pythonJsonString, signingCanonical, toPlain, WireJsonError, WireNumber} from './canonical.js'
import {type Identity, normalizeAddress, publicKeyFromAddress} from './identity.js'
import {
  type Action,
  BatchFrameSchema,
  CommandEnvelopeSchema,
  type CommandEnvelope,
  EncryptedEnvelopeSchema,
  type EncryptedEnvelope,
  type FrameItem,
  parseFrameItem,
  PayloadSchemas,
  type RejectionReason,
  type UnsignedCommand,
} from './messages.js'
import {signatureBytes, verifyMessage} from './signing.js'
import {decryptCommand, encryptCommandPayload} from './encryption.js'

/**
 * encode / decode of whole frames. Outgoing frames are the canonical text followed by the three
 * signature fields, so a receiver can check `sha256(text before EE_HASH + "}")` directly (the fast
 * path); anything else (a Python peer, reordered keys) goes through the number-preserving parser.
 */

function sha256(data: string | Uint8Array): Buffer {
  return createHash('sha256').update(data).digest()
}

function derToB64(der: Uint8Array): string {
  return Buffer.from(der).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')
}

/** `"EE_HASH":…,"EE_SENDER":…,"EE_SIGN":…` for a canonical text's sha256 digest (the fields a frame ends with). */
function signatureTail(digest: Buffer, identity: Identity): string {
  const der = secp256k1.signatureExport(secp256k1.ecdsaSign(sha256(digest), identity.privateKey).signature)
  return `"EE_HASH":"${digest.toString('hex')}","EE_SENDER":"${identity.address}","EE_SIGN":"${derToB64(der)}"`
}

/** Signs an already canonical v2 string (it must contain "SIGN_CANON_V":"v2") and returns the wire text. */
export function signCanonical(canonical: string, identity: Identity): {text: string; hash: string} {
  const digest = sha256(canonical)
  return {text: canonical.slice(0, -1) + `,${signatureTail(digest, identity)}}`, hash: digest.toString('hex')}
}

/** Signs a message object and returns its wire text and EE_HASH. */
export function encodeSigned(message: Record<string, unknown>, identity: Identity): {text: string; hash: string} {
  return signCanonical(signingCanonical(message, {version: 'v2'}), identity)
}

const COMMA = Buffer.from(',')
const BATCH_END = Buffer.from('],"SIGN_CANON_V":"v2"')

/**
 * Signs several frame items (their canonical JSON in UTF-8) as one `R1_BATCH` frame; returns the
 * frame's UTF-8 bytes (a text frame). The items are hashed and copied as they are, never re-encoded.
 */
export function encodeBatch(items: Uint8Array[], identity: Identity, timestamp = new Date().toISOString()): {frame: Buffer; hash: string} {
  // Keys in code-point order: EE_EVENT_TYPE < EE_TIMESTAMP < EVENTS < SIGN_CANON_V.
  const parts: Uint8Array[] = [Buffer.from(`{"EE_EVENT_TYPE":"R1_BATCH","EE_TIMESTAMP":${pythonJsonString(timestamp)},"EVENTS":[`)]
  for (let i = 0; i < items.length; i++) {
    if (i > 0) parts.push(COMMA)
    parts.push(items[i]!)
  }
  parts.push(BATCH_END)
  const hasher = createHash('sha256')
  for (const part of parts) hasher.update(part)
  hasher.update('}')
  const digest = hasher.digest()
  const hash = digest.toString('hex')
  parts.push(Buffer.from(`,${signatureTail(digest, identity)}}`))
  return {frame: Buffer.concat(parts), hash}
}

/** Canonical JSON of one frame item in UTF-8 (what encodeBatch takes). */
export function itemCanonical(item: FrameItem | Record<string, unknown>): Buffer {
  return Buffer.from(canonicalJson(item))
}

export type DecodeFailure = {ok: false; reason: RejectionReason; detail: string; hash: string | null; action: string | null}
/** `exact`: the text up to the signature fields is byte for byte what was hashed (r1's own frames). */
export type DecodedSigned = {ok: true; message: Record<string, unknown>; hash: string | undefined; sender: string; exact: boolean}

const TAIL_RE = /,"EE_HASH":"([0-9a-f]{64})","EE_SENDER":"((?:0xai_|aixp_)[A-Za-z0-9_-]{44})","EE_SIGN":"([A-Za-z0-9_-]+={0,2})"\}$/

function claimedField(value: unknown, key: string): string | null {
  const field = (value as Record<string, unknown> | null)?.[key]
  return typeof field === 'string' ? field.slice(0, 100) : null
}

/** Parses a frame and checks its signature. Numbers keep their wire form for the check. */
export function decodeSigned(text: string): DecodedSigned | DecodeFailure {
  const tail = TAIL_RE.exec(text.length > 400 ? text.slice(-400) : text)
  if (tail) {
    const signed = text.slice(0, text.length - tail[0].length) + '}'
    const digest = sha256(signed)
    if (digest.toString('hex') === tail[1]) {
      let message: unknown
      try {
        message = JSON.parse(text)
      } catch {
        message = undefined // e.g. NaN tokens: the general path below decides
      }
      if (message && typeof message === 'object' && !Array.isArray(message)) {
        const publicKey = publicKeyFromAddress(tail[2])
        const der = signatureBytes(tail[3])
        let compact: Uint8Array | undefined
        try {
          compact = der && secp256k1.signatureNormalize(secp256k1.signatureImport(new Uint8Array(der)))
        } catch {
          compact = undefined
        }
        const record = message as Record<string, unknown>
        if (publicKey && compact && secp256k1.ecdsaVerify(compact, sha256(digest), publicKey)) {
          return {ok: true, message: record, hash: tail[1], sender: normalizeAddress(tail[2]), exact: true}
        }
        return {ok: false, reason: 'BAD_SIGNATURE', detail: 'InvalidSignature', hash: tail[1], action: claimedField(record, 'ACTION')}
      }
    }
  }
  let raw: unknown
  try {
    raw = parseWireJson(text)
  } catch (error) {
    return {ok: false, reason: 'BAD_JSON', detail: error instanceof WireJsonError ? error.message : String(error), hash: null, action: null}
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || raw instanceof WireNumber) {
    return {ok: false, reason: 'INVALID_MESSAGE', detail: 'a frame must be a JSON object', hash: null, action: null}
  }
  const claimedHash = claimedField(raw, 'EE_HASH')
  const hash = claimedHash && /^[0-9a-f]{64}$/.test(claimedHash) ? claimedHash : null
  const verdict = verifyMessage(raw)
  if (!verdict.valid) return {ok: false, reason: 'BAD_SIGNATURE', detail: verdict.reason, hash, action: claimedField(raw, 'ACTION')}
  return {ok: true, message: toPlain(raw) as Record<string, unknown>, hash: verdict.hash, sender: verdict.sender, exact: false}
}

/** Signs a command envelope after validating its payload against the ACTION's schema. */
export function encodeCommand(command: UnsignedCommand, identity: Identity): {text: string; hash: string} {
  const schema = PayloadSchemas[command.ACTION] as z.ZodType
  const payload = schema.safeParse(command.PAYLOAD)
  if (!payload.success) throw new Error(`Invalid ${command.ACTION} payload: ${describeIssue(payload.error, 'PAYLOAD')}`)
  return encodeSigned({...command}, identity)
}

/** The first zod issue as `PAYLOAD.a.b: message`. */
export function describeIssue(error: z.ZodError, root: string): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid'
  const path = [root, ...issue.path.map(String)].filter(Boolean).join('.')
  return `${path}: ${issue.message}`
}

export type DecodedCommand = {ok: true; encrypted?: false; command: CommandEnvelope; action: Action; payload: unknown; hash: string; sender: string}
/** A verified encrypted command, not yet opened: ACTION and PAYLOAD are still in EE_ENCRYPTED_DATA. */
export type DecodedEncryptedCommand = {ok: true; encrypted: true; command: EncryptedEnvelope; hash: string; sender: string}

/**
 * Decodes a client frame into a verified, schema-valid command (signature first, so nobody learns
 * anything about the schema without a key; then the envelope, then the payload of its ACTION). An
 * encrypted command comes back verified but closed: open it with `openEncryptedCommand` once the
 * sender is known to be allowed. `verified` is `decodeSigned(text)` when the caller already ran it.
 */
export function decodeCommand(text: string, verified?: DecodedSigned): DecodedCommand | DecodedEncryptedCommand | DecodeFailure {
  const decoded = verified ?? decodeSigned(text)
  if (!decoded.ok) return decoded
  const {message, sender} = decoded
  const action = claimedField(message, 'ACTION')
  const hash = decoded.hash ?? null
  if (message.EE_IS_ENCRYPTED === true) {
    const envelope = EncryptedEnvelopeSchema.safeParse(message)
    if (!envelope.success) return {ok: false, reason: 'INVALID_MESSAGE', detail: describeIssue(envelope.error, ''), hash, action}
    return {ok: true, encrypted: true, command: envelope.data, hash: envelope.data.EE_HASH, sender}
  }
  return checkCommand(message, sender, hash, action)
}

function checkCommand(message: Record<string, unknown>, sender: string, hash: string | null, action: string | null): DecodedCommand | DecodeFailure {
  if (typeof message.ACTION === 'string' && !(message.ACTION in PayloadSchemas)) {
    return {ok: false, reason: 'UNKNOWN_ACTION', detail: `unknown ACTION ${JSON.stringify(message.ACTION.slice(0, 60))}`, hash, action}
  }
  const envelope = CommandEnvelopeSchema.safeParse(message)
  if (!envelope.success) return {ok: false, reason: 'INVALID_MESSAGE', detail: describeIssue(envelope.error, ''), hash, action}
  const command = envelope.data
  const payload = (PayloadSchemas[command.ACTION] as z.ZodType).safeParse(command.PAYLOAD)
  if (!payload.success) return {ok: false, reason: 'INVALID_PAYLOAD', detail: describeIssue(payload.error, 'PAYLOAD'), hash, action}
  return {ok: true, command, action: command.ACTION, payload: payload.data, hash: command.EE_HASH, sender}
}

/**
 * Opens a verified encrypted command with the node's identity, then checks it as a plain one (known
 * ACTION, its payload schema). Data that does not decrypt, or decrypts to no `{ACTION, PAYLOAD}`, is
 * `BAD_ENCRYPTION`; the returned command keeps `EE_IS_ENCRYPTED: true`.
 */
export function openEncryptedCommand(decoded: DecodedEncryptedCommand, node: Identity): DecodedCommand | DecodeFailure {
  const opened = decryptCommand(decoded.command, node)
  if (!opened.ok) {
    const reason = opened.reason === 'NOT_FOR_THIS_NODE' ? 'WRONG_DEST' : 'BAD_ENCRYPTION'
    return {ok: false, reason, detail: `EE_ENCRYPTED_DATA: ${opened.detail}`, hash: decoded.hash, action: null}
  }
  const action = claimedField(opened.message, 'ACTION')
  return checkCommand(opened.message, decoded.sender, decoded.hash, action)
}

/** Signs a command whose ACTION and PAYLOAD travel encrypted to `EE_DEST` (Ratio1's EE_IS_ENCRYPTED), after validating the payload. */
export function encodeEncryptedCommand(command: UnsignedCommand, identity: Identity): {text: string; hash: string} {
  const schema = PayloadSchemas[command.ACTION] as z.ZodType
  const payload = schema.safeParse(command.PAYLOAD)
  if (!payload.success) throw new Error(`Invalid ${command.ACTION} payload: ${describeIssue(payload.error, 'PAYLOAD')}`)
  const {ACTION, PAYLOAD, ...envelope} = command
  return encodeSigned({...envelope, ...encryptCommandPayload({ACTION, PAYLOAD}, command.EE_DEST, identity)}, identity)
}

export type DecodedNodeFrame = {ok: true; items: FrameItem[]; hash: string | undefined} | {ok: false; reason: string}

/**
 * Decodes a node frame (single item or R1_BATCH) and checks that the expected node signed it. With
 * `wireTexts`, each batched event keeps its own signed text (`wireTextOf`; it holds the frame's text).
 * `verified` is `decodeSigned(text)` when the caller already has it: the signature is checked once.
 */
export function decodeNodeFrame(text: string, expectedAddress: string, options: {wireTexts?: boolean; verified?: DecodedSigned} = {}): DecodedNodeFrame {
  const decoded = options.verified ?? decodeSigned(text)
  if (!decoded.ok) return {ok: false, reason: `${decoded.reason}: ${decoded.detail}`}
  if (decoded.sender !== normalizeAddress(expectedAddress)) {
    return {ok: false, reason: `frame signed by ${decoded.sender}, expected the node ${expectedAddress}`}
  }
  const message = decoded.message
  const items: FrameItem[] = []
  if (message.EE_EVENT_TYPE === 'R1_BATCH') {
    const batch = BatchFrameSchema.safeParse(message)
    if (!batch.success) return {ok: false, reason: `invalid R1_BATCH: ${describeIssue(batch.error, '')}`}
    const texts = options.wireTexts && decoded.exact ? batchEventTexts(text) : undefined
    const events = batch.data.EVENTS
    for (let i = 0; i < events.length; i++) {
      const item = parseFrameItem(events[i])
      if (!item) return {ok: false, reason: 'invalid event inside R1_BATCH'}
      if (texts?.length === events.length) (item as {[WIRE_TEXT]?: string})[WIRE_TEXT] = texts[i]
      items.push(item)
    }
  } else {
    const {EE_HASH: _h, EE_SIGN: _s, EE_SENDER: _e, SIGN_CANON_V: _v, ...rest} = message
    const item = parseFrameItem(rest)
    if (!item) return {ok: false, reason: `invalid ${String(message.EE_EVENT_TYPE)} frame`}
    items.push(item)
  }
  return {ok: true, items, hash: decoded.hash}
}

/** Where a node event received in a batch keeps its own JSON text, exactly as the node signed it. */
const WIRE_TEXT = Symbol('r1.wireText')

/**
 * The JSON text of an event as it arrived inside a verified R1_BATCH (its canonical form), when
 * decoded with `wireTexts`; else undefined (also for a single-event frame, a frame from another
 * signer). `r1 logs --json` prints it as is instead of serializing the event again.
 */
export function wireTextOf(item: object): string | undefined {
  return (item as {[WIRE_TEXT]?: string})[WIRE_TEXT]
}

const QUOTE = 0x22
const BACKSLASH = 0x5c

/** Index after the string that opens at `i` (a '"'), or -1. */
function skipString(text: string, i: number): number {
  for (let q = text.indexOf('"', i + 1); q !== -1; q = text.indexOf('"', q + 1)) {
    let backslashes = 0
    while (text.charCodeAt(q - 1 - backslashes) === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return q + 1
  }
  return -1
}

/** Index after the JSON value that starts at `i` in compact text (no whitespace), or -1. */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i)
  if (c === QUOTE) return skipString(text, i)
  if (c !== 0x7b && c !== 0x5b) {
    let j = i
    for (let d = text.charCodeAt(j); j < text.length && d !== 0x2c && d !== 0x7d && d !== 0x5d; d = text.charCodeAt(++j));
    return j > i ? j : -1
  }
  let depth = 0
  for (let j = i; j < text.length; ) {
    const d = text.charCodeAt(j)
    if (d === QUOTE) {
      j = skipString(text, j)
      if (j === -1) return -1
      continue
    }
    if (d === 0x7b || d === 0x5b) depth++
    else if (d === 0x7d || d === 0x5d) {
      if (--depth === 0) return j + 1
    }
    j++
  }
  return -1
}

/** The texts of the EVENTS items of a compact R1_BATCH frame, or undefined when its layout is not the expected one. */
function batchEventTexts(text: string): string[] | undefined {
  if (text.charCodeAt(0) !== 0x7b) return undefined
  for (let i = 1; i < text.length; ) {
    if (text.charCodeAt(i) !== QUOTE) return undefined
    const keyEnd = skipString(text, i)
    if (keyEnd === -1 || text.charCodeAt(keyEnd) !== 0x3a) return undefined
    const valueStart = keyEnd + 1
    if (text.slice(i, keyEnd) === '"EVENTS"') {
      if (text.charCodeAt(valueStart) !== 0x5b) return undefined
      const texts: string[] = []
      for (let j = valueStart + 1; ; ) {
        if (text.charCodeAt(j) !== 0x7b) return undefined // every frame item is an object
        const end = skipValue(text, j)
        if (end === -1) return undefined
        texts.push(text.slice(j, end))
        const next = text.charCodeAt(end)
        if (next === 0x5d) return texts
        if (next !== 0x2c) return undefined
        j = end + 1
      }
    }
    const valueEnd = skipValue(text, valueStart)
    if (valueEnd === -1 || text.charCodeAt(valueEnd) !== 0x2c) return undefined
    i = valueEnd + 1
  }
  return undefined
}
