// status, pipelines ls|stop|delete, command, rollback end to end: the built CLI against real node processes.
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type NodeProcess, cliIdentity, deployedBasicProject, r1, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-manage-')
const project = join(root.dir, 'project')
const deadNode = ['--node', 'ws://127.0.0.1:9']
let env: Record<string, string>
let nodes: NodeProcess[] = []
let deadAddress: string

function cli(args: string[]) {
  return r1([...args, '--dir', project], {env})
}

beforeAll(async () => {
  const identity = await cliIdentity(root.dir)
  env = identity.env
  deadAddress = (await cliIdentity(root.dir, 'other')).address
  nodes = (await deployedBasicProject(root.dir, identity.address, env)).nodes
}, 120_000)

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  root.dispose()
})

describe.sequential('managing pipelines on real nodes', () => {
  it('status: online, address, version, resources, instances', async () => {
    const json = await cli(['status', '--all', '--json'])
    expect(json.exitCode, json.stderr).toBe(0)
    expect(json.json.ok).toBe(true)
    const a = json.json.targets[0]
    expect(a).toMatchObject({target: 'edge-a', status: 'ok', result: {online: true, address: nodes[0].address, alias: nodes[0].alias}})
    expect(a.result.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(a.result.uptime).toBeGreaterThan(0)
    expect(a.result.memory.process).toBeGreaterThan(0)
    expect(a.result.pipelines[0]).toMatchObject({name: 'counting', type: 'Void', stopped: false, instances: [{signature: 'COUNTER', instanceId: 'counter-1', status: 'running'}]})

    const human = await cli(['status', '--target', 'edge-b'])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toContain('edge-b online')
    expect(human.stdout).toMatch(/counting\s+COUNTER\/counter-1\s+running/)
    expect(human.stderr).not.toContain('✖')
  })

  it('status: exit 7 when the only node is unreachable, 6 when one of several is', async () => {
    const down = await r1(['status', ...deadNode, '--address', deadAddress, '--json', '--connect-timeout', '5'], {env})
    expect(down.exitCode).toBe(7)
    expect(down.json.targets[0].status).toBe('unreachable')
    const partial = await cli(['status', '--target', 'edge-a', ...deadNode, '--address', deadAddress, '--connect-timeout', '5'])
    expect(partial.exitCode).toBe(6)
    expect(partial.stdout).toContain('edge-a online')
    expect(partial.stderr).toContain('127.0.0.1:9: unreachable')
  })

  it('without a project or --node there is no target: usage error naming the flags', async () => {
    const result = await r1(['status', '--dir', root.dir, '--json'], {env})
    expect(result.exitCode).toBe(2)
    expect(result.json.error.code).toBe('NO_TARGET')
    expect(result.json.error.hint).toContain('--node <url> --address')
  })

  it('pipelines ls lists pipelines per target', async () => {
    const result = await cli(['pipelines', 'ls', '--all', '--json'])
    expect(result.exitCode).toBe(0)
    expect(result.json.targets.map((t: any) => t.result.map((p: any) => p.name))).toEqual([['counting'], ['counting']])
    const human = await cli(['pipelines', 'ls', '--all'])
    expect(human.stdout).toMatch(/edge-a\s+counting\s+Void\s+v1 \(kept 1\)\s+1\s+counter-1:running/)
    expect(result.json.targets[0].result[0]).toMatchObject({version: 1, kept: [1]})
  })

  it('command: waits for PLUGIN_INSTANCE_COMMAND_OK and shows what the plugin returned', async () => {
    const result = await cli(['command', 'counting', 'counter-1', 'RESET', '--param', 'to=7', '--all', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.json.targets.map((t: any) => t.result.result)).toEqual([{COUNT: 7}, {COUNT: 7}])
    const failing = await cli(['command', 'counting', 'counter-1', 'EXPLODE', '--target', 'edge-a', '--json'])
    expect(failing.exitCode).toBe(1)
    expect(failing.json.targets[0].error).toContain('unknown command EXPLODE')
    const missing = await cli(['command', 'counting', 'nobody', 'RESET', '--target', 'edge-a'])
    expect(missing.exitCode).toBe(1)
    expect(missing.stdout).toContain('No instance "nobody"')
    const bad = await cli(['command', 'counting', 'counter-1', 'RESET', '--param', 'oops', '--target', 'edge-a', '--json'])
    expect(bad.exitCode).toBe(2)
    expect(bad.json.error.message).toContain('not KEY=VALUE')
  })

  it('pipelines stop archives; rollback brings the pipeline back; an unknown version is rejected', async () => {
    const stopped = await cli(['pipelines', 'stop', 'counting', '--target', 'edge-a', '--json'])
    expect(stopped.exitCode, stopped.stderr).toBe(0)
    expect(stopped.json.targets[0].result).toEqual({pipeline: 'counting', archived: true})
    const after = await cli(['status', '--target', 'edge-a', '--json'])
    expect(after.json.targets[0].result.pipelines).toEqual([expect.objectContaining({name: 'counting', stopped: true})])

    const back = await cli(['rollback', 'counting', '--target', 'edge-a'])
    expect(back.exitCode, back.stderr).toBe(0)
    expect(back.stdout).toMatch(/edge-a\s+ok\s+counting rolled back to version 1/)
    const running = await cli(['status', '--target', 'edge-a', '--json'])
    expect(running.json.targets[0].result.pipelines[0]).toMatchObject({name: 'counting', stopped: false})

    const unknown = await cli(['rollback', 'counting', '--to', '99', '--target', 'edge-a', '--json'])
    expect(unknown.exitCode).toBe(4)
    expect(unknown.json.targets[0]).toMatchObject({status: 'rejected'})
    expect(unknown.json.targets[0].error).toContain('No version 99')
  })

  it('pipelines delete removes a pipeline, confirmed by the node; a missing one fails', async () => {
    const deleted = await cli(['pipelines', 'delete', 'counting', '--target', 'edge-b', '--yes', '--json'])
    expect(deleted.exitCode, deleted.stderr).toBe(0)
    expect(deleted.json.targets[0].result).toEqual({pipeline: 'counting', deleted: true})
    const ls = await cli(['pipelines', 'ls', '--target', 'edge-b', '--json'])
    expect(ls.json.targets[0].result).toEqual([])
    const again = await cli(['pipelines', 'delete', 'counting', '--target', 'edge-b', '--yes'])
    expect(again.exitCode).toBe(1)
    expect(again.stdout).toContain('No pipeline "counting"')
  })
})
