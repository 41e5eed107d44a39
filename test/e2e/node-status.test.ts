// `r1 node start --run-as/--max-memory-mb` and what `r1 status` shows: the built CLI against real node processes.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import {cliKeyPath, requireIdentity} from '../../src/protocol/identity.js'
import {Session} from '../../src/session/index.js'
import {type NodeProcess, cliIdentity, r1, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-node-status-')
const nodes: NodeProcess[] = []
let cli: {env: Record<string, string>; address: string}

beforeAll(async () => {
  cli = await cliIdentity(root.dir)
})
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  root.dispose()
})

async function node(options: Parameters<typeof startNode>[0]): Promise<NodeProcess> {
  const started = await startNode(options)
  nodes.push(started)
  return started
}

const statusOf = (n: NodeProcess, json: boolean) => r1(['status', '--node', n.url, '--address', n.address, ...(json ? ['--json'] : [])], {env: cli.env})

/** Uid and gid lines of /proc/<pid>/status: `[real, effective, saved, fs]`. */
function idsOf(pid: number): {uid: number[]; gid: number[]} {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const ids = (key: string) => /^\w+:\s+(.*)$/m.exec(status.split('\n').find((l) => l.startsWith(key + ':')) ?? '')![1]!.trim().split(/\s+/).map(Number)
  return {uid: ids('Uid'), gid: ids('Gid')}
}

describe('r1 node start --run-as', () => {
  it('an unknown user: exit 2 naming the user and the flag, and the node never starts', async () => {
    const dataDir = join(root.dir, 'unknown-user')
    for (const json of [false, true]) {
      const run = await r1(['node', 'start', '--port', '0', '--data-dir', dataDir, '--run-as', 'no-such-user-r1', ...(json ? ['--json'] : [])])
      expect(run.exitCode).toBe(2)
      if (json) expect(run.json.error).toMatchObject({code: 'RUN_AS_UNKNOWN', exitCode: 2, message: expect.stringContaining('no-such-user-r1')})
      else expect(run.stderr).toMatch(/--run-as no-such-user-r1: No user "no-such-user-r1"[\s\S]*→ .*--run-as none/)
    }
  })

  it('--run-as none on a root node runs instances as root, with the --max-memory-mb cap', async (context) => {
    if (process.getuid?.() !== 0) {
      console.log('skipped: --run-as none only changes anything when the node runs as root (this test is not root)')
      context.skip()
    }
    const dataDir = join(root.dir, 'run-as-none')
    const n = await node({dataDir, allow: [cli.address], extraArgs: ['--run-as', 'none', '--max-memory-mb', '300']})
    const identity = await requireIdentity(cliKeyPath(cli.env))
    const deployer = await Session.connect({url: n.url, nodeAddress: n.address, identity})
    try {
      const pipeline = {NAME: 'as-root', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'who', PROCESS_DELAY: 1, CODE: 'return {ok: true}'}]}]}
      await deployer.send('UPDATE_CONFIG', pipeline, {expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, instance: 'who'}]})
    } finally {
      await deployer.close()
    }
    const status = await statusOf(n, true)
    expect(status.exitCode, status.stderr).toBe(0)
    const instance = status.json.targets[0].result.pipelines[0].instances[0]
    expect(instance).toMatchObject({instanceId: 'who', pid: expect.any(Number)})
    expect(idsOf(instance.pid)).toMatchObject({uid: [0, 0, 0, 0], gid: [0, 0, 0, 0]})
    expect(readFileSync(`/proc/${instance.pid}/cmdline`, 'utf8').split('\0')).toContain('--max-old-space-size=300')
  })
})

describe('r1 status', () => {
  it('from a key the node does not allow: its public heartbeat, "pipelines hidden", exit 4 (human and --json)', async () => {
    const n = await node({dataDir: join(root.dir, 'strict')})
    const json = await statusOf(n, true)
    expect(json.exitCode).toBe(4)
    const target = json.json.targets[0]
    expect(target).toMatchObject({status: 'rejected', ok: false, error: `your key is not on this node's allow-list (r1 node allow ${cli.address})`})
    expect(target.result).toMatchObject({online: true, address: n.address, pipelinesHidden: true, pipelines: [], warnings: []})
    expect(target.result.uptime).toBeGreaterThan(0)

    const human = await statusOf(n, false)
    expect(human.exitCode).toBe(4)
    expect(human.stdout).toContain(`pipelines hidden: your key is not on this node's allow-list (r1 node allow ${cli.address})`)
    expect(human.stdout).not.toContain('no pipelines')
    expect(human.stderr).toMatch(/✖ Status failed on 1 of 1 target[\s\S]*→ /)
  })

  it("shows the node's WARNINGS (a corrupt journal.json set aside), human and --json", async () => {
    const dataDir = join(root.dir, 'corrupt-journal')
    mkdirSync(join(dataDir, 'journal'), {recursive: true})
    writeFileSync(join(dataDir, 'journal', 'journal.json'), '{"truncated": ')
    const n = await node({dataDir, allow: [cli.address]})
    const json = await statusOf(n, true)
    expect(json.exitCode, json.stderr).toBe(0)
    const warnings = json.json.targets[0].result.warnings as string[]
    expect(warnings).toEqual([expect.stringMatching(/journal\.json was corrupt/)])
    const human = await statusOf(n, false)
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toContain(`warning: ${warnings[0]!.split('\n')[0]}`)
  })
})
