// Signed commands per second that one node verifies and answers, next to raw `ws` JSON round trips
// measured in the same run (same transport, same pipelining, server in its own process both times).
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import WebSocket from 'ws'
import {root, row} from './lib.js'

const COMMANDS = Number(process.env.R1_BENCH_COMMANDS ?? 20_000)
const WINDOW = 64

/** Starts `code` (an ES module body) in a child process; resolves with its first stdout line as JSON. */
function child(code, env = {}) {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], {cwd: root, env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'inherit']})
  return new Promise((resolve, reject) => {
    createInterface({input: proc.stdout}).once('line', (line) => resolve({proc, info: JSON.parse(line)}))
    proc.once('exit', (code) => reject(new Error(`bench server exited ${code}`)))
  })
}

/** Sends every frame with at most WINDOW unanswered; resolves with answers per second. */
async function roundTrips(url, frames, protocol) {
  const ws = new WebSocket(url, protocol, {perMessageDeflate: false, maxPayload: 4 * 1024 * 1024})
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  let sent = 0
  let answered = 0
  const start = process.hrtime.bigint()
  await new Promise((resolve) => {
    const pump = () => {
      while (sent < frames.length && sent - answered < WINDOW) ws.send(frames[sent++])
    }
    ws.on('message', (data) => {
      // Every answer names its command; a batch frame (which may also carry the node's hello) answers several.
      answered += data.toString().split('"COMMAND_HASH":').length - 1
      if (answered >= frames.length) resolve()
      else pump()
    })
    pump()
  })
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  ws.terminate()
  return frames.length / seconds
}

export default async function signing() {
  const {generateIdentity} = await import('../dist/protocol/identity.js')
  const {encodeCommand} = await import('../dist/protocol/wire.js')
  const {formatTime} = await import('../dist/protocol/messages.js')
  const dataDir = mkdtempSync(join(tmpdir(), 'r1-bench-signing-'))
  const client = generateIdentity()
  const servers = []
  try {
    const raw = await child(
      `import {WebSocketServer} from 'ws'
       const wss = new WebSocketServer({port: 0, host: '127.0.0.1', perMessageDeflate: false})
       wss.on('connection', (ws) => ws.on('message', (d) => { const m = JSON.parse(d.toString()); ws.send(JSON.stringify({EE_EVENT_TYPE: 'R1_REPLY', COMMAND_HASH: m.EE_HASH, RESULT: null})) }))
       wss.on('listening', () => console.log(JSON.stringify({url: 'ws://127.0.0.1:' + wss.address().port})))`,
    )
    servers.push(raw.proc)
    const node = await child(
      `import {startNodeServer} from './dist/runtime/serve.js'
       const node = await startNodeServer({dataDir: process.env.R1_BENCH_DIR, port: 0, heartbeatIntervalMs: 0, allow: [process.env.R1_BENCH_CLIENT], rateLimit: {burst: 1e9, perSecond: 1e9, closeAfter: 1e9}, log: () => {}})
       console.log(JSON.stringify({url: node.url, address: node.address}))`,
      {R1_BENCH_DIR: dataDir, R1_BENCH_CLIENT: client.address},
    )
    servers.push(node.proc)
    const frames = Array.from({length: COMMANDS}, () => encodeCommand({ACTION: 'R1_UNSUBSCRIBE', PAYLOAD: null, EE_DEST: node.info.address, INITIATOR_ID: 'bench', SESSION_ID: 'bench', TIME: formatTime()}, client).text)
    await roundTrips(raw.info.url, frames.slice(0, 2000)) // warm-up
    const rawRate = await roundTrips(raw.info.url, frames)
    const signedRate = await roundTrips(node.info.url, frames, 'r1.v1')
    return [
      row('signed commands verified and answered by one node', {value: signedRate, unit: 'commands/s', baseline: rawRate, baselineName: 'raw ws JSON round trips', higherIsBetter: true}),
    ]
  } finally {
    for (const proc of servers) proc.kill('SIGKILL')
    rmSync(dataDir, {recursive: true, force: true})
  }
}
