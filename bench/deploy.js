// `r1 deploy` fan-out (budget in src/ARCHITECTURE.md: deploying one project to 20 local nodes ≤ 3 s in all).
//
// For the lead's bench/run.js: the default export starts 26 separate `r1 node start` processes
// (one set of 1, one of 5, one of 20, so every deploy is a fresh one: bundle upload, UPDATE_CONFIG,
// waiting for PIPELINE_OK and PLUGIN_CONFIG_OK), deploys a scaffolded ts-plugin project to each set
// with `r1 deploy --json`, and returns rows made with lib.js `row()`:
//   - "r1 deploy to N node(s) (wall)" for N = 1, 5, 20, as a ratio to the 1-node figure;
//     the 20-node row carries the absolute 3000 ms budget;
//   - "r1 deploy to 20 nodes: slowest target (in-process)" from the command's own per-target timings.
// Standalone: `node bench/deploy.js` prints the rows as one JSON line {"group":"deploy","rows":[…]}.
// Needs a build (dist/) like every bench group.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {cli, cliKey, row, startAllowedNodes, stopChild} from './lib.js'

const SETS = [1, 5, 20]

export default async function deployBench() {
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-deploy-'))
  const nodes = []
  try {
    const {env, address} = cliKey(join(dir, 'cli'))
    const project = join(dir, 'project')
    const init = cli(['init', project, '--template', 'ts-plugin', '--yes', '--no-install', '--no-git'], env)
    if (init.status !== 0) throw new Error(`r1 init failed: ${init.stderr}`)

    await startAllowedNodes(dir, SETS.reduce((a, b) => a + b, 0), address, env, nodes)

    const figures = []
    let offset = 0
    for (const count of SETS) {
      const set = nodes.slice(offset, offset + count)
      offset += count
      const args = ['deploy', '--dir', project, '--json', '--max-concurrent', '20', ...set.flatMap((n) => ['--node', n.url, '--address', n.address])]
      const start = process.hrtime.bigint()
      const result = cli(args, env)
      const wall = Number(process.hrtime.bigint() - start) / 1e6
      if (result.status !== 0) throw new Error(`r1 deploy to ${count} node(s) exited ${result.status}: ${result.stderr.slice(-500)}`)
      const doc = JSON.parse(result.stdout)
      const slowest = Math.max(...doc.targets.map((t) => t.timings.total))
      figures.push({count, wall, slowest})
    }
    const base = figures[0].wall
    const rows = figures.map((f) =>
      row(`r1 deploy to ${f.count} node${f.count === 1 ? '' : 's'} (wall)`, {
        value: f.wall,
        unit: 'ms',
        ...(f.count === 1 ? {} : {baseline: base, baselineName: '1 node'}),
        ...(f.count === 20 ? {budget: 3000, absolute: true} : {}),
      }),
    )
    const last = figures.at(-1)
    rows.push(row('r1 deploy to 20 nodes: slowest target (in-process)', {value: last.slowest, unit: 'ms'}))
    return rows
  } finally {
    await Promise.all(nodes.map((node) => stopChild(node.child)))
    rmSync(dir, {recursive: true, force: true})
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await deployBench()
  process.stdout.write(JSON.stringify({group: 'deploy', rows}) + '\n')
}
