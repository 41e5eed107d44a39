import assert from 'node:assert/strict'
import {createServer} from 'node:net'
import {test} from 'node:test'
import {testPlugin} from 'r1/plugin'
import feed, {type FeedConfig} from '../src/feed.js'
import monitor, {type MonitorConfig} from '../src/monitor.js'

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

test('a feed emits readings and serves the latest one', async () => {
  const port = await freePort()
  const sensor = testPlugin<FeedConfig>(feed, {config: {PORT: port, BASE: 20}})
  const {payloads} = await sensor.process()
  assert.equal(payloads.length, 1)
  const served = await (await fetch(`http://127.0.0.1:${port}/latest`)).json()
  assert.deepEqual(served, payloads[0])
  assert.ok(Math.abs((served as {VALUE: number}).VALUE - 20) <= 5)
  await sensor.close()
})

test('a monitor sees its feed up, notices when it goes down, and when it comes back', async () => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}/latest`
  const watcher = testPlugin<MonitorConfig>(monitor, {config: {URL: url, MAX_AGE: 60, TIMEOUT: 2}})

  const down = await watcher.process()
  assert.equal(down.payloads[0].STATUS, 'down')
  assert.ok(down.notifications.some((n) => n.type === 'ABNORMAL FUNCTIONING' && n.message.includes('down')))

  const sensor = testPlugin<FeedConfig>(feed, {config: {PORT: port, BASE: 40}})
  const reading = (await sensor.process()).payloads[0]
  const up = await watcher.process()
  assert.equal(up.payloads[0].STATUS, 'up')
  assert.equal(up.payloads[0].VALUE, reading.VALUE)
  assert.ok(up.notifications.some((n) => n.message.includes('back up')))

  await sensor.close()
  const again = await watcher.process()
  assert.equal(again.payloads[0].STATUS, 'down')
  await watcher.close()
})

test('a monitor reports a stale feed', async () => {
  const port = await freePort()
  const sensor = testPlugin<FeedConfig>(feed, {config: {PORT: port, BASE: 20}})
  await sensor.process()
  const watcher = testPlugin<MonitorConfig>(monitor, {config: {URL: `http://127.0.0.1:${port}/latest`, MAX_AGE: 0, TIMEOUT: 2}})
  await new Promise((resolve) => setTimeout(resolve, 20))
  const stale = await watcher.process()
  assert.equal(stale.payloads[0].STATUS, 'stale')
  assert.ok(stale.notifications.some((n) => n.message.includes('stale')))
  await watcher.close()
  await sensor.close()
})
