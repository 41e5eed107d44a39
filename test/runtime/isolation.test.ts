import {afterEach, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import type {LocalNode} from '../../src/runtime/index.js'
import {FAST, faultyNode, faultyPipeline, isAlive, meta, until, type Events} from './helpers.js'

let node: LocalNode | undefined

afterEach(async () => {
  await node?.stop()
  node = undefined
})

/** Starts a node running one faulty instance next to a steady one. */
async function withFault(mode: string, extra: Record<string, unknown> = {}): Promise<{node: LocalNode; events: Events}> {
  const started = await faultyNode()
  node = started.node
  await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'bad', MODE: mode, ...extra}, {INSTANCE_ID: 'steady', MODE: 'ok'}]), meta())
  return {node: started.node, events: started.events}
}

async function expectRestartedWhileOthersRun(events: Events, error: RegExp): Promise<void> {
  const crash = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CRASHED && e.EE_PAYLOAD_PATH[3] === 'bad', 20_000, 'a crash notification')
  expect(String(crash.NOTIFICATION)).toMatch(error)
  // the faulty instance comes back (a new process) ...
  const pids = await events.waitUntil(() => {
    const seen = new Set(events.payloads('bad').map((p) => p.PID))
    return seen.size >= 2 && seen
  }, 20_000, 'the instance to run again in a new process')
  expect(pids.size).toBeGreaterThanOrEqual(2)
  // ... and the steady instance kept emitting after the crash: the node kept serving
  const crashSeq = crash.EE_MESSAGE_SEQ
  await events.waitUntil(() => events.payloads('steady').some((p) => p.EE_MESSAGE_SEQ > crashSeq), 20_000, 'steady payloads after the crash')
  const bad = node!.state()[0].instances.find((i) => i.instanceId === 'bad')!
  expect(bad.counters.restarts).toBeGreaterThanOrEqual(1)
  expect(bad.lastError).toMatch(error)
}

describe('isolation: a faulty instance affects only itself', () => {
  it('a throw in process gives an EXCEPTION notification and the loop goes on, no restart', async () => {
    const {events} = await withFault('throw')
    const exceptions = await events.waitUntil(() => {
      const list = events.notifications({code: NotificationCode.PLUGIN_EXCEPTION, instanceId: 'bad'})
      return list.length >= 3 && list
    }, 20_000, 'three exceptions')
    expect(exceptions[0]).toMatchObject({NOTIFICATION_TYPE: 'EXCEPTION', NOTIFICATION: 'Exception in process: Error: fault at iteration 1'})
    expect((exceptions[0].INFO as {STACK: string}).STACK).toMatch(/faulty\.ts/) // source-mapped to the plugin's own file
    const bad = node!.state()[0].instances.find((i) => i.instanceId === 'bad')!
    expect(bad.counters.restarts).toBe(0)
    expect(bad.status).toBe('running')
    expect(bad.lastError).toMatch(/fault at iteration/)
    expect(new Set(events.payloads('bad').map((p) => p.PID)).size).toBe(1)
  })

  it('a hang in process is killed after the process timeout and restarted', async () => {
    const {events} = await withFault('hang')
    await expectRestartedWhileOthersRun(events, /did not return within 1.5 s \(hang\)/)
  })

  it('an infinite loop in process is killed as a hang with a blocked event loop, and restarted', async () => {
    const {events} = await withFault('loop')
    await expectRestartedWhileOthersRun(events, /event loop blocked/)
  })

  it('process.exit() in plugin code is a crash: restarted', async () => {
    const {events} = await withFault('exit')
    await expectRestartedWhileOthersRun(events, /exited with code 3/)
  })

  it('a native crash (SIGSEGV) is a crash: restarted', async () => {
    const {events} = await withFault('segv')
    await expectRestartedWhileOthersRun(events, /killed by SIGSEGV/)
  })

  it('a crash loop backs off, reaches status error with the last error, and keeps retrying', async () => {
    const {events} = await withFault('init-throw')
    const statuses: string[] = []
    node!.onInstanceChange((change) => {
      if (change.kind === 'status' && change.path[3] === 'bad') statuses.push(change.status)
    })
    const bad = await until(() => {
      const instance = node!.state()[0].instances.find((i) => i.instanceId === 'bad')!
      return instance.counters.restarts >= 4 && instance
    }, 30_000, 'four restarts')
    expect(bad.lastError).toBe('init failed: Error: init refuses to start')
    expect(statuses).toContain('restarting')
    expect(statuses).toContain('error')
    // the crash notifications carry the growing back-off: 50, 100, 200 ms, then the 400 ms cap
    const delays = events.notifications({code: NotificationCode.PLUGIN_CRASHED, instanceId: 'bad'}).map((n) => (n.INFO as {RESTART_IN: number}).RESTART_IN)
    expect(delays.slice(0, 4)).toEqual([0.05, 0.1, 0.2, 0.4])
    expect(events.payloads('steady').length).toBeGreaterThan(0)
  })
})

describe('per-instance hang timeout', () => {
  it('PROCESS_TIMEOUT in the instance config overrides the node default', async () => {
    const started = await faultyNode({supervisor: {...FAST, processTimeoutMs: 600_000}})
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'bad', MODE: 'hang', PROCESS_TIMEOUT: 0.5}]), meta())
    const crash = await started.events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CRASHED)
    expect(String(crash.NOTIFICATION)).toMatch(/did not return within 0.5 s \(hang\)/)
  })
})

describe('restart back-off reset', () => {
  it('an instance that ran for the stable period restarts at the base delay again', async () => {
    // each life lasts at least two PROCESS_DELAYs (200 ms, a lower bound) before it crashes: longer than stableMs
    const started = await faultyNode({supervisor: {...FAST, stableMs: 100}})
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'bad', MODE: 'exit', FAULT_AT: 3}]), meta())
    await started.events.waitUntil(() => started.events.notifications({code: NotificationCode.PLUGIN_CRASHED}).length >= 3, 30_000, 'three crashes')
    const delays = started.events.notifications({code: NotificationCode.PLUGIN_CRASHED}).map((n) => (n.INFO as {RESTART_IN: number}).RESTART_IN)
    expect(delays.slice(0, 3)).toEqual([0.05, 0.05, 0.05])
    expect(node.instance('p', 'FAULTY', 'bad')!.status).not.toBe('error')
  })
})

describe('hang detection by pings', () => {
  it('with a long process timeout, missed pings alone catch a blocked event loop', async () => {
    const started = await faultyNode({supervisor: {...FAST, processTimeoutMs: 600_000}})
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'bad', MODE: 'loop'}, {INSTANCE_ID: 'steady', MODE: 'ok'}]), meta())
    await expectRestartedWhileOthersRun(started.events, /unresponsive for 3 s \(event loop blocked/)
  })
})

describe('stop', () => {
  it('kills an instance that ignores shutdown after its grace period', async () => {
    const started = await faultyNode()
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'stubborn', MODE: 'ignore-close', SHUTDOWN_TIMEOUT: 0.3}]), meta())
    const first = await started.events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    const pid = Number(first.PID)
    expect(isAlive(pid)).toBe(true)
    await node.execute('DELETE_CONFIG', 'p', meta())
    await until(() => !isAlive(pid), 10_000, 'the stubborn instance to be killed')
    expect(node.state()).toEqual([])
  })
})
