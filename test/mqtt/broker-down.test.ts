// A broker that cannot be reached: every target of a fleet command says so (the broker, and why), not that
// its node was silent; and the targets that come after the first ones are told at once, from the failure
// just seen, instead of each dialling the broker and waiting out a connect timeout of its own.
import {mkdirSync, writeFileSync} from 'node:fs'
import {type AddressInfo, createServer} from 'node:net'
import {join} from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {cliIdentity, r1, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-mqtt-down-')
const TARGETS = 30
let env: Record<string, string>

function project(name: string, brokerUrl: string): string {
  const dir = join(root.dir, name)
  mkdirSync(dir, {recursive: true})
  const targets = Array.from({length: TARGETS}, (_, i) => `  edge-${i}: { address: "${generateIdentity().address}", broker: b }\n`).join('')
  writeFileSync(join(dir, 'config.yaml'), `name: p\nversion: 0.1.0\nbrokers:\n  b: { url: "${brokerUrl}" }\ntargets:\n${targets}`)
  return dir
}

beforeAll(async () => {
  env = (await cliIdentity(root.dir)).env
}, 30_000)

afterAll(() => root.dispose())

it('a port nobody listens on: each target is unreachable (7) naming the broker and the refusal', async () => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const {port} = closed.address() as AddressInfo
  await new Promise((resolve) => closed.close(resolve))
  const result = await r1(['status', '--all', '--json', '--connect-timeout', '2', '--dir', project('refused', `mqtt://127.0.0.1:${port}`)], {env})
  expect(result.exitCode, result.stderr).toBe(7)
  expect(result.json.targets).toHaveLength(TARGETS)
  for (const t of result.json.targets) {
    expect(t.status).toBe('unreachable')
    expect(t.error).toBe(`Cannot connect to the broker mqtt://127.0.0.1:${port} within 2000 ms: connect ECONNREFUSED 127.0.0.1:${port}`)
    expect(t.hint).toBe('Check the broker URL and that the broker is running.')
  }
}, 60_000)

it('one target at a time, a broker that drops every connection is dialled for the first target only', async () => {
  let connections = 0
  const dropping = createServer((socket) => {
    connections++
    socket.destroy()
  })
  await new Promise<void>((resolve) => dropping.listen(0, '127.0.0.1', resolve))
  const url = `mqtt://127.0.0.1:${(dropping.address() as AddressInfo).port}`
  try {
    const result = await r1(['status', '--all', '--json', '--max-concurrent', '1', '--connect-timeout', '2', '--dir', project('dropping', url)], {env, timeoutMs: 120_000})
    expect(result.exitCode, result.stderr).toBe(7)
    expect(result.json.targets.map((t: {status: string}) => t.status)).toEqual(Array(TARGETS).fill('unreachable'))
    for (const t of result.json.targets) expect(t.error).toMatch(new RegExp(`^Cannot connect to the broker ${url} within 2000 ms`))
    // one wait of 2 s with reconnections backing off from 200 ms: a handful of connections, not a handful per target
    expect(connections).toBeGreaterThan(0)
    expect(connections).toBeLessThan(TARGETS)
  } finally {
    await new Promise((resolve) => dropping.close(resolve))
  }
}, 150_000)
