import assert from 'node:assert/strict'
import {test} from 'node:test'
import {testPlugin} from 'r1/plugin'
import plugin, {type SensorConfig} from '../src/plugin.js'

test('emits a reading on every process call', async () => {
  const sensor = testPlugin<SensorConfig>(plugin, {config: {THRESHOLD: 100, UNIT: 'C'}})
  const first = await sensor.process()
  const second = await sensor.process()
  assert.ok(first.ok && second.ok)
  assert.deepEqual(first.payloads, [{TEMPERATURE: 20, UNIT: 'C', ALERT: false}])
  assert.deepEqual(second.payloads, [{TEMPERATURE: 22, UNIT: 'C', ALERT: false}])
  await sensor.close()
})

test('notifies when a reading is above THRESHOLD', async () => {
  const sensor = testPlugin<SensorConfig>(plugin, {config: {THRESHOLD: 23, UNIT: 'C'}})
  assert.equal((await sensor.process()).payloads[0].ALERT, false) // 20
  assert.equal((await sensor.process()).payloads[0].ALERT, false) // 22
  const hot = await sensor.process() // 24
  assert.equal(hot.payloads[0].ALERT, true)
  assert.ok(hot.notifications.some((n) => n.type === 'ABNORMAL FUNCTIONING' && n.message.includes('above 23')))
  await sensor.close()
})

test('converts to Fahrenheit', async () => {
  const sensor = testPlugin<SensorConfig>(plugin, {config: {THRESHOLD: 200, UNIT: 'F'}})
  assert.deepEqual((await sensor.process()).payloads, [{TEMPERATURE: 68, UNIT: 'F', ALERT: false}])
  await sensor.close()
})

test('answers the READ command and rejects others', async () => {
  const sensor = testPlugin<SensorConfig>(plugin, {config: {THRESHOLD: 30, UNIT: 'C'}})
  const read = await sensor.command('READ')
  assert.ok(read.ok)
  assert.deepEqual(read.result, {TEMPERATURE: 20, UNIT: 'C'})
  const unknown = await sensor.command('EXPLODE')
  assert.equal(unknown.ok, false)
  await sensor.close()
})
