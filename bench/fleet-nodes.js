// N simulated nodes in one process for the fleet bench: each is the real node front (startNodeServer on the
// broker, listen: false: identity, admission, signing and sealing, subscriptions, journal, pipelines on
// disk) with ONE THING REPLACED: the instance host process. Each instance's supervisor gets an in-process
// stub instead of a forked instance host (stubFork below), which answers at once: ready, PLUGIN_CONFIG_OK,
// PLUGIN_INSTANCE_COMMAND_OK, an update allowed, pongs. So the figures measure r1's node front and CLI at scale, not plugin
// start-up. `node bench/fleet-nodes.js <broker url> <N> <allowed client address> <data root> [first node number]` prints one
// JSON line {addresses, startedMs} once every node is on the broker, and runs until stdin closes.
import {EventEmitter} from 'node:events'
import {join} from 'node:path'
import {NotificationCode, NotificationType} from '../dist/protocol/codes.js'
import {startNodeServer} from '../dist/runtime/serve.js'

const [url, count, client, dataRoot, firstArg = '0'] = process.argv.slice(2)
/** Number of the first node here (aliases sim-<first>…): a large fleet is spread over several processes. */
const first = Number(firstArg)
// Nodes started at once: each opens its journal and dials the broker.
const START_AT_ONCE = 50

/** What the supervisor forks in place of an instance host: no process (no pid), answers in the next turn. */
function stubFork() {
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

const start = process.hrtime.bigint()
const nodes = []
for (let i = 0; i < Number(count); i += START_AT_ONCE) {
  const batch = Array.from({length: Math.min(START_AT_ONCE, Number(count) - i)}, (_, j) =>
    startNodeServer({
      dataDir: join(dataRoot, `node-${i + j}`),
      listen: false,
      broker: {url},
      alias: `sim-${first + i + j}`,
      allow: [client],
      core: {supervisor: {runAs: false, fork: stubFork}},
      log: () => undefined,
    }),
  )
  nodes.push(...(await Promise.all(batch)))
}
process.stdout.write(JSON.stringify({addresses: nodes.map((n) => n.address), startedMs: Number(process.hrtime.bigint() - start) / 1e6}) + '\n')
// Stopped by stdin closing or SIGTERM (the bench sends both): every node stops, and its instances' folders go
let stopping
const stop = () => {
  stopping ??= Promise.all(nodes.map((n) => n.stop())).then(() => process.exit(0))
}
process.stdin.resume()
process.stdin.on('end', stop)
process.on('SIGTERM', stop)
