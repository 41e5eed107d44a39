import {describe, expect, it} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {formatTime, parseTime, type UnsignedCommand} from '../../src/protocol/messages.js'
import {decodeCommand, decodeNodeFrame, decodeSigned, encodeBatch, encodeCommand, encodeSigned, itemCanonical, wireTextOf} from '../../src/protocol/wire.js'

const client = generateIdentity()
const node = generateIdentity()
const command = (action: UnsignedCommand['ACTION'], payload: unknown): UnsignedCommand => ({
  ACTION: action,
  PAYLOAD: payload,
  EE_DEST: node.address,
  INITIATOR_ID: 'test',
  SESSION_ID: 's1',
  TIME: formatTime(),
})

const payloads: Array<[UnsignedCommand['ACTION'], unknown]> = [
  ['UPDATE_CONFIG', {NAME: 'p', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'i', PROCESS_DELAY: 0.5}]}]}],
  ['DELETE_CONFIG', 'p'],
  ['ARCHIVE_CONFIG', 'p'],
  ['UPDATE_PIPELINE_INSTANCE', {NAME: 'p', SIGNATURE: 'S', INSTANCE_ID: 'i', INSTANCE_CONFIG: {INSTANCE_COMMAND: {COMMAND: 'RESTART'}}}],
  ['BATCH_UPDATE_PIPELINE_INSTANCE', [{NAME: 'p', SIGNATURE: 'S', INSTANCE_ID: 'i', INSTANCE_CONFIG: {X: 1}}]],
  ['PIPELINE_COMMAND', {NAME: 'p', PIPELINE_COMMAND: 'RESTART'}],
  ['FULL_HEARTBEAT', null],
  ['R1_BUNDLE_PUT', {HASH: 'a'.repeat(64), SIZE: 3, INDEX: 0, COUNT: 1, DATA: 'YWJj'}],
  ['R1_BUNDLE_HAS', {HASHES: ['b'.repeat(64)]}],
  ['R1_STATE', null],
  ['R1_SUBSCRIBE', {TYPES: ['PAYLOAD'], FILTER: {PIPELINE: 'p'}, SINCE_SEQ: 4}],
  ['R1_UNSUBSCRIBE', null],
  ['R1_ROLLBACK', {NAME: 'p', VERSION: 2}],
]

describe('commands: encode validates and signs, decode verifies and validates', () => {
  it.each(payloads)('%s round-trips', (action, payload) => {
    const {text, hash} = encodeCommand(command(action, payload), client)
    const decoded = decodeCommand(text)
    expect(decoded).toMatchObject({ok: true, action, hash, sender: client.address, payload})
  })

  it('encode refuses a payload that does not fit its action', () => {
    expect(() => encodeCommand(command('R1_BUNDLE_PUT', {HASH: 'xyz'}), client)).toThrow(/PAYLOAD.HASH/)
    expect(() => encodeCommand(command('UPDATE_CONFIG', {NAME: 'p'}), client)).toThrow(/Invalid UPDATE_CONFIG payload/)
  })

  it('decode names what is wrong', () => {
    expect(decodeCommand('{not json')).toMatchObject({ok: false, reason: 'BAD_JSON', hash: null})
    expect(decodeCommand('[1,2]')).toMatchObject({ok: false, reason: 'INVALID_MESSAGE'})
    const unknown = encodeSigned({...command('FULL_HEARTBEAT', null), ACTION: 'FORMAT_DISK'}, client)
    expect(decodeCommand(unknown.text)).toMatchObject({ok: false, reason: 'UNKNOWN_ACTION', hash: unknown.hash})
    const badPayload = encodeSigned({...command('DELETE_CONFIG', null)}, client)
    expect(decodeCommand(badPayload.text)).toMatchObject({ok: false, reason: 'INVALID_PAYLOAD', detail: expect.stringContaining('PAYLOAD')})
    const noTime = encodeSigned({ACTION: 'R1_STATE', PAYLOAD: null, EE_DEST: node.address, INITIATOR_ID: 'x', SESSION_ID: 'y'}, client)
    expect(decodeCommand(noTime.text)).toMatchObject({ok: false, reason: 'INVALID_MESSAGE', detail: expect.stringContaining('TIME')})
    const tampered = encodeCommand(command('DELETE_CONFIG', 'p'), client).text.replace('"p"', '"q"')
    expect(decodeCommand(tampered)).toMatchObject({ok: false, reason: 'BAD_SIGNATURE'})
  })

  it('a reordered, re-spaced frame (as Python would send it) still verifies through the general path', () => {
    const {text, hash} = encodeCommand(command('UPDATE_CONFIG', payloads[0][1]), client)
    const respaced = JSON.stringify(JSON.parse(text), null, 1).replace('0.5', '5e-1')
    expect(decodeSigned(respaced)).toMatchObject({ok: true, hash})
  })

  it('TIME is UTC with microseconds', () => {
    const t = formatTime(new Date('2026-07-01T10:11:12.123Z'))
    expect(t).toBe('2026-07-01 10:11:12.123000')
    expect(parseTime(t)).toBe(Date.parse('2026-07-01T10:11:12.123Z'))
    expect(parseTime('yesterday')).toBeNaN()
  })
})

