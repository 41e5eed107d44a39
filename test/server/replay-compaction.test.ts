import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it, vi} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {formatTime, type Rejection} from '../../src/protocol/messages.js'
import {encodeCommand} from '../../src/protocol/wire.js'
import {ReplayCache} from '../../src/runtime/replay-cache.js'
import {startNodeServer} from '../../src/runtime/serve.js'
import {allowAddress} from '../../src/runtime/server-allowlist.js'
import {RawClient, rejectionFor, replyFor} from './raw-client.js'

/**
 * A command check()ed while the replay cache is compacting its file (rewrite: temp, fsync, rename)
 * must still be on disk once durable() resolves: else it runs, and is accepted again after a restart.
 * The rewrite is held at its rename (a gate on fs.rename), so the command lands in the middle of it.
 */
const gate = vi.hoisted(() => ({held: undefined as Promise<void> | undefined, reached: 0, fail: false}))
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>()
  const rename: typeof actual.rename = async (from, to) => {
    if (gate.fail && String(from).endsWith('replay.log.tmp')) throw Object.assign(new Error('EIO (test)'), {code: 'EIO'})
    if (gate.held && String(from).endsWith('replay.log.tmp')) {
      gate.reached++
      await gate.held
    }
    return actual.rename(from, to)
  }
  return {...actual, rename, default: {...actual, rename}}
})

const dirs: string[] = []
afterAll(async () => Promise.all(dirs.map((d) => rm(d, {recursive: true, force: true}))))
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'r1-replay-compact-'))
  dirs.push(dir)
  return dir
}

const hashOf = (i: number) => i.toString(16).padStart(64, '0')
/** `count` lines from a filler sender, live until `expires`. */
const filler = (count: number, expires: number) => Array.from({length: count}, (_, i) => `${hashOf(i + 1)} ${expires} 0xai_filler\n`).join('')

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(condition()).toBe(true)
}

function hold(): () => void {
  let release!: () => void
  gate.held = new Promise<void>((resolve) => (release = resolve))
  gate.reached = 0
  return () => {
    gate.held = undefined
    release()
  }
}

describe('replay cache compaction', () => {
  it('a hash checked while the file is being rewritten is in the new file once durable() resolves', async () => {
    const path = join(await tempDir(), 'replay.log')
    let now = 1_000
    await writeFile(path, filler(1500, 5_000))
    const cache = await ReplayCache.open({path, now: () => now})
    expect(cache.size).toBe(1500)
    now = 10_000 // every filler line has expired: the housekeeping pass compacts
    const release = hold()
    cache.expire()
    await until(() => gate.reached === 1) // the rewrite took its snapshot and waits at its rename
    const fresh = 'f'.repeat(64)
    expect(cache.check('0xai_sender', fresh, 60_000)).toBe('fresh')
    const durable = cache.durable()
    release()
    await durable
    const reopened = await ReplayCache.open({path, now: () => now})
    expect(reopened.check('0xai_sender', fresh, 60_000)).toBe('replay')
    expect(reopened.size).toBe(1)
    await reopened.close()
    await cache.close()
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(1)
  })

  it('a hash checked just before the rewrite starts is written by it', async () => {
    const path = join(await tempDir(), 'replay.log')
    let now = 1_000
    await writeFile(path, filler(1500, 5_000))
    const cache = await ReplayCache.open({path, now: () => now})
    now = 10_000
    cache.expire() // the rewrite is scheduled, not yet started
    expect(cache.check('0xai_sender', 'e'.repeat(64), 60_000)).toBe('fresh')
    await cache.durable()
    await cache.close()
    const reopened = await ReplayCache.open({path, now: () => now})
    expect(reopened.check('0xai_sender', 'e'.repeat(64), 60_000)).toBe('replay')
    await reopened.close()
  })

  it('a rewrite that fails leaves what it took queued: the next durable() appends it to the old file', async () => {
    const path = join(await tempDir(), 'replay.log')
    let now = 1_000
    await writeFile(path, filler(1500, 5_000))
    const cache = await ReplayCache.open({path, now: () => now})
    now = 10_000
    expect(cache.check('0xai_sender', 'd'.repeat(64), 60_000)).toBe('fresh')
    gate.fail = true
    try {
      cache.expire() // takes the queued hash, then fails at its rename
      await cache.durable()
    } finally {
      gate.fail = false
    }
    await cache.close()
    const reopened = await ReplayCache.open({path, now: () => now})
    expect(reopened.check('0xai_sender', 'd'.repeat(64), 60_000)).toBe('replay')
    await reopened.close()
  })

  it('end to end: a command that arrived during compaction is REPLAY after the node restarts', async () => {
    const dataDir = await tempDir()
    const client = generateIdentity()
    await allowAddress(dataDir, client.address)
    await writeFile(join(dataDir, 'replay.log'), filler(1500, Date.now() + 60_000))
    let offset = 0
    let node = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, log: () => undefined, server: {now: () => Date.now() + offset}})
    let raw: RawClient | undefined
    try {
      raw = await RawClient.connect(node.url, node.address)
      offset = 2 * 60_000 // the filler has expired; a command's TIME is still within the 5 min skew
      const release = hold()
      node.server.expire()
      await until(() => gate.reached === 1)
      const command = encodeCommand({ACTION: 'R1_STATE', PAYLOAD: null, EE_DEST: node.address, INITIATOR_ID: 'compact', SESSION_ID: 's', TIME: formatTime()}, client)
      raw.send(command.text)
      await until(() => node.server.replay.countFor(client.address) === 1) // admitted, waiting for durable()
      release()
      expect((await raw.waitFor((i) => replyFor(command.hash)(i) || rejectionFor(command.hash)(i))).EE_EVENT_TYPE).toBe('R1_REPLY')
      raw.close()
      await node.stop()

      node = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, log: () => undefined})
      raw = await RawClient.connect(node.url, node.address)
      raw.send(command.text)
      const again = await raw.waitFor((i) => replyFor(command.hash)(i) || rejectionFor(command.hash)(i))
      expect((again as Rejection).REASON).toBe('REPLAY')
    } finally {
      gate.held = undefined
      raw?.close()
      await node.stop()
    }
  })
})
