// The CLI against real nodes: identity pinning (`r1 node info`, mismatch), read-only commands over every
// target, idempotent stop, delete needing --yes, hints by rejection reason, a node that dies mid-deploy.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type NodeProcess, bin, cliIdentity, deployedBasicProject, r1, repoRoot, selfSignedCert, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-cli-side-')
const project = join(root.dir, 'project')
let env: Record<string, string>
let strangerEnv: Record<string, string>
let myAddress: string
let nodes: NodeProcess[] = []

function cli(args: string[], options: {env?: Record<string, string>} = {}) {
  return r1([...args, '--dir', project], {env: options.env ?? env})
}

beforeAll(async () => {
  const identity = await cliIdentity(root.dir)
  env = identity.env
  myAddress = identity.address
  strangerEnv = (await cliIdentity(root.dir, 'stranger')).env
  nodes = (await deployedBasicProject(root.dir, identity.address, env)).nodes
}, 120_000)

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  root.dispose()
})

describe.sequential('the CLI side, against real nodes', () => {
  it('deploy --json timings are rounded (no 49.28573299999999)', async () => {
    const again = await cli(['deploy', '--all', '--json'])
    expect(again.exitCode, again.stderr).toBe(0)
    for (const t of again.json.targets) {
      for (const value of Object.values(t.timings) as number[]) expect(String(value)).toMatch(/^\d+(\.\d)?$/)
    }
  })

  it('read-only commands default to every target; deploy still asks which', async () => {
    const status = await cli(['status', '--json'])
    expect(status.exitCode, status.stderr).toBe(0)
    expect(status.json.targets.map((t: any) => t.target)).toEqual(['edge-a', 'edge-b'])
    const ls = await cli(['pipelines', 'ls', '--json'])
    expect(ls.exitCode, ls.stderr).toBe(0)
    expect(ls.json.targets.map((t: any) => t.target)).toEqual(['edge-a', 'edge-b'])
    const logs = await cli(['logs', '--tail', '1', '--json'])
    expect(logs.exitCode, logs.stderr).toBe(0)
    expect(new Set(logs.stdout.trim().split('\n').map((l) => JSON.parse(l).R1_TARGET))).toEqual(new Set(['edge-a', 'edge-b']))
    const deploy = await cli(['deploy', '--json'])
    expect(deploy.exitCode).toBe(2)
    expect(deploy.json.error.message).toContain('--target')
  })

  it('r1 node info prints the address from the signed hello; a wrong --address is an identity mismatch', async () => {
    const human = await r1(['node', 'info', '--node', nodes[0].url], {env})
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toMatch(new RegExp(`^address\\s+${nodes[0].address}$`, 'm'))
    const json = await r1(['node', 'info', '--node', nodes[0].url, '--json'], {env})
    expect(json.json).toMatchObject({url: nodes[0].url, address: nodes[0].address, alias: nodes[0].alias})
    const wrong = await r1(['node', 'info', '--node', nodes[0].url, '--address', nodes[1].address, '--json'], {env})
    expect(wrong.exitCode).toBe(4)
    expect(wrong.json.error.code).toBe('IDENTITY_MISMATCH')
    expect(wrong.json.error.message).toContain(`expected the node ${nodes[1].address}, got ${nodes[0].address}`)
    // a command pinned to the wrong address says so too, instead of "unreachable"
    const status = await r1(['status', '--node', nodes[0].url, '--address', nodes[1].address, '--json'], {env})
    expect(status.exitCode).toBe(4)
    expect(status.json.targets[0].error).toContain('Identity mismatch')
  })

  it('a garbage --ca file is refused, naming the file', async () => {
    const garbage = join(root.dir, 'garbage.pem')
    writeFileSync(garbage, 'not a certificate\n')
    for (const args of [['status'], ['deploy', '--all'], ['logs', '--tail', '1']]) {
      const result = await cli([...args, '--ca', garbage, '--json'])
      expect(result.exitCode, args.join(' ')).toBe(2)
      expect(result.json.error).toMatchObject({code: 'CA_INVALID'})
      expect(result.json.error.message).toContain(garbage)
    }
    const info = await r1(['node', 'info', '--node', nodes[0].url, '--ca', garbage], {env})
    expect(info.exitCode).toBe(2)
    expect(info.stderr).toContain(garbage)
  })

  it('r1 status exits 4 when this key is not (or no longer) allowed, still showing the heartbeat', async () => {
    const result = await cli(['status', '--target', 'edge-a', '--json'], {env: strangerEnv})
    expect(result.exitCode).toBe(4)
    expect(result.json.targets[0]).toMatchObject({status: 'rejected', result: {online: true, restricted: expect.any(String)}})
    const human = await cli(['status', '--target', 'edge-a'], {env: strangerEnv})
    expect(human.exitCode).toBe(4)
    expect(human.stdout).toContain('edge-a online')
    expect(human.stderr).toContain('r1 node allow')
  })

  it('pipelines stop of a stopped pipeline is idempotent; an unknown rollback version is hinted by its reason', async () => {
    const first = await cli(['pipelines', 'stop', 'counting', '--target', 'edge-a', '--json'])
    expect(first.exitCode, first.stderr).toBe(0)
    const second = await cli(['pipelines', 'stop', 'counting', '--target', 'edge-a', '--json'])
    expect(second.exitCode, second.stderr).toBe(0)
    expect(second.json.targets[0].result).toEqual({pipeline: 'counting', archived: true, alreadyStopped: true})
    const human = await cli(['pipelines', 'stop', 'counting', '--target', 'edge-a'])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toContain('counting was already stopped')

    const unknown = await cli(['rollback', 'counting', '--to', '7', '--target', 'edge-a'])
    expect(unknown.exitCode).toBe(4)
    expect(unknown.stderr).toContain('No version 7')
    expect(unknown.stderr).not.toContain('allow-list')
    expect(unknown.stderr).toContain('r1 pipelines ls')
  })

  it('pipelines delete without a terminal needs --yes (exit 2 naming it)', async () => {
    const result = await cli(['pipelines', 'delete', 'counting', '--target', 'edge-b', '--json'])
    expect(result.exitCode).toBe(2)
    expect(result.json.error.message).toContain('--yes')
    const human = await cli(['pipelines', 'delete', 'counting', '--target', 'edge-b'])
    expect(human.exitCode).toBe(2)
    expect(human.stderr).toContain('--yes')
    const ls = await cli(['pipelines', 'ls', '--target', 'edge-b', '--json'])
    expect(ls.json.targets[0].result.map((p: any) => p.name)).toEqual(['counting'])
  })
})

