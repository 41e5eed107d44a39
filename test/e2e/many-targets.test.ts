// A fleet command with many targets in flight at once: each waits on Ctrl-C's signal, which must not read as a
// leak; and many deploys of one config racing to one node are each confirmed. Past 20 targets, progress and
// status are one line for the fleet and one row per node.
import {appendFileSync, cpSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, expect, it} from 'vitest'
import {type NodeProcess, cliIdentity, r1, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-many-')
let node: NodeProcess | undefined
let fleetNode: NodeProcess | undefined

afterAll(async () => {
  await Promise.all([node?.stop(), fleetNode?.stop()])
  root.dispose()
})

it('a deploy to 12 targets at once (one node under 12 names, racing) is confirmed by all, with no listener-leak warning on stderr', async () => {
  const {env, address} = await cliIdentity(root.dir)
  node = await startNode({dataDir: join(root.dir, 'node'), allow: [address]})
  const project = join(root.dir, 'project')
  cpSync(fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url)), project, {recursive: true})
  // one node under 12 names: a path in the url makes each its own target, with its own session
  appendFileSync(join(project, 'config.yaml'), `targets:\n${Array.from({length: 12}, (_, i) => `  name-${i}: { url: "${node!.url}/name-${i}", address: "${node!.address}" }\n`).join('')}`)
  const result = await r1(['deploy', '--all', '--max-concurrent', '12', '--wait-timeout', '30', '--json', '--dir', project], {env})
  expect(result.exitCode, result.stdout + result.stderr).toBe(0)
  expect(result.json.targets).toHaveLength(12)
  expect(result.stderr).not.toContain('MaxListenersExceededWarning')
}, 60_000)

it('past 20 targets, a deploy shows one progress line for the fleet with each failure, and status one row per node; both end with the counts', async () => {
  const {env, address} = await cliIdentity(root.dir, 'fleet-cli')
  const dead = (await cliIdentity(root.dir, 'dead')).address
  fleetNode = await startNode({dataDir: join(root.dir, 'fleet-node'), allow: [address]})
  const project = join(root.dir, 'fleet-project')
  cpSync(fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url)), project, {recursive: true})
  const names = Array.from({length: 24}, (_, i) => `  name-${i}: { url: "${fleetNode!.url}/name-${i}", address: "${fleetNode!.address}" }\n`)
  const deadOnes = ['dead-a', 'dead-b'].map((name) => `  ${name}: { url: "ws://127.0.0.1:9/${name}", address: "${dead}" }\n`)
  appendFileSync(join(project, 'config.yaml'), `targets:\n${[...names, ...deadOnes].join('')}`)
  const flags = ['--all', '--max-concurrent', '26', '--connect-timeout', '5', '--wait-timeout', '30', '--dir', project]

  const deployed = await r1(['deploy', ...flags], {env})
  expect(deployed.exitCode, deployed.stdout + deployed.stderr).toBe(6)
  // stderr: the fleet line as it started and as it ended, and a line for each failure; no line per target
  expect(deployed.stderr).toContain('26 targets: 26 in progress')
  expect(deployed.stderr).toContain('26 targets: 24 deployed, 2 unreachable')
  for (const name of ['dead-a', 'dead-b']) expect(deployed.stderr.match(new RegExp(`^.*${name}: unreachable — .*$`, 'gm'))).toHaveLength(2) // as it came, and in the closing report
  expect(deployed.stderr).not.toMatch(/name-\d+: (queued|deployed)/)
  // stdout: the per-target table; stderr, after the progress, the counts
  expect(deployed.stdout).toMatch(/^name-23\s+deployed\s/m)
  expect(deployed.stderr).toMatch(/^26 targets: 24 deployed, 2 unreachable$/m)

  const status = await r1(['status', ...flags], {env})
  expect(status.exitCode, status.stdout + status.stderr).toBe(6)
  const lines = status.stdout.trimEnd().split('\n')
  expect(lines[0]).toMatch(/^TARGET\s+STATE\s+VERSION/)
  expect(lines.filter((l) => /^name-\d+\s+online\s.*\s1 running\s+0xai_\S+$/.test(l))).toHaveLength(24)
  expect(lines.filter((l) => /^dead-[ab]\s+unreachable\s/.test(l))).toHaveLength(2)
  expect(lines.at(-1)).toMatch(/^One node in full: r1 status --target <name>/)
  expect(status.stderr).toMatch(/^26 targets: 24 ok, 2 unreachable$/m)
}, 90_000)
