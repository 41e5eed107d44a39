// `r1 logs` end to end: the built CLI against real `r1 node start` processes, through a TCP proxy
// that can cut or silently stall connections; every check is by sequence numbers against the
// node's own journal.
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {freePort} from '../../bench/servers.js'
import {canonicalJson} from '../../src/protocol/canonical.js'
import type {Identity} from '../../src/protocol/identity.js'
import {startNodeServer} from '../../src/runtime/serve.js'
import {allowAddress} from '../../src/runtime/server-allowlist.js'
import {cliIdentity, r1, tempRoot} from '../deploy/nodes.js'
import {type LogLine, LogsProc, type NodeProc, TcpProxy, cliKeyIdentity, deployEmitter, journalSeqs, spawnNode} from '../logs/helpers.js'

const root = tempRoot('r1-e2e-logs-')
let env: Record<string, string>
let identity: Identity
let cliAddress: string
let a: NodeProc
const started: Array<{stop(): Promise<void>}> = []
const logs: LogsProc[] = []

function follow(args: string[]): LogsProc {
  const proc = new LogsProc(args, env)
  logs.push(proc)
  return proc
}
/** Seqs printed for a target are exactly the node journal's, from its first one, each once and in order. */
async function expectExactlyOnce(printed: number[], dataDir: string): Promise<void> {
  const journal = await journalSeqs(dataDir)
  expect(printed.length).toBeGreaterThan(0)
  expect(new Set(printed).size).toBe(printed.length)
  expect(printed).toEqual(journal.seqs.slice(0, printed.length))
}

beforeAll(async () => {
  const cli = await cliIdentity(root.dir)
  env = cli.env
  cliAddress = cli.address
  identity = await cliKeyIdentity(env)
  a = await spawnNode({dataDir: join(root.dir, 'node-a'), port: await freePort(), alias: 'edge-a', allow: [cliAddress]})
  started.push(a)
  await deployEmitter(a, identity)
}, 120_000)

afterAll(async () => {
  await Promise.all(logs.map((l) => l.interrupt()))
  await Promise.all(started.map((n) => n.stop()))
  root.dispose()
})

