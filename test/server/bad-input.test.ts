import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {formatTime, type Rejection, type UnsignedCommand} from '../../src/protocol/messages.js'
import {encodeCommand, encodeSigned} from '../../src/protocol/wire.js'
import {execPipeline, startTestNode, type TestNode} from './helpers.js'
import {RawClient} from './raw-client.js'

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed |= 0
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

let t: TestNode
beforeAll(async () => {
  // A generous rate limit: every frame must reach the checks behind it.
  t = await startTestNode({rateLimit: {burst: 100_000, perSecond: 100_000, closeAfter: 100_000}})
})
afterAll(async () => t?.dispose())

async function snapshot() {
  const state = t.node.core.state()
  const files = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).sort()
  return {
    state: JSON.stringify(state.map((p) => ({...p, instances: p.instances.map((i) => ({signature: i.signature, instanceId: i.instanceId, config: i.config}))}))),
    stateFiles: await Promise.all((await files(join(t.dataDir, 'pipelines'))).map((f) => readFile(join(t.dataDir, 'pipelines', f), 'utf8'))),
    allowFile: await readFile(join(t.dataDir, 'allowed.json'), 'utf8'),
    bundles: await files(join(t.dataDir, 'bundles')),
  }
}

describe('bad-input suite: 1000+ malformed, mutated, oversized and forged frames', () => {
  it('every frame is refused with a reason, nothing changes, and an honest client is still served', async () => {
    const honest = await t.connect()
    await honest.send('UPDATE_CONFIG', execPipeline('keep', 'k1', 0.5), {expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, instance: 'k1'}]})
    const before = await snapshot()

    const random = prng(5)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
    const base = (action: UnsignedCommand['ACTION'], payload: unknown, extra: Partial<UnsignedCommand> = {}): UnsignedCommand => ({
      ACTION: action,
      PAYLOAD: payload,
      EE_DEST: t.node.address,
      INITIATOR_ID: 'fuzz',
      SESSION_ID: 'fuzz',
      TIME: formatTime(),
      ...extra,
    })
    const stranger = generateIdentity()
    const frames: string[] = []
    // 1. random text, including control characters and lone surrogates
    for (let i = 0; i < 200; i++) {
      const length = Math.floor(random() * 300)
      frames.push(Array.from({length}, () => String.fromCharCode(Math.floor(random() * (random() < 0.9 ? 128 : 0xffff)))).join(''))
    }
    // 2. truncated and 3. single-character mutations of valid, state-changing commands
    for (let i = 0; i < 250; i++) {
      const text = encodeCommand(base('UPDATE_CONFIG', execPipeline(`evil-${i}`)), t.client).text
      frames.push(text.slice(0, Math.floor(random() * (text.length - 1))))
    }
    for (let i = 0; i < 300; i++) {
      const action = pick(['UPDATE_CONFIG', 'DELETE_CONFIG', 'ARCHIVE_CONFIG'] as const)
      const text = encodeCommand(base(action, action === 'UPDATE_CONFIG' ? execPipeline(`evil-m${i}`) : 'keep'), t.client).text
      const at = Math.floor(random() * text.length)
      const replacement = pick(['0', '1', 'a', 'A', '"', '{', '}', ',', ':', '\\', ' ', 'é', 'Z', '9', '-'])
      frames.push(text.slice(0, at) + (text[at] === replacement ? '#' : replacement) + text.slice(at + 1))
    }
    // 4. well-signed by the allowed key, but not valid messages or payloads
    const badPayloads: Array<[string, unknown]> = [
      ['UPDATE_CONFIG', {NAME: 'x'}],
      ['UPDATE_CONFIG', {NAME: '', TYPE: 'Void', PLUGINS: []}],
      ['UPDATE_CONFIG', {NAME: 'x', TYPE: 'Void', PLUGINS: 'all'}],
      ['UPDATE_CONFIG', {NAME: 'x', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'NOPE_01', INSTANCES: [{INSTANCE_ID: 'i'}]}]}],
      ['UPDATE_CONFIG', JSON.parse('{"__proto__": {"polluted": true}, "NAME": "x", "PLUGINS": []}')],
      ['UPDATE_CONFIG', {NAME: 'x', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'i'}, {INSTANCE_ID: 'i'}]}]}],
      ['DELETE_CONFIG', {NAME: 42}],
      ['DELETE_CONFIG', 'no-such-pipeline'],
      ['ARCHIVE_CONFIG', null],
      ['UPDATE_PIPELINE_INSTANCE', {NAME: 'keep'}],
      ['UPDATE_PIPELINE_INSTANCE', {NAME: 'keep', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'k1', INSTANCE_CONFIG: 'fast'}],
      ['BATCH_UPDATE_PIPELINE_INSTANCE', []],
      ['PIPELINE_COMMAND', {PIPELINE_COMMAND: 'x'}],
      ['R1_BUNDLE_PUT', {HASH: 'zz', SIZE: 1, INDEX: 0, COUNT: 1, DATA: 'AA=='}],
      ['R1_BUNDLE_PUT', {HASH: 'a'.repeat(64), SIZE: 3, INDEX: 5, COUNT: 1, DATA: 'YWJj'}],
      ['R1_BUNDLE_PUT', {HASH: 'b'.repeat(64), SIZE: 3, INDEX: 0, COUNT: 1, DATA: 'YWJj'}],
      ['R1_BUNDLE_PUT', {HASH: 'c'.repeat(64), SIZE: 1e12, INDEX: 0, COUNT: 1, DATA: ''}],
      ['R1_BUNDLE_HAS', {HASHES: 'all'}],
      ['R1_SUBSCRIBE', {SINCE_SEQ: -5}],
      ['R1_SUBSCRIBE', {FILTER: {COLOR: 'red'}}],
      ['R1_ROLLBACK', {NAME: 'keep', VERSION: 0}],
      ['R1_ROLLBACK', {NAME: 'never-existed'}],
      ['FORMAT_DISK', null],
      [42 as unknown as string, null],
    ]
    for (let i = 0; i < 115; i++) {
      const [action, payload] = badPayloads[i % badPayloads.length]!
      frames.push(encodeSigned({...base('R1_STATE', null), ACTION: action, PAYLOAD: payload}, t.client).text)
    }
    const envelopes = [{}, {ACTION: 'R1_STATE'}, {ACTION: 'R1_STATE', PAYLOAD: null, EE_DEST: t.node.address, TIME: 'now'}, {...base('R1_STATE', null), TIME: 12}]
    for (const envelope of envelopes) frames.push(encodeSigned(envelope as Record<string, unknown>, t.client).text)
    frames.push(encodeCommand(base('R1_STATE', null), t.client).text.replace('"SIGN_CANON_V":"v2"', '"SIGN_CANON_V":"v9"'))
    // 5. forged or unauthorised: other keys, claimed senders, wrong node, stale or future TIME, replays
    for (let i = 0; i < 60; i++) {
      const forged = encodeCommand(base('DELETE_CONFIG', 'keep'), stranger).text
      frames.push(i % 2 === 0 ? forged : forged.replace(stranger.address, t.client.address))
    }
    for (let i = 0; i < 40; i++) frames.push(encodeCommand(base('DELETE_CONFIG', 'keep', {EE_DEST: generateIdentity().address}), t.client).text)
    for (let i = 0; i < 40; i++) frames.push(encodeCommand(base('DELETE_CONFIG', 'keep', {TIME: formatTime(new Date(Date.now() + (i % 2 ? 1 : -1) * (30 + i) * 60_000))}), t.client).text)
    const once = encodeCommand(base('R1_STATE', null), t.client).text
    frames.push(once)
    for (let i = 0; i < 50; i++) frames.push(once)
    // 6. parser stress: deep nesting, huge numbers, Python literals, duplicate keys, unicode
    frames.push('['.repeat(100_000), '{"a":'.repeat(50_000), '1e999999', '-', 'NaN', '[NaN, Infinity, -Infinity]', '"\\ud800"', '{"ACTION":"R1_STATE","ACTION":"DELETE_CONFIG"}', '\u0000', '{"\u2028":1}', 'null', 'true', '[]', '""')
    for (let i = 0; i < 20; i++) frames.push(JSON.stringify({ACTION: 'UPDATE_CONFIG', PAYLOAD: {n: Number.MAX_VALUE * (i + 1), big: '9'.repeat(1000 * i)}}))

    expect(frames.length).toBeGreaterThanOrEqual(1000)
    const client = await RawClient.connect(t.node.url, t.node.address)
    for (const frame of frames) client.send(frame)
    // Binary frames are refused too.
    for (let i = 0; i < 10; i++) client.send(Buffer.from([0xff, 0, i]))
    const answered = await client.waitForCount((item) => item.EE_EVENT_TYPE === 'R1_REPLY' || (item as Rejection).NOTIFICATION_CODE === NotificationCode.COMM_RECEIVED_BAD_COMMAND, frames.length + 10, 120_000)
    const replies = answered.filter((i) => i.EE_EVENT_TYPE === 'R1_REPLY')
    expect(replies.map((r) => r.EE_EVENT_TYPE === 'R1_REPLY' && r.ACTION)).toEqual(['R1_STATE']) // only the one honest query
    const reasons = new Set(answered.filter((i) => i.EE_EVENT_TYPE === 'NOTIFICATION').map((i) => (i as Rejection).REASON))
    for (const reason of ['BAD_JSON', 'INVALID_MESSAGE', 'INVALID_PAYLOAD', 'UNKNOWN_ACTION', 'BAD_SIGNATURE', 'WRONG_DEST', 'TIME_SKEW', 'REPLAY', 'NOT_ALLOWED', 'EXECUTION_FAILED']) expect(reasons).toContain(reason)
    expect(client.invalid).toEqual([]) // every node frame verified
    expect(client.closeCode).toBeUndefined()

    // 7. oversized frames close their own connections (1009) and nothing else.
    for (let i = 0; i < 5; i++) {
      const big = await RawClient.connect(t.node.url, t.node.address)
      big.send('{"ACTION":"UPDATE_CONFIG","PAYLOAD":"' + 'A'.repeat(1024 * 1024 + i * 1000) + '"}')
      expect(await big.waitClosed()).toBe(1009)
    }

    expect(await snapshot()).toEqual(before)
    expect(Object.prototype).not.toHaveProperty('polluted')
    // The honest client is still served, on its existing session, and the node still applies changes.
    const state = await honest.state()
    expect(state.PIPELINES.map((p) => p.NAME)).toEqual(['keep'])
    await honest.send('UPDATE_CONFIG', execPipeline('after', 'a1', 0.5), {expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, instance: 'a1'}]})
    expect((await honest.state()).PIPELINES.map((p) => p.NAME).sort()).toEqual(['after', 'keep'])
  })
})
