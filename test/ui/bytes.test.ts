import {describe, expect, it} from 'vitest'
import {formatBytes} from '../../src/ui/bytes.js'

describe('formatBytes', () => {
  it('picks the unit, with one decimal below 100 of it and none when that decimal is 0', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1023)).toBe('1023 B')
    expect(formatBytes(1024)).toBe('1 KiB')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(10_000)).toBe('9.8 KiB') // a quota below 0.1 MiB is not "0.0 MiB"
    expect(formatBytes(300 * 1024)).toBe('300 KiB')
    expect(formatBytes(4 * 1024 * 1024)).toBe('4 MiB')
    expect(formatBytes(50.4 * 1024 * 1024)).toBe('50.4 MiB')
    expect(formatBytes(2048 * 1024 * 1024)).toBe('2 GiB')
    expect(formatBytes(5 * 1024 ** 5)).toBe('5120 TiB')
    expect(formatBytes(1024 * 1024 - 1)).toBe('1 MiB') // 1023.999 KiB, rounded: the next unit
    expect(formatBytes(-2048)).toBe('-2 KiB')
  })

  it('shows a dash for no count', () => {
    expect(formatBytes(undefined)).toBe('-')
    expect(formatBytes(Number(undefined))).toBe('-')
    expect(formatBytes(Number.POSITIVE_INFINITY)).toBe('-')
  })
})
