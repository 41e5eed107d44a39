// The raw floor of the fleet bench, run as its own process: N plain mqtt.js connections, one per simulated
// node, each subscribed to its config topic and echoing whatever arrives there, unsigned and unchanged, to
// the sender's targeted topic (the topic layout r1 uses, no r1 code in the path), all with QoS 1.
// `node bench/fleet-echo.js <broker url> <root> <client address> <N>` (nodes lib.js simulatedAddress(0…N-1))
// prints one JSON line {connectedMs} once every connection is up and subscribed, then echoes until stdin closes.
import mqtt from 'mqtt'
import {simulatedAddress} from './lib.js'

const [url, root, client, count] = process.argv.slice(2)
const nodes = Array.from({length: Number(count)}, (_, i) => simulatedAddress(i))
const targeted = `${root}/${client}/payloads`
// Connections dialled at once: thousands in one burst only measure the kernel's accept backlog.
const DIAL_AT_ONCE = 200

async function connectNode(address) {
  const config = `${root}/${address}/config`
  const connection = await mqtt.connectAsync(url, {protocolVersion: 4, clientId: `echo-${address}`, reconnectPeriod: 0, keepalive: 60, clean: true})
  connection.on('message', (topic, payload) => {
    if (topic === config) connection.publish(targeted, payload, {qos: 1})
  })
  await connection.subscribeAsync(config, {qos: 1})
  return connection
}

const start = process.hrtime.bigint()
const connections = []
for (let i = 0; i < nodes.length; i += DIAL_AT_ONCE) connections.push(...(await Promise.all(nodes.slice(i, i + DIAL_AT_ONCE).map(connectNode))))
process.stdout.write(JSON.stringify({connectedMs: Number(process.hrtime.bigint() - start) / 1e6}) + '\n')
process.stdin.resume()
process.stdin.on('end', async () => {
  await Promise.all(connections.map((c) => c.endAsync(true)))
  process.exit(0)
})
