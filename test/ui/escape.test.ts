// Node data reaches the terminal escaped: ANSI sequences, NUL, CR and bidi overrides are shown, never run.
import {describe, expect, it} from 'vitest'
import {failureText, renderNodeStatus, renderStatusReport, renderTargetResults, table} from '../../src/deploy/render.js'
import {R1Error} from '../../src/errors.js'
import type {NodeEvent} from '../../src/protocol/events.js'
import {errorText} from '../../src/ui/error-report.js'
import {escapeControl, escapeControlKeepLines, escapeDeep} from '../../src/ui/escape.js'
import {renderEvent} from '../../src/ui/render-event.js'
import {Chalk} from 'chalk'

const ESC = String.fromCharCode(27)
const hostile = `evil${ESC}[2J${ESC}]0;title\u0007\u0000\r\u009b31m\u202e`
const plain = new Chalk({level: 0})
const at = new Date(2026, 0, 2, 3, 4, 5, 67).toISOString()

function clean(text: string): void {
  // eslint-disable-next-line no-control-regex
  expect(text).not.toMatch(/[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u202A-\u202E]/)
}

describe('escapeControl', () => {
  it('shows every control character as a visible escape', () => {
    expect(escapeControl(hostile)).toBe('evil\\e[2J\\e]0;title\\x07\\0\\r\\x9b31m\\u202e')
    expect(escapeControl('a\nb\tc')).toBe('a\\nb\\tc')
    expect(escapeControlKeepLines('a\nb\u001B')).toBe('a\nb\\e')
    expect(escapeControl('plain — ünïcode ✔')).toBe('plain — ünïcode ✔')
  })

  it('escapeDeep escapes keys and nested strings, keeps other values', () => {
    expect(escapeDeep({[`K${ESC}`]: [`v${ESC}`, 1, null, {X: '\u0000'}]})).toEqual({'K\\e': ['v\\e', 1, null, {X: '\\0'}]})
  })
})

describe('human renderers escape node-supplied strings', () => {
  it('render-event: pipeline names, notification texts, app output, instance ids', () => {
    const path = ['edge', `p${ESC}[31m`, 'S', `i\u0000`] as NodeEvent['EE_PAYLOAD_PATH']
    const note = {EE_EVENT_TYPE: 'NOTIFICATION', EE_PAYLOAD_PATH: path, EE_MESSAGE_SEQ: 1, EE_TIMESTAMP: at, NOTIFICATION_TYPE: 'NORMAL', NOTIFICATION: hostile} as NodeEvent
    const line = renderEvent(note, {color: false})
    clean(line)
    expect(line).toContain('p\\e[31m/S/i\\0')
    const app = {EE_EVENT_TYPE: 'LOG', EE_PAYLOAD_PATH: path, EE_MESSAGE_SEQ: 2, EE_TIMESTAMP: at, LEVEL: 'warn', MESSAGE: `x${ESC}[1A`} as NodeEvent
    clean(renderEvent(app, {color: false}))
    const payload = {EE_EVENT_TYPE: 'PAYLOAD', EE_PAYLOAD_PATH: path, EE_MESSAGE_SEQ: 3, EE_TIMESTAMP: at, [`KEY${ESC}`]: `\u009b2J`} as unknown as NodeEvent
    clean(renderEvent(payload, {color: false}))
    clean(renderEvent({EE_EVENT_TYPE: 'LOG', EE_PAYLOAD_PATH: path, EE_MESSAGE_SEQ: 4, EE_TIMESTAMP: at, LEVEL: 'info', MESSAGE: hostile} as NodeEvent, {color: false}))
  })

  it('status tables, per-target reports and error reports', () => {
    const status = {
      address: '0xai_x',
      alias: `alias${ESC}[2J`,
      pipelines: [{name: hostile, type: 'Void', instances: [{signature: 'S', instanceId: hostile, status: 'error', lastError: hostile}]}],
    }
    clean(renderNodeStatus('edge-a', status, plain).join('\n'))
    clean(renderStatusReport([{target: 'edge-a', status: 'unreachable', url: 'ws://x', error: hostile}], plain))
    clean(table(['A'], [[hostile]], plain).join('\n'))
    clean(renderTargetResults([{target: 'edge-a', status: 'rejected', error: hostile}], () => '', plain).join('\n'))
    clean(failureText({message: `Stop failed:\n  edge-a: ${hostile}`, hint: hostile}, plain))
    const text = errorText(new R1Error(`UPDATE_CONFIG rejected by edge: ${hostile}`, 4, {hint: hostile}))
    clean(text.replace(/\n$/, ''))
    expect(text).toContain('\\e[2J')
  })
})
