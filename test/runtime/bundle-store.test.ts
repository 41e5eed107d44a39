import {existsSync} from 'node:fs'
import {chmod, mkdtemp, readdir, rm, stat, truncate, utimes, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {NotificationCode} from '../../src/protocol/codes.js'
import {packFiles} from '../../src/runtime/files-bundle.js'
import {bundleEntry, sha256Hex, startLocalNode, type LocalNode} from '../../src/runtime/index.js'
import {execPipeline, startTestNode} from '../server/helpers.js'
import {Events, FAST, FIXTURES, faultyNode, faultyPipeline, meta, until} from './helpers.js'

let node: LocalNode | undefined
let dataDir: string
const logs: string[] = []
const log = (line: string) => logs.push(line)

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'r1-bundle-test-'))
  logs.length = 0
})
afterEach(async () => {
  await node?.stop()
  node = undefined
  await rm(dataDir, {recursive: true, force: true})
})

/** Bytes that stand for a bundle (the store keeps any bytes under their hash). */
function fakeBundle(tag: string, size: number): {hash: string; bytes: Uint8Array} {
  const bytes = Buffer.alloc(size, tag)
  return {hash: sha256Hex(bytes), bytes: new Uint8Array(bytes)}
}

const bundleFiles = async () => (await readdir(join(dataDir, 'bundles')).catch(() => [] as string[])).filter((f) => f.endsWith('.mjs')).sort()

