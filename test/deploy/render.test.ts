import {Chalk} from 'chalk'
import {describe, expect, it} from 'vitest'
import {failureText, ms, renderDeploySummary, renderNodeStatus, renderStatusReport, renderRollout, renderRolloutList, renderRolloutRecord, renderTargetResults, table} from '../../src/deploy/render.js'
import {parseParams} from '../../src/deploy/manage.js'
import {R1Error} from '../../src/errors.js'
import {MAX_TARGET_LINES, statusCounts} from '../../src/fleet/result.js'

const plain = new Chalk({level: 0})

describe('deploy rendering', () => {
  it('pads table columns to the widest cell', () => {
    expect(table(['A', 'LONG'], [['xxx', 'y'], ['z', 'w']], plain)).toEqual(['A    LONG', 'xxx  y', 'z    w'])
  })

  it('summarizes each target with its result, timings, uploads and error', () => {
    const lines = renderDeploySummary(
      [
        {target: 'edge-a', status: 'deployed', uploaded: ['h'], timings: {connect: 12.4, upload: 30, apply: 5, confirm: 1500, total: 1547.4}},
        {target: 'edge-b', status: 'unreachable', error: 'connect ECONNREFUSED', uploaded: [], timings: {total: 3}},
        {target: 'edge-c', status: 'rolled-back', uploaded: [], timings: {total: 9}, rollback: {ok: true}},
      ],
      plain,
    )
    expect(lines[0]).toMatch(/^TARGET\s+RESULT\s+CONNECT\s+UPLOAD\s+APPLY\s+CONFIRM\s+TOTAL\s+DETAIL$/)
    expect(lines[1]).toMatch(/^edge-a\s+deployed\s+12ms\s+30ms \(1\)\s+5ms\s+1\.50s\s+1\.55s$/)
    expect(lines[2]).toMatch(/^edge-b\s+unreachable\s+-\s+-\s+-\s+-\s+3ms\s+connect ECONNREFUSED$/)
    expect(lines[3]).toContain('rolled back')
    expect(ms(undefined)).toBe('-')
  })

  it('counts how targets ended: successes first, the most common first, then those still going', () => {
    expect(statusCounts(['unreachable', 'deployed', 'timeout', 'deployed', 'unreachable', 'unreachable'])).toBe('2 deployed, 3 unreachable, 1 timeout')
    expect(statusCounts(['ok', 'unchanged', 'ok'], 10)).toBe('2 ok, 1 unchanged, 7 in progress')
    expect(statusCounts([], 1000)).toBe('1000 in progress')
  })

  it('reports a fleet past MAX_TARGET_LINES targets one row per node, with what needs a look', () => {
    const node = {address: '0xai_x', alias: 'r1-x', version: '0.1.0', uptime: 65, cpu: 7.6, memory: {process: 90 * 1024 * 1024}}
    const instance = {signature: 'S', instanceId: 'i1', status: 'running'}
    const targets = Array.from({length: MAX_TARGET_LINES - 2}, (_, i) => ({target: `edge-${i}`, status: 'ok', url: 'mqtt://b', result: {...node, pipelines: [{name: 'p', type: 'Void', instances: [instance]}]}}))
    const fleet = [
      ...targets,
      {target: 'broken', status: 'ok', url: 'mqtt://b', result: {...node, pipelines: [{name: 'p', type: 'Void', instances: [instance, {...instance, instanceId: 'i2', status: 'error', lastError: 'Error: boom\n  at x'}]}]}},
      {target: 'hidden', status: 'rejected', url: 'mqtt://b', error: 'not allowed', result: {...node, pipelines: [], pipelinesHidden: true, restricted: 'not on the allow-list'}},
      {target: 'gone', status: 'unreachable', url: 'mqtt://b', address: '0xai_gone', error: 'no heartbeat\nand no reply'},
    ]
    expect(renderStatusReport(fleet.slice(0, MAX_TARGET_LINES), plain)).toContain('edge-0 online')
    const lines = renderStatusReport(fleet, plain).trimEnd().split('\n')
    expect(lines[0]).toMatch(/^TARGET\s+STATE\s+VERSION\s+UPTIME\s+CPU\s+MEMORY\s+INSTANCES\s+ADDRESS\s+DETAIL$/)
    expect(lines).toHaveLength(fleet.length + 2)
    expect(lines[1]).toMatch(/^edge-0\s+online\s+0\.1\.0\s+1m5s\s+8%\s+90 MiB\s+1 running\s+0xai_x$/)
    expect(lines.find((l) => l.startsWith('broken'))).toMatch(/1 running, 1 error\s+0xai_x\s+S\/i2: Error: boom$/)
    expect(lines.find((l) => l.startsWith('hidden'))).toMatch(/online .*hidden\s+0xai_x\s+not allowed$/)
    expect(lines.find((l) => l.startsWith('gone'))).toMatch(/^gone\s+unreachable(\s+-){5}\s+0xai_gone\s+no heartbeat$/)
    expect(lines.at(-1)).toBe('One node in full: r1 status --target <name>, or --address <0xai_…> with --broker')
  })

  it('shows a node with its instances and their last errors', () => {
    const lines = renderNodeStatus(
      'edge-a',
      {
        address: '0xai_x',
        alias: 'r1-x',
        version: '0.1.0',
        uptime: 3725,
        cpu: 12.3,
        memory: {process: 80 * 1024 * 1024, available: 1024 ** 3, machine: 2 * 1024 ** 3},
        pipelines: [
          {name: 'temps', type: 'Void', instances: [{signature: 'S', instanceId: 'i1', status: 'running', restarts: 0}, {signature: 'S', instanceId: 'i2', status: 'error', restarts: 4, lastError: 'Error: boom\n  at x'}]},
          {name: 'old', type: 'Void', stopped: true, version: 3, instances: []},
        ],
      },
      plain,
    ).join('\n')
    expect(lines).toContain('edge-a online  r1-x  0xai_x')
    expect(lines).toContain('uptime 1h2m  cpu 12%  memory 80 MiB (available 1 GiB of 2 GiB)')
    expect(lines).toMatch(/temps\s+S\/i2\s+error\s+4\s+Error: boom$/m)
    expect(lines).toContain('(stopped at v3, kept for rollback)')
  })

  it("shows a node's warnings, escaped, and says pipelines are hidden (not absent) behind a public heartbeat", () => {
    const base = {address: '0xai_x', alias: 'r1-x', pipelines: []}
    const warned = renderNodeStatus('edge-a', {...base, warnings: ['journal.json was corrupt\u001b[2J']}, plain).join('\n')
    expect(warned).toContain('  warning: journal.json was corrupt\\e[2J')
    expect(warned).toContain('no pipelines')
    const hidden = renderNodeStatus('edge-a', {...base, warnings: [], restricted: "your key is not on this node's allow-list (r1 node allow 0xai_me)", pipelinesHidden: true}, plain)
    expect(hidden.at(-1)).toBe("  pipelines hidden: your key is not on this node's allow-list (r1 node allow 0xai_me)")
    expect(hidden.join('\n')).not.toContain('no pipelines')
  })

  it('reports per-target results and the failure on stderr', () => {
    const stdout = renderTargetResults([{target: 'a', status: 'ok'}, {target: 'b', status: 'rejected', error: 'not allowed'}], () => 'done', plain).join('\n') + '\n'
    expect(stdout).toMatch(/a\s+ok\s+done\n/)
    expect(stdout).toMatch(/b\s+rejected\s+not allowed/)
    expect(failureText({message: 'Stopping failed on 1 of 2 targets', hint: 'allow-list'}, plain)).toBe('✖ Stopping failed on 1 of 2 targets\n→ allow-list\n')
  })
})

