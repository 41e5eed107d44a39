// `r1 deploy` end to end: the built CLI against several real `r1 node start` processes (one over TLS).
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type NodeProcess, cliIdentity, r1, selfSignedCert, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-deploy-')
const project = join(root.dir, 'project')
let env: Record<string, string>
/** The CLI env without NODE_EXTRA_CA_CERTS. */
let cliEnv: Record<string, string>
let certFile: string
let address: string
let signature: string
let nodes: NodeProcess[] = []
/** Not on any allow-list but its own: every command from our key is refused. */
let stranger: NodeProcess

function writeConfig(options: {threshold1?: number; extra?: string} = {}): void {
  const file = join(project, 'config.yaml')
  const head = readFileSync(file, 'utf8').split(/^pipelines:/m)[0]
  const [a, b, c] = nodes
  writeFileSync(
    file,
    `${head}pipelines:
  readings:
    type: Void
    instances:
      sensor-1:
        plugin: ${signature}
        config: { threshold: ${options.threshold1 ?? 32}, process_delay: 0.2 }
      sensor-2:
        plugin: ${signature}
        config: { threshold: 32, process_delay: 0.2 }
${options.extra ?? ''}
targets:
  edge-a: { url: "${a.url}", address: "${a.address}" }
  edge-b: { url: "${b.url}", address: "${b.address}" }
  edge-c: { url: "${c.url}", address: "${c.address}" }
`,
  )
}

function deploy(args: string[]) {
  return r1(['deploy', '--dir', project, ...args], {env})
}

function byTarget(json: any, name: string): any {
  return json.targets.find((t: any) => t.target === name)
}

async function instances(target: string): Promise<Record<string, any>> {
  const status = await r1(['status', '--dir', project, '--target', target, '--json'], {env})
  expect(status.exitCode, status.stderr + status.stdout).toBe(0)
  const pipeline = status.json.targets[0].result.pipelines.find((p: any) => p.name === 'readings')
  return Object.fromEntries(pipeline.instances.map((i: any) => [i.instanceId, i]))
}

beforeAll(async () => {
  const cli = await cliIdentity(root.dir)
  address = cli.address
  const tls = await selfSignedCert(root.dir)
  cliEnv = cli.env
  certFile = tls.cert
  env = {...cli.env, NODE_EXTRA_CA_CERTS: tls.cert}
  nodes = await Promise.all([
    startNode({dataDir: join(root.dir, 'node-a'), allow: [address]}),
    startNode({dataDir: join(root.dir, 'node-b'), allow: [address], tls}),
    startNode({dataDir: join(root.dir, 'node-c'), allow: [address]}),
  ])
  stranger = await startNode({dataDir: join(root.dir, 'node-stranger')})
  const init = await r1(['init', project, '--template', 'ts-plugin', '--yes', '--no-install', '--no-git'], {env})
  expect(init.exitCode, init.stderr).toBe(0)
  signature = /^plugins:\s*\n\s+([A-Z][A-Z0-9_]*):/m.exec(readFileSync(join(project, 'config.yaml'), 'utf8'))![1]
  writeConfig()
}, 120_000)

afterAll(async () => {
  await Promise.all([...nodes, stranger].filter(Boolean).map((n) => n.stop()))
  root.dispose()
})

