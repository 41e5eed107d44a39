// Generated adversarial cases against a node. None of them may change the node's state, crash it or
// show a stranger anything beyond the public heartbeat. Deterministic for a given seed.
import {createHash, randomBytes} from 'node:crypto'
import {generateIdentity, type Identity} from '../../src/protocol/identity.js'
import {Actions, formatTime} from '../../src/protocol/messages.js'
import {envelope, rng, sign} from './harness.js'

/** Which connections a case goes out on: a stranger's, the leak probe's (a stranger that only asks), or an allow-listed key's. */
export type Role = 'stranger' | 'probe' | 'allowed'

export interface Case {
  category: string
  role: Role
  frame: string | Buffer
  binary?: boolean
  /** A correctly signed command: the node's answer (reply or rejection) is awaited before the checks. */
  hash?: string
  /** The command would change the node if accepted (an R1_REPLY to it counts as a state change). */
  mutating?: boolean
}

const MUTATING = new Set(['UPDATE_CONFIG', 'DELETE_CONFIG', 'ARCHIVE_CONFIG', 'UPDATE_PIPELINE_INSTANCE', 'BATCH_UPDATE_PIPELINE_INSTANCE', 'PIPELINE_COMMAND', 'R1_ROLLBACK', 'R1_RESTART', 'R1_BUNDLE_PUT'])

/** What the cases know about the node under attack. */
export interface Target {
  address: string
  allowed: Identity
  strangers: Identity[]
  /** Planted names and secrets: a stranger must never see them. */
  secrets: {pipeline: string; instance: string; errorText: string; password: string; replayPipeline: string}
  /** Signed commands the node accepted while being set up (replayed by the cases). */
  accepted: string[]
}

const otherAddress = generateIdentity().address

/** Bundles a stranger or a broken upload tried to store; the node must not hold any of them afterwards. */
export const refusedBundles: string[] = []

function signedCase(category: string, role: Role, identity: Identity, action: string, payload: unknown, dest: string, extra: Record<string, unknown> = {}): Case {
  const {text, hash} = sign(envelope(action, payload, dest, extra), identity)
  return {category, role, frame: text, hash, mutating: MUTATING.has(action)}
}

/** A valid payload for every action, aimed at the planted pipeline. */
function payloadFor(action: string, t: Target, i: number): unknown {
  const {pipeline, instance} = t.secrets
  const bytes = Buffer.from(`stranger bundle ${i}`)
  const hash = createHash('sha256').update(bytes).digest('hex')
  switch (action) {
    case 'UPDATE_CONFIG':
      return {NAME: i % 2 ? pipeline : `stranger-${i}`, TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'x', CODE: 'return 1', DISABLED: true}]}]}
    case 'DELETE_CONFIG':
    case 'ARCHIVE_CONFIG':
      return pipeline
    case 'UPDATE_PIPELINE_INSTANCE':
      return {NAME: pipeline, SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: instance, INSTANCE_CONFIG: i % 2 ? {INSTANCE_COMMAND: 'STOP'} : {CODE: 'return 2'}}
    case 'BATCH_UPDATE_PIPELINE_INSTANCE':
      return [{NAME: pipeline, SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: instance, INSTANCE_CONFIG: {DISABLED: true}}]
    case 'PIPELINE_COMMAND':
      return {NAME: pipeline, PIPELINE_COMMAND: 'STOP'}
    case 'R1_BUNDLE_PUT':
      refusedBundles.push(hash)
      return {HASH: hash, SIZE: bytes.length, INDEX: 0, COUNT: 1, DATA: bytes.toString('base64')}
    case 'R1_BUNDLE_HAS':
      return {HASHES: [hash]}
    case 'R1_STATE':
      return i % 2 ? null : {NAME: pipeline}
    case 'R1_SUBSCRIBE':
      return i % 3 === 0 ? {SINCE_SEQ: 0} : i % 3 === 1 ? {LAST: 100} : {TYPES: ['NOTIFICATION', 'HEARTBEAT']}
    case 'R1_ROLLBACK':
      return {NAME: pipeline}
    case 'R1_RESTART':
      return i % 2 ? {NAME: pipeline} : {NAME: pipeline, INSTANCE_ID: instance}
    default:
      return null
  }
}

