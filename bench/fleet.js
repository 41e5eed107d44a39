// A fleet over a broker (budget in src/ARCHITECTURE.md: 1,000 simulated nodes, deploy confirmed by all ≤ 5 s
// and ≤ 10 × the raw broker echo floor; status ≤ 2 s; CLI RSS ≤ 250 MiB), for N = 100 and 1,000 nodes, and
// 10,000 with R1_BENCH_FLEET_10K=1 (on a 2-core machine 10,000 nodes take minutes to set up).
//
// Each size gets a fresh embedded broker (`r1 broker start`, its own process, so its peak RSS is its own).
// 1. Raw floor, same broker, same run: N plain mqtt.js connections in one process (fleet-echo.js) each echo
//    an unsigned 1 KiB message from its config topic to the sender's targeted topic; the driver sends one to
//    every node at once and times until all N echoes are back (QoS 1 both ways; median of 3 after a warm-up).
// 2. N simulated nodes, up to 2,500 per process (fleet-nodes.js): the real node front on the broker, with the
//    instances replaced by an in-process stub that confirms at once (labelled so in every row). The
//    built CLI, with the N nodes as broker targets in config.yaml: `r1 status --all`, `r1 deploy --all` of
//    the ts-plugin template's pipeline (confirmed by PIPELINE_OK and PLUGIN_CONFIG_OK from every node), the
//    same again after the plugin changed (a new bundle; every instance replaced), `r1 command --all`; wall
//    time and the CLI's peak RSS of each.
// Each N > 100 row is shown as a ratio to the 100-node figure, so growth reads against N (×10 per step is linear).
// Standalone: `node bench/fleet.js` prints the rows as one JSON line {"group":"fleet","rows":[…]}.
import {spawn} from 'node:child_process'
import {appendFileSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import mqtt from 'mqtt'
import {cli, cliKey, firstJsonLine, median, r1, root, row, simulatedAddress, startR1, stopChild} from './lib.js'

const SIZES = process.env.R1_BENCH_FLEET_10K === '1' ? [100, 1000, 10_000] : [100, 1000]
const ROUNDS = 3
const ROOT = 'naeural'
const MESSAGE = Buffer.alloc(1024, 'x')
const NODES_PER_PROCESS = 2500

/** Peak resident memory (VmHWM) of a process, MiB. */
function peakRssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)[1]) / 1024
}

/** CPU time (user + system) a process has used so far, ms. */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // utime, stime in clock ticks (100 Hz on Linux)
}

