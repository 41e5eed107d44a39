// UPDATE_CONFIG carrying the bundle it loads (R1_BUNDLE_DATA, hello feature INLINE_BUNDLES): stored, checked
// like an upload, never kept in the config; a forged, foreign, malformed or oversized one is refused and
// changes nothing.
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import {FEATURE_INLINE_BUNDLES} from '../../src/protocol/messages.js'
import {bundleEntry, sha256Hex} from '../../src/runtime/index.js'
import type {Session} from '../../src/session/index.js'
import {FIXTURES, faultyPipeline} from '../runtime/helpers.js'
import {startTestNode, type TestNode} from './helpers.js'

let t: TestNode
let session: Session
let bundle: {hash: string; bytes: Uint8Array}
beforeAll(async () => {
  t = await startTestNode()
  session = await t.connect()
  bundle = await bundleEntry('src/faulty.ts', {projectDir: join(FIXTURES, 'faulty')})
})
afterAll(async () => t?.dispose())

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')
const stored = (hash: string) => existsSync(join(t.dataDir, 'bundles', `${hash}.mjs`))
const pipelines = async () => (await session.state()).PIPELINES.map((p) => p.NAME)

describe('bundles inline in UPDATE_CONFIG', () => {
  it('refused when forged (bytes that do not hash to their key), foreign (a bundle the config does not load), not base64 or over the payload bound: nothing stored, nothing applied', async () => {
    const config = faultyPipeline(bundle.hash, [{INSTANCE_ID: 'a'}], 'forged')
    await expect(session.send('UPDATE_CONFIG', {...config, R1_BUNDLE_DATA: {[bundle.hash]: base64(Buffer.from('export default {evil: true}'))}})).rejects.toThrow(/does not match its hash/)
    const other = Buffer.from('export const other = 1')
    await expect(session.send('UPDATE_CONFIG', {...config, R1_BUNDLE_DATA: {[bundle.hash]: base64(bundle.bytes), [sha256Hex(other)]: base64(other)}})).rejects.toThrow(/does not load; nothing stored/)
    await expect(session.send('UPDATE_CONFIG', {...config, R1_BUNDLE_DATA: {[bundle.hash]: '%%% not base64 %%%'}})).rejects.toThrow(/is not base64/)
    await expect(session.send('UPDATE_CONFIG', {...config, R1_BUNDLE_DATA: [base64(bundle.bytes)]})).rejects.toThrow(/must map bundle hashes/)
    const huge = Buffer.alloc(300 * 1024, 1)
    await expect(session.send('UPDATE_CONFIG', {...faultyPipeline(sha256Hex(huge), [{INSTANCE_ID: 'a'}], 'forged'), R1_BUNDLE_DATA: {[sha256Hex(huge)]: base64(huge)}})).rejects.toThrow(/PAYLOAD is larger than 256 KiB/)
    // all or nothing: a good bundle next to a forged one, or with a config refused on its own, is not stored either
    const files = Buffer.from('files')
    await expect(session.send('UPDATE_CONFIG', {...config, R1_FILES: {FAULTY: sha256Hex(files)}, R1_BUNDLE_DATA: {[bundle.hash]: base64(bundle.bytes), [sha256Hex(files)]: base64(Buffer.from('forged'))}})).rejects.toThrow(/does not match its hash/)
    const twice = faultyPipeline(bundle.hash, [{INSTANCE_ID: 'a'}, {INSTANCE_ID: 'a'}], 'forged')
    await expect(session.send('UPDATE_CONFIG', {...twice, R1_BUNDLE_DATA: {[bundle.hash]: base64(bundle.bytes)}})).rejects.toThrow(/appears twice/)
    expect(stored(bundle.hash)).toBe(false)
    expect(stored(sha256Hex(other))).toBe(false)
    expect(stored(sha256Hex(files))).toBe(false)
    expect(await pipelines()).not.toContain('forged')
  })

  it('the hello offers it; the bundle is stored and the config applied and confirmed, kept without R1_BUNDLE_DATA', async () => {
    expect(session.nodeFeatures).toContain(FEATURE_INLINE_BUNDLES)
    const config = faultyPipeline(bundle.hash, [{INSTANCE_ID: 'a'}], 'inline')
    const result = await session.send('UPDATE_CONFIG', {...config, R1_BUNDLE_DATA: {[bundle.hash]: base64(bundle.bytes)}}, {
      expect: [
        {code: NotificationCode.PIPELINE_OK, pipeline: 'inline'},
        {code: NotificationCode.PLUGIN_CONFIG_OK, pipeline: 'inline', instance: 'a'},
      ],
    })
    expect(result.notifications.every((n) => n.COMMAND_HASH === result.hash)).toBe(true)
    expect(stored(bundle.hash)).toBe(true)
    const state = await session.state({bundles: [bundle.hash]})
    expect(state.MISSING_BUNDLES).toEqual([])
    const kept = state.PIPELINES.find((p) => p.NAME === 'inline')!
    expect(JSON.stringify(kept)).not.toContain('R1_BUNDLE_DATA')
    expect(kept).toMatchObject({R1_BUNDLES: {FAULTY: bundle.hash}})
    // sent again with the bundle the node now holds: nothing new stored, the instance confirms as it runs
    const again = await session.send('UPDATE_CONFIG', {...config, R1_BUNDLE_DATA: {[bundle.hash]: base64(bundle.bytes)}}, {expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, pipeline: 'inline', instance: 'a'}]})
    expect(again.notifications[0]!.COMMAND_HASH).toBe(again.hash)
  })
})
