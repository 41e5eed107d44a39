// A broker that wants a user and password (the embedded broker with a node user and a client user):
// `r1 node start --broker-user --broker-password-file` (real process) gets in, a client with the
// wrong password is told why (exit 7), and bad node flags are usage errors before anything starts.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {addUser} from '../../src/broker/users.js'
import {loadOrCreateIdentity, nodeKeyPath} from '../../src/protocol/identity.js'
import {Session} from '../../src/session/index.js'
import {startEmbeddedBroker, type TestBroker} from '../broker/helpers.js'
import {type NodeProcess, cliIdentity, r1, startNode, tempRoot} from '../deploy/nodes.js'
import {cliKeyIdentity} from '../logs/helpers.js'

const root = tempRoot('r1-mqtt-auth-')
let broker: TestBroker
let node: NodeProcess
let env: Record<string, string>
const PASSWORD = 's3cret-pw'
const passwordFile = join(root.dir, 'broker.pass')

beforeAll(async () => {
  const brokerDir = join(root.dir, 'broker')
  const nodeDir = join(root.dir, 'node')
  mkdirSync(nodeDir, {recursive: true})
  const {identity} = await loadOrCreateIdentity(nodeKeyPath(nodeDir))
  const cli = await cliIdentity(root.dir)
  env = cli.env
  await addUser(brokerDir, {name: 'edge', role: 'node', address: identity.address, password: PASSWORD})
  await addUser(brokerDir, {name: 'laptop', role: 'client', address: cli.address, password: PASSWORD})
  broker = await startEmbeddedBroker({dataDir: brokerDir})
  writeFileSync(passwordFile, `${PASSWORD}\n`, {mode: 0o600})
  node = await startNode({dataDir: nodeDir, allow: [cli.address], extraArgs: ['--broker', broker.url, '--broker-user', 'edge', '--broker-password-file', passwordFile], env})
}, 60_000)

afterAll(async () => {
  await node?.stop()
  await broker?.stop()
  root.dispose()
})

describe('a broker with a user and password', () => {
  it('a node and a client with the password get in; the wrong password is unreachable (7) with the reason', async () => {
    const identity = await cliKeyIdentity(env)
    const session = await Session.connect({url: broker.url, broker: {url: broker.url, user: 'laptop', password: PASSWORD}, nodeAddress: node.address, identity, connectTimeoutMs: 10_000})
    expect((await session.state()).ADDRESS).toBe(node.address)
    await session.close()
    await expect(Session.connect({url: broker.url, broker: {url: broker.url, user: 'laptop', password: 'wrong'}, nodeAddress: node.address, identity, connectTimeoutMs: 1500})).rejects.toMatchObject({
      exitCode: 7,
      code: 'BROKER_UNREACHABLE',
      hint: expect.stringMatching(/user and password/),
    })
  })

  it('config.yaml password_file reaches the broker; a missing one is an invalid config (3)', async () => {
    const project = join(root.dir, 'project')
    const write = (file: string) =>
      writeFileSync(join(project, 'config.yaml'), `name: p\nversion: 0.1.0\nbrokers:\n  b: { url: "${broker.url}", user: laptop, password_file: ${file} }\ntargets:\n  n: { address: "${node.address}", broker: b }\n`)
    mkdirSync(project, {recursive: true})
    write(passwordFile)
    const ok = await r1(['status', '--dir', project, '--json'], {env})
    expect(ok.exitCode, ok.stderr + ok.stdout).toBe(0)
    expect(ok.stdout).not.toContain(PASSWORD)
    write(join(root.dir, 'missing.pass'))
    const missing = await r1(['status', '--dir', project, '--json'], {env})
    expect(missing.exitCode).toBe(3) // config.yaml names a file that is not there: broker-file
    expect(JSON.stringify(missing.json)).toContain('broker-file')
  })

  it('config.yaml password_env reads the password from the environment (a CI secret); unset fails the target, naming the variable', async () => {
    const project = join(root.dir, 'project-env')
    mkdirSync(project, {recursive: true})
    writeFileSync(join(project, 'config.yaml'), `name: p\nversion: 0.1.0\nbrokers:\n  b: { url: "${broker.url}", user: laptop, password_env: R1_TEST_BROKER_PW }\ntargets:\n  n: { address: "${node.address}", broker: b }\n`)
    const ok = await r1(['status', '--dir', project, '--json'], {env: {...env, R1_TEST_BROKER_PW: PASSWORD}})
    expect(ok.exitCode, ok.stderr + ok.stdout).toBe(0)
    expect(ok.stdout + ok.stderr).not.toContain(PASSWORD)
    const unset = await r1(['status', '--dir', project, '--json'], {env})
    expect(unset.exitCode).toBe(1) // the target fails, naming the variable to set
    expect(unset.json).toMatchObject({ok: false, targets: [{target: 'n', status: 'failed', error: expect.stringContaining('$R1_TEST_BROKER_PW, which is not set')}]})
  })

  it('refuses bad node flags before starting: a non-MQTT URL, credentials in the URL, a bad tag, an unreadable password file', async () => {
    const start = (args: string[]) => r1(['node', 'start', '--data-dir', join(root.dir, 'never'), '--json', ...args], {env, timeoutMs: 20_000})
    for (const args of [
      ['--broker', 'http://127.0.0.1:1883'],
      ['--broker', broker.url.replace('mqtt://', `mqtt://edge:${PASSWORD}@`)],
      ['--broker', broker.url, '--tag', 'no-equals'],
      ['--broker', broker.url, '--broker-password-file', join(root.dir, 'nope.pass')],
      ['--broker', broker.url, '--topic-root', 'naeural/#'],
    ]) {
      const result = await start(args)
      expect(result.exitCode, args.join(' ')).toBe(2)
      expect(result.stdout + result.stderr).not.toContain(PASSWORD)
    }
  })
})
