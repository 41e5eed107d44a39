// A corrupt bundle on a node's disk, end to end: the built CLI against a real `r1 node start`. The node
// removes the bundle when it loads it and reports it missing; the next `r1 deploy` uploads it again and
// sends the (unchanged) config, the node starts the instance again, and the deploy after that is a no-op.
import {readFileSync, readdirSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type NodeProcess, cliIdentity, r1, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-bundle-repair-')
const project = join(root.dir, 'project')
const dataDir = join(root.dir, 'node')
let env: Record<string, string>
let me: string
let signature: string
let node: NodeProcess | undefined

function writeTargets(n: NodeProcess): void {
  const file = join(project, 'config.yaml')
  const head = readFileSync(file, 'utf8').split(/^pipelines:/m)[0]
  writeFileSync(
    file,
    `${head}pipelines:
  readings:
    type: Void
    instances:
      sensor-1:
        plugin: ${signature}
        config: { threshold: 32, process_delay: 0.2 }
targets:
  edge: { url: "${n.url}", address: "${n.address}" }
`,
  )
}

function deploy(args: string[] = []) {
  return r1(['deploy', '--dir', project, '--target', 'edge', ...args], {env})
}

async function sensor(): Promise<any> {
  const status = await r1(['status', '--dir', project, '--target', 'edge', '--json'], {env})
  expect(status.exitCode, status.stderr + status.stdout).toBe(0)
  return status.json.targets[0].result.pipelines.find((p: any) => p.name === 'readings')?.instances.find((i: any) => i.instanceId === 'sensor-1')
}

/** Polls `r1 status` until `check` holds for sensor-1 (a generous bound: what is tested is that it happens, not how fast). */
async function sensorUntil(check: (i: any) => boolean, what: string): Promise<any> {
  const deadline = Date.now() + 45_000
  let last: any
  while (Date.now() < deadline) {
    last = await sensor()
    if (last && check(last)) return last
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  throw new Error(`sensor-1 never ${what}; last seen: ${JSON.stringify(last)}`)
}

beforeAll(async () => {
  const identity = await cliIdentity(root.dir)
  env = identity.env
  me = identity.address
  node = await startNode({dataDir, allow: [me]})
  const init = await r1(['init', project, '--template', 'ts-plugin', '--yes', '--no-install', '--no-git'], {env})
  expect(init.exitCode, init.stderr).toBe(0)
  signature = /^plugins:\s*\n\s+([A-Z][A-Z0-9_]*):/m.exec(readFileSync(join(project, 'config.yaml'), 'utf8'))![1]
  writeTargets(node)
}, 120_000)

afterAll(async () => {
  await node?.stop()
  root.dispose()
})

describe.sequential('a bundle corrupted on the node is uploaded again by the next deploy', () => {
  let bundleHash: string

  it('deploys the TS plugin; its instance runs', async () => {
    const result = await deploy(['--json'])
    expect(result.exitCode, result.stderr + result.stdout).toBe(0)
    expect(result.json.targets[0].status).toBe('deployed')
    expect(result.json.targets[0].uploaded).toHaveLength(1)
    bundleHash = result.json.targets[0].uploaded[0]
    await sensorUntil((i) => i.status === 'running' && i.payloads > 0, 'ran')
  })

  it('a truncated bundle file is found when the node starts again: the instance does not run', async () => {
    await node!.stop()
    const files = readdirSync(join(dataDir, 'bundles')).filter((f) => f.endsWith('.mjs'))
    expect(files).toEqual([`${bundleHash}.mjs`])
    const file = join(dataDir, 'bundles', files[0])
    truncateSync(file, Math.floor(readFileSync(file).length / 2))
    node = await startNode({dataDir})
    writeTargets(node) // a new port; the same node key, so the same address
    const stuck = await sensor()
    expect(stuck.status).not.toBe('running')
    expect(stuck.status).toBe('invalid_config')
    expect(stuck.lastError).toContain('no intact bundle')
  })

  it('--dry-run shows the restart for the missing bundle', async () => {
    const plan = await deploy(['--dry-run'])
    expect(plan.exitCode, plan.stderr + plan.stdout).toBe(0)
    expect(plan.stdout).toContain('pipeline readings: update (1 to restart (bundle missing on the node)) via UPDATE_CONFIG')
    expect(plan.stdout).toContain(`↻ bundle ${signature}: ${bundleHash.slice(0, 12)} missing on the node (uploaded again)`)
    expect(plan.stdout).toContain(`↻ ${signature}/sensor-1 (bundle missing on the node)`)
  })

  it('r1 deploy uploads it again and waits for the instance, which runs again and emits payloads', async () => {
    const result = await deploy(['--json'])
    expect(result.exitCode, result.stderr + result.stdout).toBe(0)
    const t = result.json.targets[0]
    expect(t.status).toBe('deployed')
    expect(t.uploaded).toEqual([bundleHash])
    expect(t.plan.pipelines[0]).toMatchObject({name: 'readings', change: 'update', missing: [{key: signature, kind: 'add', to: bundleHash}]})
    expect(t.plan.pipelines[0].instances[0]).toMatchObject({instanceId: 'sensor-1', change: 'restart', bundleMissing: true})
    const running = await sensorUntil((i) => i.status === 'running', 'ran again')
    await sensorUntil((i) => i.status === 'running' && i.payloads > running.payloads, 'emitted payloads again')
    expect(readFileSync(join(dataDir, 'bundles', `${bundleHash}.mjs`)).length).toBeGreaterThan(0)
  })

  it('the deploy after that has nothing to do', async () => {
    const result = await deploy(['--json'])
    expect(result.exitCode, result.stderr + result.stdout).toBe(0)
    expect(result.json.targets[0].status).toBe('unchanged')
    expect(result.json.targets[0].uploaded).toEqual([])
    const human = await deploy()
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toMatch(/edge\s+unchanged/)
    expect((await sensor()).status).toBe('running')
  })
})
