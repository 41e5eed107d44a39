import {PassThrough} from 'node:stream'
import {afterEach, describe, expect, it} from 'vitest'
import {freePort} from '../../bench/servers.js'
import {ExitCode, R1Error} from '../../src/errors.js'
import type {NodeEvent} from '../../src/protocol/events.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {disallowAddress} from '../../src/runtime/server-allowlist.js'
import {type FollowEntry, type FollowNotice, LineSink, followNodes, parseSince, sampled} from '../../src/session/follow.js'
import {startTestNode, type TestNode} from '../server/helpers.js'

const nodes: TestNode[] = []
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.dispose()
})
async function node(options: Parameters<typeof startTestNode>[0] = {}): Promise<TestNode> {
  const t = await startTestNode(options)
  nodes.push(t)
  return t
}
function heartbeats(t: TestNode, n: number): number[] {
  return Array.from({length: n}, () => t.node.core.heartbeat().EE_MESSAGE_SEQ)
}
const seqOf = (e: FollowEntry) => (e.EE_EVENT_TYPE === 'R1_GAP' ? `gap:${e.FROM_SEQ}-${e.TO_SEQ}` : (e as NodeEvent).EE_MESSAGE_SEQ)

describe('parseSince', () => {
  const now = Date.parse('2026-01-31T12:00:00Z')
  it('reads a seq, a duration back from now, or a time', () => {
    expect(parseSince('1200', now)).toEqual({seq: 1200})
    expect(parseSince('0', now)).toEqual({seq: 0})
    expect(parseSince('90s', now)).toEqual({time: now - 90_000})
    expect(parseSince('1h30m', now)).toEqual({time: now - 5_400_000})
    expect(parseSince('2d', now)).toEqual({time: now - 2 * 86_400_000})
    expect(parseSince('250ms', now)).toEqual({time: now - 250})
    expect(parseSince('2026-01-31T11:00:00Z', now)).toEqual({time: Date.parse('2026-01-31T11:00:00Z')})
    expect(parseSince('2026-01-31 11:00', now)).toEqual({time: Date.parse('2026-01-31T11:00')})
  })
  it('refuses anything else with a usage error that shows the forms', () => {
    for (const bad of ['yesterday', '5 minutes', '-3', '1.5', '5x', '']) {
      let error: unknown
      try {
        parseSince(bad, now)
      } catch (e) {
        error = e
      }
      expect(error, bad).toBeInstanceOf(R1Error)
      expect((error as R1Error).exitCode).toBe(ExitCode.USAGE)
      expect((error as R1Error).hint).toMatch(/90s, 5m/)
    }
  })
})

describe('sampled', () => {
  it('keeps about the asked fraction, always the same seqs', () => {
    const kept = Array.from({length: 10_000}, (_, i) => i + 1).filter((seq) => sampled(seq, 0.1))
    expect(kept.length).toBeGreaterThan(800)
    expect(kept.length).toBeLessThan(1200)
    expect(kept.every((seq) => sampled(seq, 0.1))).toBe(true)
    expect(sampled(12345, 1)).toBe(true)
  })
})

describe('LineSink', () => {
  it('batches lines into few writes, in order, and waits for a full stream to drain', async () => {
    const stream = new PassThrough({highWaterMark: 1024})
    let writes = 0
    const original = stream.write.bind(stream)
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      writes++
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest)
    }) as typeof stream.write
    const sink = new LineSink(stream, () => undefined, 4096)
    const lines = Array.from({length: 1000}, (_, i) => `line ${i}\n`)
    let paused = 0
    const reading = (async () => {
      let text = ''
      for await (const chunk of stream) text += chunk
      return text
    })()
    for (const line of lines) {
      const wait = sink.write(line)
      if (wait) {
        paused++
        await wait
      }
    }
    await sink.end()
    stream.end()
    expect(await reading).toBe(lines.join(''))
    expect(writes).toBeLessThan(lines.length / 10)
    expect(paused).toBeGreaterThan(0)
  })

  it('stops quietly when the reader goes away (EPIPE)', () => {
    const stream = new PassThrough()
    let closed = 0
    const sink = new LineSink(stream, () => closed++)
    stream.emit('error', Object.assign(new Error('write EPIPE'), {code: 'EPIPE'}))
    expect(closed).toBe(1)
    expect(sink.write('after\n')).toBeUndefined()
  })

  it('releases a writer waiting for drain when the reader goes away', async () => {
    const stream = new PassThrough({highWaterMark: 16})
    const sink = new LineSink(stream, () => undefined, 8)
    const waiting = sink.write('a line longer than the high-water mark\n')
    expect(waiting).toBeInstanceOf(Promise)
    stream.emit('error', Object.assign(new Error('write EPIPE'), {code: 'EPIPE'}))
    await waiting
  })
})

