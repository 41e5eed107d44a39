import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {createInterface} from 'node:readline'
import {test} from 'node:test'

// Starts app/main.py on a free port (PORT=0) and reads its JSON lines.
async function startApp() {
  const app = spawn('python3', ['app/main.py'], {env: {...process.env, PORT: '0', INTERVAL: '0.1'}, stdio: ['ignore', 'pipe', 'inherit']})
  const lines = createInterface({input: app.stdout})[Symbol.asyncIterator]()
  const next = async () => JSON.parse((await lines.next()).value)
  return {app, next}
}

test('prints that it listens, answers /health, then prints readings', async (t) => {
  const {app, next} = await startApp()
  t.after(() => app.kill('SIGTERM'))
  const listening = await next()
  assert.equal(listening.event, 'listening')
  assert.ok(listening.port > 0)

  const health = await fetch(`http://127.0.0.1:${listening.port}/health`)
  assert.equal(health.status, 200)
  assert.deepEqual(await health.json(), {status: 'ok'})
  assert.equal((await fetch(`http://127.0.0.1:${listening.port}/nope`)).status, 404)

  const first = await next()
  const second = await next()
  assert.equal(first.event, 'reading')
  assert.equal(second.seq, first.seq + 1)
})

test('exits with 0 on SIGTERM, as the runner stops it', async () => {
  const {app, next} = await startApp()
  await next()
  app.kill('SIGTERM')
  const [code] = await once(app, 'exit')
  assert.equal(code, 0)
})
