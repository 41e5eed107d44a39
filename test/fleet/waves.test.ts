import {describe, expect, it} from 'vitest'
import {allowedFailures, canaryWaves, parseDuration, parseMaxFailed, parseWaves, planWaves} from '../../src/fleet/waves.js'

const twenty = Array.from({length: 20}, (_, i) => `n${i + 1}`)

describe('waves', () => {
  it('splits targets by steps counted from the start, shares rounding up', () => {
    expect(planWaves(twenty, parseWaves('1,10%,50%,100%')).map((w) => w.length)).toEqual([1, 1, 8, 10])
    expect(planWaves(twenty, parseWaves('1,25%,50%,100%')).map((w) => w.length)).toEqual([1, 4, 5, 10])
    expect(planWaves(['a', 'b', 'c'], parseWaves('1,10%,50%,100%'))).toEqual([['a'], ['b'], ['c']]) // 10% of 3 adds nobody: dropped
    expect(planWaves(['a', 'b'], canaryWaves(5))).toEqual([['a', 'b']]) // a canary bigger than the fleet is the fleet
    expect(planWaves(twenty, canaryWaves(2)).map((w) => w.length)).toEqual([2, 18])
  })

  it('refuses steps that are not counts or shares, a 0 wave, or a last wave short of 100% (exit 2)', () => {
    for (const bad of ['1,x,100%', '0,100%', '1,150%,100%', '1,50%', '', '1,-5%,100%']) {
      expect(() => parseWaves(bad), bad).toThrow(expect.objectContaining({exitCode: 2, code: 'BAD_ROLLOUT_FLAG'}))
    }
    expect(() => canaryWaves(0)).toThrow(expect.objectContaining({exitCode: 2}))
  })

  it('--max-failed takes a count or a share (rounding down), --soak a duration', () => {
    expect(allowedFailures(parseMaxFailed('5%'), 20)).toBe(1)
    expect(allowedFailures(parseMaxFailed('5%'), 10)).toBe(0)
    expect(allowedFailures(parseMaxFailed('3'), 10)).toBe(3)
    expect(() => parseMaxFailed('lots')).toThrow(expect.objectContaining({exitCode: 2}))
    expect(parseDuration('60s')).toBe(60_000)
    expect(parseDuration('2m')).toBe(120_000)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('0')).toBe(0)
    expect(parseDuration('1.5')).toBe(1500)
    expect(() => parseDuration('soon')).toThrow(expect.objectContaining({exitCode: 2}))
  })
})
