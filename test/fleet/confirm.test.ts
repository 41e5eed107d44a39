import {describe, expect, it} from 'vitest'
import {ConfirmationTracker} from '../../src/fleet/confirm.js'
import {BROKER_CONCURRENCY, DIRECT_CONCURRENCY, concurrencyFor, limiter, pool} from '../../src/fleet/engine.js'
import {MAX_TARGET_LINES, type TargetStatus, exitCodeFor, failureOf} from '../../src/fleet/result.js'
import type {HeartbeatEvent, NotificationEvent} from '../../src/protocol/events.js'

let seq = 0
function note(path: [string | null, string | null, string | null], code: number, over: Partial<NotificationEvent> = {}): NotificationEvent {
  return {
    EE_EVENT_TYPE: 'NOTIFICATION',
    EE_PAYLOAD_PATH: ['node-a', ...path],
    EE_MESSAGE_SEQ: ++seq,
    EE_TIMESTAMP: new Date().toISOString(),
    NOTIFICATION_TYPE: code < 0 ? 'EXCEPTION' : 'NORMAL',
    NOTIFICATION_CODE: code,
    NOTIFICATION: `code ${code}`,
    ...over,
  }
}

const expectation = {pipeline: 'temps', pipelineCode: 1, instances: [{signature: 'TEMP_MONITOR', instanceId: 'm1'}, {signature: 'TEMP_MONITOR', instanceId: 'm2'}]}

describe('ConfirmationTracker', () => {
  it('confirms after PIPELINE_OK naming the command and PLUGIN_CONFIG_OK of every awaited instance', () => {
    const t = new ConfirmationTracker(expectation)
    // Seen before the hash is known: kept and re-examined.
    t.observe(note(['temps', null, null], 1, {COMMAND_HASH: 'h1'}))
    expect(t.setCommandHash('h1')).toEqual({state: 'pending', waitingFor: ['TEMP_MONITOR/m1', 'TEMP_MONITOR/m2']})
    t.observe(note(['temps', 'TEMP_MONITOR', 'm1'], 100))
    t.observe(note(['other', 'TEMP_MONITOR', 'm2'], 100))
    expect(t.current().state).toBe('pending')
    expect(t.observe(note(['temps', 'TEMP_MONITOR', 'm2'], 100)).state).toBe('confirmed')
  })

  it('ignores confirmations of other commands', () => {
    const t = new ConfirmationTracker(expectation)
    t.setCommandHash('mine')
    t.observe(note(['temps', null, null], 1, {COMMAND_HASH: 'theirs'}))
    t.observe(note(['temps', null, null], -1, {COMMAND_HASH: 'theirs'}))
    expect(t.current()).toEqual({state: 'pending', waitingFor: ['pipeline temps (code 1)', 'TEMP_MONITOR/m1', 'TEMP_MONITOR/m2']})
  })

  it('the session\'s form (a list of codes at paths) follows the same rule', () => {
    const byInstance = new ConfirmationTracker([{code: 100, instance: 'k1'}])
    byInstance.setCommandHash('h')
    byInstance.observe(note(['p', 'EXEC', 'k2'], 100)) // another instance
    expect(byInstance.current()).toEqual({state: 'pending', waitingFor: ['k1']})
    expect(byInstance.observe(note(['p', 'EXEC', 'k1'], -100, {NOTIFICATION: 'bad config'})).state).toBe('failed')
    const byPipeline = new ConfirmationTracker([{code: 1, pipeline: 'p'}])
    byPipeline.setCommandHash('h')
    byPipeline.observe(note(['p', null as never, null as never], 1)) // names no command: not this one's
    expect(byPipeline.current().state).toBe('pending')
    expect(byPipeline.observe(note(['p', null as never, null as never], -1, {COMMAND_HASH: 'h'})).state).toBe('rejected')
  })

  it('a rejection naming the command ends the wait with its reason', () => {
    const t = new ConfirmationTracker(expectation)
    t.setCommandHash('h')
    const v = t.observe(note([null, null, null], -5000, {COMMAND_HASH: 'h', NOTIFICATION: 'sender 0xai_x is not allowed'}))
    expect(v).toEqual({state: 'rejected', reason: 'sender 0xai_x is not allowed', code: -5000})
  })

  it('an awaited instance that throws or crashes fails at once with its last error', () => {
    const t = new ConfirmationTracker(expectation)
    t.setCommandHash('h')
    const v = t.observe(note(['temps', 'TEMP_MONITOR', 'm2'], -200, {NOTIFICATION: 'Exception in process', INFO: {message: 'TypeError: boom\n  at x'}}))
    expect(v).toMatchObject({state: 'failed', reason: 'TEMP_MONITOR/m2: Exception in process (TypeError: boom)', instance: {instanceId: 'm2'}})
    // An exception of an instance nobody waits for is not this deploy's business.
    const other = new ConfirmationTracker(expectation)
    other.setCommandHash('h')
    expect(other.observe(note(['temps', 'TEMP_MONITOR', 'm9'], -200)).state).toBe('pending')
  })

  it('a heartbeat showing an awaited instance in error fails with LAST_ERROR', () => {
    const t = new ConfirmationTracker({pipeline: 'temps', instances: [{signature: 'S', instanceId: 'i'}]})
    const hb = {
      EE_EVENT_TYPE: 'HEARTBEAT',
      EE_PAYLOAD_PATH: ['node-a', null, null, null],
      EE_MESSAGE_SEQ: ++seq,
      EE_TIMESTAMP: '',
      ACTIVE_PLUGINS: [{STREAM_ID: 'temps', SIGNATURE: 'S', INSTANCE_ID: 'i', STATUS: 'error', LAST_ERROR: 'exit code 3'}],
    } as unknown as HeartbeatEvent
    expect(t.observe(hb)).toMatchObject({state: 'failed', reason: 'S/i is error: exit code 3'})
  })
})

