// Events from a plugin to `r1 logs --json` (src/ARCHITECTURE.md, budgets: ≥ 50 % of raw `ws` throughput of the
// same events, batched the same way).
//
// For bench/run.js (group "events"): starts a real `r1 node start` process with a CUSTOM_EXEC_01 instance
// that emits payloads as fast as it can, and returns rows made with lib.js `row()`:
//   - "events plugin → node → r1 logs --json": payload lines per second on the CLI's stdout (median of
//     5 windows of 50 k), as a ratio to a baseline measured in this run the same way: the same event JSON
//     sent from one process to another in unsigned R1_BATCH frames (`{"EE_EVENT_TYPE":"R1_BATCH",
//     "EVENTS":[…]}`, up to the node's 768 KiB batch size, as the node batches a busy socket), the client
//     parsing every frame and counting its events, as fast as ws carries them; budget ≥ 0.5;
//   - the same figure against the naive baseline (each event in its own ws frame), shown without a budget;
//   - "node RSS with a subscriber that reads nothing": the node's resident memory after flooding a
//     connection whose client never reads, as a ratio to its RSS before that subscriber; budget ≤ 1.5
//     (the node drops what the socket cannot take and resends it later from the journal).
// Standalone: `node bench/events.js` prints the rows as one JSON line {"group":"events","rows":[…]}.
import {spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import WebSocket from 'ws'
import {cli, cliKey, median, r1, root, row, startNode, stopChild} from './lib.js'

const dist = (path) => import(pathToFileURL(join(root, 'dist', path)).href)
const WINDOWS = 5
const WINDOW_EVENTS = 50_000
const MEASURE_MAX_MS = 15_000
const WARMUP_EVENTS = 5_000
const FLOOD_CODE = 'for (let i = 0; i < 2000; i++) plugin.emit({I: i, READING: 21.5 + (i % 10), UNIT: "C"}); return null'

function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024
}

/**
 * Lines per second on a child's stdout, after WARMUP lines: the median of WINDOWS consecutive windows of
 * WINDOW_EVENTS lines each (or what the time cap allows); keeps a sample of lines.
 */
function measureLines(child) {
  return new Promise((resolve, reject) => {
    let count = 0
    let windowStart
    let windowStartCount = 0
    const rates = []
    let sample = ''
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += chunk))
    let done = false
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(cap)
      clearTimeout(windowCap)
      if (rates.length === 0 && windowStart !== undefined) rates.push(((count - windowStartCount) / (Number(process.hrtime.bigint() - windowStart) / 1e6)) * 1000)
      resolve({perSecond: median(rates), sample: sample.split('\n').slice(0, -1).filter((l) => l.startsWith('{'))})
    }
    let windowCap
    const cap = setTimeout(() => (windowStart ? finish() : reject(new Error(`r1 logs printed ${count} lines in ${MEASURE_MAX_MS * 2} ms: ${stderr}`))), MEASURE_MAX_MS * 2)
    child.stdout.on('data', (chunk) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) count++
      if (sample.length < 256 * 1024) sample += chunk.toString()
      if (windowStart === undefined && count >= WARMUP_EVENTS) {
        windowStart = process.hrtime.bigint()
        windowStartCount = count
        windowCap = setTimeout(finish, MEASURE_MAX_MS)
      }
      if (windowStart !== undefined && count - windowStartCount >= WINDOW_EVENTS) {
        const now = process.hrtime.bigint()
        rates.push(((count - windowStartCount) / (Number(now - windowStart) / 1e6)) * 1000)
        windowStart = now
        windowStartCount = count
        if (rates.length === WINDOWS) finish()
      }
    })
    child.once('exit', (code) => {
      if (windowStart === undefined) reject(new Error(`r1 logs exited ${code} after ${count} lines: ${stderr}`))
      else finish()
    })
  })
}

/** The node's largest R1_BATCH frame (src/runtime/server.ts MAX_BATCH_BYTES). */
const MAX_BATCH_BYTES = 768 * 1024

