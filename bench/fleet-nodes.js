// N simulated nodes in one process for the fleet bench, on its worker threads: each is the real node front
// (startNodeServer on the broker, listen: false: identity, admission, signing and sealing, subscriptions,
// journal, pipelines on disk, each instance's supervisor) with ONE THING REPLACED: the instance itself. Each
// supervisor launches an in-process stub (stubLaunch below) instead of making the instance's folders and
// forking an instance host into them; the stub answers at once: ready, PLUGIN_CONFIG_OK,
// PLUGIN_INSTANCE_COMMAND_OK, an update allowed, pongs. So the figures measure r1's node front and CLI at
// scale, not plugin start-up.
// `node bench/fleet-nodes.js <broker url> <N> <allowed client address> <data root> [first node number] [threads]`
// prints one JSON line {addresses, startedMs} once every node is on the broker, and runs until stdin closes.
import {EventEmitter} from 'node:events'
import {availableParallelism} from 'node:os'
import {join} from 'node:path'
import {Worker, isMainThread, parentPort, workerData} from 'node:worker_threads'
import {NotificationCode, NotificationType} from '../dist/protocol/codes.js'
import {startNodeServer} from '../dist/runtime/serve.js'

const [url, count, client, dataRoot, firstArg = '0', threadsArg = String(availableParallelism())] = process.argv.slice(2)
/** Number of the first node here (aliases sim-<first>…): a large fleet is spread over several processes. */
const first = Number(firstArg)
// Nodes started at once: each opens its journal and dials the broker.
const START_AT_ONCE = 50

/** What each instance's supervisor launches in place of its folders and a forked instance host: no process (no pid), answers in the next turn. */
function stubLaunch() {
  const child = new EventEmitter()
  Object.assign(child, {pid: undefined, connected: true, stdout: null, stderr: null})
  const reply = (message) => setImmediate(() => child.emit('message', message))
  const notify = (code, message, commandHash, info) => reply({t: 'event', event: {kind: 'notification', type: NotificationType.NORMAL, code, message, ...(info ? {info} : {}), ...(commandHash ? {commandHash} : {})}})
  const exit = () => {
    if (!child.connected) return
    child.connected = false
    setImmediate(() => child.emit('exit', 0, null))
  }
  child.kill = () => (exit(), true)
  child.send = (message, callback) => {
    switch (message.t) {
      case 'start':
        reply({t: 'ready'})
        if (message.spec.announceConfig) notify(NotificationCode.PLUGIN_CONFIG_OK, 'Plugin config OK (bench stub)', message.spec.configHash)
        break
      case 'config':
        reply({t: 'configDone', ok: true})
        notify(NotificationCode.PLUGIN_CONFIG_OK, 'Plugin config OK (bench stub)', message.hash)
        break
      case 'command':
        notify(NotificationCode.PLUGIN_INSTANCE_COMMAND_OK, `Instance command "${message.name}" OK (bench stub)`, message.hash, {COMMAND: message.name})
        reply({t: 'commandDone', id: message.id, ok: true})
        break
      case 'beforeUpdate':
        reply({t: 'updateDecision', id: message.id, decision: {action: 'ok'}})
        break
      case 'ping':
        reply({t: 'pong', n: message.n})
        break
      case 'stop':
        reply({t: 'closed'})
        exit()
        break
    }
    callback?.(null)
    return true
  }
  return child
}

/** Starts nodes [from, to) of this process's share, START_AT_ONCE at a time. */
async function startNodes(from, to) {
  const nodes = []
  for (let i = from; i < to; i += START_AT_ONCE) {
    const batch = Array.from({length: Math.min(START_AT_ONCE, to - i)}, (_, j) =>
      startNodeServer({
        dataDir: join(dataRoot, `node-${i + j}`),
        listen: false,
        broker: {url},
        alias: `sim-${first + i + j}`,
        allow: [client],
        core: {supervisor: {runAs: false, launch: stubLaunch}},
        log: () => undefined,
      }),
    )
    nodes.push(...(await Promise.all(batch)))
  }
  return nodes
}

if (isMainThread) {
  // Worker threads (by default one per core), each with an equal share of the nodes: the nodes together may
  // use every core (the CLI and the broker compete for them), as a fleet's nodes each have their own. A fleet
  // spread over several processes gives each its share of the cores. The worker gets this script's arguments.
  const start = process.hrtime.bigint()
  const total = Number(count)
  const threads = Math.max(1, Math.min(Number(threadsArg) || 1, total))
  const workers = Array.from({length: threads}, (_, k) => {
    const worker = new Worker(new URL(import.meta.url), {argv: process.argv.slice(2), workerData: {from: Math.floor((k * total) / threads), to: Math.floor(((k + 1) * total) / threads)}})
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    return {worker, exited}
  })
  const shares = await Promise.all(
    workers.map(
      ({worker, exited}) =>
        new Promise((resolve, reject) => {
          worker.once('message', resolve)
          worker.once('error', reject)
          exited.then((code) => reject(new Error(`a fleet-nodes worker exited (${code}) before its nodes were up`)))
        }),
    ),
  )
  // a worker that fails once its nodes are up takes them away: say so (the bench reports the targets it lost)
  for (const {worker} of workers) worker.on('error', (error) => process.stderr.write(`fleet-nodes: a worker failed: ${error.stack ?? error}\n`))
  process.stdout.write(JSON.stringify({addresses: shares.flat(), startedMs: Number(process.hrtime.bigint() - start) / 1e6}) + '\n')
  // Stopped by stdin closing or SIGTERM (the bench sends both): every worker stops its nodes (their
  // instances stop and their journals close), then the process exits
  let stopping
  const stop = () => {
    if (stopping) return
    for (const {worker} of workers) worker.postMessage('stop')
    stopping = Promise.all(workers.map(({exited}) => exited)).then(() => process.exit(0))
  }
  process.stdin.resume()
  process.stdin.on('end', stop)
  process.on('SIGTERM', stop)
} else {
  const nodes = await startNodes(workerData.from, workerData.to)
  parentPort.postMessage(nodes.map((n) => n.address))
  parentPort.once('message', () => Promise.all(nodes.map((n) => n.stop())).then(() => process.exit(0)))
}
