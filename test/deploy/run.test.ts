// deploy() and the managing operations against real nodes (in-process servers on 127.0.0.1:0) through
// the real session client; a real TCP proxy in between drops or stalls the connection mid-upload.
import {cp, mkdtemp, rm, truncate, writeFile} from 'node:fs/promises'
import {type Server, type Socket, connect as netConnect, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {ExitCode, R1Error} from '../../src/errors.js'
import type {Connect} from '../../src/fleet/engine.js'
import {sessionConnector} from '../../src/deploy/link.js'
import {instanceCommand, nodeStatus, rollbackPipeline, stopPipeline} from '../../src/deploy/manage.js'
import {onEveryTarget} from '../../src/fleet/engine.js'
import {type BuiltProject, type OpenProject, buildProject, openProject, prepareProject} from '../../src/deploy/project.js'
import {deploy} from '../../src/deploy/run.js'
import type {Target} from '../../src/deploy/targets.js'
import {sha256Hex} from '../../src/runtime/bundle.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import type {PipelineConfig} from '../../src/protocol/pipeline.js'
import {type NodeServerHandle, startNodeServer} from '../../src/runtime/serve.js'
import {until} from '../runtime/helpers.js'

const fixture = fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url))
const client = generateIdentity()
const connect = sessionConnector(client, {connectTimeoutMs: 5000})
/** Like `connect`, but the target named `picky` answers its state and then refuses every command (exit 4): a failure after the --atomic check. */
const pickyConnect: Connect = async (target, signal) => {
  const link = await connect(target, signal)
  if (target.name !== 'picky') return link
  const refuse = async (): Promise<string> => {
    throw new R1Error('UPDATE_CONFIG refused by picky', ExitCode.REJECTED, {code: 'REJECTED'})
  }
  return Object.assign(Object.create(link) as typeof link, {send: refuse})
}
const nodes: NodeServerHandle[] = []
const dirs: string[] = []
let project: OpenProject & BuiltProject

async function node(allow = [client.address]): Promise<NodeServerHandle> {
  const dataDir = await mkdtemp(join(tmpdir(), 'r1-deploy-run-'))
  dirs.push(dataDir)
  const handle = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, allow, log: () => undefined, core: {supervisor: {restartBaseMs: 50}}})
  nodes.push(handle)
  return handle
}

function targetOf(n: NodeServerHandle, name: string, url = n.url): Target {
  return {name, url, address: n.address}
}

