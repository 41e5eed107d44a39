import {join} from 'node:path'
import {deflateSync} from 'node:zlib'
import {afterEach, describe, expect, it} from 'vitest'
import {freePort} from '../../bench/servers.js'
import {compileManifest, loadManifest} from '../../src/manifest/index.js'
import {NotificationCode} from '../../src/protocol/codes.js'
import type {InstanceConfig} from '../../src/protocol/pipeline.js'
import {parseHealthCheck} from '../../src/runtime/builtins/process-app-runner.js'
import {MAX_LINE_CHARS} from '../../src/runtime/log-limit.js'
import {startLocalNode, type LocalNode} from '../../src/runtime/index.js'
import {Events, FAST, FIXTURES, isAlive, meta, until} from './helpers.js'

// from helpers' FIXTURES: this file imports `meta`, which trips vite's rewrite of import.meta
const PROCESS_APP_TEMPLATE = join(FIXTURES, '../../../templates/process-app')

let node: LocalNode | undefined
afterEach(async () => {
  await node?.stop()
  node = undefined
})

async function start(signature: string, instances: InstanceConfig[]): Promise<Events> {
  node = await startLocalNode({heartbeatIntervalMs: 0, supervisor: FAST})
  const events = new Events(node)
  await node.execute('UPDATE_CONFIG', {NAME: 'b', TYPE: 'Void', PLUGINS: [{SIGNATURE: signature, INSTANCES: instances.map((i) => ({PROCESS_DELAY: 0.05, SHUTDOWN_TIMEOUT: 2, ...i}))}]}, meta())
  return events
}

describe('CUSTOM_EXEC_01', () => {
  it('runs CODE with plugin in scope each PROCESS_DELAY; its value is EXEC_RESULT', async () => {
    const events = await start('CUSTOM_EXEC_01', [{INSTANCE_ID: 'x', CODE: 'plugin.obj_cache.n = (plugin.obj_cache.n ?? 0) + 1; return {N: plugin.obj_cache.n, ID: plugin.instanceId}'}])
    await events.waitUntil(() => events.payloads('x').length >= 2, 20_000, 'two results')
    expect(events.payloads('x').slice(0, 2).map((p) => p.EXEC_RESULT)).toEqual([
      {N: 1, ID: 'x'},
      {N: 2, ID: 'x'},
    ])
    expect(events.payloads('x')[0].EXEC_ERRORS).toBeNull()
  })

  it('accepts CODE as Ratio1 sends it (base64 of zlib) and sees only the configured environment', async () => {
    const code = deflateSync('return Object.keys(process.env).sort()').toString('base64')
    const events = await start('CUSTOM_EXEC_01', [{INSTANCE_ID: 'z', CODE: code}])
    const payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    expect(payload.EXEC_RESULT).toEqual(['PATH']) // no secrets from the parent's environment
  })

  it('a throw gives EXEC_ERRORS and an EXCEPTION notification; a new CODE applies live', async () => {
    const events = await start('CUSTOM_EXEC_01', [{INSTANCE_ID: 'e', CODE: 'throw new TypeError("boom")'}])
    const failed = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    expect(failed).toMatchObject({EXEC_RESULT: null, EXEC_ERRORS: ['TypeError: boom']})
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_EXCEPTION && e.NOTIFICATION === 'Exception in process: TypeError: boom')
    const pid = node!.instance('b', 'CUSTOM_EXEC_01', 'e')!.pid
    await node!.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'b', SIGNATURE: 'CUSTOM_EXEC_01', INSTANCE_ID: 'e', INSTANCE_CONFIG: {CODE: 'return "fixed"'}}, meta())
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EXEC_RESULT === 'fixed')
    expect(node!.instance('b', 'CUSTOM_EXEC_01', 'e')!.pid).toBe(pid)
  })

  it('a payload too big for the wire or not JSON is dropped with a notification; the instance keeps running', async () => {
    const events = await start('CUSTOM_EXEC_01', [
      {INSTANCE_ID: 'big', CODE: 'if (plugin.iteration === 1) return "x".repeat(2 * 1024 * 1024); return plugin.iteration'},
      {INSTANCE_ID: 'cyclic', CODE: 'const a = {}; a.self = a; plugin.emit({A: a}); return "after"'},
    ])
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.EE_PAYLOAD_PATH[3] === 'big' && /Payload dropped: \d+ bytes of JSON, over the 921600 byte limit/.test(String(e.NOTIFICATION)))
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EE_PAYLOAD_PATH[3] === 'big' && e.EXEC_RESULT === 2)
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.EE_PAYLOAD_PATH[3] === 'cyclic' && /Payload dropped: not JSON/.test(String(e.NOTIFICATION)))
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EE_PAYLOAD_PATH[3] === 'cyclic' && e.EXEC_RESULT === 'after')
  })

  it('CODE that does not compile is invalid_config, reported, never started', async () => {
    const events = await start('CUSTOM_EXEC_01', [{INSTANCE_ID: 'bad', CODE: 'return {'}])
    expect(node!.instance('b', 'CUSTOM_EXEC_01', 'bad')!.status).toBe('invalid_config')
    expect(events.notifications({code: NotificationCode.PLUGIN_CONFIG_FAILED})[0].NOTIFICATION).toMatch(/bad.CODE: CODE does not parse/)
  })
})

