// Rollout machinery (budget in src/ARCHITECTURE.md: waves with a 0 s soak ≤ 1.5 × a plain deploy to the same nodes).
//
// Starts 20 `r1 node start` processes and deploys a small project to all of them, then, each time with
// a changed instance config (so every target really changes):
//   - a plain `r1 deploy --json` to the 20 nodes: the baseline;
//   - `r1 deploy --waves 1,25%,50%,100% --soak 0 --json` (4 waves): its ratio to the baseline;
//   - a rollout whose last wave has a node whose plugin health check fails: the time from that first
//     failing signal to the rollback confirmed on every node it reached (the command's own
//     `signalToRollbackMs`), against 2 s plus one heartbeat period (10 s, the nodes' default).
// Standalone: `node bench/rollout.js` prints the rows as one JSON line {"group":"rollout","rows":[…]}.
import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {parse, stringify} from 'yaml'
import {cli, cliKey, root, row, startAllowedNodes, stopChild} from './lib.js'

const NODES = 20
const HEARTBEAT_MS = 10_000

const PROBE_PROJECT = join(root, 'test/fixtures/projects/probe')

/** The probe fixture project (the rollout test's too) with probe-1's config. */
function writeProject(project, level, sickOn = 'none') {
  const doc = parse(readFileSync(join(PROBE_PROJECT, 'config.yaml'), 'utf8'))
  doc.pipelines.probe.instances['probe-1'].config = {level, sick_on: sickOn, process_delay: 0.5, health_interval: 0.2}
  writeFileSync(join(project, 'config.yaml'), stringify(doc))
}

export default async function rolloutBench() {
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-rollout-'))
  const nodes = []
  try {
    const {env, address} = cliKey(join(dir, 'cli'))
    const project = join(dir, 'project')
    mkdirSync(join(project, 'src'), {recursive: true})
    copyFileSync(join(PROBE_PROJECT, 'src/probe.ts'), join(project, 'src/probe.ts'))
    await startAllowedNodes(dir, NODES, address, env, nodes)
    const targets = nodes.flatMap((n) => ['--node', n.url, '--address', n.address])
    const run = (level, extra, expectStatus = 0, sickOn) => {
      writeProject(project, level, sickOn)
      const start = process.hrtime.bigint()
      const result = cli(['deploy', '--dir', project, '--json', '--max-concurrent', '20', ...targets, ...extra], env)
      const wall = Number(process.hrtime.bigint() - start) / 1e6
      if (result.status !== expectStatus) throw new Error(`r1 deploy ${extra.join(' ')} exited ${result.status}: ${result.stderr.slice(-500)}${result.stdout.slice(-500)}`)
      return {wall, doc: JSON.parse(result.stdout)}
    }
    run(1, []) // first deploy: bundles uploaded, instances created
    const plain = run(2, [])
    const waves = run(3, ['--waves', '1,25%,50%,100%', '--soak', '0'])
    if (waves.doc.waves.length !== 4) throw new Error(`expected 4 waves, got ${waves.doc.waves.length}`)
    // the last node's health check fails: wave 2 holds it alone, so waves 1 (19 nodes) soaks healthy first
    const sick = run(4, ['--waves', `${NODES - 1},100%`, '--soak', '1s'], 8, plain.doc.targets.at(-1).address)
    if (typeof sick.doc.signalToRollbackMs !== 'number') throw new Error('the aborted rollout reported no signalToRollbackMs')
    return [
      row(`r1 deploy to ${NODES} nodes (wall, a changed config)`, {value: plain.wall, unit: 'ms'}),
      row(`r1 deploy --waves 1,25%,50%,100% --soak 0 to ${NODES} nodes (wall)`, {value: waves.wall, unit: 'ms', baseline: plain.wall, baselineName: 'plain deploy', budget: 1.5}),
      row(`rollout: first failing health signal → rollback confirmed on ${NODES} nodes`, {value: sick.doc.signalToRollbackMs, unit: 'ms', budget: 2000 + HEARTBEAT_MS, absolute: true}),
    ]
  } finally {
    await Promise.all(nodes.map((node) => stopChild(node.child)))
    rmSync(dir, {recursive: true, force: true})
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await rolloutBench()
  process.stdout.write(JSON.stringify({group: 'rollout', rows}) + '\n')
}
