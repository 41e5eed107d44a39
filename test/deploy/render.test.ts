import {Chalk} from 'chalk'
import {describe, expect, it} from 'vitest'
import {failureText, ms, renderDeploySummary, renderNodeStatus, renderTargetResults, table} from '../../src/deploy/render.js'
import {parseParams} from '../../src/deploy/manage.js'
import {R1Error} from '../../src/errors.js'

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
    expect(lines).toContain('uptime 1h2m  cpu 12%  memory 80 MiB (available 1024 MiB of 2048 MiB)')
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