describe.sequential('r1 logs against real nodes', () => {
  it('prints the last N events as NDJSON, filtered on the node, and exits 0 at the end of history', async () => {
    const run = await r1(['logs', '--node', a.url, '--address', a.address, '--json', '--tail', '5', '--type', 'payload'], {env})
    expect(run.exitCode, run.stderr).toBe(0)
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogLine)
    expect(lines).toHaveLength(5)
    expect(lines.every((l) => l.EE_EVENT_TYPE === 'PAYLOAD' && l.R1_TARGET === new URL(a.url).host)).toBe(true)
    const seqs = lines.map((l) => (l as {EE_MESSAGE_SEQ: number}).EE_MESSAGE_SEQ)
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    // each line is the node's canonical JSON of the event, labelled with its target
    for (const line of run.stdout.trim().split('\n')) {
      const {R1_TARGET: _target, ...event} = JSON.parse(line) as LogLine
      expect(line).toBe(canonicalJson(event).slice(0, -1) + `,"R1_TARGET":${JSON.stringify(new URL(a.url).host)}}`)
    }

    const notes = await r1(['logs', '--node', a.url, '--address', a.address, '--json', '--since', '1h', '--type', 'notification'], {env})
    expect(notes.exitCode, notes.stderr).toBe(0)
    const kinds = notes.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogLine)
    expect(kinds.length).toBeGreaterThan(0)
    expect(kinds.every((l) => l.EE_EVENT_TYPE === 'NOTIFICATION')).toBe(true)
  })

  it('prints pretty lines with path and payload, and refuses bad flags with exit 2', async () => {
    const pretty = await r1(['logs', '--node', a.url, '--address', a.address, '--tail', '3', '--pipeline', 'ticks'], {env})
    expect(pretty.exitCode, pretty.stderr).toBe(0)
    const lines = pretty.stdout.trim().split('\n')
    expect(lines, pretty.stdout).toHaveLength(3)
    for (const line of lines) expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ticks\/CUSTOM_EXEC_01\/ticks-1 .*EXEC_RESULT=\{"TICK":\d+\}/)

    const since = await r1(['logs', '--node', a.url, '--address', a.address, '--since', 'yesterday'], {env})
    expect(since.exitCode).toBe(2)
    expect(since.stderr).toMatch(/--since "yesterday"/)
    const rate = await r1(['logs', '--node', a.url, '--address', a.address, '--sampling-rate', '2'], {env})
    expect(rate.exitCode).toBe(2)
    expect(rate.stderr).toMatch(/--sampling-rate/)
  })

  it('survives a cut connection, a silently dead one and a kill -9 restart of the node: every event exactly once, exit 0 on Ctrl-C', async () => {
    const proxy = await TcpProxy.start(a.port)
    started.push({stop: () => proxy.close()})
    const tail = follow(['--node', proxy.url, '--address', a.address, '--follow', '--json', '--since', '0', '--keepalive', '1'])
    const grow = async (by: number, what: string) => {
      const target = tail.lines.length + by
      await tail.until(() => tail.lines.length >= target, what, 60_000)
    }
    await grow(40, 'the first events')

    proxy.dropAll() // network failure: connection reset
    await tail.until(() => proxy.accepted >= 2, 'a reconnect after the reset', 60_000)
    await grow(40, 'events after a reset connection')
    const acceptedBeforeStall = proxy.accepted

    expect(proxy.stallAll()).toBeGreaterThan(0) // dead network: only the keepalive can tell
    await tail.until(() => proxy.accepted > acceptedBeforeStall, 'a reconnect after the keepalive gave up', 60_000)
    await grow(40, 'events after a stalled connection')

    await a.kill9()
    a = await spawnNode({dataDir: a.dataDir, port: a.port, alias: 'edge-a', allow: []})
    started.push(a)
    await grow(40, 'events from the restarted node')

    expect(await tail.interrupt()).toBe(0)
    expect(tail.lines.some((l) => l.EE_EVENT_TYPE === 'R1_GAP')).toBe(false)
    await a.stop()
    await expectExactlyOnce(tail.seqs(), a.dataDir)
    a = await spawnNode({dataDir: a.dataDir, port: a.port, alias: 'edge-a', allow: []})
    started.push(a)
  })

  it('tells a follower the node\'s journal was wiped (a reset gap), then streams the new one from seq 1, each event once', async () => {
    const dataDir = join(root.dir, 'node-wiped')
    let node = await spawnNode({dataDir, port: await freePort(), alias: 'edge-w', allow: [cliAddress]})
    started.push(node)
    await deployEmitter(node, identity)
    const tail = follow(['--node', node.url, '--address', node.address, '--follow', '--json', '--since', '0', '--keepalive', '1'])
    await tail.until(() => tail.seqs().length >= 30, 'events from the first journal', 60_000)
    await node.stop()
    const before = await journalSeqs(dataDir)
    // The journal is gone (a wiped or restored data dir); the node key and its pipelines stay.
    rmSync(join(dataDir, 'journal'), {recursive: true, force: true})
    node = await spawnNode({dataDir, port: node.port, alias: 'edge-w', allow: []})
    started.push(node)
    await tail.until(() => tail.lines.some((l) => l.EE_EVENT_TYPE === 'R1_GAP'), 'the reset gap', 60_000)
    const resetAt = tail.lines.findIndex((l) => l.EE_EVENT_TYPE === 'R1_GAP')
    await tail.until(() => tail.lines.length >= resetAt + 30, 'events from the new journal', 60_000)
    expect(await tail.interrupt()).toBe(0)
    await node.stop()

    const seqsOf = (lines: LogLine[]) => lines.map((l) => (l as {EE_MESSAGE_SEQ: number}).EE_MESSAGE_SEQ)
    const old = seqsOf(tail.lines.slice(0, resetAt))
    // the old journal's events up to the stop, once (its last few may not have left the node before it stopped)
    expect(old).toEqual(before.seqs.slice(0, old.length))
    expect(tail.lines[resetAt]).toMatchObject({EE_EVENT_TYPE: 'R1_GAP', REASON: 'reset', FROM_SEQ: old.at(-1)! + 1, TO_SEQ: 0})
    const after = seqsOf(tail.lines.slice(resetAt + 1))
    expect(tail.lines.slice(resetAt + 1).every((l) => l.EE_EVENT_TYPE !== 'R1_GAP')).toBe(true)
    const now = await journalSeqs(dataDir)
    expect(now.seqs[0]).toBe(1)
    expect(after).toEqual(now.seqs.slice(0, after.length))
  })

  it('merges several nodes from config.yaml targets, labels them, and retries one that is down at start', async () => {
    const portB = await freePort()
    const bDir = join(root.dir, 'node-b')
    // Learn B's address (its key is made on first start), then take it down before following.
    const probe = await spawnNode({dataDir: bDir, port: portB, alias: 'edge-b', allow: [cliAddress]})
    await probe.stop()
    const project = join(root.dir, 'project')
    mkdirSync(project, {recursive: true})
    writeFileSync(
      join(project, 'config.yaml'),
      `name: logs-e2e\nversion: 0.1.0\nplugins: {}\npipelines: {}\ntargets:\n  edge-a: { url: "${a.url}", address: "${a.address}" }\n  edge-b: { url: "${probe.url}", address: "${probe.address}" }\n`,
    )
    const tail = follow(['--dir', project, '--all', '--follow', '--json', '--since', '0', '--keepalive', '1'])
    await tail.until(() => /edge-b: .*retrying/.test(tail.stderr), 'edge-b reported as down')
    await tail.until(() => tail.seqs('edge-a').length >= 30, 'edge-a streaming while edge-b is down')
    const b = await spawnNode({dataDir: bDir, port: portB, alias: 'edge-b', allow: []})
    started.push(b)
    await deployEmitter(b, identity)
    await tail.until(() => tail.lines.filter((l) => l.R1_TARGET === 'edge-b' && l.EE_EVENT_TYPE === 'PAYLOAD').length >= 30, 'edge-b payloads once it is up', 60_000)
    expect(await tail.interrupt()).toBe(0)
    expect(new Set(tail.lines.map((l) => l.R1_TARGET))).toEqual(new Set(['edge-a', 'edge-b']))
    expect(tail.lines.filter((l) => l.R1_TARGET === 'edge-b').every((l) => (l as {EE_PAYLOAD_PATH: string[]}).EE_PAYLOAD_PATH[0] === 'edge-b')).toBe(true)

    const pretty = await r1(['logs', '--dir', project, '--all', '--tail', '2', '--type', 'payload'], {env})
    expect(pretty.exitCode, pretty.stderr).toBe(0)
    const labels = pretty.stdout.trim().split('\n').map((l) => l.split(' ')[1])
    expect(labels.sort(), `stdout: ${pretty.stdout}\nstderr: ${pretty.stderr}`).toEqual(['edge-a', 'edge-a', 'edge-b', 'edge-b'])

    await Promise.all([a.stop(), b.stop()])
    await expectExactlyOnce(tail.seqs('edge-a'), a.dataDir)
    await expectExactlyOnce(tail.seqs('edge-b'), bDir)
    a = await spawnNode({dataDir: a.dataDir, port: a.port, alias: 'edge-a', allow: []})
    started.push(a)
  })

  it('reports the range a node no longer holds as a gap, in NDJSON and in pretty output', async () => {
    const dataDir = join(root.dir, 'node-small')
    await allowAddress(dataDir, cliAddress)
    const small = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, log: () => undefined, journal: {segmentBytes: 16 * 1024, maxBytes: 48 * 1024}})
    started.push(small)
    for (let i = 0; i < 1500; i++) small.core.heartbeat()
    small.journal.flush()
    const first = small.journal.firstSeq()
    const last = small.journal.lastSeq()
    expect(first).toBeGreaterThan(1)
    const run = await r1(['logs', '--node', small.url, '--address', small.address, '--json', '--since', '0'], {env})
    expect(run.exitCode, run.stderr).toBe(0)
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogLine)
    expect(lines[0]).toMatchObject({EE_EVENT_TYPE: 'R1_GAP', FROM_SEQ: 1, TO_SEQ: first - 1, REASON: 'retention'})
    expect(lines.slice(1).map((l) => (l as {EE_MESSAGE_SEQ: number}).EE_MESSAGE_SEQ)).toEqual(Array.from({length: last - first + 1}, (_, i) => first + i))
    const pretty = await r1(['logs', '--node', small.url, '--address', small.address, '--since', '0', '--type', 'payload'], {env})
    expect(pretty.exitCode, pretty.stderr).toBe(0)
    expect(pretty.stdout.trim()).toBe(`⚠ gap: events 1..${first - 1} are no longer in the node's journal (retention)`)
    await small.stop()
  })

  it('stops quietly with exit 0 when its reader goes away (| head)', async () => {
    const {execa} = await import('execa')
    const {bin} = await import('../deploy/nodes.js')
    const run = await execa('bash', ['-c', `"${process.execPath}" "${bin}" logs --node ${a.url} --address ${a.address} --follow --json | head -n 3; echo "status \${PIPESTATUS[0]}" >&2`], {
      env: {...process.env, NO_COLOR: '1', ...env},
      reject: false,
      timeout: 60_000,
    })
    expect(run.stdout.trim().split('\n')).toHaveLength(3)
    expect(run.stderr).toMatch(/status 0/)
    expect(run.stderr).not.toMatch(/EPIPE|Error/)
  })

  it('exits 7 without --follow when the only node is down, naming it on stderr', async () => {
    const port = await freePort()
    const run = await r1(['logs', '--node', `ws://127.0.0.1:${port}`, '--address', a.address, '--json'], {env})
    expect(run.exitCode).toBe(7)
    expect(run.stdout).toBe('')
    expect(run.stderr).toMatch(new RegExp(`127.0.0.1:${port}`))
  })
})
