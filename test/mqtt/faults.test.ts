// Faults through a broker, with the built CLI and real node processes: the broker restarted
// mid-deploy, a node offline when a deploy is sent, `r1 logs --follow` across a broker restart and a
// node's kill -9 (checked by seq against the node's journal).
import {cpSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {startEmbeddedBroker, type TestBroker} from '../broker/helpers.js'
import {type NodeProcess, bin, cliIdentity, r1, repoRoot, startNode, tempRoot} from '../deploy/nodes.js'
import {LogsProc, cliKeyIdentity, deployEmitter, journalSeqs} from '../logs/helpers.js'

const root = tempRoot('r1-mqtt-faults-')
const project = join(root.dir, 'project')
let broker: TestBroker
let env: Record<string, string>
let cliAddress: string
const nodes: Record<string, NodeProcess> = {}
const logs: LogsProc[] = []

const nodeArgs = () => ['--broker', broker.url, '--heartbeat-interval', '1']
const start = async (name: string) => (nodes[name] = await startNode({dataDir: join(root.dir, name), allow: [cliAddress], extraArgs: [...nodeArgs(), '--alias', name], env}))

function writeTargets(names: string[]): void {
  const base = readFileSync(join(repoRoot, 'test/fixtures/projects/basic/config.yaml'), 'utf8')
  const targets = names.map((n) => `  ${n}: { address: "${nodes[n]!.address}", broker: local }`).join('\n')
  writeFileSync(join(project, 'config.yaml'), `${base}brokers:\n  local: { url: "${broker.url}" }\ntargets:\n${targets}\n`)
}

beforeAll(async () => {
  broker = await startEmbeddedBroker()
  const cli = await cliIdentity(root.dir)
  env = cli.env
  cliAddress = cli.address
  await Promise.all(['a', 'b', 'c'].map(start))
  cpSync(join(repoRoot, 'test/fixtures/projects/basic'), project, {recursive: true})
}, 120_000)

afterAll(async () => {
  await Promise.all(logs.map((l) => l.interrupt()))
  await Promise.all(Object.values(nodes).map((n) => n.stop()))
  await broker?.stop()
  root.dispose()
})

describe.sequential('faults through a broker', () => {
  it('a broker restarted mid-deploy: every target is confirmed, never hung; nodes and clients reconnect', async () => {
    writeTargets(['a', 'b'])
    const deploy = execa(process.execPath, [bin, 'deploy', '--dir', project, '--all', '--json', '--wait-timeout', '20'], {env: {NO_COLOR: '1', CI: '1', ...env}, reject: false, stdin: 'ignore', timeout: 90_000})
    await new Promise((r) => setTimeout(r, 1200))
    await broker.restart()
    const result = await deploy
    expect(result.timedOut).toBe(false)
    const json = JSON.parse(result.stdout)
    // what the restart lost is sent again once the client and the node are back: every target is confirmed
    expect(json.targets.map((t: {status: string}) => t.status)).toEqual(['deployed', 'deployed'])
    expect(result.exitCode, result.stderr).toBe(0)
    // the nodes came back by themselves; a new deploy confirms on both
    const again = await r1(['deploy', '--dir', project, '--all', '--json'], {env, timeoutMs: 90_000})
    expect(again.exitCode, again.stderr + again.stdout).toBe(0)
  })

  it('a node offline when a deploy is sent is unreachable (7), and the deploy is not applied when it comes back', async () => {
    writeTargets(['c'])
    await nodes.c!.stop()
    const offline = await r1(['deploy', '--dir', project, '--target', 'c', '--connect-timeout', '2', '--json'], {env})
    expect(offline.exitCode).toBe(7)
    expect(offline.json.targets[0].status).toBe('unreachable')
    await start('c')
    await new Promise((r) => setTimeout(r, 2000))
    const status = await r1(['status', '--dir', project, '--target', 'c', '--json'], {env})
    expect(status.exitCode, status.stderr).toBe(0)
    expect(status.json.targets[0].result.pipelines).toEqual([])
  })

  it('r1 logs --follow across a broker restart and a kill -9 of the node: every event exactly once', async () => {
    const identity = await cliKeyIdentity(env)
    const a = nodes.a!
    await deployEmitter(a, identity, 'ticks', 0.05)
    const tail = new LogsProc(['--broker', broker.url, '--address', a.address, '--follow', '--json', '--since', '0', '--keepalive', '1'], env)
    logs.push(tail)
    const grow = async (by: number, what: string) => {
      const target = tail.lines.length + by
      await tail.until(() => tail.lines.length >= target, what, 60_000)
    }
    await grow(40, 'the first events')
    await broker.restart()
    await grow(40, 'events after the broker restart')
    a.child.kill('SIGKILL')
    await new Promise((resolve) => a.child.once('exit', resolve))
    const restarted = await startNode({dataDir: a.dataDir, extraArgs: [...nodeArgs(), '--alias', 'a'], env})
    nodes.a = restarted
    await grow(40, 'events from the restarted node')
    expect(await tail.interrupt()).toBe(0)
    expect(tail.lines.some((l) => l.EE_EVENT_TYPE === 'R1_GAP')).toBe(false)
    await restarted.stop()
    const printed = tail.seqs()
    const journal = await journalSeqs(a.dataDir)
    expect(new Set(printed).size).toBe(printed.length)
    expect(printed).toEqual(journal.seqs.slice(0, printed.length))
  })
})