/** A TCP proxy to `port` that, on its first connection, drops (or stalls) after `afterBytes` from the client. */
async function proxy(port: number, afterBytes: number, mode: 'drop' | 'stall'): Promise<{url: string; connections: () => number; close(): Promise<void>}> {
  let count = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((downstream) => {
    const first = count++ === 0
    const upstream = netConnect(port, '127.0.0.1')
    sockets.add(downstream).add(upstream)
    let forwarded = 0
    downstream.on('data', (chunk: Buffer) => {
      forwarded += chunk.length
      if (first && forwarded > afterBytes) {
        if (mode === 'drop') {
          downstream.destroy()
          upstream.destroy()
        }
        return // stall: swallow everything from here on, keep the connection open
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => downstream.write(chunk))
    const end = () => {
      downstream.destroy()
      upstream.destroy()
    }
    downstream.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port: proxyPort} = server.address() as {port: number}
  return {
    url: `ws://127.0.0.1:${proxyPort}`,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** The fixture's pipeline with a bigger bundle (> 2 chunks of 512 KiB) that still runs. */
function withBigBundle(): {pipelines: PipelineConfig[]; bundles: Map<string, Uint8Array>} {
  const [hash, bytes] = [...project.bundles][0]
  const padded = Buffer.concat([Buffer.from(bytes), Buffer.from(`\n/*${'x'.repeat(1_300_000)}*/\n`)])
  const big = sha256Hex(padded)
  const pipelines = project.pipelines.map((p) => ({...p, NAME: 'big', R1_BUNDLES: Object.fromEntries(Object.entries(p.R1_BUNDLES as Record<string, string>).map(([s, h]) => [s, h === hash ? big : h]))}))
  return {pipelines, bundles: new Map([[big, new Uint8Array(padded)]])}
}

beforeAll(async () => {
  project = await prepareProject(fixture)
}, 60_000)

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await Promise.all(dirs.map((d) => rm(d, {recursive: true, force: true})))
})

describe('deploy()', () => {
  it('deploys to several nodes, then finds nothing to do, then sends only the changed instance', async () => {
    const [a, b] = [await node(), await node()]
    const targets = [targetOf(a, 'a'), targetOf(b, 'b')]
    const steps: string[] = []
    const first = await deploy({targets, project: {pipelines: project.pipelines, bundles: project.bundles}, connect, waitTimeoutMs: 30_000, onStep: (t, s) => steps.push(`${t.name}:${s}`), onDone: (t, r) => steps.push(`${t.name}:${r.status}`)})
    expect(first.exitCode).toBe(0)
    expect(first.targets.map((t) => t.status)).toEqual(['deployed', 'deployed'])
    expect(first.targets[0].uploaded).toEqual([...project.bundles.keys()])
    expect(steps).toEqual(expect.arrayContaining(['a:connecting', 'a:uploading', 'a:confirming', 'b:deployed']))
    expect(a.core.state()[0].instances[0].status).toBe('running')

    const again = await deploy({targets, project: {pipelines: project.pipelines, bundles: project.bundles}, connect})
    expect(again.targets.map((t) => t.status)).toEqual(['unchanged', 'unchanged'])

    const changed = structuredClone(project.pipelines)
    changed[0].PLUGINS[0].INSTANCES[0].STEP = 5
    const third = await deploy({targets: [targets[0]], project: {pipelines: changed, bundles: project.bundles}, connect, waitTimeoutMs: 30_000})
    expect(third.targets[0].status).toBe('deployed')
    expect(third.targets[0].plan!.pipelines[0].command!.action).toBe('BATCH_UPDATE_PIPELINE_INSTANCE')
    expect(a.core.state()[0].config.PLUGINS).toEqual(changed[0].PLUGINS)
  })

  it('a bundle found corrupt on the node while its instance runs is uploaded again; the instance restarts and confirms; then unchanged', async () => {
    const a = await node()
    const target = targetOf(a, 'a')
    const first = await deploy({targets: [target], project: {pipelines: project.pipelines, bundles: project.bundles}, connect, waitTimeoutMs: 30_000})
    expect(first.targets[0].status).toBe('deployed')
    const [hash] = [...project.bundles.keys()]
    const before = a.core.state()[0].instances[0]
    expect(before.status).toBe('running')
    // the running process loaded its code before; the file on disk is damaged under it
    await truncate(join(a.dataDir, 'bundles', `${hash}.mjs`), 64)

    const repaired = await deploy({targets: [target], project: {pipelines: project.pipelines, bundles: project.bundles}, connect, waitTimeoutMs: 30_000})
    expect(repaired.targets[0].error).toBeUndefined()
    expect(repaired.targets[0].status).toBe('deployed')
    expect(repaired.targets[0].uploaded).toEqual([hash])
    const plan = repaired.targets[0].plan!.pipelines[0]
    expect(plan.command!.action).toBe('UPDATE_CONFIG')
    expect(plan.instances.map((i) => i.change)).toEqual(plan.instances.map(() => 'restart'))
    expect(a.core.hasBundle(hash)).toBe(true)
    const after = a.core.state()[0].instances[0]
    expect(after.status).toBe('running')
    expect(after.pid).not.toBe(before.pid)

    const again = await deploy({targets: [target], project: {pipelines: project.pipelines, bundles: project.bundles}, connect})
    expect(again.targets[0].status).toBe('unchanged')
    expect(again.targets[0].uploaded).toEqual([])
  })

  it('a plugin whose config() throws fails that target at once with the reason', async () => {
    const a = await node()
    await deploy({targets: [targetOf(a, 'a')], project: {pipelines: project.pipelines, bundles: project.bundles}, connect, waitTimeoutMs: 30_000})
    const bad = structuredClone(project.pipelines)
    bad[0].PLUGINS[0].INSTANCES[0].STEP = -1
    const result = await deploy({targets: [targetOf(a, 'a')], project: {pipelines: bad, bundles: project.bundles}, connect, waitTimeoutMs: 600_000})
    expect(result.targets[0].status).toBe('failed')
    expect(result.targets[0].error).toContain('STEP must not be negative')
    expect(result.exitCode).toBe(1)
  })

  it('an instance that throws on its first run fails the wait at once with its error (no timeout)', async () => {
    const a = await node()
    const broken: PipelineConfig = {NAME: 'broken', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'bad', CODE: "throw new Error('sensor exploded')", PROCESS_DELAY: 0.1}]}]}
    const result = await deploy({targets: [targetOf(a, 'a')], project: {pipelines: [broken], bundles: new Map()}, connect, waitTimeoutMs: 600_000})
    expect(result.targets[0].status).toBe('failed')
    expect(result.targets[0].error).toContain('sensor exploded')
  })

  it('a bundle that does not build ends the deploy with exit 3 and applies nothing', async () => {
    const a = await node()
    const dir = await mkdtemp(join(tmpdir(), 'r1-deploy-broken-'))
    dirs.push(dir)
    await cp(fixture, dir, {recursive: true})
    await writeFile(join(dir, 'src/counter.ts'), 'export default definePlugin({ process( {\n')
    const broken = await openProject(dir)
    await expect(deploy({targets: [targetOf(a, 'a')], project: buildProject(broken), connect})).rejects.toMatchObject({exitCode: 3, code: 'BUNDLE_FAILED'})
    expect(a.core.state()).toEqual([])
    expect(() => buildProject(broken, ['nope'])).toThrow(/Unknown pipeline "nope"/)
  })

  it('a small bundle travels inside its UPDATE_CONFIG to a node that takes it inline: one command, no upload', async () => {
    const a = await node()
    const sent: string[] = []
    const watching: Connect = async (target, signal) => {
      const link = await connect(target, signal)
      return Object.assign(Object.create(link) as typeof link, {
        send: ((action, payload, options) => (sent.push(action), link.send(action, payload, options))) as typeof link.send,
        putBundle: (hash: string, bytes: Uint8Array) => (sent.push('R1_BUNDLE_PUT'), link.putBundle(hash, bytes)),
      })
    }
    const result = await deploy({targets: [targetOf(a, 'a')], project: {pipelines: project.pipelines, bundles: project.bundles}, connect: watching, waitTimeoutMs: 30_000})
    expect(result.targets[0].status).toBe('deployed')
    expect(result.targets[0].uploaded).toEqual([...project.bundles.keys()])
    expect(sent).toEqual(project.pipelines.map(() => 'UPDATE_CONFIG'))
    for (const hash of project.bundles.keys()) expect(a.core.hasBundle(hash)).toBe(true)
    // the config the node keeps is the one planned, without the bundle bytes: the next deploy finds nothing to do
    const again = await deploy({targets: [targetOf(a, 'a')], project: {pipelines: project.pipelines, bundles: project.bundles}, connect, waitTimeoutMs: 30_000})
    expect(again.targets[0].status).toBe('unchanged')
  })

  it('retries an upload whose connection drops, on a fresh session', async () => {
    const a = await node()
    const p = await proxy(Number(new URL(a.url).port), 700_000, 'drop')
    try {
      const {pipelines, bundles} = withBigBundle()
      const result = await deploy({targets: [targetOf(a, 'a', p.url)], project: {pipelines, bundles}, connect, waitTimeoutMs: 30_000})
      expect(result.targets[0].error).toBeUndefined()
      expect(result.targets[0].status).toBe('deployed')
      expect(result.targets[0].uploaded).toEqual([...bundles.keys()])
      expect(p.connections()).toBeGreaterThanOrEqual(2)
      expect(a.core.hasBundle([...bundles.keys()][0])).toBe(true)
    } finally {
      await p.close()
    }
  })

  it('a stalled upload is an error (timeout), not a hang', async () => {
    const a = await node()
    const p = await proxy(Number(new URL(a.url).port), 700_000, 'stall')
    try {
      const {pipelines, bundles} = withBigBundle()
      const stalling: Connect = sessionConnector(client, {connectTimeoutMs: 5000, requestTimeoutMs: 1500})
      const result = await deploy({targets: [targetOf(a, 'a', p.url)], project: {pipelines, bundles}, connect: stalling})
      expect(result.targets[0].status).toBe('timeout')
      expect(result.targets[0].error).toContain('R1_BUNDLE_PUT')
      expect(result.exitCode).toBe(5)
    } finally {
      await p.close()
    }
  })

  it('reports unreachable and rejecting targets per target; --atomic puts back the ones that took it', async () => {
    const [good, strict] = [await node(), await node([])]
    const dead = {name: 'dead', url: 'ws://127.0.0.1:9', address: generateIdentity().address}
    const mixed = await deploy({targets: [targetOf(good, 'good'), dead], project: {pipelines: project.pipelines, bundles: project.bundles}, connect, waitTimeoutMs: 30_000})
    expect(mixed.exitCode).toBe(6)
    expect(mixed.targets.map((t) => t.status)).toEqual(['deployed', 'unreachable'])

    const refused = await deploy({targets: [targetOf(strict, 'strict')], project: {pipelines: project.pipelines, bundles: project.bundles}, connect})
    expect(refused.exitCode).toBe(4)
    expect(refused.targets[0].error).toMatch(/allow/i)

    const changed = structuredClone(project.pipelines)
    changed[0].PLUGINS[0].INSTANCES[0].STEP = 7
    // a target that cannot be read stops --atomic before anything is applied anywhere
    const keptBefore = good.core.versions(changed[0].NAME).length
    for (const other of [targetOf(strict, 'strict'), dead]) {
      const checked = await deploy({targets: [targetOf(good, 'good'), other], project: {pipelines: changed, bundles: project.bundles}, connect, atomic: true, waitTimeoutMs: 30_000})
      expect(checked.targets.map((t) => t.status)).toEqual(['skipped', other === dead ? 'unreachable' : 'rejected'])
      expect(checked.exitCode).toBe(other === dead ? 7 : 4)
      expect(good.core.versions(changed[0].NAME)).toHaveLength(keptBefore)
      expect(good.core.state()[0].config.PLUGINS).toEqual(project.pipelines[0].PLUGINS)
    }

    const picky = await node()
    const atomic = await deploy({targets: [targetOf(good, 'good'), targetOf(picky, 'picky')], project: {pipelines: changed, bundles: project.bundles}, connect: pickyConnect, atomic: true, maxConcurrent: 1, waitTimeoutMs: 30_000})
    expect(atomic.exitCode).toBe(6)
    expect(atomic.targets.map((t) => t.status)).toEqual(['rolled-back', 'rejected'])
    expect(atomic.targets[0].rollback).toEqual({ok: true})
    expect(good.core.state()[0].config.PLUGINS).toEqual(project.pipelines[0].PLUGINS)
  })
})