describe('parseParams', () => {
  it('parses KEY=VALUE with JSON values and UPPERCASE keys', () => {
    expect(parseParams(['to=5', 'mode=fast', 'flag=true', 'obj={"a":1}', 'eq=a=b'])).toEqual({TO: 5, MODE: 'fast', FLAG: true, OBJ: {a: 1}, EQ: 'a=b'})
  })

  it('rejects a pair without a key (usage error)', () => {
    expect(() => parseParams(['novalue'])).toThrow(R1Error)
    expect(() => parseParams(['=x'])).toThrow(/KEY=VALUE/)
  })
})

describe('rollout rendering', () => {
  const waves = [{wave: 1, targets: ['a'], state: 'done'}, {wave: 2, targets: ['b', 'c'], state: 'not started'}]
  const target = (name: string, status: string, wave: number, error?: string) => ({target: name, url: `ws://${name}`, status, wave, uploaded: [], timings: {total: 5}, ...(error ? {error} : {})})

  it('an aborted rollout: its waves, each target, and why it stopped', () => {
    const lines = renderRollout({id: 'r1', reason: 'aborted', abort: 'a node of the first wave failed (a)', rolledBack: true, waves, targets: [target('a', 'rolled-back', 1, 'P/i crashed'), target('b', 'untouched', 2), target('c', 'untouched', 2)]}, plain)
    expect(lines[0]).toBe('wave 1 (done): a')
    expect(lines[1]).toBe('wave 2 (not started): b, c')
    expect(lines.find((l) => l.startsWith('a '))).toMatch(/a\s+rolled-back.*P\/i crashed/)
    expect(lines.at(-1)).toBe('rollout r1 aborted: a node of the first wave failed (a) — every updated target was put back')
  })

  it('the history list and one record, node text escaped', () => {
    const record = {id: 'r1', started: '2026-01-01T10:00:00.000Z', finished: '2026-01-01T10:01:00.000Z', who: '0xai_A2pPabcdefghijklmnop', message: 'why\u001b[2J', exitCode: 8, reason: 'aborted', abort: 'x', waves, targets: [{target: 'a', wave: 1, status: 'rolled-back', health: {status: 'failed'}, error: 'sick\u001b[31m'}]}
    expect(renderRolloutList([], plain)[0]).toContain('No rollout recorded yet')
    const list = renderRolloutList([record], plain)
    expect(list[1]).toMatch(/^r1\s+2026-01-01 10:00:00\s+0xai_A2pPabcde…\s+aborted \(exit 8\)\s+0\/1/)
    const shown = renderRolloutRecord(record, plain).join('\n')
    expect(shown).toContain('wave 2 (not started): b, c')
    expect(shown).toMatch(/a\s+1\s+rolled-back\s+failed\s+sick\\e\[31m/)
    expect(shown).not.toContain('\u001b')
  })
})
