import {readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {listRollouts, newRolloutId, readRollout, recordOf, saveRollout} from '../../src/fleet/history.js'
import type {RolloutResult} from '../../src/fleet/rollout.js'
import {tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-rollout-history-')
afterAll(() => root.dispose())

function result(exitCode: number, statuses: string[]): RolloutResult {
  return {
    ok: exitCode === 0,
    exitCode: exitCode as RolloutResult['exitCode'],
    waves: [{wave: 1, targets: ['a'], state: 'done'}, {wave: 2, targets: statuses.slice(1).map((_, i) => `t${i}`), state: 'stopped'}],
    targets: statuses.map((status, i) => ({target: i === 0 ? 'a' : `t${i - 1}`, url: 'ws://x', address: '0xai_x', ok: status === 'deployed', status: status as never, uploaded: [], timings: {total: 1}, wave: i === 0 ? 1 : 2, health: {status: 'ok'}})),
    ...(exitCode === 8 ? {reason: 'aborted' as const, abort: 'a node failed in the first wave (a)', rolledBack: true} : {}),
  }
}

describe('rollout history', () => {
  it('records each rollout in .r1/rollouts (0600, git-ignored), lists them oldest first, shows one by id or `last`', async () => {
    const dir = join(root.dir, 'p1')
    const first = newRolloutId(new Date('2026-01-01T10:00:00Z'))
    const second = newRolloutId(new Date('2026-01-02T10:00:00Z'))
    expect(first).toMatch(/^20260101-100000-[0-9a-f]{4}$/)
    await saveRollout(dir, recordOf(result(8, ['rolled-back', 'untouched']), {id: second, who: '0xai_me', started: new Date(), message: 'second'}))
    const file = await saveRollout(dir, recordOf(result(0, ['deployed', 'deployed']), {id: first, who: '0xai_me', started: new Date()}))
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(dir, '.r1/.gitignore'), 'utf8')).toBe('*\n')
    expect((await listRollouts(dir)).map((r) => r.id)).toEqual([first, second])
    const last = await readRollout(dir, 'last')
    expect(last).toMatchObject({id: second, message: 'second', exitCode: 8, reason: 'aborted', rolledBack: true})
    expect(last.targets.map((t) => t.status)).toEqual(['rolled-back', 'untouched'])
    expect((await readRollout(dir, first)).exitCode).toBe(0)
  })

  it('an unknown id is a usage error naming the recorded ones; no history is an empty list', async () => {
    const dir = join(root.dir, 'p2')
    expect(await listRollouts(dir)).toEqual([])
    await expect(readRollout(dir, 'nope')).rejects.toMatchObject({exitCode: 2, code: 'UNKNOWN_ROLLOUT'})
    await saveRollout(dir, recordOf(result(0, ['deployed']), {id: 'x1', who: '0xai_me', started: new Date()}))
    await expect(readRollout(dir, 'nope')).rejects.toMatchObject({hint: expect.stringContaining('x1')})
  })

  it('a damaged record is reported by its file, and the others are left as they are', async () => {
    const dir = join(root.dir, 'p3')
    await saveRollout(dir, recordOf(result(0, ['deployed']), {id: 'good', who: '0xai_me', started: new Date()}))
    writeFileSync(join(dir, '.r1/rollouts/bad.json'), '{"id": "bad"')
    await expect(listRollouts(dir)).rejects.toMatchObject({exitCode: 1, code: 'ROLLOUT_RECORD_CORRUPT', message: expect.stringContaining('bad.json')})
    expect(JSON.parse(readFileSync(join(dir, '.r1/rollouts/good.json'), 'utf8')).id).toBe('good')
  })
})