describe('exit codes over targets', () => {
  it('is 0 only when every target succeeded, 6 on a partial failure, the common code when all failed alike', () => {
    expect(exitCodeFor([{status: 'deployed'}, {status: 'unchanged'}])).toBe(0)
    expect(exitCodeFor([{status: 'deployed'}, {status: 'unreachable'}])).toBe(6)
    expect(exitCodeFor([{status: 'rejected'}, {status: 'rejected'}])).toBe(4)
    expect(exitCodeFor([{status: 'timeout'}])).toBe(5)
    expect(exitCodeFor([{status: 'unreachable'}])).toBe(7)
    expect(exitCodeFor([{status: 'failed'}])).toBe(1)
    expect(exitCodeFor([{status: 'rejected'}, {status: 'timeout'}])).toBe(6)
    expect(exitCodeFor([{status: 'failed'}, {status: 'rolled-back'}])).toBe(6)
    // targets a rollout never reached stand for another's failure, not one of their own
    expect(exitCodeFor([{status: 'unreachable'}, {status: 'untouched'}])).toBe(7)
    expect(exitCodeFor([{status: 'deployed'}, {status: 'untouched'}])).toBe(6)
    expect(exitCodeFor([{status: 'ok'}, {status: 'interrupted'}])).toBe(0) // a stream stopped by Ctrl-C
  })

  it('failureOf names every failed target and its reason', () => {
    const error = failureOf('Deploy', [
      {target: 'a', status: 'deployed'},
      {target: 'b', status: 'unreachable', error: 'connect ECONNREFUSED'},
    ])!
    expect(error.exitCode).toBe(6)
    expect(error.message).toContain('b: unreachable — connect ECONNREFUSED')
    expect(failureOf('Deploy', [{target: 'a', status: 'deployed'}])).toBeUndefined()
  })

  it('failureOf names the first MAX_TARGET_LINES failed targets of a fleet, then counts the rest', () => {
    const fleet = Array.from({length: 1000}, (_, i) => ({target: `edge-${i}`, status: (i % 100 === 99 ? 'timeout' : 'unreachable') as TargetStatus, error: 'no reply'}))
    const lines = failureOf('Deploy', fleet)!.message.split('\n')
    expect(lines[0]).toBe('Deploy failed on 1000 of 1000 targets:')
    expect(lines.slice(1, -1)).toEqual(fleet.slice(0, MAX_TARGET_LINES).map((t) => `  ${t.target}: unreachable — no reply`))
    expect(lines.at(-1)).toBe(`  … and ${1000 - MAX_TARGET_LINES} more (970 unreachable, 10 timeout; each is listed above, and in --json)`)
  })
})

describe('pool', () => {
  it('a limiter runs at most its limit at once, in the order called', async () => {
    const limit = limiter(2)
    let running = 0
    let most = 0
    const order: number[] = []
    const gates = Array.from({length: 5}, () => {
      let resolve!: () => void
      return {promise: new Promise<void>((r) => (resolve = r)), resolve: () => resolve()}
    })
    const calls = gates.map((gate, i) =>
      limit(async () => {
        order.push(i)
        most = Math.max(most, ++running)
        await gate.promise
        running--
        return i
      }),
    )
    gates[0]!.resolve()
    await Promise.resolve()
    const late = limit(async () => {
      order.push(9)
      most = Math.max(most, ++running)
      running--
      return 9
    })
    for (const gate of gates) gate.resolve()
    expect(await Promise.all([...calls, late])).toEqual([0, 1, 2, 3, 4, 9])
    expect(order).toEqual([0, 1, 2, 3, 4, 9])
    expect(most).toBe(2)
    // a call that throws frees its slot
    await expect(limit(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    await expect(limit(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    expect(await Promise.all([limit(async () => 'a'), limit(async () => 'b'), limit(async () => 'c')])).toEqual(['a', 'b', 'c'])
  })

  it('fans out to 256 targets at once by default when all are behind a broker, else 8; --max-concurrent wins', () => {
    const broker = {broker: {url: 'mqtt://127.0.0.1:1883'}}
    expect(concurrencyFor([broker, broker], undefined)).toBe(BROKER_CONCURRENCY)
    expect(BROKER_CONCURRENCY).toBe(256)
    expect(concurrencyFor([broker, {}], undefined)).toBe(DIRECT_CONCURRENCY)
    expect(DIRECT_CONCURRENCY).toBe(8)
    expect(concurrencyFor([], undefined)).toBe(DIRECT_CONCURRENCY)
    expect(concurrencyFor([broker], 3)).toBe(3)
  })

  it('never runs more than the limit at once and keeps the order', async () => {
    let running = 0
    let peak = 0
    const out = await pool([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running++
      peak = Math.max(peak, running)
      await new Promise((r) => setTimeout(r, 5 * (8 - n)))
      running--
      return n * 10
    })
    expect(out).toEqual([10, 20, 30, 40, 50, 60, 70])
    expect(peak).toBe(3)
  })
})
