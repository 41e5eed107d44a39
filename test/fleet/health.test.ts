import {describe, expect, it} from 'vitest'
import type {NodeLink} from '../../src/fleet/engine.js'
import {type HealthReport, HealthWatch} from '../../src/fleet/health.js'
import type {HeartbeatEvent, NodeEvent, NotificationEvent} from '../../src/protocol/events.js'

/** The part of a link a health watch uses: its events and its loss. */
function feed(): {link: NodeLink; send(event: NodeEvent): void; lose(error: Error): void} {
  const listeners = new Set<(e: NodeEvent) => void>()
  const lost = new Set<(e: Error) => void>()
  const link = {
    onEvent: (l: (e: NodeEvent) => void) => (listeners.add(l), () => listeners.delete(l)),
    onLost: (l: (e: Error) => void) => (lost.add(l), () => lost.delete(l)),
  } as unknown as NodeLink
  return {link, send: (e) => listeners.forEach((l) => l(e)), lose: (e) => lost.forEach((l) => l(e))}
}

let seq = 0
function note(path: [string, string, string], code: number, over: Partial<NotificationEvent> = {}): NotificationEvent {
  return {EE_EVENT_TYPE: 'NOTIFICATION', EE_PAYLOAD_PATH: ['n1', ...path], EE_MESSAGE_SEQ: ++seq, EE_TIMESTAMP: new Date().toISOString(), NOTIFICATION_TYPE: code < 0 ? 'EXCEPTION' : 'NORMAL', NOTIFICATION_CODE: code, NOTIFICATION: `code ${code}`, ...over}
}

function heartbeat(status: string, over: Record<string, unknown> = {}): HeartbeatEvent {
  return {
    EE_EVENT_TYPE: 'HEARTBEAT', EE_PAYLOAD_PATH: ['n1', null, null, null], EE_MESSAGE_SEQ: ++seq, EE_TIMESTAMP: new Date().toISOString(),
    EE_ADDR: '0xai_x', EE_ALIAS: 'n1', VERSION: '0', UPTIME: 1, CPU_USED: 0, MACHINE_MEMORY: 1, AVAILABLE_MEMORY: 1, PROCESS_MEMORY: 1, TOTAL_DISK: 1, AVAILABLE_DISK: 1, PIPELINES: ['app'],
    ACTIVE_PLUGINS: [{STREAM_ID: 'app', SIGNATURE: 'S', INSTANCE_ID: 'i1', STATUS: status as never, CURRENT_PROCESS_ITERATION: 1, TOTAL_PAYLOAD_COUNT: 0, RESTARTS: 0, INIT_TIMESTAMP: null, EXEC_TIMESTAMP: null, LAST_PAYLOAD_TIME: null, LAST_CONFIG_TIMESTAMP: null, LAST_ERROR_TIME: null, LAST_ERROR: 'boom', ...over}],
  } as HeartbeatEvent
}

function watch(): {f: ReturnType<typeof feed>; w: HealthWatch; changes: HealthReport[]} {
  const f = feed()
  const changes: HealthReport[] = []
  const w = new HealthWatch(f.link, new Set(['app']), (r) => changes.push(r))
  return {f, w, changes}
}

describe('HealthWatch', () => {
  it('a crash, an exception or a failed config of the changed pipeline fails the node; other pipelines and refused commands do not', () => {
    for (const code of [-201, -200, -100]) {
      const {f, w} = watch()
      f.send(note(['other', 'S', 'i1'], -201))
      f.send(note(['app', 'S', 'i1'], -101)) // a refused instance command is that command's answer
      f.send(note(['app', 'S', 'i1'], -202, {NOTIFICATION_TYPE: 'ABNORMAL FUNCTIONING'})) // dropped log lines
      expect(w.report.status).toBe('ok')
      f.send(note(['app', 'S', 'i1'], code))
      expect(w.report).toMatchObject({status: 'failed', reason: expect.stringContaining('S/i1'), at: expect.any(Number)})
      w.stop()
    }
  })

  it('plugin health: degraded is kept, failed fails and sticks (a later ok does not clear it)', () => {
    const {f, w, changes} = watch()
    f.send(note(['app', 'S', 'i1'], 110, {NOTIFICATION_TYPE: 'ABNORMAL FUNCTIONING', INFO: {HEALTH: 'degraded', REASON: 'slow'}}))
    expect(w.report).toEqual({status: 'degraded', reason: 'S/i1 health: slow'})
    f.send(note(['app', 'S', 'i1'], 110, {INFO: {HEALTH: 'failed', REASON: 'db down'}}))
    f.send(note(['app', 'S', 'i1'], 110, {INFO: {HEALTH: 'ok'}}))
    expect(w.report).toMatchObject({status: 'failed', reason: 'S/i1 health: db down'})
    expect(changes.map((c) => c.status)).toEqual(['degraded', 'failed'])
    w.stop()
  })

  it('a heartbeat showing the instance restarting, in error, or with failed health fails the node', () => {
    for (const [status, over] of [['restarting', {}], ['error', {}], ['running', {HEALTH: {STATUS: 'failed', REASON: 'x'}}]] as const) {
      const {f, w} = watch()
      f.send(heartbeat('running'))
      expect(w.report.status).toBe('ok')
      f.send(heartbeat(status, over))
      expect(w.report.status).toBe('failed')
      w.stop()
    }
  })

  it('a lost connection fails the node', () => {
    const {f, w} = watch()
    f.lose(new Error('closed'))
    expect(w.report).toMatchObject({status: 'failed', reason: 'connection lost: closed'})
    w.stop()
  })

  it('heartbeats that stop coming fail the node (after 2.5 periods)', async () => {
    const f = feed()
    const failed = new Promise<HealthReport>((resolve) => {
      const w = new HealthWatch(f.link, new Set(['app']), (r) => {
        w.stop()
        resolve(r)
      })
      f.send({...heartbeat('running'), R1_HEARTBEAT_INTERVAL: 0.1})
      expect(w.report.status).toBe('ok')
    })
    expect(await failed).toMatchObject({status: 'failed', reason: expect.stringContaining('no heartbeat')})
  })
})
