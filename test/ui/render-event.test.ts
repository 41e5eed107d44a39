import {describe, expect, it} from 'vitest'
import type {NodeEvent} from '../../src/protocol/events.js'
import {compactPayload, firstFrame, renderEvent} from '../../src/ui/render-event.js'

const at = new Date(2026, 0, 2, 3, 4, 5, 67).toISOString()
const envelope = (path: NodeEvent['EE_PAYLOAD_PATH'], seq = 1) => ({EE_PAYLOAD_PATH: path, EE_MESSAGE_SEQ: seq, EE_TIMESTAMP: at})

describe('renderEvent', () => {
  it('a payload: time, path, KEY=value without the envelope', () => {
    const event = {EE_EVENT_TYPE: 'PAYLOAD', ...envelope(['edge', 'temps', 'TEMP_MONITOR', 'm1']), TEMPERATURE: 21.123456, UNIT: 'C', NOTE: 'two words', NESTED: {A: [1, 2]}} as NodeEvent
    expect(renderEvent(event, {color: false})).toBe('03:04:05.067 temps/TEMP_MONITOR/m1 TEMPERATURE=21.1235 UNIT=C NOTE="two words" NESTED={"A":[1,2]}')
    expect(renderEvent(event, {color: false, nodeLabel: 'edge-a', date: true})).toBe('2026-01-02 03:04:05.067 edge-a temps/TEMP_MONITOR/m1 TEMPERATURE=21.1235 UNIT=C NOTE="two words" NESTED={"A":[1,2]}')
  })

  it('notifications show their kind and code; node-level paths show the alias', () => {
    const ok = {EE_EVENT_TYPE: 'NOTIFICATION', ...envelope(['edge', 'temps', null, null]), NOTIFICATION_TYPE: 'NORMAL', NOTIFICATION_CODE: 1, NOTIFICATION: 'Pipeline temps applied'} as NodeEvent
    expect(renderEvent(ok, {color: false})).toBe('03:04:05.067 temps note [1] Pipeline temps applied')
    const bad = {EE_EVENT_TYPE: 'NOTIFICATION', ...envelope(['edge', null, null, null]), NOTIFICATION_TYPE: 'EXCEPTION', NOTIFICATION_CODE: -200, NOTIFICATION: 'boom'} as NodeEvent
    expect(renderEvent(bad, {color: false})).toBe('03:04:05.067 edge exception [-200] boom')
    expect(renderEvent(bad, {color: true})).toContain(`${String.fromCharCode(27)}[31mexception`)
  })

  it('heartbeats summarize resources and instance statuses', () => {
    const hb = {
      EE_EVENT_TYPE: 'HEARTBEAT',
      ...envelope(['edge', null, null, null]),
      UPTIME: 12.4,
      CPU_USED: 3.5,
      PROCESS_MEMORY: 50 * 1048576,
      PIPELINES: ['temps'],
      ACTIVE_PLUGINS: [{INSTANCE_ID: 'm1', STATUS: 'running'}],
    } as unknown as NodeEvent
    expect(renderEvent(hb, {color: false})).toBe('03:04:05.067 edge heartbeat up 12s cpu 3.5% rss 50 MiB pipelines 1 instances 1 m1:running')
    // labelled by node (r1 logs over many nodes): the node is named once, not `edge edge heartbeat`
    expect(renderEvent(hb, {color: false, nodeLabel: 'edge'})).toBe('03:04:05.067 edge heartbeat up 12s cpu 3.5% rss 50 MiB pipelines 1 instances 1 m1:running')
  })

  it('progress and metrics get their own shapes; long payloads are clipped, long log lines are not', () => {
    const base = envelope(['n', 'p', 'S', 'i'])
    expect(renderEvent({EE_EVENT_TYPE: 'PAYLOAD', ...base, R1_KIND: 'PROGRESS', CURRENT: 3, TOTAL: 12, CATEGORY: 'upload'} as NodeEvent, {color: false})).toBe('03:04:05.067 p/S/i progress 3/12 (25%) upload')
    expect(renderEvent({EE_EVENT_TYPE: 'PAYLOAD', ...base, R1_KIND: 'METRICS', CATEGORY: null, METRICS: {rps: 10.5}} as NodeEvent, {color: false})).toBe('03:04:05.067 p/S/i metrics rps=10.5')
    expect(renderEvent({EE_EVENT_TYPE: 'PAYLOAD', ...base, APP_STATUS: 'running', PID: 42, RESTARTS: 0} as NodeEvent, {color: false})).toBe('03:04:05.067 p/S/i APP_STATUS=running PID=42 RESTARTS=0')
    const long = renderEvent({EE_EVENT_TYPE: 'PAYLOAD', ...base, TEXT: 'x'.repeat(500)} as NodeEvent, {color: false, maxWidth: 40})
    expect(long).toBe(`03:04:05.067 p/S/i TEXT=${'x'.repeat(34)}…`)
    // a process app's long output line, as a LOG event: shown whole, whatever maxWidth
    const line = `{"reading": "${'y'.repeat(500)}"}`
    expect(renderEvent({EE_EVENT_TYPE: 'LOG', ...base, LEVEL: 'warn', MESSAGE: line} as NodeEvent, {color: false, maxWidth: 40})).toBe(`03:04:05.067 p/S/i warn  ${line}`)
  })

  it('a subscription gap says which events are missing', () => {
    const gap = {EE_EVENT_TYPE: 'R1_GAP' as const, FROM_SEQ: 10, TO_SEQ: 19, REASON: 'retention', EE_TIMESTAMP: at}
    expect(renderEvent(gap, {color: false, nodeLabel: 'edge-a'})).toBe('03:04:05.067 edge-a gap: events 10..19 are missing (retention)')
  })

  it('compactPayload drops EE_ keys only', () => {
    expect(compactPayload({EE_X: 1, A: 'b', B: true, C: null})).toBe('A=b B=true C=null')
  })
})

describe('LOG events and exceptions', () => {
  const base = {EE_PAYLOAD_PATH: ['n', 'p', 'S', 'i'] as ['n', 'p', 'S', 'i'], EE_MESSAGE_SEQ: 1, EE_TIMESTAMP: at}
  it('a plugin log line has its time, instance path and level', () => {
    expect(renderEvent({EE_EVENT_TYPE: 'LOG', ...base, LEVEL: 'warn', MESSAGE: 'careful'} as NodeEvent, {color: false})).toBe('03:04:05.067 p/S/i warn  careful')
    expect(renderEvent({EE_EVENT_TYPE: 'LOG', ...base, LEVEL: 'info', MESSAGE: 'hi'} as NodeEvent, {color: false, nodeLabel: 'edge-a'})).toBe('03:04:05.067 edge-a p/S/i log   hi')
  })

  it("an exception shows its message and the first frame of its (source-mapped) stack that is not Node's", () => {
    const STACK = 'Error: boom\n    at node:internal/x:1:1\n    at process (file:///proj/src/faulty.ts:12:11)\n    at run (/r1/runner.js:1:1)'
    const text = renderEvent({EE_EVENT_TYPE: 'NOTIFICATION', ...base, NOTIFICATION_TYPE: 'EXCEPTION', NOTIFICATION_CODE: -200, NOTIFICATION: 'Exception in process: boom', INFO: {STACK}} as NodeEvent, {color: false})
    expect(text.split('\n')).toEqual(['03:04:05.067 p/S/i exception [-200] Exception in process: boom', '  at process (/proj/src/faulty.ts:12:11)'])
    expect(firstFrame(undefined)).toBeUndefined()
  })
})
