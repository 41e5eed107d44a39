// The limits every plugin log line goes through on the node: one cut (cutLine), a bounded line splitter for
// child output (splitLines), and per-instance rates whose drops are always reported (LogLimits).
import {PassThrough} from 'node:stream'
import {describe, expect, it} from 'vitest'
import {LogLimits, MAX_LINE_CHARS, cutLine, splitLines} from '../../src/runtime/log-limit.js'
import {TokenBucket} from '../../src/runtime/token-bucket.js'

function lines(write: (stream: PassThrough) => void): Promise<Array<{text: string; cut: number}>> {
  const stream = new PassThrough()
  const out: Array<{text: string; cut: number}> = []
  splitLines(stream, (text, cut) => out.push({text, cut}))
  return new Promise((resolve) => {
    stream.once('end', () => setImmediate(() => resolve(out)))
    write(stream)
  })
}

describe('cutLine', () => {
  it('keeps a line up to MAX_LINE_CHARS; a longer one is cut with the count of what was cut', () => {
    expect(cutLine('short')).toBe('short')
    expect(cutLine('x'.repeat(MAX_LINE_CHARS))).toBe('x'.repeat(MAX_LINE_CHARS))
    expect(cutLine('x'.repeat(MAX_LINE_CHARS + 10))).toBe(`${'x'.repeat(MAX_LINE_CHARS)}… (10 more characters cut)`)
  })
  it('adds what was cut before (a line cut where it was read is not cut twice)', () => {
    expect(cutLine('x'.repeat(MAX_LINE_CHARS), 7)).toBe(`${'x'.repeat(MAX_LINE_CHARS)}… (7 more characters cut)`)
    expect(cutLine('x'.repeat(MAX_LINE_CHARS + 3), 7)).toBe(`${'x'.repeat(MAX_LINE_CHARS)}… (10 more characters cut)`)
  })
})

describe('splitLines', () => {
  it('splits chunks at newlines (\\n and \\r\\n), across chunk boundaries and multi-byte characters; a last line without an end comes at the end', async () => {
    const euro = Buffer.from('€')
    const got = await lines((s) => {
      s.write('one\ntw')
      s.write('o\r\nthree ')
      s.write(euro.subarray(0, 1))
      s.write(euro.subarray(1))
      s.write('\n\nlast')
      s.end()
    })
    expect(got).toEqual([
      {text: 'one', cut: 0},
      {text: 'two', cut: 0},
      {text: 'three €', cut: 0},
      {text: '', cut: 0},
      {text: 'last', cut: 0},
    ])
  })
  it('keeps MAX_LINE_CHARS of a long line and counts the rest, however it is chunked', async () => {
    const chunk = 'y'.repeat(1000)
    const got = await lines((s) => {
      for (let i = 0; i < 200; i++) s.write(chunk)
      s.write('\nnext\n')
      s.write('z'.repeat(MAX_LINE_CHARS + 5))
      s.end()
    })
    expect(got).toEqual([
      {text: 'y'.repeat(MAX_LINE_CHARS), cut: 200_000 - MAX_LINE_CHARS},
      {text: 'next', cut: 0},
      {text: 'z'.repeat(MAX_LINE_CHARS), cut: 5},
    ])
  })
})

describe('TokenBucket', () => {
  it('a clock stepping back refills nothing and takes nothing away', () => {
    const bucket = new TokenBucket(2, 1, 10_000)
    expect(bucket.take(10_000)).toBe(true)
    expect(bucket.take(10_000)).toBe(true)
    expect(bucket.take(5_000)).toBe(false)
    expect(bucket.take(10_500)).toBe(false)
    expect(bucket.take(11_000)).toBe(true)
    expect(bucket.isFull(11_000)).toBe(false)
    expect(bucket.isFull(13_000)).toBe(true)
  })
})

describe('LogLimits', () => {
  function limits(flushMs = 20) {
    let clock = 0
    const reports: Array<{subject: string; dropped: number}> = []
    const l = new LogLimits<string>({burst: 10, perSecond: 5}, (subject, dropped) => reports.push({subject, dropped}), {now: () => clock, flushMs})
    return {
      l,
      reports,
      advance(ms: number) {
        clock += ms
      },
    }
  }
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))

  it('a flood then silence: the drops are reported by the timer, with the exact count', async () => {
    const {l, reports} = limits()
    let kept = 0
    for (let i = 0; i < 100; i++) if (l.take('a', 'A')) kept++
    expect(kept).toBe(10)
    expect(reports).toEqual([])
    for (let i = 0; i < 500 && reports.length === 0; i++) await wait(10)
    expect(reports).toEqual([{subject: 'A', dropped: 90}])
    expect(kept + reports[0].dropped).toBe(100)
  })

  it('the drops are reported before the next line that goes out', () => {
    const {l, reports, advance} = limits(60_000)
    for (let i = 0; i < 15; i++) l.take('a', 'A')
    expect(reports).toEqual([])
    advance(200) // one token back
    expect(l.take('a', 'A')).toBe(true)
    expect(reports).toEqual([{subject: 'A', dropped: 5}])
    l.close()
  })

  it('a retired instance reports its pending drops and leaves no entry; an idle entry is pruned once its bucket is full', async () => {
    const {l, reports, advance} = limits()
    for (let i = 0; i < 12; i++) l.take('a', 'A')
    l.take('b', 'B')
    expect(l.size).toBe(2)
    l.retire('a')
    expect(reports).toEqual([{subject: 'A', dropped: 2}])
    expect(l.size).toBe(1)
    advance(10_000) // b's bucket is full again
    for (let i = 0; i < 500 && l.size > 0; i++) await wait(10)
    expect(l.size).toBe(0)
    expect(reports).toEqual([{subject: 'A', dropped: 2}])
  })
})