describe('--atomic and a pipeline the node had stopped', () => {
  it('archives it again as it was, keeping its versions, instead of deleting it', async () => {
    const [good, picky] = [await node(), await node()]
    const name = project.pipelines[0].NAME
    const first = await deploy({targets: [targetOf(good, 'good')], project: {pipelines: project.pipelines, bundles: project.bundles}, connect, waitTimeoutMs: 30_000})
    expect(first.exitCode).toBe(0)
    const stopped = await onEveryTarget({targets: [targetOf(good, 'good')], connect}, (link) => stopPipeline(link, name, 30_000))
    expect(stopped.exitCode).toBe(0)
    const keptBefore = good.core.versions(name).length

    const changed = structuredClone(project.pipelines)
    changed[0].PLUGINS[0].INSTANCES[0].STEP = 9
    const atomic = await deploy({targets: [targetOf(good, 'good'), targetOf(picky, 'picky')], project: {pipelines: changed, bundles: project.bundles}, connect: pickyConnect, atomic: true, maxConcurrent: 1, waitTimeoutMs: 30_000})
    expect(atomic.targets.map((t) => t.status)).toEqual(['rolled-back', 'rejected'])
    expect(atomic.targets[0].rollback).toEqual({ok: true})
    const after = good.core.state().find((p) => p.name === name)!
    expect(after.archived).toBe(true) // stopped again, not running the failed deploy's config, not gone
    expect(after.config.PLUGINS).toEqual(project.pipelines[0].PLUGINS)
    expect(good.core.versions(name).length).toBeGreaterThan(keptBefore) // nothing kept was dropped
  })
})

