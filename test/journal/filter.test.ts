import {describe, expect, it} from 'vitest'
import {EventFilterSchema, GapEventSchema, compileFilter, eventLevel, gapEvent, matchesFilter, parseEventFilter} from '../../src/protocol/filter.js'
import type {NodeEvent} from '../../src/protocol/events.js'

const ts = '2026-01-01T00:00:00.000Z'
const payload: NodeEvent = {EE_EVENT_TYPE: 'PAYLOAD', EE_PAYLOAD_PATH: ['edge-a', 'temps', 'TEMP_MONITOR', 'monitor-1'], EE_MESSAGE_SEQ: 1, EE_TIMESTAMP: ts, TEMPERATURE: 21.5}
const otherPayload: NodeEvent = {EE_EVENT_TYPE: 'PAYLOAD', EE_PAYLOAD_PATH: ['edge-a', 'hums', 'HUM_MONITOR', 'h-1'], EE_MESSAGE_SEQ: 2, EE_TIMESTAMP: ts, HUMIDITY: 40}
const normal: NodeEvent = {EE_EVENT_TYPE: 'NOTIFICATION', EE_PAYLOAD_PATH: ['edge-a', 'temps', 'TEMP_MONITOR', 'monitor-1'], EE_MESSAGE_SEQ: 3, EE_TIMESTAMP: ts, NOTIFICATION_TYPE: 'NORMAL', NOTIFICATION_CODE: 100, NOTIFICATION: 'Plugin config OK'}
const failed: NodeEvent = {EE_EVENT_TYPE: 'NOTIFICATION', EE_PAYLOAD_PATH: ['edge-a', 'temps', null, null], EE_MESSAGE_SEQ: 4, EE_TIMESTAMP: ts, NOTIFICATION_TYPE: 'NORMAL', NOTIFICATION_CODE: -1, NOTIFICATION: 'Pipeline failed'}
const abnormal: NodeEvent = {EE_EVENT_TYPE: 'NOTIFICATION', EE_PAYLOAD_PATH: ['edge-a', 'temps', 'TEMP_MONITOR', 'monitor-1'], EE_MESSAGE_SEQ: 5, EE_TIMESTAMP: ts, NOTIFICATION_TYPE: 'ABNORMAL FUNCTIONING', NOTIFICATION: 'slow'}
const exception: NodeEvent = {EE_EVENT_TYPE: 'NOTIFICATION', EE_PAYLOAD_PATH: ['edge-a', 'temps', 'TEMP_MONITOR', 'monitor-1'], EE_MESSAGE_SEQ: 6, EE_TIMESTAMP: ts, NOTIFICATION_TYPE: 'EXCEPTION', NOTIFICATION_CODE: -200, NOTIFICATION: 'TypeError: boom'}
const heartbeat = {EE_EVENT_TYPE: 'HEARTBEAT', EE_PAYLOAD_PATH: ['edge-a', null, null, null], EE_MESSAGE_SEQ: 7, EE_TIMESTAMP: ts, EE_ADDR: '0xai_x', EE_ALIAS: 'edge-a', PIPELINES: ['temps']} as unknown as NodeEvent
const all = [payload, otherPayload, normal, failed, abnormal, exception, heartbeat]
const seqs = (filter: unknown) => all.filter((e) => matchesFilter(e, EventFilterSchema.parse(filter))).map((e) => e.EE_MESSAGE_SEQ)