/** Re-serializes a signed frame with one field changed (the signature no longer covers it). */
function tamper(text: string, change: (message: Record<string, any>) => void): string {
  const message = JSON.parse(text) as Record<string, any>
  change(message)
  return JSON.stringify(message)
}

const BAD_NAMES = [
  'n'.repeat(201),
  'n'.repeat(1000),
  '..',
  '.',
  '../escape',
  '../../../../../../tmp/r1-adversarial-escape',
  'a/../../b',
  '/absolute',
  'a\\..\\b',
  'nul\u0000byte',
  'new\nline',
  'tab\tname',
  'esc\u001b[31mred',
  'del\u007f',
  'bell\u0007',
  'cr\rname',
]

export function generateCases(t: Target, seed = 11): Record<string, Case[]> {
  const random = rng(seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const {pipeline, instance} = t.secrets
  const dest = t.address
  const stranger = (i: number) => t.strangers[i % t.strangers.length]!
  const groups: Record<string, Case[]> = {}
  const add = (c: Case) => (groups[c.category] ??= []).push(c)

  // Commands an allow-listed key could send, to forge and tamper with.
  const harmful = (i: number): [string, unknown] =>
    pick<[string, unknown]>([
      ['DELETE_CONFIG', pipeline],
      ['ARCHIVE_CONFIG', pipeline],
      ['UPDATE_CONFIG', {NAME: `forged-${i}`, TYPE: 'Void', PLUGINS: []}],
      ['UPDATE_CONFIG', {NAME: pipeline, TYPE: 'Void', PLUGINS: []}],
      ['R1_ROLLBACK', {NAME: t.secrets.replayPipeline, VERSION: 1}],
      ['UPDATE_PIPELINE_INSTANCE', {NAME: pipeline, SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: instance, INSTANCE_CONFIG: {CODE: 'return 3'}}],
    ])

  // Forged signatures: signed by a stranger and claimed as the allowed key's, random, transplanted, empty.
  for (let i = 0; i < 400; i++) {
    const [action, payload] = harmful(i)
    const message = envelope(action, payload, dest)
    const kind = i % 5
    let frame: string
    if (kind === 0) {
      frame = sign(message, stranger(i)).text.replace(stranger(i).address, t.allowed.address)
    } else {
      const genuine = sign(message, t.allowed).text
      frame = tamper(genuine, (m) => {
        if (kind === 1) m.EE_SIGN = randomBytes(70).toString('base64url')
        else if (kind === 2) m.EE_SIGN = JSON.parse(sign(envelope('R1_STATE', null, dest), t.allowed).text).EE_SIGN
        else if (kind === 3) m.EE_SIGN = ''
        else m.EE_SENDER = pick(['', '0xai_', '0xai_' + 'A'.repeat(44), 'aixp_' + randomBytes(33).toString('base64url'), stranger(i).address])
      })
    }
    add({category: 'forged signature', role: 'stranger', frame})
  }

  // Tampered fields: a genuine command from the allowed key with one field changed after signing.
  // Each one really changes the message (a no-op "tampering" would leave a genuine command).
  const tamperings: Array<(m: Record<string, any>, i: number) => void> = [
    (m) => (m.ACTION = m.ACTION === 'DELETE_CONFIG' ? 'ARCHIVE_CONFIG' : 'DELETE_CONFIG'),
    (m) => (m.PAYLOAD = m.PAYLOAD === pipeline ? t.secrets.replayPipeline : pipeline),
    (m, i) => (m.PAYLOAD = typeof m.PAYLOAD === 'object' ? {...m.PAYLOAD, NAME: `tampered-${i}`} : `tampered-${i}`),
    (m) => (m.TIME = formatTime(new Date(Date.now() + 1))),
    (m) => (m.EE_DEST = otherAddress),
    (m) => (m.INITIATOR_ID = 'someone-else'),
    (m) => (m.SESSION_ID = 'other-session'),
    (m) => (m.EXTRA = 1),
    (m) => delete m.SIGN_CANON_V,
    (m) => (m.SIGN_CANON_V = 'v1'),
  ]
  for (let i = 0; i < 400; i++) {
    const [action, payload] = harmful(i)
    const genuine = sign(envelope(action, payload, dest), t.allowed).text
    const frame = tamper(genuine, (m) => tamperings[i % tamperings.length]!(m, i))
    if (JSON.stringify(JSON.parse(frame)) === JSON.stringify(JSON.parse(genuine))) throw new Error(`tampering ${i % tamperings.length} left the command as signed`)
    add({category: 'tampered field', role: 'allowed', frame})
  }

  // Another node's commands: signed correctly by the allowed key, EE_DEST elsewhere.
  const dests = [otherAddress, '', t.address.toUpperCase(), t.address + 'A', t.address.slice(0, -1), ' ' + t.address, 'x'.repeat(5000)]
  for (let i = 0; i < 200; i++) {
    const [action, payload] = harmful(i)
    add(signedCase('wrong EE_DEST', 'allowed', t.allowed, action, payload, dests[i % dests.length]!))
  }

  // Skewed or malformed TIME, signed correctly.
  const offsets = [6 * 60_000, -6 * 60_000, 3_600_000, -3_600_000, 86_400_000 * 365, -Date.now(), 30 * 86_400_000 * 365]
  const badTimes = ['', 'now', '2026-01-01', '2026-13-45 99:99:99.999999', '1970-01-01 00:00:00.000000', '9999-12-31 23:59:59.999999', formatTime().replace(' ', 'T')]
  for (let i = 0; i < 200; i++) {
    const [action, payload] = harmful(i)
    const time = i % 2 ? formatTime(new Date(Date.now() + offsets[i % offsets.length]!)) : badTimes[i % badTimes.length]!
    add(signedCase('skewed TIME', 'allowed', t.allowed, action, payload, dest, {TIME: time}))
  }

  // Replays of commands the node accepted during set-up: as they were, and with another EE_HASH claimed
  // (the signature covers the content, so the claimed hash must not make an old command new).
  for (let i = 0; i < 200; i++) {
    const original = t.accepted[i % t.accepted.length]!
    const claimed = i % 4 === 0 ? createHash('sha256').update(`claimed ${i}`).digest('hex') : undefined
    const frame = claimed ? tamper(original, (m) => (m.EE_HASH = claimed)) : original
    add({category: 'replay', role: 'allowed', frame, hash: claimed ? undefined : JSON.parse(original).EE_HASH, mutating: true})
  }

  // Malformed JSON and non-objects, on both kinds of connection. The signed frames mangled here were
  // already accepted once (set-up), so a node that reads one as valid must refuse it as a replay.
  const genuine = t.accepted[0]!
  const malformed = (i: number): string => {
    switch (i % 14) {
      case 0:
        return genuine.slice(0, Math.floor(random() * genuine.length))
      case 1:
        return Array.from({length: 1 + Math.floor(random() * 300)}, () => String.fromCharCode(32 + Math.floor(random() * 95))).join('')
      case 2:
        return pick(['{}', '[]', 'null', 'true', '0', '-0', '1e999', '"str"', '""', '{"ACTION":', '{"ACTION":"DELETE_CONFIG"}', '[{}]', '{"a":NaN}', '{"a":Infinity}'])
      case 3:
        return genuine.replace('"ACTION":"UPDATE_CONFIG"', '"ACTION":"R1_STATE","ACTION":"UPDATE_CONFIG"')
      case 4:
        return '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"ACTION":"FULL_HEARTBEAT"}'
      case 5:
        return genuine.replace('"EE_HASH"', '"EE_HASH":null,"EE_HASH"')
      case 6:
        return '{"ACTION":"\\ud800","PAYLOAD":"\\udfff"}'
      case 7:
        return '9'.repeat(5000)
      case 8:
        return '{"a":' + '1'.repeat(400) + 'e' + '9'.repeat(50) + '}'
      case 9:
        return genuine + genuine
      case 10:
        return '\ufeff' + genuine
      case 11:
        return genuine.replace(/"EE_SIGN":"[^"]*"/, '"EE_SIGN":{"$gt":""}')
      case 12:
        return '{"ACTION":"UPDATE_CONFIG","PAYLOAD":' + '['.repeat(2000) + ']'.repeat(2000) + '}'
      default:
        return JSON.stringify({ACTION: 'DELETE_CONFIG', PAYLOAD: pipeline, EE_DEST: dest, EE_SENDER: t.allowed.address})
    }
  }
  for (let i = 0; i < 500; i++) add({category: 'malformed JSON', role: i % 2 ? 'allowed' : 'stranger', frame: malformed(i)})

  // Huge, deep and oversized payloads, from the allowed key and from strangers.
  const nest = (depth: number, open: string, close: string, leaf: string) => open.repeat(depth) + leaf + close.repeat(depth)
  const deepConfig = (name: string) => ({NAME: name, TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'deep-1', CODE: 'return null', DISABLED: true, DEEP: '@NEST@'}]}]})
  const deepSigned = (identity: Identity, depth: number, name: string, role: Role): Case => {
    const {text, hash} = sign(envelope('UPDATE_CONFIG', deepConfig(name), dest), identity, {placeholder: '@NEST@', json: nest(depth, '{"A":', '}', '1')})
    return {category: 'deep or oversized payload', role, frame: text, hash, mutating: true}
  }
  add(deepSigned(t.allowed, 1000, 'deep-1000', 'allowed'))
  add(deepSigned(t.allowed, 100_000, 'deep-100k', 'allowed'))
  add(deepSigned(stranger(0), 100_000, 'deep-100k-stranger', 'stranger'))
  {
    const {text, hash} = sign(envelope('UPDATE_PIPELINE_INSTANCE', {NAME: pipeline, SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: instance, INSTANCE_CONFIG: {DEEP: '@NEST@'}}, dest), t.allowed, {placeholder: '@NEST@', json: nest(100_000, '[', ']', '1')})
    add({category: 'deep or oversized payload', role: 'allowed', frame: text, hash, mutating: true})
  }
  add({category: 'deep or oversized payload', role: 'stranger', frame: nest(150_000, '[', ']', '')})
  add({category: 'deep or oversized payload', role: 'allowed', frame: nest(100_000, '{"A":', '}', '1')})
  add(signedCase('deep or oversized payload', 'allowed', t.allowed, 'UPDATE_CONFIG', {NAME: 'huge-config', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'huge-1', CODE: 'return null', DISABLED: true, BLOB: 'x'.repeat(900 * 1024)}]}]}, dest))
  add({category: 'deep or oversized payload', role: 'stranger', frame: 'x'.repeat(1024 * 1024 + 10)})

  // Names: too long, control characters, path traversal — as a pipeline NAME, an INSTANCE_ID, a SIGNATURE.
  BAD_NAMES.forEach((bad, i) => {
    const instances = (id: string) => [{INSTANCE_ID: id, CODE: 'return null', DISABLED: true}]
    add(signedCase('bad name or id', 'allowed', t.allowed, 'UPDATE_CONFIG', {NAME: bad, TYPE: 'Void', PLUGINS: []}, dest))
    add(signedCase('bad name or id', 'allowed', t.allowed, 'UPDATE_CONFIG', {NAME: `bad-instance-${i}`, TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: instances(bad)}]}, dest))
    add(signedCase('bad name or id', 'allowed', t.allowed, 'UPDATE_CONFIG', {NAME: `bad-signature-${i}`, TYPE: 'Void', PLUGINS: [{SIGNATURE: bad, INSTANCES: instances('i-1')}]}, dest))
    add(signedCase('bad name or id', 'allowed', t.allowed, 'UPDATE_PIPELINE_INSTANCE', {NAME: pipeline, SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: bad, INSTANCE_CONFIG: {CODE: 'return null', DISABLED: true}}, dest))
  })

  // Unknown actions, from both kinds of sender.
  const unknown = ['DROP_ALL', 'update_config', 'UPDATE_CONFIG ', ' DELETE_CONFIG', 'R1_ADMIN', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'A'.repeat(10_000), 'R1_STATE\u0000', 'ＵＰＤＡＴＥ_CONFIG']
  for (let i = 0; i < 200; i++) {
    const identity = i % 2 ? t.allowed : stranger(i)
    add(signedCase('unknown action', i % 2 ? 'allowed' : 'stranger', identity, unknown[i % unknown.length]!, pipeline, dest))
  }

  // A key that is not on the allow-list, sending every action (valid payloads aimed at the planted pipeline).
  for (let i = 0; i < 390; i++) {
    const action = Actions[i % Actions.length]!
    add(signedCase('non-allowed sender', 'stranger', stranger(i), action, payloadFor(action, t, i), dest))
  }

  // Heartbeats asked by strangers: the public heartbeat only.
  for (let i = 0; i < 150; i++) add(signedCase('stranger heartbeat', 'probe', stranger(i), 'FULL_HEARTBEAT', pick([null, {}, {NAME: pipeline}, 'full', {FULL: true}]), dest))

  // Binary frames: random bytes, and a genuine command sent as binary.
  for (let i = 0; i < 200; i++) {
    const frame = i % 4 === 0 ? Buffer.from(sign(envelope('DELETE_CONFIG', pipeline, dest), t.allowed).text) : randomBytes(1 + Math.floor(random() * 2000))
    add({category: 'binary frame', role: i % 2 ? 'allowed' : 'stranger', frame, binary: true})
  }

  // Bundle chunk abuse from the allowed key (and strangers storing bundles).
  for (let i = 0; i < 300; i++) {
    const bytes = Buffer.from(`bundle ${seed} ${i}`)
    const hash = createHash('sha256').update(bytes).digest('hex')
    const wrongHash = createHash('sha256').update(`not ${i}`).digest('hex')
    const variants: Array<[Role, Identity, unknown]> = [
      ['allowed', t.allowed, {HASH: wrongHash, SIZE: bytes.length, INDEX: 0, COUNT: 1, DATA: bytes.toString('base64')}],
      ['allowed', t.allowed, {HASH: hash, SIZE: bytes.length, INDEX: 1, COUNT: 1, DATA: bytes.toString('base64')}],
      ['allowed', t.allowed, {HASH: hash, SIZE: bytes.length, INDEX: 0, COUNT: 0, DATA: bytes.toString('base64')}],
      ['allowed', t.allowed, {HASH: hash, SIZE: -1, INDEX: 0, COUNT: 1, DATA: bytes.toString('base64')}],
      ['allowed', t.allowed, {HASH: hash, SIZE: 2 ** 40, INDEX: 0, COUNT: 1, DATA: bytes.toString('base64')}],
      ['allowed', t.allowed, {HASH: hash, SIZE: bytes.length, INDEX: 0, COUNT: 1, DATA: '!!not base64!!'}],
      ['allowed', t.allowed, {HASH: hash, SIZE: 1, INDEX: 0, COUNT: 1, DATA: bytes.toString('base64')}],
      ['allowed', t.allowed, {HASH: hash.toUpperCase(), SIZE: bytes.length, INDEX: 0, COUNT: 1, DATA: bytes.toString('base64')}],
      ['allowed', t.allowed, {HASH: wrongHash, SIZE: 600 * 1024, INDEX: 0, COUNT: 1, DATA: randomBytes(600 * 1024).toString('base64')}],
      ['stranger', stranger(i), {HASH: hash, SIZE: bytes.length, INDEX: 0, COUNT: 1, DATA: bytes.toString('base64')}],
    ]
    const [role, identity, payload] = variants[i % variants.length]!
    const put = payload as {HASH: string}
    if (/^[0-9a-f]{64}$/.test(put.HASH)) refusedBundles.push(put.HASH)
    add(signedCase('bundle chunk abuse', role, identity, 'R1_BUNDLE_PUT', payload, dest))
  }
  return groups
}