describe.sequential('r1 deploy to real nodes', () => {
  it('uses wss:// for the TLS node, trusting its certificate with --ca (or NODE_EXTRA_CA_CERTS)', async () => {
    expect(nodes[1].url.startsWith('wss://')).toBe(true)
    const untrusted = await r1(['status', '--node', nodes[1].url, '--address', nodes[1].address, '--json'], {env: cliEnv})
    expect(untrusted.exitCode).toBe(7)
    expect(untrusted.json.targets[0].error).toMatch(/certificate/i)
    const trusted = await r1(['status', '--node', nodes[1].url, '--address', nodes[1].address, '--ca', certFile, '--json'], {env: cliEnv})
    expect(trusted.exitCode, trusted.stdout).toBe(0)
    const badCa = await r1(['status', '--node', nodes[1].url, '--address', nodes[1].address, '--ca', join(root.dir, 'missing.pem'), '--json'], {env: cliEnv})
    expect(badCa.exitCode).toBe(2)
  })

  it('deploys a scaffolded project to every target and waits for its instances', async () => {
    const result = await deploy(['--all', '--json'])
    expect(result.exitCode, result.stderr + result.stdout).toBe(0)
    expect(result.json.ok).toBe(true)
    for (const name of ['edge-a', 'edge-b', 'edge-c']) {
      const t = byTarget(result.json, name)
      expect(t.status).toBe('deployed')
      expect(t.uploaded).toHaveLength(1)
      expect(t.plan.pipelines[0]).toMatchObject({name: 'readings', change: 'create'})
      expect(t.timings.total).toBeGreaterThan(0)
    }
    const running = await instances('edge-b')
    expect(running['sensor-1'].status).toBe('running')
    expect(running['sensor-2'].status).toBe('running')
  })

  it('leaves everything alone when nothing changed', async () => {
    const result = await deploy(['--all', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.json.targets.map((t: any) => t.status)).toEqual(['unchanged', 'unchanged', 'unchanged'])
    expect(result.json.targets.every((t: any) => t.uploaded.length === 0)).toBe(true)
  })

  it('--dry-run shows the config diff and changes nothing', async () => {
    writeConfig({threshold1: 40})
    const human = await deploy(['--target', 'edge-a', '--dry-run'])
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toContain('pipeline readings: update-instances')
    expect(human.stdout).toContain(`~ ${signature}/sensor-1`)
    expect(human.stdout).toContain('~ THRESHOLD: 32 → 40')
    expect(human.stdout).not.toContain('sensor-2')
    const json = await deploy(['--target', 'edge-a', '--dry-run', '--json'])
    expect(json.json.targets[0].status).toBe('planned')
    // still planned after a dry run: nothing was applied
    const again = await deploy(['--target', 'edge-a', '--dry-run', '--json'])
    expect(again.json.targets[0].plan.pipelines[0].change).toBe('update-instances')
  })

  it('redeploying one changed instance reconfigures only it; the other keeps running', async () => {
    const before = await instances('edge-a')
    expect(before['sensor-2'].lastConfig).toBeTruthy()
    expect(before['sensor-2'].iteration).toBeGreaterThan(0)
    const result = await deploy(['--all', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    const a = byTarget(result.json, 'edge-a')
    expect(a.status).toBe('deployed')
    expect(a.plan.pipelines[0].change).toBe('update-instances')
    expect(a.uploaded).toEqual([])
    const after = await instances('edge-a')
    expect(after['sensor-2'].lastConfig).toBe(before['sensor-2'].lastConfig)
    expect(after['sensor-2'].restarts).toBe(before['sensor-2'].restarts)
    expect(after['sensor-2'].iteration).toBeGreaterThan(before['sensor-2'].iteration)
    expect(after['sensor-1'].lastConfig).not.toBe(before['sensor-1'].lastConfig)
    expect(after['sensor-1'].status).toBe('running')
  })

  it('an instance that crashes on start fails the deploy at once with its error', async () => {
    writeConfig({
      threshold1: 40,
      extra: `  broken:
    type: Void
    instances:
      bad:
        plugin: CUSTOM_EXEC_01
        config: { code: "throw new Error('sensor exploded')", process_delay: 0.2 }
`,
    })
    const result = await deploy(['broken', '--target', 'edge-a', '--wait-timeout', '600', '--json'])
    expect(result.exitCode).toBe(1)
    const t = result.json.targets[0]
    expect(t.status).toBe('failed')
    expect(t.error).toContain('sensor exploded')
    writeConfig({threshold1: 40})
    const deleted = await r1(['pipelines', 'delete', 'broken', '--dir', project, '--target', 'edge-a', '--yes', '--json'], {env})
    expect(deleted.exitCode, deleted.stderr).toBe(0)
    expect(deleted.json.targets[0].result).toEqual({pipeline: 'broken', deleted: true})
  })

  it('an unknown target is a usage error with a suggestion', async () => {
    const result = await deploy(['--target', 'edge-x', '--json'])
    expect(result.exitCode).toBe(2)
    expect(result.json.error.message).toContain('Did you mean "edge-a"?')
  })

  it('a node that does not allow our key rejects the deploy (exit 4)', async () => {
    const result = await deploy(['--node', stranger.url, '--address', stranger.address, '--json'])
    expect(result.exitCode).toBe(4)
    expect(result.json.targets[0].status).toBe('rejected')
    expect(result.json.targets[0].error).toMatch(/NOT_ALLOWED|not allowed|allow-list/i)
  })

  // Putting back targets that took the new version when a later one fails: test/deploy/run.test.ts ('strict' node).
  it('--atomic applies nothing when a target refuses to show its state (checked before anything is applied)', async () => {
    writeConfig({threshold1: 45})
    const result = await deploy(['--target', 'edge-a', '--target', 'edge-b', '--node', stranger.url, '--address', stranger.address, '--atomic', '--max-concurrent', '1', '--json'])
    expect(result.exitCode).toBe(4)
    expect(byTarget(result.json, 'edge-a')).toMatchObject({status: 'skipped', uploaded: []})
    expect(byTarget(result.json, 'edge-b')).toMatchObject({status: 'skipped', uploaded: []})
    expect(byTarget(result.json, 'edge-a').rollback).toBeUndefined()
    expect(result.json.targets[2].status).toBe('rejected')
    // edge-a still runs threshold 40: the plan still wants 40 → 45
    const plan = await deploy(['--target', 'edge-a', '--dry-run', '--json'])
    const sensor = plan.json.targets[0].plan.pipelines[0].instances.find((i: any) => i.instanceId === 'sensor-1')
    expect(sensor.diff).toEqual([{key: 'THRESHOLD', kind: 'change', from: 40, to: 45}])
  })

  it('with one node down, deploys the others and exits 6', async () => {
    await nodes[2].stop()
    const result = await deploy(['--all', '--json', '--connect-timeout', '5'])
    expect(result.exitCode).toBe(6)
    expect(byTarget(result.json, 'edge-a').status).toBe('deployed')
    expect(byTarget(result.json, 'edge-b').status).toBe('deployed')
    expect(byTarget(result.json, 'edge-c')).toMatchObject({status: 'unreachable', ok: false})
    const human = await deploy(['--all', '--connect-timeout', '5'])
    expect(human.exitCode).toBe(6)
    expect(human.stdout).toMatch(/edge-c\s+unreachable/)
    expect(human.stderr).toContain('edge-c: unreachable')
  })
})
