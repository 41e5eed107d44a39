// A fleet over a broker (budget in src/ARCHITECTURE.md: 1,000 simulated nodes, deploy confirmed by all ≤ 5 s
// and ≤ 10 × the raw broker echo floor; status ≤ 2 s; CLI RSS ≤ 250 MiB), for N = 100 and 1,000 nodes, and
// 10,000 with R1_BENCH_FLEET_10K=1 (on a 2-core machine 10,000 connections take minutes to set up).
//
// Each size gets a fresh embedded broker (`r1 broker start`, its own process, so its peak RSS is its own).
// Raw floor, same broker, same run: N plain mqtt.js connections in one process (fleet-echo.js) each echo an
// unsigned 1 KiB message from its config topic to the sender's targeted topic; the driver sends one to
// every node at once and times until all N echoes are back (QoS 1 both ways; median of 3 rounds after a
// warm-up). Rows: all N connected, the echo floor, the broker's peak RSS; each N > 100 row is shown as a
// ratio to the 100-node figure, so growth can be read against N (×10 per step is linear).
// Standalone: `node bench/fleet.js` prints the rows as one JSON line {"group":"fleet","rows":[…]}.
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import mqtt from 'mqtt'
import {firstJsonLine, median, row, simulatedAddress, startR1, stopChild} from './lib.js'

const SIZES = process.env.R1_BENCH_FLEET_10K === '1' ? [100, 1000, 10_000] : [100, 1000]
const ROUNDS = 3
const ROOT = 'naeural'
const MESSAGE = Buffer.alloc(1024, 'x')

/** Peak resident memory (VmHWM) of a process, MiB. */
function peakRssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)[1]) / 1024
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

async function measure(count, dir) {
  const broker = await startR1(['broker', 'start', '--json', '--port', '0', '--data-dir', join(dir, `broker-${count}`)])
  let echo
  let client
  try {
    const clientAddress = simulatedAddress(-1)
    const targeted = `${ROOT}/${clientAddress}/payloads`
    const script = fileURLToPath(new URL('fleet-echo.js', import.meta.url))
    echo = await firstJsonLine(spawn(process.execPath, [script, broker.url, ROOT, clientAddress, String(count)], {stdio: ['pipe', 'pipe', 'pipe']}), 'fleet-echo.js')
    client = await mqtt.connectAsync(broker.url, {protocolVersion: 4, clientId: `bench-client-${count}`, reconnectPeriod: 0})
    await client.subscribeAsync(targeted, {qos: 1})
    const nodes = Array.from({length: count}, (_, i) => simulatedAddress(i))
    await echoRound(client, nodes, targeted) // warm-up
    const rounds = []
    for (let i = 0; i < ROUNDS; i++) rounds.push(await echoRound(client, nodes, targeted))
    return {count, connected: echo.connectedMs, floor: median(rounds), brokerRss: peakRssMiB(broker.child.pid)}
  } finally {
    await client?.endAsync(true)
    if (echo) {
      echo.child.stdin.end()
      await stopChild(echo.child)
    }
    await stopChild(broker.child)
  }
}

export default async function fleetBench() {
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-fleet-'))
  try {
    const figures = []
    for (const count of SIZES) figures.push(await measure(count, dir))
    const first = figures[0]
    const vs = (f, key) => (f === first ? {} : {baseline: first[key], baselineName: `${first.count} nodes`})
    const n = (count) => count.toLocaleString('en-US')
    return figures.flatMap((f) => [
      row(`fleet over a broker, ${n(f.count)} nodes: all connected and subscribed (raw mqtt.js, embedded broker)`, {value: f.connected, unit: 'ms', ...vs(f, 'connected')}),
      row(`fleet over a broker, ${n(f.count)} nodes: raw echo floor (1 KiB to each node and back, QoS 1)`, {value: f.floor, unit: 'ms', ...vs(f, 'floor')}),
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
