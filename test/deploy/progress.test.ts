// Fleet progress on stderr without a terminal (the plain renderer): past 20 targets one line for the fleet,
// a line per failure (the first 20; targets skipped because of another's failure only counted), later
// outcomes (a rollback) counted, and a close with no results (the command failed first) ends every line. Up to 20
// targets, a line each, and a later outcome (a target put back) a line of its own.
import {afterEach, beforeEach, expect, it} from 'vitest'
import {targetProgress} from '../../src/deploy/progress.js'
import type {Target} from '../../src/deploy/targets.js'
import {until} from '../runtime/helpers.js'

let written: string[] = []
const write = process.stderr.write
beforeEach(() => {
  written = []
  process.stderr.write = ((chunk: string | Uint8Array) => written.push(String(chunk)) > 0) as typeof process.stderr.write
})
afterEach(() => {
  process.stderr.write = write
})

const fleet = (n: number): Target[] => Array.from({length: n}, (_, i) => ({name: `edge-${i}`, url: 'mqtt://b', address: `0xai_${i}`}))
const text = () => written.join('')

it('past 20 targets: one line for the fleet, its failures as they come (the first 20), its final counts from the results', async () => {
  const targets = fleet(60)
  const progress = targetProgress(targets, {})
  for (const t of targets.slice(0, 10)) progress.finish(t, 'deployed')
  progress.finish(targets[0]!, 'rolled-back', 'health check failed') // a later outcome of the same target
  for (const t of targets.slice(10, 35)) progress.finish(t, 'unreachable', 'no reply')
  progress.step(targets[40]!, 'uploading') // steps are not lines of their own
  await progress.close([...targets.slice(35).map((t) => ({target: t.name, status: 'skipped' as const, error: 'not attempted'}))])
  const lines = text().trimEnd().split('\n')
  expect(lines[0]).toContain('60 targets: 60 in progress')
  expect(lines.filter((l) => /edge-\d+: unreachable — no reply$/.test(l))).toHaveLength(19) // 20 with the rollback
  expect(text()).toContain('… more failures (counted on this line)')
  expect(text()).toContain('edge-0: rolled-back — health check failed')
  expect(text()).not.toMatch(/edge-\d+: (skipped|deployed)/)
  expect(text()).not.toContain('uploading')
  expect(lines.at(-1)).toContain('60 targets: 9 deployed, 25 skipped, 25 unreachable, 1 rolled-back')
})

it('a close with no results (the command failed before any) ends the lines still going, in both forms', async () => {
  for (const n of [3, 30]) {
    const targets = fleet(n)
    const progress = targetProgress(targets, {})
    progress.finish(targets[0]!, 'deployed')
    await progress.close([])
    expect(text()).toMatch(n > 20 ? new RegExp(`${n} targets: 1 deployed, ${n - 1} skipped`) : /edge-2: skipped/)
  }
})

it('the fleet line waits for its close: outcomes after every target ended (a rollout rolling back) still count', async () => {
  const targets = fleet(25)
  const progress = targetProgress(targets, {})
  for (const t of targets) progress.finish(t, 'deployed')
  progress.finish(targets[3]!, 'rolled-back', 'health check failed: crashed')
  for (const t of targets.filter((_, i) => i !== 3)) progress.finish(t, 'rolled-back') // put back for edge-3's failure
  await progress.close([])
  expect(text()).toContain('edge-3: rolled-back — health check failed: crashed')
  expect(text()).not.toMatch(/edge-(?!3:)\d+: rolled-back/)
  expect(text().trimEnd().split('\n').at(-1)).toContain('25 targets: 25 rolled-back')
})

it('up to 20 targets: a line each, and a target put back after its outcome gets a line saying so', async () => {
  const targets = fleet(3)
  const progress = targetProgress(targets, {})
  progress.finish(targets[0]!, 'deployed')
  progress.finish(targets[1]!, 'deployed')
  progress.finish(targets[2]!, 'failed', 'health check failed: crashed')
  await until(() => /edge-0: deployed[^]*edge-1: deployed/.test(text()), 5000, 'the lines showing their outcomes')
  progress.finish(targets[0]!, 'rolled-back') // put back for edge-2's failure
  await progress.close([
    {target: 'edge-0', status: 'rolled-back'},
    {target: 'edge-1', status: 'rolled-back'},
    {target: 'edge-2', status: 'failed', error: 'health check failed: crashed'},
  ])
  const lines = text().trimEnd().split('\n')
  for (const name of ['edge-0', 'edge-1']) {
    expect(lines.findIndex((l) => l.includes(`${name}: deployed`))).toBeLessThan(lines.findIndex((l) => l.includes(`${name}: rolled-back`)))
    expect(lines.filter((l) => l.includes(`${name}: rolled-back`))).toHaveLength(1)
  }
  expect(lines.filter((l) => l.includes('edge-2: failed'))).toHaveLength(1)
  expect(text()).not.toContain('skipped')
})
