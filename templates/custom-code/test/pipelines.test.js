import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {test} from 'node:test'

// The r1 CLI this project depends on (devDependencies.r1).
const r1 = fileURLToPath(new URL('./bin/run.js', import.meta.resolve('r1/package.json')))
const run = (...args) => promisify(execFile)(process.execPath, [r1, ...args], {maxBuffer: 64 * 1024 * 1024})

test('config.yaml is valid, inline CODE included', async () => {
  const {stdout} = await run('validate', '--json')
  assert.equal(JSON.parse(stdout).valid, true)
})

test('every instance emits an EXEC_RESULT without EXEC_ERRORS', async () => {
  const {stdout} = await run('run', '--json', '--duration', '6')
  const events = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line))
  const payloads = events.filter((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
  const byInstance = (id) => payloads.filter((e) => e.EE_PAYLOAD_PATH[3] === id)

  for (const id of ['ticker', 'memory', 'clock']) {
    assert.ok(byInstance(id).length > 0, `no payload from ${id}`)
    for (const payload of byInstance(id)) assert.equal(payload.EXEC_ERRORS ?? null, null, `${id}: ${JSON.stringify(payload.EXEC_ERRORS)}`)
  }
  const ticks = byInstance('ticker').map((e) => e.EXEC_RESULT.ticks)
  assert.deepEqual(ticks, ticks.map((_, i) => i + 1), 'obj_cache keeps the count between runs')
  assert.ok(byInstance('memory')[0].EXEC_RESULT.rss_mb > 0)
})