describe('a node that dies after accepting the deploy', () => {
  it('r1 deploy ends within seconds as unreachable (exit 7), not after the 60 s wait', async () => {
    const dir = join(root.dir, 'dying')
    mkdirSync(dir, {recursive: true})
    const node = await startNode({dataDir: join(dir, 'node'), allow: [], env})
    try {
      const allowed = await r1(['node', 'allow', (await r1(['keys', 'show', '--json'], {env})).json.address, '--data-dir', node.dataDir], {env})
      expect(allowed.exitCode, allowed.stderr).toBe(0)
      // an instance whose first process never returns: PLUGIN_CONFIG_OK never comes, so deploy waits
      writeFileSync(
        join(dir, 'config.yaml'),
        `name: dying\nversion: 0.1.0\npipelines:\n  hang:\n    type: Void\n    instances:\n      stuck:\n        plugin: CUSTOM_EXEC_01\n        config:\n          code: "await new Promise(() => {})"\ntargets:\n  edge: { url: "${node.url}", address: "${node.address}" }\n`,
      )
      const started = Date.now()
      const deploy = execa(process.execPath, [bin, 'deploy', '--dir', dir, '--json', '--wait-timeout', '60'], {cwd: repoRoot, env: {NO_COLOR: '1', CI: '1', ...env}, reject: false, stdin: 'ignore'})
      // kill the node as soon as it holds the pipeline (it accepted UPDATE_CONFIG)
      for (;;) {
        const ls = await r1(['pipelines', 'ls', '--node', node.url, '--address', node.address, '--json'], {env})
        if (ls.json?.targets?.[0]?.result?.some((p: any) => p.name === 'hang')) break
        expect(Date.now() - started).toBeLessThan(30_000)
      }
      node.child.kill('SIGKILL')
      const killedAt = Date.now()
      const result = await deploy
      expect(result.exitCode, result.stdout + result.stderr).toBe(7)
      expect(Date.now() - killedAt).toBeLessThan(15_000)
      expect(JSON.parse(result.stdout).targets[0]).toMatchObject({status: 'unreachable'})
    } finally {
      await node.stop()
    }
  }, 90_000)
})

describe('a wss:// node with a self-signed certificate', () => {
  it('fails with a hint naming --ca; a target in config.yaml may name its ca file', async () => {
    const dir = join(root.dir, 'tls')
    mkdirSync(dir, {recursive: true})
    const tls = await selfSignedCert(dir)
    const node = await startNode({dataDir: join(dir, 'node'), tls, allow: [myAddress]})
    try {
      const config = (ca: string) =>
        writeFileSync(join(dir, 'config.yaml'), `name: tls\nversion: 0.1.0\npipelines: {}\ntargets:\n  edge: { url: "${node.url}", address: "${node.address}"${ca} }\n`)
      config('')
      const untrusted = await r1(['status', '--dir', dir, '--json'], {env})
      expect(untrusted.exitCode).toBe(7)
      expect(untrusted.json.targets[0].error).toContain('not trusted')
      const human = await r1(['status', '--dir', dir], {env})
      expect(human.stderr).toContain('--ca')
      config(', ca: cert.pem')
      expect((await r1(['validate', dir, '--json'])).json.valid).toBe(true)
      const trusted = await r1(['status', '--dir', dir, '--json'], {env})
      expect(trusted.exitCode, trusted.stderr + trusted.stdout).toBe(0)
      const info = await r1(['node', 'info', '--node', node.url, '--ca', tls.cert, '--json'], {env})
      expect(info.json.address).toBe(node.address)
    } finally {
      await node.stop()
    }
  }, 60_000)
})