describe('followNodes', () => {
  it('replays history (tail, since seq, since time) and stops at the end of it without --follow', async () => {
    const t = await node()
    const seqs = heartbeats(t, 30)
    const target = {name: 'edge-a', url: t.node.url, address: t.node.address}
    const run = async (extra: Partial<Parameters<typeof followNodes>[0]>) => {
      const got: FollowEntry[] = []
      const result = await followNodes({targets: [target], identity: t.client, follow: false, ...extra}, {onEntry: (_, e) => void got.push(e)})
      return {result, seqs: got.map(seqOf)}
    }
    expect((await run({tail: 5})).seqs).toEqual(seqs.slice(-5))
    expect((await run({since: {seq: seqs[20]!}})).seqs).toEqual(seqs.slice(21))
    expect((await run({since: {time: Date.now() - 3_600_000}})).seqs).toEqual(seqs)
    expect((await run({since: {time: Date.now() + 3_600_000}})).seqs).toEqual([])
    const none = await run({filter: {TYPES: ['PAYLOAD']}, since: {seq: 0}})
    expect(none.seqs).toEqual([])
    expect(none.result).toMatchObject({ok: true, exitCode: 0, targets: [{target: 'edge-a', status: 'ok', events: 0}]})
  })

  it('without --follow prints exactly the last N the node held when asked, even while events keep coming', async () => {
    const t = await node()
    heartbeats(t, 50)
    const emitting = setInterval(() => heartbeats(t, 20), 1)
    try {
      for (let round = 0; round < 5; round++) {
        const got: FollowEntry[] = []
        const result = await followNodes({targets: [{name: 'n', url: t.node.url, address: t.node.address}], identity: t.client, follow: false, tail: 7}, {onEntry: (_, e) => void got.push(e)})
        expect(result.ok).toBe(true)
        const seqs = got.map(seqOf) as number[]
        expect(seqs).toHaveLength(7)
        expect(seqs).toEqual(Array.from({length: 7}, (_, i) => seqs[0]! + i))
      }
    } finally {
      clearInterval(emitting)
    }
  })

  it('samples payloads by seq with --sampling-rate, and lets every other event through', async () => {
    const t = await node()
    const session = await t.connect()
    const code = 'for (let i = 0; i < 400; i++) plugin.emit({I: i}); return null'
    await session.send('UPDATE_CONFIG', {NAME: 'burst', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'b', PROCESS_DELAY: 3600, CODE: code}]}]}, {expect: [{code: 1}]})
    const payloads = async () => {
      const got: FollowEntry[] = []
      await followNodes({targets: [{name: 'n', url: t.node.url, address: t.node.address}], identity: t.client, follow: false, since: {seq: 0}}, {onEntry: (_, e) => void got.push(e)})
      return got
    }
    while ((await payloads()).filter((e) => e.EE_EVENT_TYPE === 'PAYLOAD').length < 400) await new Promise((r) => setTimeout(r, 100))
    const all = await payloads()
    const got: FollowEntry[] = []
    await followNodes({targets: [{name: 'n', url: t.node.url, address: t.node.address}], identity: t.client, follow: false, since: {seq: 0}, samplingRate: 0.25}, {onEntry: (_, e) => void got.push(e)})
    const kept = got.filter((e) => e.EE_EVENT_TYPE === 'PAYLOAD').map(seqOf)
    const expected = all.filter((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && sampled((e as NodeEvent).EE_MESSAGE_SEQ, 0.25)).map(seqOf)
    expect(kept).toEqual(expected)
    expect(kept.length).toBeGreaterThan(50)
    expect(kept.length).toBeLessThan(150)
    expect(got.filter((e) => e.EE_EVENT_TYPE !== 'PAYLOAD').map(seqOf)).toEqual(all.filter((e) => e.EE_EVENT_TYPE !== 'PAYLOAD').map(seqOf))
  })

  it('follows several nodes, labels each entry, retries a node that is down at start, and ends on the signal', async () => {
    const a = await node()
    const portB = await freePort()
    const identity = a.client
    const stop = new AbortController()
    const got = new Map<string, FollowEntry[]>([['a', []], ['b', []]])
    const notices: Array<[string, FollowNotice['kind']]> = []
    let onChange = () => undefined as void
    const targetB = {name: 'b', url: `ws://127.0.0.1:${portB}`, address: 'pending'}
    // B's address is its key's: start it once to learn it, stop it, then follow while it is down.
    const bDataDir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/r1-follow-b-`)
    const {allowAddress} = await import('../../src/runtime/server-allowlist.js')
    await allowAddress(bDataDir, identity.address)
    const probe = await startTestNode({dataDir: bDataDir, port: portB})
    targetB.address = probe.node.address
    await probe.node.stop()

    const following = followNodes(
      {targets: [{name: 'a', url: a.node.url, address: a.node.address}, targetB], identity, follow: true, since: {seq: 0}, signal: stop.signal, retry: {initialDelayMs: 50, maxDelayMs: 200}},
      {
        onEntry: (target, entry) => {
          got.get(target.name)!.push(entry)
          onChange()
        },
        onNotice: (target, notice) => {
          notices.push([target.name, notice.kind])
          onChange()
        },
      },
    )
    const until = async (predicate: () => boolean) => {
      while (!predicate()) await new Promise<void>((resolve) => (onChange = resolve))
    }
    const seqsA = heartbeats(a, 20)
    await until(() => got.get('a')!.length >= 20 && notices.some(([n, k]) => n === 'b' && k === 'unreachable'))
    const b = await startTestNode({dataDir: bDataDir, port: portB})
    nodes.push(b)
    const seqsB = heartbeats(b, 15)
    await until(() => got.get('b')!.length >= seqsB.length)
    const moreA = heartbeats(a, 5)
    await until(() => got.get('a')!.length >= 25)
    stop.abort()
    const result = await following
    expect(result.exitCode).toBe(ExitCode.OK)
    expect(result.targets.map((t) => t.status)).toEqual(['interrupted', 'interrupted'])
    expect(got.get('a')!.map(seqOf)).toEqual([...seqsA, ...moreA])
    // B's journal holds its first run's events too (it was started once to learn its address).
    expect(got.get('b')!.map(seqOf).slice(-seqsB.length)).toEqual(seqsB)
    const bSeqs = got.get('b')!.map(seqOf) as number[]
    expect(bSeqs).toEqual([...bSeqs].sort((x, y) => x - y))
    expect(notices).toContainEqual(['b', 'connected'])
    expect(notices).toContainEqual(['a', 'live'])
  })

  it('resumes after dropped connections and shows every event exactly once', async () => {
    const t = await node()
    const stop = new AbortController()
    const got: FollowEntry[] = []
    let onChange = () => undefined as void
    const following = followNodes(
      {
        targets: [{name: 'n', url: t.node.url, address: t.node.address}],
        identity: t.client,
        follow: true,
        signal: stop.signal,
        session: {reconnect: {initialDelayMs: 20, maxDelayMs: 100}},
      },
      {
        onEntry: (_, e) => {
          got.push(e)
          onChange()
        },
        onNotice: () => onChange(),
      },
    )
    const until = async (n: number) => {
      while (got.length < n) await new Promise<void>((resolve) => (onChange = resolve))
    }
    // Drop every client connection from the node's side, several times, while events keep coming.
    const expected: number[] = []
    let terminated = 0
    await new Promise((r) => setTimeout(r, 200))
    for (let round = 0; round < 4; round++) {
      expected.push(...heartbeats(t, 50))
      await new Promise((r) => setImmediate(r))
      for (const ws of (t.node.server as unknown as {wss: {clients: Set<{terminate(): void}>}}).wss.clients) {
        ws.terminate()
        terminated++
      }
      expected.push(...heartbeats(t, 50))
      await until(expected.length)
    }
    stop.abort()
    await following
    expect(terminated).toBeGreaterThanOrEqual(4)
    expect(got.map(seqOf)).toEqual(expected)
  })

  it('ends a live follow with exit 4 once its key is taken off the node\'s allow-list, and the node streams to it no more', async () => {
    const t = await node({pingIntervalMs: 200})
    const got: FollowEntry[] = []
    const notices: FollowNotice[] = []
    const following = followNodes(
      {targets: [{name: 'n', url: t.node.url, address: t.node.address}], identity: t.client, follow: true, since: {seq: 0}},
      {onEntry: (_target, entry) => void got.push(entry), onNotice: (_target, notice) => void notices.push(notice)},
    )
    heartbeats(t, 5)
    while (got.length < 5) await new Promise((r) => setTimeout(r, 20))
    await disallowAddress(t.dataDir, t.client.address) // what `r1 node disallow` does
    const result = await following
    expect(result).toMatchObject({ok: false, exitCode: ExitCode.REJECTED, targets: [{status: 'rejected', events: 5}]})
    expect(result.targets[0]!.error).toMatch(/removed from this node's allow-list/)
    expect(notices.filter((n) => n.kind === 'connected')).toHaveLength(1) // it did not retry
    heartbeats(t, 3)
    expect(got.map(seqOf)).toEqual([1, 2, 3, 4, 5])
  })

  it('reports a node that refuses the key (exit 4), a wrong address (identity mismatch, exit 4) and a node down (exit 7) without retrying forever', async () => {
    const t = await node()
    const stranger = generateIdentity()
    const refused = await followNodes({targets: [{name: 'n', url: t.node.url, address: t.node.address}], identity: stranger, follow: true, since: {seq: 0}}, {onEntry: () => undefined})
    expect(refused).toMatchObject({ok: false, exitCode: ExitCode.REJECTED, targets: [{status: 'rejected'}]})
    expect(refused.targets[0]!.error).toMatch(/NOT_ALLOWED|allow/i)
    const wrong = await followNodes({targets: [{name: 'n', url: t.node.url, address: generateIdentity().address}], identity: t.client, follow: true}, {onEntry: () => undefined})
    expect(wrong).toMatchObject({ok: false, exitCode: ExitCode.REJECTED})
    expect(wrong.targets[0]!.error).toMatch(/expected .* got/i)
    const port = await freePort()
    const down = await followNodes({targets: [{name: 'n', url: `ws://127.0.0.1:${port}`, address: t.node.address}], identity: t.client, follow: false}, {onEntry: () => undefined})
    expect(down).toMatchObject({ok: false, exitCode: ExitCode.UNREACHABLE, targets: [{status: 'unreachable'}]})
  })
})