describe('bundle integrity', () => {
  it('a truncated bundle is found when loaded: reported missing, removed, the instance not started from it; a new upload brings the instance back', async () => {
    const started = await faultyNode({dataDir, log})
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}]), meta())
    await started.events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    await node.stop()

    const file = join(dataDir, 'bundles', `${started.hash}.mjs`)
    const size = (await stat(file)).size
    await truncate(file, Math.floor(size / 2))
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
    const events = new Events(node)
    expect(node.instance('p', 'FAULTY', 'a')?.status).toBe('invalid_config')
    expect(node.hasBundle(started.hash)).toBe(false)
    expect(existsSync(file)).toBe(false)
    expect(logs.join('\n')).toMatch(/bundle [0-9a-f]{12}… was corrupt on disk .* removed; the next deploy uploads it again/)

    // what R1_BUNDLE_PUT does with the re-uploaded bytes
    const bundle = await bundleEntry('src/faulty.ts', {projectDir: join(FIXTURES, 'faulty')})
    expect(bundle.hash).toBe(started.hash)
    await node.putBundle(bundle.hash, bundle.bytes)
    expect(node.hasBundle(started.hash)).toBe(true)
    const payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    expect(payload.EE_PAYLOAD_PATH).toEqual(['local', 'p', 'FAULTY', 'a'])
  })

  it('after a re-upload, the same UPDATE_CONFIG re-creates the instance that lost its bundle and confirms it (PLUGIN_CONFIG_OK with its hash)', async () => {
    const started = await faultyNode({dataDir, log})
    node = started.node
    const config = faultyPipeline(started.hash, [{INSTANCE_ID: 'a'}, {INSTANCE_ID: 'off', DISABLED: true}])
    await node.execute('UPDATE_CONFIG', config, meta())
    await started.events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    await node.stop()
    await truncate(join(dataDir, 'bundles', `${started.hash}.mjs`), 10)

    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
    const events = new Events(node)
    expect(node.instance('p', 'FAULTY', 'a')?.status).toBe('invalid_config')
    // the same config without the bundle: refused, nothing changes
    await expect(node.execute('UPDATE_CONFIG', config, meta())).rejects.toThrow(/bundle .* is not on this node/)
    expect(node.instance('p', 'FAULTY', 'a')?.status).toBe('invalid_config')

    const bundle = await bundleEntry('src/faulty.ts', {projectDir: join(FIXTURES, 'faulty')})
    await node.putBundle(bundle.hash, bundle.bytes)
    const command = meta()
    await node.execute('UPDATE_CONFIG', config, command)
    const ok = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === command.hash, 20_000, 'PLUGIN_CONFIG_OK of the deploy')
    expect(ok.EE_PAYLOAD_PATH).toEqual(['local', 'p', 'FAULTY', 'a'])
    const applied = events.notifications({code: NotificationCode.PIPELINE_OK, hash: command.hash})[0]
    // the disabled one is re-created too (no longer invalid for want of its bundle), not started
    expect(applied.NOTIFICATION).toContain('2 restarted')
    expect(node.instance('p', 'FAULTY', 'a')?.status).toBe('running')
    expect(node.instance('p', 'FAULTY', 'off')?.status).toBe('stopped')

    // confirmed once: the next identical config leaves the running instance alone
    const pid = node.instance('p', 'FAULTY', 'a')?.pid
    const again = meta()
    await node.execute('UPDATE_CONFIG', config, again)
    expect(events.notifications({code: NotificationCode.PIPELINE_OK, hash: again.hash})[0].NOTIFICATION).toContain('0 restarted')
    expect(node.instance('p', 'FAULTY', 'a')?.pid).toBe(pid)
  })

  it('an instance in error because its shipped files bundle was corrupt starts again once the files are uploaded, and the config confirms it', async () => {
    const filesRoot = await mkdtemp(join(tmpdir(), 'r1-bundle-files-'))
    await chmod(filesRoot, 0o755) // the instance user (nobody, under root) copies the shipped files from inside it
    try {
      await writeFile(join(filesRoot, 'data.txt'), 'shipped')
      const files = await packFiles(filesRoot, ['data.txt'])
      const filesDir = join(filesRoot, 'unpacked')
      const config = {NAME: 'f', TYPE: 'Void', R1_FILES: {CUSTOM_EXEC_01: files.hash}, PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'x', PROCESS_DELAY: 0.1, CODE: 'return {OK: 1}'}]}]}
      node = await startLocalNode({dataDir, filesRoot: filesDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
      await node.putBundle(files.hash, files.bytes)
      await node.execute('UPDATE_CONFIG', config, meta())
      await until(() => node!.instance('f', 'CUSTOM_EXEC_01', 'x')?.status === 'running', 20_000, 'the instance running')
      await node.stop()
      // corrupt before the files are unpacked again (a fresh files root)
      await truncate(join(dataDir, 'bundles', `${files.hash}.mjs`), 5)
      await rm(filesDir, {recursive: true, force: true})

      node = await startLocalNode({dataDir, filesRoot: filesDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
      const events = new Events(node)
      await until(() => node!.instance('f', 'CUSTOM_EXEC_01', 'x')?.status === 'error', 20_000, 'the instance in error')
      expect(node.hasBundle(files.hash)).toBe(false)

      await node.putBundle(files.hash, files.bytes)
      const command = meta()
      await node.execute('UPDATE_CONFIG', config, command)
      await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === command.hash, 20_000, 'PLUGIN_CONFIG_OK of the deploy')
      expect(node.instance('f', 'CUSTOM_EXEC_01', 'x')?.status).toBe('running')
    } finally {
      await node?.stop()
      node = undefined
      await rm(filesRoot, {recursive: true, force: true})
    }
  })

  it('the same bundle put twice at once (two deploys racing) is stored once: the later put is no arrival, so the instance the first config started is kept', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
    const events = new Events(node)
    const bundle = await bundleEntry('src/faulty.ts', {projectDir: join(FIXTURES, 'faulty')})
    const [first, second] = [node.putBundle(bundle.hash, bundle.bytes), node.putBundle(bundle.hash, bundle.bytes)]
    await first
    const created = meta()
    const applied = node.execute('UPDATE_CONFIG', faultyPipeline(bundle.hash, [{INSTANCE_ID: 'a'}]), created)
    await Promise.all([second, applied])
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EE_PAYLOAD_PATH[3] === 'a')
    const pid = node.instance('p', 'FAULTY', 'a')!.pid
    const again = meta()
    await node.execute('UPDATE_CONFIG', faultyPipeline(bundle.hash, [{INSTANCE_ID: 'a'}]), again)
    expect(events.notifications({code: NotificationCode.PIPELINE_OK, hash: again.hash})[0].NOTIFICATION).toMatch(/0 added, 0 reconfigured, 0 restarted, 0 removed/)
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CONFIG_OK && e.COMMAND_HASH === again.hash)
    expect(node.instance('p', 'FAULTY', 'a')!.pid).toBe(pid)
    expect(await bundleFiles()).toEqual([`${bundle.hash}.mjs`])
  })

  it('an upload racing a config that carries the same bundle inline: the instances that config started are not marked for a restart', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
    const events = new Events(node)
    const bundle = await bundleEntry('src/faulty.ts', {projectDir: join(FIXTURES, 'faulty')})
    // one deploy uploads it (R1_BUNDLE_PUT) while another sends it inside its UPDATE_CONFIG (R1_BUNDLE_DATA)
    const uploaded = node.putBundle(bundle.hash, bundle.bytes)
    const inline = {...faultyPipeline(bundle.hash, [{INSTANCE_ID: 'a'}]), R1_BUNDLE_DATA: {[bundle.hash]: Buffer.from(bundle.bytes).toString('base64')}}
    await Promise.all([uploaded, node.execute('UPDATE_CONFIG', inline, meta())])
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EE_PAYLOAD_PATH[3] === 'a')
    const pid = node.instance('p', 'FAULTY', 'a')!.pid
    const again = meta()
    await node.execute('UPDATE_CONFIG', faultyPipeline(bundle.hash, [{INSTANCE_ID: 'a'}]), again)
    expect(events.notifications({code: NotificationCode.PIPELINE_OK, hash: again.hash})[0].NOTIFICATION).toMatch(/0 added, 0 reconfigured, 0 restarted, 0 removed/)
    expect(node.instance('p', 'FAULTY', 'a')!.pid).toBe(pid)
    expect(await bundleFiles()).toEqual([`${bundle.hash}.mjs`])
  })

  it('a bundle changed on disk while the node runs is re-hashed (size and mtime differ from the verified ones)', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, log})
    const bundle = fakeBundle('a', 4096)
    await node.putBundle(bundle.hash, bundle.bytes)
    expect(node.hasBundle(bundle.hash)).toBe(true)
    await truncate(join(dataDir, 'bundles', `${bundle.hash}.mjs`), 100)
    expect(node.hasBundle(bundle.hash)).toBe(false)
    await node.putBundle(bundle.hash, bundle.bytes)
    expect(node.hasBundle(bundle.hash)).toBe(true)
  })
})

