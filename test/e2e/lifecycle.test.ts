// Lifecycle end to end: pipelines start, restart, a refused command, deploy --message + pipelines history,
// and deploy --atomic with a node down — the built CLI against real node processes.
import {appendFileSync, cpSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type NodeProcess, cliIdentity, r1, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-lifecycle-')
const project = join(root.dir, 'project')
let env: Record<string, string>
let me: string
let nodes: NodeProcess[] = []

function cli(args: string[]) {
  return r1([...args, '--dir', project], {env})
}

async function instance(target: string): Promise<any> {
  const status = await cli(['status', '--target', target, '--json'])
  expect(status.exitCode, status.stderr + status.stdout).toBe(0)
  return status.json.targets[0].result.pipelines.find((p: any) => p.name === 'counting')?.instances[0]
}

function setStep(step: number): void {
  const file = join(project, 'config.yaml')
  writeFileSync(file, readFileSync(file, 'utf8').replace(/step: \d+/, `step: ${step}`))
}

beforeAll(async () => {
  const identity = await cliIdentity(root.dir)
  env = identity.env
  me = identity.address
  nodes = await Promise.all(['a', 'b'].map((n) => startNode({dataDir: join(root.dir, `node-${n}`), allow: [identity.address]})))
  cpSync(fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url)), project, {recursive: true})
  appendFileSync(join(project, 'config.yaml'), `targets:\n${nodes.map((n, i) => `  edge-${'ab'[i]}: { url: "${n.url}", address: "${n.address}" }\n`).join('')}`)
  const deployed = await cli(['deploy', '--all', '--message', 'first deploy', '--json'])
  expect(deployed.exitCode, deployed.stderr + deployed.stdout).toBe(0)
}, 120_000)

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  root.dispose()
})

