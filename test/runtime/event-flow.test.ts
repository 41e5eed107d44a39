import {afterEach, describe, expect, it} from 'vitest'
import type {HeartbeatEvent} from '../../src/protocol/events.js'
import {startLocalNode, type LocalNode} from '../../src/runtime/index.js'
import {Events, FAST, meta} from './helpers.js'

// Instance → node event flow under load: batched IPC, order, counters, back-pressure, reported drops.

let node: LocalNode | undefined
afterEach(async () => {
  await node?.stop()
  node = undefined
})

async function run(code: string, processDelay: number): Promise<Events> {
  node = await startLocalNode({heartbeatIntervalMs: 0, supervisor: FAST})
  const events = new Events(node)
  await node.execute('UPDATE_CONFIG', {NAME: 'f', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'flood', PROCESS_DELAY: processDelay, CODE: code}]}]}, meta())
  return events
}

describe('events from a flooding instance', () => {
  it('arrive complete and in order, with per-node seqs and per-instance counters', async () => {
    // 3 calls × 5000 payloads, then nothing more: every one must arrive, in emit order
    const code = 'const n = (plugin.obj_cache.n ??= 0); if (n >= 3) return; plugin.obj_cache.n++; for (let i = 0; i < 5000; i++) plugin.emit({CALL: n, I: i}); return {CALL: n, DONE: true}'
    const events = await run(code, 0)
    await events.waitUntil(() => events.payloads('flood').length >= 3 * 5001, 60_000, 'every payload')
    const payloads = events.payloads('flood')
    expect(payloads).toHaveLength(3 * 5001)
    const expected = [0, 1, 2].flatMap((call) => [...Array.from({length: 5000}, (_, i) => ({CALL: call, I: i})), {CALL: call, DONE: true}])
    // CUSTOM_EXEC_01 wraps the returned value in EXEC_RESULT
    expect(payloads.map((p) => (p.EXEC_RESULT ?? {CALL: p.CALL, I: p.I}))).toEqual(expected)
    const seqs = events.all.map((e) => e.EE_MESSAGE_SEQ)
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i))
    expect(events.notifications().filter((n) => String(n.NOTIFICATION).startsWith('Dropped'))).toEqual([])
    const hb = node!.heartbeat() as HeartbeatEvent
    expect(hb.ACTIVE_PLUGINS[0].TOTAL_PAYLOAD_COUNT).toBe(3 * 5001)
    expect(hb.ACTIVE_PLUGINS[0].CURRENT_PROCESS_ITERATION).toBeGreaterThanOrEqual(3)
  })

  it('what a call emitted before process.exit() still arrives', async () => {
    const code = 'if (plugin.obj_cache.restarted) return; for (let i = 0; i < 5; i++) plugin.emit({I: i, PID: process.pid}); process.exit(3)'
    const events = await run(code, 0.05)
    const crash = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && /exited with code 3/.test(String(e.NOTIFICATION)), 20_000, 'the crash')
    const before = events.payloads('flood').filter((p) => p.EE_MESSAGE_SEQ < crash.EE_MESSAGE_SEQ)
    expect(before.slice(0, 5).map((p) => p.I)).toEqual([0, 1, 2, 3, 4])
  })

  it('one call emitting more than the host may hold drops the excess and says how many, in place', async () => {
    // the call never yields, so the node cannot take anything until it returns: the host's queue bound applies
    const total = 120_000
    const code = `const n = (plugin.obj_cache.n ??= 0); plugin.obj_cache.n++; if (n === 0) for (let i = 0; i < ${total}; i++) plugin.emit({I: i}); if (n === 1) return {AFTER: true}`
    const events = await run(code, 0.05)
    const after = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && (e.EXEC_RESULT as {AFTER?: boolean} | undefined)?.AFTER === true, 60_000, 'the payload of the next call')
    const gap = events.notifications().find((n) => String(n.NOTIFICATION).startsWith('Dropped'))
    expect(gap).toBeDefined()
    const info = gap!.INFO as {DROPPED_PAYLOADS: number}
    const payloads = events.payloads('flood').filter((p) => p !== after)
    // nothing lost silently: what arrived plus what was reported dropped is what was emitted
    expect(payloads.length + info.DROPPED_PAYLOADS).toBe(total)
    expect(payloads.map((p) => p.I)).toEqual(Array.from({length: payloads.length}, (_, i) => i))
    // the marker sits where the gap is: after the last payload that made it, before what followed
    expect(gap!.EE_MESSAGE_SEQ).toBeGreaterThan(payloads.at(-1)!.EE_MESSAGE_SEQ)
    expect(gap!.EE_MESSAGE_SEQ).toBeLessThan(after.EE_MESSAGE_SEQ)
    expect(node!.instance('f', 'CUSTOM_EXEC_01', 'flood')!.status).toBe('running')
  })
})
