// `r1 run` figures (budgets in src/ARCHITECTURE.md): start → first payload of a TypeScript plugin, payload throughput of
// one instance to the --json output, and an idle `r1 node start`'s RSS and CPU. Needs the build (dist/).
import {spawn} from 'node:child_process'
import {cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {median, r1, root, row, startNode, stopChild, wallMedian} from './lib.js'

/** Runs `r1 run … --json`, calling `onLine` for each stdout line; resolves with the exit code. */
function runJson(args, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [r1, 'run', ...args, '--json'], {cwd: root, stdio: ['ignore', 'pipe', 'pipe']})
    let partial = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop()
      for (const line of lines) if (line) onLine(line, child)
    })
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`r1 run exited ${code}: ${stderr.slice(-500)}`))))
  })
}

async function firstPayloadMs(dir) {
  const start = process.hrtime.bigint()
  let first
  await runJson(['--dir', dir], (line, child) => {
    if (first === undefined && line.includes('"EE_EVENT_TYPE":"PAYLOAD"')) {
      first = Number(process.hrtime.bigint() - start) / 1e6
      child.kill('SIGINT')
    }
  })
  if (first === undefined) throw new Error('no payload')
  return first
}

/** A project whose one instance emits `batch` payloads per process call, as fast as it can. */
function floodProject(dir, batch) {
  writeFileSync(
    join(dir, 'config.yaml'),
    `name: flood\nversion: 0.1.0\nplugins:\n  FLOOD:\n    entry: flood.ts\npipelines:\n  flood:\n    type: Void\n    instances:\n      f1:\n        plugin: FLOOD\n        config: { process_delay: 0 }\n`,
  )
  writeFileSync(join(dir, 'flood.ts'), `import {definePlugin} from 'r1/plugin'\nlet n = 0\nexport default definePlugin({process(ctx) { for (let i = 0; i < ${batch}; i++) ctx.emit({N: n++}) }})\n`)
}

/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 10 ms). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** `r1 node start` with no instances: its RSS 3 s after start, and the CPU it uses over the next 5 s. */
async function idleNode(dataDir) {
  const node = await startNode(dataDir, {})
  try {
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const rssMiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${node.child.pid}/status`, 'utf8'))[1]) / 1024
    const before = cpuSeconds(node.child.pid)
    await new Promise((resolve) => setTimeout(resolve, 5000))
    return {rssMiB, cpuPercent: ((cpuSeconds(node.child.pid) - before) / 5) * 100}
  } finally {
    await stopChild(node.child)
  }
}

export default async function localRun() {
  const rows = []
  const work = mkdtempSync(join(tmpdir(), 'r1-bench-run-'))
  try {
    const template = join(work, 'ts-plugin')
    cpSync(join(root, 'templates', 'ts-plugin'), template, {recursive: true})
    const baseline = wallMedian(process.execPath, ['-e', '0'], {runs: 5})
    await firstPayloadMs(template) // warm-up (disk caches, esbuild binary)
    const times = []
    for (let i = 0; i < 5; i++) times.push(await firstPayloadMs(template))
    rows.push(row('r1 run: start → first payload of a TypeScript plugin, median', {value: median(times), unit: 'ms', baseline, baselineName: 'node -e 0', budget: 1000, absolute: true}))

    const flood = join(work, 'flood')
    cpSync(template, flood, {recursive: true, filter: (src) => !src.endsWith('.yaml')})
    floodProject(flood, 500)
    let count = 0
    let firstAt
    let lastAt
    await runJson(['--dir', flood, '--duration', '4'], (line) => {
      if (!line.includes('"EE_EVENT_TYPE":"PAYLOAD"')) return
      const now = process.hrtime.bigint()
      firstAt ??= now
      lastAt = now
      count++
    })
    const seconds = Number(lastAt - firstAt) / 1e9
    rows.push(row('r1 run --json: payloads/s from one instance to stdout', {value: count / seconds, unit: 'payloads/s', higherIsBetter: true}))

    const idle = await idleNode(join(work, 'idle-node'))
    rows.push(row('idle node (no instances): RSS', {value: idle.rssMiB, unit: 'MiB', budget: 80, absolute: true}))
    rows.push(row('idle node (no instances): CPU over 5 s', {value: idle.cpuPercent, unit: '% of a core', budget: 1, absolute: true}))
  } finally {
    rmSync(work, {recursive: true, force: true})
  }
  return rows
}

// `node bench/local-run.js` prints this group alone.
if (import.meta.url === `file://${process.argv[1]}`) for (const r of await localRun()) console.log(r)
