// `r1 run` figures (DESIGN.md §7): start → first payload of a TypeScript plugin, payload throughput of
// one instance to the --json output, and an idle node's RSS and CPU. Needs the build (dist/).
import {spawn} from 'node:child_process'
import {cpSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {median, r1, root, row, wallMedian} from './lib.js'

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

/** A node with no instances: its RSS after 3 s, and the CPU it used over the next 5 s (heartbeats on, every 1 s). */
async function idleNode(dataDir) {
  const script = `const {startNodeServer} = await import(${JSON.stringify(join(root, 'dist/runtime/serve.js'))})
const node = await startNodeServer({dataDir: ${JSON.stringify(dataDir)}, port: 0, heartbeatIntervalMs: 1000, log: () => {}})
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
await sleep(3000)
const rss = process.memoryUsage.rss()
const before = process.cpuUsage()
await sleep(5000)
const used = process.cpuUsage(before)
process.stdout.write(JSON.stringify({rss, cpuMicros: used.user + used.system}))
await node.stop()
process.exit(0)`
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {stdio: ['ignore', 'pipe', 'inherit']})
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`idle node exited ${code}`))
      const {rss, cpuMicros} = JSON.parse(out)
      resolve({rssMiB: rss / 1048576, cpuPercent: cpuMicros / 5e6 * 100})
    })
  })
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
    rows.push(row('idle node (no instances): CPU over 5 s, heartbeat every 1 s', {value: idle.cpuPercent, unit: '% of a core', budget: 1, absolute: true}))
  } finally {
    rmSync(work, {recursive: true, force: true})
  }
  return rows
}

// `node bench/local-run.js` prints this group alone.
if (import.meta.url === `file://${process.argv[1]}`) for (const r of await localRun()) console.log(r)