describe('bundle integrity over the wire', () => {
  it('R1_BUNDLE_HAS reports a truncated bundle missing, and R1_BUNDLE_PUT stores it again', async () => {
    const t = await startTestNode({core: {log}})
    try {
      const session = await t.connect()
      const bundle = fakeBundle('w', 700_000) // two chunks
      expect(await session.missingBundles([bundle.hash])).toEqual([bundle.hash])
      await session.putBundle(bundle.hash, bundle.bytes)
      expect(await session.missingBundles([bundle.hash])).toEqual([])
      await truncate(join(t.dataDir, 'bundles', `${bundle.hash}.mjs`), 512 * 1024)
      expect(await session.missingBundles([bundle.hash])).toEqual([bundle.hash])
      await session.putBundle(bundle.hash, bundle.bytes)
      expect(await session.missingBundles([bundle.hash])).toEqual([])
      expect((await stat(join(t.dataDir, 'bundles', `${bundle.hash}.mjs`))).size).toBe(700_000)
    } finally {
      await t.dispose()
    }
  })
})

describe('bundle collection and quota', () => {
  it('collects bundles no kept version references after a change: kept while current, archived or in history, removed with the pipeline', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, bundles: {graceMs: 0}, log})
    const a = fakeBundle('a', 1000)
    const b = fakeBundle('b', 1000)
    const stray = fakeBundle('s', 1000)
    for (const x of [a, stray]) await node.putBundle(x.hash, x.bytes)
    const withBundle = (hash: string) => ({...execPipeline('p', 'exec-1', 5), R1_BUNDLES: {UNUSED: hash}})
    await node.execute('UPDATE_CONFIG', withBundle(a.hash), meta())
    expect(await bundleFiles()).toEqual([`${a.hash}.mjs`]) // the stray one went
    await node.putBundle(b.hash, b.bytes)
    await node.execute('UPDATE_CONFIG', withBundle(b.hash), meta())
    expect(await bundleFiles()).toEqual([a.hash, b.hash].map((h) => `${h}.mjs`).sort()) // a: history
    await node.execute('ARCHIVE_CONFIG', 'p', meta())
    expect(await bundleFiles()).toHaveLength(2)
    await node.execute('DELETE_CONFIG', 'p', meta())
    expect(await bundleFiles()).toEqual([])
    expect(logs.join('\n')).toMatch(/removed 2 bundle\(s\) no kept pipeline version uses/)
  })

  it('keeps the files a pipeline ships (R1_FILES) like its code', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, bundles: {graceMs: 0}, log})
    const {packFiles} = await import('../../src/runtime/files-bundle.js')
    const files = await packFiles(FIXTURES, [])
    await node.putBundle(files.hash, files.bytes)
    await node.execute('UPDATE_CONFIG', {...execPipeline('p', 'exec-1', 5), R1_FILES: {CUSTOM_EXEC_01: files.hash}}, meta())
    await node.execute('UPDATE_CONFIG', execPipeline('q', 'exec-2', 5), meta()) // a change: collection runs
    expect(await bundleFiles()).toEqual([`${files.hash}.mjs`])
    await node.execute('DELETE_CONFIG', 'p', meta())
    expect(await bundleFiles()).toEqual([])
  })

  it('collects at start what earlier runs left behind, past the grace period', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
    const kept = fakeBundle('k', 1000)
    const old = fakeBundle('o', 1000)
    const fresh = fakeBundle('f', 1000)
    for (const x of [kept, old, fresh]) await node.putBundle(x.hash, x.bytes)
    await node.execute('UPDATE_CONFIG', {...execPipeline('p', 'exec-1', 5), R1_BUNDLES: {UNUSED: kept.hash}}, meta())
    await node.stop()
    const hourAgo = new Date(Date.now() - 3600_000)
    for (const x of [kept, old]) await utimes(join(dataDir, 'bundles', `${x.hash}.mjs`), hourAgo, hourAgo)
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
    expect(await bundleFiles()).toEqual([kept.hash, fresh.hash].map((h) => `${h}.mjs`).sort())
  })

  it('keeps a fresh upload nothing references yet (a deploy sends its UPDATE_CONFIG after the upload)', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, log})
    const fresh = fakeBundle('f', 1000)
    await node.putBundle(fresh.hash, fresh.bytes)
    await node.execute('UPDATE_CONFIG', execPipeline('p', 'exec-1', 5), meta())
    await node.execute('DELETE_CONFIG', 'p', meta())
    expect(await bundleFiles()).toEqual([`${fresh.hash}.mjs`])
  })

  it('decides the quota on what the folder really holds: a bundle an operator removed by hand no longer counts', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, bundles: {quotaBytes: 10_000, graceMs: 0}, log})
    const a = fakeBundle('a', 6000)
    const b = fakeBundle('b', 6000)
    await node.putBundle(a.hash, a.bytes)
    await node.execute('UPDATE_CONFIG', {...execPipeline('p', 'exec-1', 5), R1_BUNDLES: {UNUSED: a.hash}}, meta())
    await rm(join(dataDir, 'bundles', `${a.hash}.mjs`)) // the store still counts its 6000 bytes
    await node.putBundle(b.hash, b.bytes)
    expect(node.hasBundle(b.hash)).toBe(true)
    expect(await bundleFiles()).toEqual([`${b.hash}.mjs`])
  })

  it('refuses an upload over the quota that collection cannot free, with a clear error; room made by a delete is used', async () => {
    node = await startLocalNode({dataDir, heartbeatIntervalMs: 0, supervisor: FAST, bundles: {quotaBytes: 10_000, graceMs: 0}, log})
    const a = fakeBundle('a', 6000)
    const b = fakeBundle('b', 6000)
    await node.putBundle(a.hash, a.bytes)
    await node.execute('UPDATE_CONFIG', {...execPipeline('p', 'exec-1', 5), R1_BUNDLES: {UNUSED: a.hash}}, meta())
    const error = await node.putBundle(b.hash, b.bytes).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(R1Error)
    expect(error).toMatchObject({exitCode: 4, code: 'BUNDLE_QUOTA', message: expect.stringMatching(/does not fit this node's bundle quota/), hint: expect.stringMatching(/Delete pipelines/)})
    expect(node.hasBundle(b.hash)).toBe(false)
    expect(await bundleFiles()).toEqual([`${a.hash}.mjs`])

    await node.execute('DELETE_CONFIG', 'p', meta())
    await node.putBundle(b.hash, b.bytes)
    expect(await bundleFiles()).toEqual([`${b.hash}.mjs`])
    // under pressure, an unreferenced bundle past its grace makes room at once
    const c = fakeBundle('c', 6000)
    await node.putBundle(c.hash, c.bytes)
    await until(() => node!.hasBundle(c.hash))
    expect(await bundleFiles()).toEqual([`${c.hash}.mjs`])
  })
})