describe('log lines stamped by the instance', () => {
  it('keep the time the instance read them (a process app line), never a time to come', async () => {
    const past = '2020-01-02T03:04:05.678Z'
    // what the app runner sends for each line it reads, sent by hand from inside the instance process
    const send = (text: string, time: number) => `process.send({t: 'event', event: {kind: 'log', level: 'info', text: '${text}', time: ${time}}});`
    const code = `if (plugin.iteration === 1) { ${send('read earlier', Date.parse(past))} ${send('from the future', Date.parse('2999-01-01T00:00:00Z'))} } return null`
    const events = await start('CUSTOM_EXEC_01', [{INSTANCE_ID: 'stamped', CODE: code}])
    const future = await events.waitFor((e) => e.EE_EVENT_TYPE === 'LOG' && e.MESSAGE === 'from the future')
    const earlier = events.logs('stamped').find((l) => l.MESSAGE === 'read earlier')!
    expect(earlier.EE_TIMESTAMP).toBe(past)
    expect(earlier.EE_MESSAGE_SEQ).toBeLessThan(future.EE_MESSAGE_SEQ)
    expect(future.EE_TIMESTAMP < '2999').toBe(true) // the node's own time instead
  })
})

describe('PROCESS_APP_RUNNER', () => {
  it('its output lines are LOG events (stdout info, stderr warn), only with its ENV; payloads carry its status; STOP and RESTART; no process left after stop', async () => {
    const events = await start('PROCESS_APP_RUNNER', [{INSTANCE_ID: 'app', COMMAND: 'echo "hello $GREETING-$HOME"; echo oops >&2; exec sleep 300', ENV: {GREETING: 'hi'}}])
    const appLines = () => events.logs('app').filter((l) => l.MESSAGE === 'hello hi-' || l.MESSAGE === 'oops')
    await events.waitUntil(() => appLines().length >= 2, 20_000, 'the app lines')
    // stdout and stderr are two pipes: their relative order is the reader's, not the app's
    expect(appLines().map((l) => [l.MESSAGE, l.LEVEL]).sort()).toEqual([
      ['hello hi-', 'info'],
      ['oops', 'warn'],
    ])
    const status = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.APP_STATUS === 'running')
    expect(Object.keys(status).filter((k) => !k.startsWith('EE_')).sort()).toEqual(['APP_STATUS', 'PID', 'RESTARTS'])
    const first = Number(status.PID)
    expect(isAlive(first)).toBe(true)

    const restart = meta()
    await node!.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'b', SIGNATURE: 'PROCESS_APP_RUNNER', INSTANCE_ID: 'app', INSTANCE_CONFIG: {INSTANCE_COMMAND: 'RESTART'}}, restart)
    const restarted = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === restart.hash)
    expect(restarted.NOTIFICATION_CODE).toBe(NotificationCode.PLUGIN_INSTANCE_COMMAND_OK)
    const second = Number((restarted.INFO as {RESULT: {PID: number}}).RESULT.PID)
    expect(second).not.toBe(first)
    expect(isAlive(first)).toBe(false)
    // the second life has printed its two lines before it is stopped (a stop sooner would cut them short, rightly)
    await events.waitUntil(() => appLines().length >= 4, 20_000, 'the lines of the second life')

    const stop = meta()
    await node!.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'b', SIGNATURE: 'PROCESS_APP_RUNNER', INSTANCE_ID: 'app', INSTANCE_CONFIG: {INSTANCE_COMMAND: 'STOP'}}, stop)
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.COMMAND_HASH === stop.hash && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_INSTANCE_COMMAND_OK)
    expect(isAlive(second)).toBe(false)

    await node!.execute('UPDATE_PIPELINE_INSTANCE', {NAME: 'b', SIGNATURE: 'PROCESS_APP_RUNNER', INSTANCE_ID: 'app', INSTANCE_CONFIG: {INSTANCE_COMMAND: 'START'}}, meta())
    const third = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && typeof e.PID === 'number' && e.PID !== first && e.PID !== second)
    // each life printed its lines once
    await events.waitUntil(() => appLines().length >= 6, 20_000, 'the lines of three lives')
    expect(events.payloads('app').filter((p) => 'OUTPUT' in p || 'STDERR' in p)).toEqual([])
    const host = node!.instance('b', 'PROCESS_APP_RUNNER', 'app')!.pid!
    await node!.stop()
    node = undefined
    await until(() => !isAlive(Number(third.PID)) && !isAlive(host), 10_000, 'the app and its host to end')
  })

  it('restarts on failure per RESTART_POLICY, and stays down with "no"', async () => {
    const events = await start('PROCESS_APP_RUNNER', [
      {INSTANCE_ID: 'flaky', COMMAND: 'echo run; exit 2', RESTART_POLICY: 'on-failure'},
      {INSTANCE_ID: 'once', COMMAND: ['sh', '-c', 'exit 5'], RESTART_POLICY: 'no'},
    ])
    await events.waitUntil(() => events.notifications({instanceId: 'flaky'}).filter((n) => /App exited \(code 2\), restarting/.test(String(n.NOTIFICATION))).length >= 2, 20_000, 'two restarts')
    const failed = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EE_PAYLOAD_PATH[3] === 'once' && e.APP_STATUS === 'failed')
    expect(failed).toMatchObject({PID: null, EXIT: {CODE: 5, SIGNAL: null}})
    expect(events.notifications({instanceId: 'once'}).map((n) => n.NOTIFICATION)).toContain('App exited (code 5)')
  })

  it('a command that cannot start: an error LOG line, and the crash says why', async () => {
    const events = await start('PROCESS_APP_RUNNER', [{INSTANCE_ID: 'none', COMMAND: ['/nonexistent/r1-app'], RESTART_POLICY: 'no'}])
    const line = await events.waitFor((e) => e.EE_EVENT_TYPE === 'LOG' && e.EE_PAYLOAD_PATH[3] === 'none' && e.LEVEL === 'error')
    expect(line.MESSAGE).toMatch(/^failed to start: spawn \/nonexistent\/r1-app ENOENT/)
    await events.waitUntil(() => node!.instance('b', 'PROCESS_APP_RUNNER', 'none')!.status === 'error', 20_000, 'status error')
    expect(node!.instance('b', 'PROCESS_APP_RUNNER', 'none')!.counters.lastError).toMatch(/failed to start: spawn/)
  })

  it('a line longer than MAX_LINE_CHARS is cut, with the count of what was cut', async () => {
    const events = await start('PROCESS_APP_RUNNER', [{INSTANCE_ID: 'long', COMMAND: [process.execPath, '-e', `console.log("x".repeat(${MAX_LINE_CHARS + 10}))`], RESTART_POLICY: 'no'}])
    const line = await events.waitFor((e) => e.EE_EVENT_TYPE === 'LOG' && e.EE_PAYLOAD_PATH[3] === 'long' && String(e.MESSAGE).startsWith('xxx'))
    expect(line.MESSAGE).toBe(`${'x'.repeat(MAX_LINE_CHARS)}… (10 more characters cut)`)
  })

  it('reads the HEALTH_CHECK that the compiler writes for the process-app template', async () => {
    const {manifest} = await loadManifest(PROCESS_APP_TEMPLATE)
    const [pipeline] = compileManifest(manifest)
    const instance = pipeline.PLUGINS[0].INSTANCES[0]
    // one spelling on the wire: nested keys UPPERCASE, as the top-level ones
    expect(instance.HEALTH_CHECK).toEqual({TYPE: 'http', URL: 'http://127.0.0.1:8765/health', TIMEOUT: 30})
    expect(parseHealthCheck(instance)).toEqual({type: 'http', host: '127.0.0.1', url: 'http://127.0.0.1:8765/health', delayMs: 1000, timeoutMs: 30_000})
    // a raw config in config.yaml's lowercase reads the same
    expect(parseHealthCheck({HEALTH_CHECK: {type: 'http', url: 'http://127.0.0.1:8765/health', timeout: 30}})).toEqual(parseHealthCheck(instance))
    expect(() => parseHealthCheck({HEALTH_CHECK: {TYPE: 'tcp'}})).toThrow(/tcp needs a PORT/)
  })

  it('runs the compiled template config on a node: the health check passes', async () => {
    const port = await freePort()
    const {manifest} = await loadManifest(PROCESS_APP_TEMPLATE)
    const [pipeline] = compileManifest(manifest)
    // the template's python app and folder are swapped for a node one-liner; the rest stays as compiled
    const {CWD: _cwd, ...compiled} = pipeline.PLUGINS[0].INSTANCES[0]
    const server = `require("http").createServer((q, s) => s.end("ok")).listen(${port}, "127.0.0.1")`
    const healthCheck = {...(compiled.HEALTH_CHECK as Record<string, unknown>), URL: `http://127.0.0.1:${port}/health`}
    const events = await start('PROCESS_APP_RUNNER', [{...compiled, INSTANCE_ID: 'tpl', COMMAND: [process.execPath, '-e', server], HEALTH_CHECK: healthCheck}])
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION === 'App healthy (http)', 20_000, 'healthy')
    expect(node!.instance('b', 'PROCESS_APP_RUNNER', 'tpl')!.status).toBe('running')
  })

  it('waits for an http health check before reporting healthy', async () => {
    const port = await freePort()
    const server = `require("http").createServer((q, s) => s.end("ok")).listen(${port}, "127.0.0.1")`
    const events = await start('PROCESS_APP_RUNNER', [{INSTANCE_ID: 'web', COMMAND: [process.execPath, '-e', server], HEALTH_CHECK: {type: 'http', port, path: '/health'}}])
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION === 'App healthy (http)', 20_000, 'healthy')
    await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.APP_STATUS === 'healthy')
  })
})