/**
 * Raw ws: a server process sends the sampled event JSON, each event in its own text frame (`batched`
 * false) or packed into R1_BATCH frames of up to MAX_BATCH_BYTES (`batched` true, no signature); this
 * process parses every frame and counts events. Returns events per second.
 */
async function rawWsBaseline(sample, dir, {batched}) {
  const file = join(dir, 'sample.json')
  let frames = sample
  if (batched) {
    frames = []
    let events = []
    let bytes = 0
    // Enough events to fill several batches whatever the sample size.
    for (let i = 0; frames.length < 8; i++) {
      const event = sample[i % sample.length]
      if (bytes + event.length + 1 >= MAX_BATCH_BYTES && events.length > 0) {
        frames.push(`{"EE_EVENT_TYPE":"R1_BATCH","EVENTS":[${events.join(',')}]}`)
        events = []
        bytes = 0
      }
      events.push(event)
      bytes += event.length + 1
    }
  }
  writeFileSync(file, JSON.stringify(frames))
  const server = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import {WebSocketServer} from 'ws'
import {readFileSync} from 'node:fs'
const lines = JSON.parse(readFileSync(process.argv[1], 'utf8'))
const wss = new WebSocketServer({host: '127.0.0.1', port: 0, perMessageDeflate: false}, () => console.log(wss.address().port))
wss.on('connection', (ws) => {
  let i = 0
  const pump = () => {
    while (ws.readyState === 1 && ws.bufferedAmount < 1024 * 1024) ws.send(lines[i++ % lines.length])
    if (ws.readyState === 1) setImmediate(pump)
  }
  pump()
})`,
      file,
    ],
    {cwd: root, stdio: ['ignore', 'pipe', 'inherit']},
  )
  try {
    const port = await new Promise((resolve, reject) => {
      server.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim())))
      server.once('exit', (code) => reject(new Error(`baseline ws server exited ${code}`)))
    })
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, {perMessageDeflate: false})
    const rates = await new Promise((resolve) => {
      let count = 0
      let start
      const rates = []
      let windowStartCount = 0
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString())
        count += frame.EE_EVENT_TYPE === 'R1_BATCH' ? frame.EVENTS.length : 1
        if (count < WARMUP_EVENTS) return
        if (start === undefined) {
          start = process.hrtime.bigint()
          windowStartCount = count
          return
        }
        if (count - windowStartCount < WINDOW_EVENTS) return
        const now = process.hrtime.bigint()
        rates.push(((count - windowStartCount) / (Number(now - start) / 1e6)) * 1000)
        start = now
        windowStartCount = count
        if (rates.length === WINDOWS) {
          resolve(rates)
          ws.terminate()
        }
      })
    })
    return median(rates)
  } finally {
    await stopChild(server, 'SIGKILL')
  }
}

/** A subscriber that sends R1_SUBSCRIBE and then never reads: returns its socket (paused). */
async function stalledSubscriber(node, identity) {
  const [{encodeCommand}, {formatTime}] = await Promise.all([dist('protocol/wire.js'), dist('protocol/messages.js')])
  const ws = new WebSocket(node.url, 'r1.v1', {perMessageDeflate: false})
  await new Promise((resolve, reject) => {
    ws.once('message', resolve) // the hello
    ws.once('error', reject)
  })
  const command = encodeCommand({ACTION: 'R1_SUBSCRIBE', PAYLOAD: {TYPES: ['PAYLOAD']}, EE_DEST: node.address, INITIATOR_ID: 'bench', SESSION_ID: 'stalled', TIME: formatTime()}, identity)
  ws.send(command.text)
  await new Promise((resolve) => ws.once('message', resolve)) // the reply
  ws.pause()
  ws.removeAllListeners('message')
  return ws
}

export default async function eventsBench() {
  const dir = mkdtempSync(join(tmpdir(), 'r1-bench-events-'))
  let node
  let logs
  let session
  const rows = []
  try {
    const {env, address} = cliKey(join(dir, 'cli'))
    const dataDir = join(dir, 'node')
    mkdirSync(dataDir)
    const allowed = cli(['node', 'allow', address, '--data-dir', dataDir], env)
    if (allowed.status !== 0) throw new Error(`r1 node allow failed: ${allowed.stderr}`)
    node = await startNode(dataDir, env)
    const rssIdle = rssMiB(node.child.pid)

    const [{requireIdentity, cliKeyPath}, {Session}] = await Promise.all([dist('protocol/identity.js'), dist('session/index.js')])
    const identity = await requireIdentity(cliKeyPath(env))
    session = await Session.connect({url: node.url, nodeAddress: node.address, identity})

    logs = spawn(process.execPath, [r1, 'logs', '--node', node.url, '--address', node.address, '--follow', '--json', '--tail', '0', '--type', 'payload'], {
      cwd: root,
      env: {...process.env, NO_COLOR: '1', ...env},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const measuring = measureLines(logs)
    await session.send('UPDATE_CONFIG', {NAME: 'flood', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'flood-1', PROCESS_DELAY: 0, CODE: FLOOD_CODE}]}]}, {expect: [{code: 1}], timeoutMs: 60_000})
    const measured = await measuring
    await stopChild(logs, 'SIGINT')
    const sample = measured.sample.slice(0, 2000).map((line) => {
      const event = JSON.parse(line)
      delete event.R1_TARGET
      return JSON.stringify(event)
    })
    const baseline = await rawWsBaseline(sample, dir, {batched: true})
    const naive = await rawWsBaseline(sample, dir, {batched: false})
    rows.push(row('events plugin → node → r1 logs --json', {value: measured.perSecond, unit: 'events/s', baseline, baselineName: 'raw ws, same events in R1_BATCH frames', budget: 0.5, higherIsBetter: true}))
    rows.push(row('events plugin → node → r1 logs --json (naive baseline)', {value: measured.perSecond, unit: 'events/s', baseline: naive, baselineName: 'raw ws, same events one per frame'}))

    // A consumer that reads nothing while the plugin floods: the node must not buffer for it.
    const rssBefore = rssMiB(node.child.pid)
    const stalled = await stalledSubscriber(node, identity)
    let rssPeak = rssBefore
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      rssPeak = Math.max(rssPeak, rssMiB(node.child.pid))
    }
    stalled.terminate()
    rows.push(row('node RSS with a subscriber that reads nothing (5 s flood)', {value: rssPeak, unit: 'MiB', baseline: rssBefore, baselineName: 'RSS before it subscribed', budget: 1.5}))

    // The node → ws → CLI path alone (the plugin's own rate out of the way): replay the journal the flood filled.
    await session.send('DELETE_CONFIG', 'flood', {expect: [{code: 5}], timeoutMs: 60_000})
    const replay = spawn(process.execPath, [r1, 'logs', '--node', node.url, '--address', node.address, '--json', '--since', '0', '--type', 'payload'], {
      cwd: root,
      env: {...process.env, NO_COLOR: '1', ...env},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const replayed = await measureLines(replay)
    await stopChild(replay, 'SIGINT')
    rows.push(row('events journal replay → r1 logs --json', {value: replayed.perSecond, unit: 'events/s', baseline, baselineName: 'raw ws, same events in R1_BATCH frames', budget: 0.5, higherIsBetter: true}))
    rows.push(row('node RSS idle, before the flood', {value: rssIdle, unit: 'MiB', budget: 80, absolute: true}))
  } finally {
    await session?.close().catch(() => undefined)
    if (logs) await stopChild(logs, 'SIGINT')
    if (node) await stopChild(node.child)
    rmSync(dir, {recursive: true, force: true})
  }
  return rows
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await eventsBench()
  process.stdout.write(JSON.stringify({group: 'events', rows}) + '\n')
}