describe('node frames', () => {
  const event = {EE_EVENT_TYPE: 'PAYLOAD', EE_PAYLOAD_PATH: ['n', 'p', 'S', 'i'], EE_MESSAGE_SEQ: 7, EE_TIMESTAMP: new Date().toISOString(), VALUE: 1.5}
  it('a single event and a batch decode for the expected node, not for another', () => {
    const single = encodeSigned(event, node)
    expect(decodeNodeFrame(single.text, node.address)).toMatchObject({ok: true, items: [event]})
    expect(decodeNodeFrame(single.text, client.address)).toMatchObject({ok: false, reason: expect.stringContaining('expected the node')})
    const batch = encodeBatch([itemCanonical(event), itemCanonical({...event, EE_MESSAGE_SEQ: 8})], node)
    const decoded = decodeNodeFrame(batch.frame.toString(), node.address)
    expect(decoded.ok && decoded.items.map((i) => (i as {EE_MESSAGE_SEQ: number}).EE_MESSAGE_SEQ)).toEqual([7, 8])
  })
  it('keeps each batched event\'s own signed text (what r1 logs --json prints), tricky strings included', () => {
    const tricky = [
      {...event, TEXT: 'a "quoted" \\ back\\"slash\\\\', BRACKETS: '}]{[,:', NESTED: {A: [1, [2, {B: '"'}]], C: null}},
      {...event, EE_MESSAGE_SEQ: 8, UNICODE: 'héllo ✓ \u{1f600}', CONTROL: '\u0001\n\t', FLOAT: 1e-7, BIG: 2 ** 60, EMPTY: {}, LIST: []},
      {...event, EE_MESSAGE_SEQ: 9},
    ]
    const batch = encodeBatch(tricky.map(itemCanonical), node)
    const decoded = decodeNodeFrame(batch.frame.toString(), node.address, {wireTexts: true})
    expect(decoded.ok).toBe(true)
    const items = decoded.ok ? decoded.items : []
    expect(items.map((item) => wireTextOf(item))).toEqual(tricky.map((e) => itemCanonical(e).toString()))
    for (const item of items) expect(JSON.parse(wireTextOf(item)!)).toEqual(JSON.parse(JSON.stringify(item)))
    // a single-event frame has no such text: its fields include the signature
    const single = decodeNodeFrame(encodeSigned(event, node).text, node.address, {wireTexts: true})
    expect(single.ok && wireTextOf(single.items[0]!)).toBeUndefined()
    // and only when asked: the text holds on to its whole frame
    const plain = decodeNodeFrame(batch.frame.toString(), node.address)
    expect(plain.ok && plain.items.map((item) => wireTextOf(item))).toEqual([undefined, undefined, undefined])
  })

  it('a batch with an event added after signing is refused', () => {
    const batch = encodeBatch([itemCanonical(event)], node)
    const forged = batch.frame.toString().replace('"EVENTS":[', `"EVENTS":[${itemCanonical({...event, EE_MESSAGE_SEQ: 99})},`)
    expect(decodeNodeFrame(forged, node.address).ok).toBe(false)
  })
})