describe.sequential('lifecycle on real nodes', () => {
  it('a refused command is the command’s answer: it does not stick as the instance’s LAST ERROR', async () => {
    const failing = await cli(['command', 'counting', 'counter-1', 'EXPLODE', '--target', 'edge-a', '--json'])
    expect(failing.exitCode).toBe(1)
    expect(failing.json.targets[0].error).toContain('unknown command EXPLODE')
    const after = await instance('edge-a')
    expect(after.status).toBe('running')
    expect(after.lastError).toBeNull()
    const human = await cli(['status', '--target', 'edge-a'])
    expect(human.stdout).not.toContain('EXPLODE')
  })

  it('restart: every instance of a pipeline, or one, in new processes, counted', async () => {
    const before = await instance('edge-a')
    expect(before.pid).toBeGreaterThan(0)
    const all = await cli(['restart', 'counting', '--target', 'edge-a', '--json'])
    expect(all.exitCode, all.stderr + all.stdout).toBe(0)
    expect(all.json.targets[0].result).toEqual({pipeline: 'counting', restarted: ['COUNTER/counter-1']})
    const after = await instance('edge-a')
    expect(after.pid).toBeGreaterThan(0)
    expect(after.pid).not.toBe(before.pid)
    expect(after.restarts).toBe(before.restarts + 1)

    const one = await cli(['restart', 'counting', 'counter-1', '--target', 'edge-a'])
    expect(one.exitCode, one.stderr).toBe(0)
    expect(one.stdout).toMatch(/edge-a\s+ok\s+restarted COUNTER\/counter-1/)
    const again = await instance('edge-a')
    expect(again.pid).not.toBe(after.pid)
    expect(again.restarts).toBe(before.restarts + 2)

    const missing = await cli(['restart', 'counting', 'nobody', '--target', 'edge-a', '--json'])
    expect(missing.exitCode).toBe(1)
    expect(missing.json.targets[0].error).toContain('No instance "nobody"')
  })

  it('pipelines start resumes a stopped pipeline; starting a running one is done (exit 0)', async () => {
    const stopped = await cli(['pipelines', 'stop', 'counting', '--target', 'edge-b', '--json'])
    expect(stopped.exitCode, stopped.stderr).toBe(0)
    const restartStopped = await cli(['restart', 'counting', '--target', 'edge-b', '--json'])
    expect(restartStopped.exitCode).toBe(1)
    expect(restartStopped.json.targets[0].hint).toContain('r1 pipelines start counting')

    const started = await cli(['pipelines', 'start', 'counting', '--target', 'edge-b', '--json'])
    expect(started.exitCode, started.stderr + started.stdout).toBe(0)
    expect(started.json.targets[0].result).toEqual({pipeline: 'counting', started: true, version: 2})
    const status = await cli(['status', '--target', 'edge-b', '--json'])
    expect(status.json.targets[0].result.pipelines).toEqual([expect.objectContaining({name: 'counting', stopped: false})])

    const twice = await cli(['pipelines', 'start', 'counting', '--target', 'edge-b'])
    expect(twice.exitCode, twice.stderr).toBe(0)
    expect(twice.stdout).toMatch(/edge-b\s+ok\s+counting was already running \(v2\)/)
    const unknown = await cli(['pipelines', 'start', 'nothing', '--target', 'edge-b', '--json'])
    expect(unknown.exitCode).toBe(1)
    expect(unknown.json.targets[0].error).toContain('No pipeline "nothing"')
  })

  it('deploy --message: who, when and why are kept per version and shown by pipelines history', async () => {
    setStep(3)
    const deployed = await cli(['deploy', '--target', 'edge-a', '-m', 'step 3 for the demo', '--json'])
    expect(deployed.exitCode, deployed.stderr + deployed.stdout).toBe(0)
    expect(deployed.json.targets[0].status).toBe('deployed')
    // a message alone changes nothing: the planner does not see it
    const again = await cli(['deploy', '--target', 'edge-a', '-m', 'same again', '--json'])
    expect(again.json.targets[0].status).toBe('unchanged')

    const history = await cli(['pipelines', 'history', 'counting', '--target', 'edge-a', '--json'])
    expect(history.exitCode, history.stderr).toBe(0)
    const versions = history.json.targets[0].result.versions
    expect(versions).toEqual([
      {version: 1, time: expect.any(String), sender: me, message: 'first deploy', current: false},
      {version: 2, time: expect.any(String), sender: me, message: 'step 3 for the demo', current: true},
    ])
    expect(Date.parse(versions[1].time)).toBeGreaterThanOrEqual(Date.parse(versions[0].time))

    const human = await cli(['pipelines', 'history', 'counting', '--target', 'edge-b'])
    expect(human.exitCode, human.stderr).toBe(0)
    const lines = human.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^TARGET\s+VERSION\s+TIME\s+WHO\s+MESSAGE$/)
    expect(lines[1]).toMatch(new RegExp(`^edge-b\\s+ v1\\s+\\S+\\s+${me}\\s+first deploy$`))
    expect(lines[2]).toMatch(new RegExp(`^edge-b\\s+\\*v2\\s+\\S+\\s+${me}\\s+\\(from v1\\)$`))
    const missing = await cli(['pipelines', 'history', 'nothing', '--target', 'edge-b', '--json'])
    expect(missing.exitCode).toBe(1)
  })

  it('deploy --atomic with a node down applies nothing anywhere and keeps the version archive as it was (exit 7)', async () => {
    const before = await cli(['pipelines', 'history', 'counting', '--target', 'edge-a', '--json'])
    await nodes[1].stop()
    setStep(5)
    const result = await cli(['deploy', '--all', '--atomic', '--connect-timeout', '5', '--json'])
    expect(result.exitCode, result.stderr + result.stdout).toBe(7)
    const byName = Object.fromEntries(result.json.targets.map((t: any) => [t.target, t]))
    expect(byName['edge-b'].status).toBe('unreachable')
    expect(byName['edge-a']).toMatchObject({status: 'skipped', uploaded: []})
    expect(byName['edge-a'].error).toContain('edge-b')
    expect(byName['edge-a'].rollback).toBeUndefined()

    const after = await cli(['pipelines', 'history', 'counting', '--target', 'edge-a', '--json'])
    expect(after.json.targets[0].result).toEqual(before.json.targets[0].result)
    const plan = await cli(['deploy', '--target', 'edge-a', '--dry-run', '--json'])
    const counter = plan.json.targets[0].plan.pipelines[0].instances[0]
    expect(counter.diff).toEqual([{key: 'STEP', kind: 'change', from: 3, to: 5}])
  })
})