/** Runs the built CLI to completion, sampling its peak RSS (VmHWM) and CPU time until it exits; never throws on a non-zero exit. */
function timedCli(args, env) {
  const child = spawn(process.execPath, [r1, ...args], {cwd: root, env: {...process.env, NO_COLOR: '1', CI: '1', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  let peakRss = 0
  let cpu = 0
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const sample = () => {
    try {
      peakRss = Math.max(peakRss, peakRssMiB(child.pid))
      cpu = cpuMs(child.pid)
    } catch {
      // it has just exited
    }
  }
  const timer = setInterval(sample, 20)
  const start = process.hrtime.bigint()
  return new Promise((resolve) => {
    child.once('exit', (status) => {
      const wall = Number(process.hrtime.bigint() - start) / 1e6
      clearInterval(timer)
      resolve({status, wall, cpu, peakRss, stdout, stderr})
    })
  })
}

/** How many targets of a CLI result reached one of `okStatus`; `problem` says why not all did (exit code, first error). */
function confirmed(result, count, okStatus) {
  let targets = []
  try {
    targets = JSON.parse(result.stdout).targets ?? []
  } catch {
    // no JSON document: the exit code and stderr say why
  }
  const ok = targets.filter((t) => okStatus.includes(t.status)).length
  const firstError = targets.find((t) => !okStatus.includes(t.status))?.error ?? result.stderr.trim().split('\n').at(-1)
  return {...result, ok, problem: result.status === 0 && ok === count ? undefined : `exit ${result.status}, ${ok} of ${count} targets confirmed in ${Math.round(result.wall)} ms (first error: ${firstError})`}
}

/** Sends MESSAGE to every node's config topic at once; resolves with the ms until every echo is back. */
async function echoRound(client, nodes, targeted) {
  const pending = new Set(nodes.map((_, i) => i))
  const start = process.hrtime.bigint()
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${pending.size} of ${nodes.length} echoes missing after 120 s`)), 120_000)
    const onMessage = (topic, payload) => {
      if (topic !== targeted) return
      pending.delete(payload.readUInt32BE(0))
      if (pending.size > 0) return
      clearTimeout(timer)
      client.off('message', onMessage)
      resolve(Number(process.hrtime.bigint() - start) / 1e6)
    }
    client.on('message', onMessage)
  })
  nodes.forEach((address, i) => {
    const message = Buffer.from(MESSAGE)
    message.writeUInt32BE(i, 0)
    client.publish(`${ROOT}/${address}/config`, message, {qos: 1})
  })
  return done
}

/** The raw floor on `broker`: N echoing connections, all connected; the median echo round trip to all. */
async function rawFloor(broker, count) {
  let echo
  let client
  try {
    const clientAddress = simulatedAddress(-1)
    const targeted = `${ROOT}/${clientAddress}/payloads`
    const script = fileURLToPath(new URL('fleet-echo.js', import.meta.url))
    echo = await firstJsonLine(spawn(process.execPath, [script, broker.url, ROOT, clientAddress, String(count)], {stdio: ['pipe', 'pipe', 'pipe']}), 'fleet-echo.js', 600_000)
    client = await mqtt.connectAsync(broker.url, {protocolVersion: 4, clientId: `bench-client-${count}`, reconnectPeriod: 0})
    await client.subscribeAsync(targeted, {qos: 1})
    const nodes = Array.from({length: count}, (_, i) => simulatedAddress(i))
    await echoRound(client, nodes, targeted) // warm-up
    const rounds = []
    for (let i = 0; i < ROUNDS; i++) rounds.push(await echoRound(client, nodes, targeted))
    return {connected: echo.connectedMs, floor: median(rounds)}
  } finally {
    await client?.endAsync(true)
    if (echo) {
      echo.child.stdin.end()
      await stopChild(echo.child)
    }
  }
}

/** N simulated nodes (fleet-nodes.js) on `broker`, driven by the built CLI from a project that names them as broker targets. */
async function simulatedFleet(broker, count, dir) {
  const {env, address} = cliKey(join(dir, `cli-${count}`))
  const project = join(dir, `project-${count}`)
  const init = cli(['init', project, '--template', 'ts-plugin', '--yes', '--no-install', '--no-git'], env)
  if (init.status !== 0) throw new Error(`r1 init failed: ${init.stderr}`)
  const script = fileURLToPath(new URL('fleet-nodes.js', import.meta.url))
  // NODES_PER_PROCESS nodes at most in one process: each node holds a few file descriptors, and the
  // process's limit (20,000 on these machines) must not be what a large fleet measures
  const slices = Array.from({length: Math.ceil(count / NODES_PER_PROCESS)}, (_, k) => ({first: k * NODES_PER_PROCESS, size: Math.min(NODES_PER_PROCESS, count - k * NODES_PER_PROCESS)}))
  // the cores shared among the processes: more event loops than cores only adds switching between them
  const threads = Math.max(1, Math.floor(availableParallelism() / slices.length))
  const started = process.hrtime.bigint()
  const spawned = slices.map(({first, size}) =>
    firstJsonLine(spawn(process.execPath, ['--max-old-space-size=16384', script, broker.url, String(size), address, join(dir, `nodes-${count}-${first}`), String(first), String(threads)], {stdio: ['pipe', 'pipe', 'pipe'], env: {...process.env, UV_THREADPOOL_SIZE: '64'}}), 'fleet-nodes.js', 600_000),
  )
  const settled = await Promise.allSettled(spawned)
  const groups = settled.filter((r) => r.status === 'fulfilled').map((r) => r.value)
  const nodesCpu = () => groups.reduce((sum, g) => sum + cpuMs(g.child.pid), 0)
  try {
    const failed = settled.find((r) => r.status === 'rejected')
    if (failed) throw failed.reason
    const addresses = groups.flatMap((g) => g.addresses)
    const startedMs = Number(process.hrtime.bigint() - started) / 1e6
    appendFileSync(join(project, 'config.yaml'), `\nbrokers:\n  bench: { url: "${broker.url}" }\ntargets:\n${addresses.map((a, i) => `  sim-${i}: { address: "${a}", broker: bench }\n`).join('')}`)
    // Timeouts well above the budgets: a slow fleet is measured, not cut off at the defaults.
    const all = ['--dir', project, '--all', '--json', '--max-concurrent', String(count), '--connect-timeout', '120', '--wait-timeout', '300']
    const nodesCpuBefore = nodesCpu()
    const status = confirmed(await timedCli(['status', ...all], env), count, ['ok'])
    const deploy = confirmed(await timedCli(['deploy', ...all], env), count, ['deployed'])
    // the everyday deploy: the plugin changed, so a new bundle goes to every node and every instance is replaced
    appendFileSync(join(project, 'src', 'plugin.ts'), '\nexport const r1BenchChange = 1 // changed for the update deploy\n')
    const update = confirmed(await timedCli(['deploy', ...all], env), count, ['deployed'])
    const command = confirmed(await timedCli(['command', 'readings', 'sensor-1', 'BENCH', ...all], env), count, ['ok'])
    return {started: startedMs, status, deploy, update, command, nodesCpu: nodesCpu() - nodesCpuBefore}
  } finally {
    for (const g of groups) g.child.stdin.end()
    await Promise.all(groups.map((g) => stopChild(g.child)))
  }
}

async function measure(count, dir) {
  const broker = await startR1(['broker', 'start', '--json', '--port', '0', '--data-dir', join(dir, `broker-${count}`)])
  try {
    const raw = await rawFloor(broker, count)
    const fleet = await simulatedFleet(broker, count, dir)
    return {count, ...raw, ...fleet, brokerRss: peakRssMiB(broker.child.pid)}
  } finally {
    await stopChild(broker.child)
  }
}

export default async function fleetBench() {
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-fleet-'))
  try {
    const figures = []
    for (const count of SIZES) {
      const f = await measure(count, dir)
      figures.push({...f, statusWall: f.status.wall, deployWall: f.deploy.wall, updateWall: f.update.wall, commandWall: f.command.wall, cliRss: Math.max(f.status.peakRss, f.deploy.peakRss, f.update.peakRss, f.command.peakRss), cliCpu: f.status.cpu + f.deploy.cpu + f.update.cpu + f.command.cpu})
    }
    const first = figures[0]
    const vs = (f, key) => (f === first ? {} : {baseline: first[key], baselineName: `${first.count} nodes`})
    const n = (count) => count.toLocaleString('en-US')
    const stub = 'simulated nodes: real node front, instances stubbed'
    // A command that did not reach every node gets its figure as an error row (the bench fails) saying how far it got.
    const cliRow = (f, name, key, budget) => {
      const figure = `fleet over a broker, ${n(f.count)} ${stub}: ${name}`
      if (f[key].problem) return {figure, error: f[key].problem, ok: false}
      return row(figure, {value: f[key].wall, unit: 'ms', ...vs(f, `${key}Wall`), ...(f.count === 1000 && budget ? {budget, absolute: true} : {})})
    }
    // CPU time reads through a busy machine, where wall time also counts waiting for a core.
    const cpuRow = (f) => row(`fleet over a broker, ${n(f.count)} ${stub}: CPU time of the CLI (status + 2 deploys + command) / of the ${n(f.count)} nodes`, {value: f.cliCpu, unit: 'ms', baseline: f.nodesCpu, baselineName: 'nodes'})
    return figures.flatMap((f) => [
      row(`fleet over a broker, ${n(f.count)} nodes: all connected and subscribed (raw mqtt.js, embedded broker)`, {value: f.connected, unit: 'ms', ...vs(f, 'connected')}),
      row(`fleet over a broker, ${n(f.count)} nodes: raw echo floor (1 KiB to each node and back, QoS 1)`, {value: f.floor, unit: 'ms', ...vs(f, 'floor')}),
      row(`fleet over a broker, ${n(f.count)} ${stub}: all on the broker`, {value: f.started, unit: 'ms', ...vs(f, 'started')}),
      cliRow(f, 'r1 status --all', 'status', 2000),
      cliRow(f, 'r1 deploy --all, confirmed by all', 'deploy', 5000),
      ...(f.count === 1000 && !f.deploy.problem ? [row(`fleet over a broker, 1,000 ${stub}: r1 deploy --all vs the raw echo floor`, {value: f.deploy.wall, unit: 'ms', baseline: f.floor, baselineName: 'raw echo floor', budget: 10})] : []),
      cliRow(f, 'r1 deploy --all of a changed plugin (new bundle, every instance replaced), confirmed by all', 'update', 5000),
      cliRow(f, 'r1 command --all, confirmed by all', 'command'),
      cpuRow(f),
      row(`fleet over a broker, ${n(f.count)} ${stub}: CLI peak RSS (largest of status, deploys, command)`, {value: f.cliRss, unit: 'MiB', ...vs(f, 'cliRss'), ...(f.count === 1000 ? {budget: 250, absolute: true} : {})}),
      row(`fleet over a broker, ${n(f.count)} nodes: broker peak RSS`, {value: f.brokerRss, unit: 'MiB', ...vs(f, 'brokerRss')}),
    ])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await fleetBench()
  process.stdout.write(JSON.stringify({group: 'fleet', rows}) + '\n')
}