describe('watching a node while deploying', () => {
  it("a deploy's link streams notifications only; a rollout's (heartbeats) gets the heartbeats too", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'r1-deploy-run-'))
    dirs.push(dataDir)
    const beating = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 100, allow: [client.address], log: () => undefined})
    nodes.push(beating)
    const plain = await connect(targetOf(beating, 'plain'))
    const soak = await connect(targetOf(beating, 'soak'))
    try {
      const seen = {plain: [] as string[], soak: [] as string[]}
      plain.onEvent((e) => seen.plain.push(e.EE_EVENT_TYPE))
      soak.onEvent((e) => seen.soak.push(e.EE_EVENT_TYPE))
      await Promise.all([plain.watchEvents(), soak.watchEvents({heartbeats: true})])
      await until(() => seen.soak.filter((t) => t === 'HEARTBEAT').length >= 3 || undefined, 10_000, 'three heartbeats on the watching link')
      expect(seen.plain).not.toContain('HEARTBEAT')
    } finally {
      await Promise.all([plain.close(), soak.close()])
    }
  })
})

describe('managing operations', () => {
  it('status of a node that does not allow this key falls back to its public heartbeat', async () => {
    const strict = await node([])
    const status = await onEveryTarget({targets: [targetOf(strict, 'strict')], connect}, (link) => nodeStatus(link))
    expect(status.exitCode).toBe(0)
    expect(status.targets[0].result).toMatchObject({online: true, address: strict.address, pipelines: []})
    expect(status.targets[0].result!.restricted).toMatch(/allow/i)
  })

  it('status, command, stop and rollback, each confirmed by the node', async () => {
    const a = await node()
    const targets = [targetOf(a, 'a')]
    await deploy({targets, project: {pipelines: project.pipelines, bundles: project.bundles}, connect, waitTimeoutMs: 30_000})
    const name = project.pipelines[0].NAME
    const instance = project.pipelines[0].PLUGINS[0].INSTANCES[0].INSTANCE_ID

    const status = await onEveryTarget({targets, connect}, (link) => nodeStatus(link))
    expect(status.exitCode).toBe(0)
    expect(status.targets[0].result!.pipelines[0]).toMatchObject({name, stopped: false, instances: [{instanceId: instance, status: 'running'}]})
    expect(status.targets[0].result!.version).toBeTruthy()

    const command = await onEveryTarget({targets, connect}, (link) => instanceCommand(link, {pipeline: name, instanceId: instance, command: 'RESET', params: {TO: 100}}, 30_000))
    expect(command.targets[0].result).toMatchObject({command: 'RESET', result: {COUNT: 100}})
    const unknown = await onEveryTarget({targets, connect}, (link) => instanceCommand(link, {pipeline: name, instanceId: instance, command: 'EXPLODE', params: {}}, 30_000))
    expect(unknown.targets[0].status).toBe('failed')
    expect(unknown.targets[0].error).toContain('unknown command EXPLODE')

    const stopped = await onEveryTarget({targets, connect}, (link) => stopPipeline(link, name, 30_000))
    expect(stopped.targets[0].result).toEqual({pipeline: name, archived: true})
    expect(a.core.state()[0].archived).toBe(true)

    const back = await onEveryTarget({targets, connect}, (link) => rollbackPipeline(link, name, undefined, 30_000))
    expect(back.exitCode).toBe(0)
    expect(back.targets[0].result).toMatchObject({pipeline: name, restored: 1})
    expect(a.core.state()[0].archived).toBe(false)

    const missing = await onEveryTarget({targets, connect}, (link) => stopPipeline(link, 'nope', 30_000))
    expect(missing.targets[0].status).toBe('failed')
    expect(missing.targets[0].error).toContain('No pipeline "nope"')
  })
})
