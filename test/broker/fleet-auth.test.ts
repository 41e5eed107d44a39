// The embedded broker with logins and ACLs carries r1's own traffic: a real `r1 node start --broker` as a
// node user and the built CLI as a client user (config.yaml `brokers` with user and password_file) deploy,
// read status and discover through `r1 broker start`; a CLI with a wrong password is refused.
import {cpSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {loadOrCreateIdentity, nodeKeyPath} from '../../src/protocol/identity.js'
import {cliIdentity, type NodeProcess, r1, repoRoot, spawnFirstJsonLine, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-broker-fleet-')
const brokerDir = join(root.dir, 'broker')
const project = join(root.dir, 'project')
const PASSWORD = 'node and client pass'
let broker: Awaited<ReturnType<typeof spawnFirstJsonLine<{url: string}>>>
let node: NodeProcess
let env: Record<string, string>

async function addUser(name: string, role: 'node' | 'client', address: string, password = PASSWORD): Promise<string> {
  const file = join(root.dir, `${name}.pass`)
  writeFileSync(file, `${password}\n`, {mode: 0o600})
  const added = await r1(['broker', 'user', 'add', name, '--role', role, '--address', address, '--password-file', file, '--data-dir', brokerDir, '--json'])
  expect(added.exitCode, added.stderr).toBe(0)
  return file
}

beforeAll(async () => {
  const nodeDir = join(root.dir, 'node')
  mkdirSync(nodeDir, {recursive: true})
  const {identity} = await loadOrCreateIdentity(nodeKeyPath(nodeDir))
  const cli = await cliIdentity(root.dir)
  env = cli.env
  const nodePass = await addUser('edge-a', 'node', identity.address)
  const clientPass = await addUser('laptop', 'client', cli.address)
  broker = await spawnFirstJsonLine<{url: string}>(['broker', 'start', '--json', '--port', '0', '--data-dir', brokerDir])
  node = await startNode({dataDir: nodeDir, allow: [cli.address], extraArgs: ['--broker', broker.line.url, '--broker-user', 'edge-a', '--broker-password-file', nodePass, '--heartbeat-interval', '1', '--alias', 'edge-a']})
  cpSync(join(repoRoot, 'test/fixtures/projects/basic'), project, {recursive: true})
  const base = readFileSync(join(project, 'config.yaml'), 'utf8')
  writeFileSync(join(project, 'config.yaml'), `${base}brokers:\n  local: { url: "${broker.line.url}", user: laptop, password_file: "${clientPass}" }\ntargets:\n  edge-a: { address: "${identity.address}", broker: local }\n`)
}, 120_000)

afterAll(async () => {
  await node?.stop()
  await broker?.stop()
  root.dispose()
})

describe.sequential('r1 over the embedded broker with logins and ACLs', () => {
  it('deploys to the node user through the client user, confirmed; status reads it back', async () => {
    const deployed = await r1(['deploy', '--dir', project, '--all', '--json'], {env, timeoutMs: 120_000})
    expect(deployed.exitCode, deployed.stderr + deployed.stdout).toBe(0)
    expect(deployed.json.targets.map((t: {status: string}) => t.status)).toEqual(['deployed'])
    const status = await r1(['status', '--dir', project, '--target', 'edge-a', '--json'], {env})
    expect(status.exitCode, status.stderr + status.stdout).toBe(0)
    expect(status.json.targets[0].result.pipelines.map((p: {name: string}) => p.name)).toEqual(['counting'])
  })

  it('discovers the node by its heartbeat on the shared topic', async () => {
    const heard = await r1(['status', '--dir', project, '--broker', 'local', '--discover', '3', '--json'], {env})
    expect(heard.exitCode, heard.stderr + heard.stdout).toBe(0)
    expect(heard.json.targets.map((t: {address: string}) => t.address)).toEqual([node.address])
  })

  it('a CLI with a wrong broker password is refused: unreachable, exit 7', async () => {
    const wrong = join(root.dir, 'wrong.pass')
    writeFileSync(wrong, 'not the password\n', {mode: 0o600})
    const config = readFileSync(join(project, 'config.yaml'), 'utf8')
    writeFileSync(join(project, 'config.yaml'), config.replace(/password_file: "[^"]+"/, `password_file: "${wrong}"`))
    try {
      const refused = await r1(['status', '--dir', project, '--target', 'edge-a', '--connect-timeout', '3', '--json'], {env})
      expect(refused.exitCode, refused.stdout).toBe(7)
    } finally {
      writeFileSync(join(project, 'config.yaml'), config)
    }
  })
})