describe('EventFilterSchema', () => {
  it('accepts an empty filter and every field', () => {
    expect(EventFilterSchema.parse({})).toEqual({})
    const full = {TYPES: ['PAYLOAD', 'NOTIFICATION'], PIPELINE: 'temps', INSTANCE: 'monitor-1', SIGNATURE: 'TEMP_MONITOR', NOTIFICATION_TYPE: 'EXCEPTION', LEVEL: 'warn', SEARCH: 'boom'}
    expect(EventFilterSchema.parse(full)).toEqual(full)
  })

  it('rejects unknown keys, unknown types, empty TYPES and bad levels with the path named', () => {
    expect(parseEventFilter({PIPELNE: 'x'})).toMatchObject({ok: false, reason: expect.stringContaining('FILTER')})
    expect(parseEventFilter({PIPELNE: 'x'}).ok).toBe(false)
    const badType = parseEventFilter({TYPES: ['PAYLOADS']})
    expect(badType).toMatchObject({ok: false, reason: expect.stringContaining('FILTER.TYPES.0')})
    expect(parseEventFilter({TYPES: []}).ok).toBe(false)
    expect(parseEventFilter({LEVEL: 'fatal'})).toMatchObject({ok: false, reason: expect.stringContaining('FILTER.LEVEL')})
    expect(parseEventFilter({PIPELINE: ''}).ok).toBe(false)
    expect(parseEventFilter(undefined)).toEqual({ok: true, filter: {}})
  })
})

describe('matchesFilter', () => {
  it('matches everything without a filter', () => {
    expect(all.every((e) => matchesFilter(e, undefined))).toBe(true)
    expect(seqs({})).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

  it('filters by type', () => {
    expect(seqs({TYPES: ['PAYLOAD']})).toEqual([1, 2])
    expect(seqs({TYPES: ['HEARTBEAT', 'NOTIFICATION']})).toEqual([3, 4, 5, 6, 7])
  })

  it('filters by pipeline, signature (any case) and instance on EE_PAYLOAD_PATH', () => {
    expect(seqs({PIPELINE: 'temps'})).toEqual([1, 3, 4, 5, 6])
    expect(seqs({PIPELINE: 'Temps'})).toEqual([])
    expect(seqs({SIGNATURE: 'temp_monitor'})).toEqual([1, 3, 5, 6])
    expect(seqs({INSTANCE: 'h-1'})).toEqual([2])
    expect(seqs({PIPELINE: 'temps', INSTANCE: 'monitor-1', TYPES: ['PAYLOAD']})).toEqual([1])
  })

  it('filters by notification type (any case) and minimum level', () => {
    expect(seqs({NOTIFICATION_TYPE: 'exception'})).toEqual([6])
    expect(seqs({NOTIFICATION_TYPE: 'ABNORMAL FUNCTIONING'})).toEqual([5])
    expect(seqs({LEVEL: 'info'})).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(seqs({LEVEL: 'warn'})).toEqual([4, 5, 6])
    expect(seqs({LEVEL: 'error'})).toEqual([6])
  })

  it('searches the event text case-insensitively, keys and values', () => {
    expect(seqs({SEARCH: 'BOOM'})).toEqual([6])
    expect(seqs({SEARCH: 'humidity'})).toEqual([2])
    expect(seqs({SEARCH: '21.5'})).toEqual([1])
    expect(seqs({SEARCH: 'nothing-like-this'})).toEqual([])
  })

  it('always lets a gap through, whatever the filter', () => {
    const gap = gapEvent(10, 20, 'retention')
    expect(GapEventSchema.parse(gap)).toEqual(gap)
    expect(matchesFilter(gap, {TYPES: ['PAYLOAD'], PIPELINE: 'nope', SEARCH: 'zzz'})).toBe(true)
    expect(eventLevel(gap)).toBe('warn')
  })

  it('compiles once and gives the same answers as matchesFilter', () => {
    const filter = EventFilterSchema.parse({PIPELINE: 'temps', LEVEL: 'warn'})
    const match = compileFilter(filter)
    expect(all.map((e) => match(e))).toEqual(all.map((e) => matchesFilter(e, filter)))
  })
})

describe('eventLevel', () => {
  it('grades notifications by type and code', () => {
    expect([payload, normal, failed, abnormal, exception, heartbeat].map((e) => eventLevel(e))).toEqual(['info', 'info', 'warn', 'warn', 'error', 'info'])
  })
})
