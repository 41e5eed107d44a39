import * as fs from 'node:fs'
import * as path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {GapEventSchema} from '../../src/protocol/filter.js'
import {canonicalJson, parseWireJson} from '../../src/protocol/canonical.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {verifyMessage} from '../../src/protocol/signing.js'
import {encodeBatch} from '../../src/protocol/wire.js'
import {encodeRecord, segmentName} from '../../src/runtime/journal-format.js'
import {Journal} from '../../src/runtime/journal.js'
import {until} from '../runtime/helpers.js'
import {notification, openCollecting, payload, range, readAll, segmentFiles, seqsOf, tempDir} from './helpers.js'

const dirs: string[] = []
const journals: Journal[] = []
function dir(): string {
  const d = tempDir()
  dirs.push(d)
  return d
}
async function open(d: string, options: Parameters<typeof openCollecting>[1] = {}) {
  const opened = await openCollecting(d, options)
  journals.push(opened.journal)
  return opened
}
afterEach(async () => {
  for (const j of journals.splice(0)) await j.close()
  for (const d of dirs.splice(0)) fs.rmSync(d, {recursive: true, force: true})
})

describe('journal record text', () => {
  it('stores each event as its canonical JSON and hands those bytes out with the entry', async () => {
    const {journal} = await open(dir())
    const event = payload(1, {B: 1e-7, A: 'é', 10: 'x', 9: true})
    journal.append(event)
    const [record] = await (await journal.cursor({sinceSeq: 0})).next()
    expect(record!.json.toString()).toBe(canonicalJson(event))
    expect(record!.entry).toEqual(JSON.parse(canonicalJson(event)))
  })

  it('re-encodes records written before records were canonical (a journal from an earlier r1), so batches built on them verify', async () => {
    const d = dir()
    // what r1 wrote before: JSON.stringify bodies, and a journal.json without CANONICAL_FROM_SEQ
    const old = [payload(1, {B: 1e-7, 10: 'x'}), payload(2, {Z: 0.00001, A: 2})]
    const buffer = Buffer.alloc(4096)
    let used = 0
    for (const event of old) used += encodeRecord(buffer, used, event.EE_MESSAGE_SEQ, Buffer.from(JSON.stringify(event)))
    fs.writeFileSync(path.join(d, segmentName(1)), buffer.subarray(0, used))
    fs.writeFileSync(path.join(d, 'journal.json'), JSON.stringify({ID: 'old-journal', CREATED: '2026-11-01T00:00:00.000Z'}))
    const {journal} = await open(d)
    expect(journal.id).toBe('old-journal')
    expect(journal.canonicalFromSeq).toBe(3)
    journal.append(payload(3, {C: 1.5}))
    const records = await (await journal.cursor({sinceSeq: 0})).next()
    expect(records.map((r) => r.json.toString())).toEqual([...old, payload(3, {C: 1.5})].map((e) => canonicalJson(e)))
    const frame = encodeBatch(records.map((r) => r.json), generateIdentity()).frame.toString()
    expect(verifyMessage(parseWireJson(frame))).toMatchObject({valid: true})
    await journal.close()
    journals.splice(journals.indexOf(journal), 1)
    expect(JSON.parse(fs.readFileSync(path.join(d, 'journal.json'), 'utf8'))).toMatchObject({ID: 'old-journal', CANONICAL_FROM_SEQ: 3})
    expect((await open(d)).journal.canonicalFromSeq).toBe(3)
  })
})

describe('journal basics', () => {
  it('starts empty, appends, reads back in order and keeps seq across a reopen', async () => {
    const d = dir()
    const {journal} = await open(d)
    expect(journal.lastSeq()).toBe(0)
    expect(journal.firstSeq()).toBe(1)
    expect(await readAll(journal)).toEqual([])
    // its first segment is made at open, so the first event only writes
    expect(segmentFiles(d)).toEqual(['0000000000000001.jrnl'])
    for (const seq of range(1, 500)) journal.append(payload(seq, {TEXT: `héllo ✓ "${seq}"\n`}))
    expect(journal.lastSeq()).toBe(500)
    const all = await readAll(journal)
    expect(seqsOf(all)).toEqual(range(1, 500))
    expect(all[41]).toEqual(payload(42, {TEXT: 'héllo ✓ "42"\n'}))
    const id = journal.id
    await journal.close()

    const again = await open(d)
    expect(again.journal.id).toBe(id)
    expect(again.journal.lastSeq()).toBe(500)
    expect(again.journal.firstSeq()).toBe(1)
    expect(again.warnings).toEqual([])
    again.journal.append(payload(501))
    expect(seqsOf(await readAll(again.journal, {sinceSeq: 498}))).toEqual([499, 500, 501])
  })

  it('rejects a seq that is not above lastSeq and keeps working', async () => {
    const d = dir()
    const {journal} = await open(d)
    journal.append(payload(5))
    expect(() => journal.append(payload(5))).toThrow(R1Error)
    expect(() => journal.append(payload(3))).toThrow(/not above the journal's last seq 5/)
    journal.append(payload(6))
    // The node started at seq 5 (an earlier journal was lost): seqs below are simply not there.
    expect(seqsOf(await readAll(journal))).toEqual(['gap:1-4:retention', 5, 6])
    // the segment made at open is named by the seq it really starts at
    expect(segmentFiles(d)).toEqual(['0000000000000005.jrnl'])
  })

  it('reads after a seq, the last N, with a limit and with filters applied in the journal', async () => {
    const {journal} = await open(dir())
    for (const seq of range(1, 100)) {
      if (seq % 10 === 0) journal.append(notification(seq, 'EXCEPTION', `boom ${seq}`))
      else journal.append(payload(seq, {}, seq % 2 ? 'temps' : 'hums'))
    }
    expect(seqsOf(await readAll(journal, {sinceSeq: 95}))).toEqual([96, 97, 98, 99, 100])
    expect(seqsOf(await readAll(journal, {sinceSeq: 100}))).toEqual([])
    expect(seqsOf(await readAll(journal, {sinceSeq: 1000}))).toEqual([])
    expect(seqsOf(await readAll(journal, {last: 3}))).toEqual([98, 99, 100])
    expect(seqsOf(await readAll(journal, {last: 1000}))).toEqual(range(1, 100))
    expect(seqsOf(await readAll(journal, {last: 0}))).toEqual([])
    expect(seqsOf(await readAll(journal, {limit: 4}))).toEqual([1, 2, 3, 4])
    expect(seqsOf(await readAll(journal, {filter: {TYPES: ['NOTIFICATION']}}))).toEqual(range(1, 10).map((i) => i * 10))
    expect(seqsOf(await readAll(journal, {filter: {LEVEL: 'error'}, last: 2}))).toEqual([90, 100])
    expect(seqsOf(await readAll(journal, {filter: {PIPELINE: 'hums', TYPES: ['PAYLOAD']}, last: 3}))).toEqual([94, 96, 98])
    expect(seqsOf(await readAll(journal, {filter: {SEARCH: 'boom 5'}}))).toEqual([50])
    expect(seqsOf(await readAll(journal, {filter: {SEARCH: 'boom'}, sinceSeq: 75, last: 5}))).toEqual([80, 90, 100])
  })

  it('takes "the last N" as of the call, even when events arrive while it scans', async () => {
    const {journal} = await open(dir(), {segmentBytes: 2000, flushBytes: 100})
    for (const seq of range(1, 60)) journal.append(payload(seq, {}, seq % 3 ? 'temps' : 'hums'))
    const pending = journal.cursor({last: 2, filter: {PIPELINE: 'hums'}})
    for (const seq of range(61, 70)) journal.append(payload(seq, {}, 'hums'))
    const cursor = await pending
    expect(seqsOf(await cursor.next(2))).toEqual([57, 60])
    expect(seqsOf(await cursor.next())).toEqual(range(61, 70))
  })

  it('starts at the first event stamped at or after a time', async () => {
    const {journal} = await open(dir(), {segmentBytes: 3000, flushBytes: 100})
    for (const seq of range(1, 100)) journal.append(payload(seq))
    // payload(seq) is stamped 1_700_000_000_000 + seq ms.
    expect(seqsOf(await readAll(journal, {sinceTime: 1_700_000_000_000 + 60}))).toEqual(range(60, 100))
    expect(seqsOf(await readAll(journal, {sinceTime: 0}))).toEqual(range(1, 100))
    expect(seqsOf(await readAll(journal, {sinceTime: Date.now() + 60_000}))).toEqual([])
    expect(seqsOf(await readAll(journal, {sinceTime: 1_700_000_000_000 + 60, last: 3}))).toEqual([98, 99, 100])
  })

  it('serves a cursor that catches up and then sees live appends', async () => {
    const {journal} = await open(dir(), {segmentBytes: 4096})
    for (const seq of range(1, 50)) journal.append(payload(seq))
    const cursor = await journal.cursor({sinceSeq: 10, filter: {PIPELINE: 'temps'}})
    const first = await cursor.next(15)
    expect(seqsOf(first)).toEqual(range(11, 25))
    const rest = await cursor.next(1000)
    expect(seqsOf(rest)).toEqual(range(26, 50))
    expect(cursor.caughtUp).toBe(true)
    expect(await cursor.next()).toEqual([])
    journal.append(payload(51, {}, 'other'))
    journal.append(payload(52))
    expect(cursor.caughtUp).toBe(false)
    // Filtered-out events still move the cursor, so it knows it is caught up.
    expect(seqsOf(await cursor.next())).toEqual([52])
    expect(cursor.position).toBe(52)
    expect(cursor.caughtUp).toBe(true)
  })

  it('round-trips an event larger than the write buffer and the read chunk', async () => {
    const d = dir()
    const {journal} = await open(d, {flushBytes: 4096})
    const big = 'x'.repeat(700 * 1024) + 'é'.repeat(100 * 1024)
    journal.append(payload(1))
    journal.append(payload(2, {BIG: big}))
    journal.append(payload(3))
    await journal.close()
    const {journal: again} = await open(d)
    const all = await readAll(again)
    expect(seqsOf(all)).toEqual([1, 2, 3])
    expect((all[1] as unknown as {BIG: string}).BIG).toBe(big)
  })

  it('refuses nonsensical limits with the limit named', async () => {
    await expect(Journal.open(dir(), {segmentBytes: 0})).rejects.toThrow(/segmentBytes must be a positive number/)
    await expect(Journal.open(dir(), {maxBytes: Number.NaN})).rejects.toThrow(/maxBytes/)
  })
})

describe('segments and retention', () => {
  it('rotates segments named by their first seq and reads across them', async () => {
    const d = dir()
    const {journal} = await open(d, {segmentBytes: 2000, flushBytes: 100})
    for (const seq of range(1, 300)) journal.append(payload(seq))
    const files = segmentFiles(d)
    expect(files.length).toBeGreaterThan(10)
    expect(files[0]).toBe('0000000000000001.jrnl')
    const firstSeqs = files.map((f) => Number(f.slice(0, 16)))
    expect(firstSeqs).toEqual([...firstSeqs].sort((a, b) => a - b))
    for (const f of files.slice(0, -1)) expect(fs.statSync(path.join(d, f)).size).toBeGreaterThanOrEqual(2000)
    expect(seqsOf(await readAll(journal))).toEqual(range(1, 300))
    expect(seqsOf(await readAll(journal, {sinceSeq: 137, limit: 3}))).toEqual([138, 139, 140])
    await journal.close()
    const {journal: again} = await open(d, {segmentBytes: 2000})
    expect(again.lastSeq()).toBe(300)
    for (const seq of range(301, 400)) again.append(payload(seq))
    expect(seqsOf(await readAll(again))).toEqual(range(1, 400))
  })

  it('deletes whole old segments beyond maxBytes and tells readers the range they lost', async () => {
    const d = dir()
    const {journal} = await open(d, {segmentBytes: 2000, maxBytes: 10_000, flushBytes: 100})
    for (const seq of range(1, 1000)) journal.append(payload(seq))
    journal.flush()
    const stats = journal.stats()
    expect(stats.bytes).toBeLessThanOrEqual(10_000 + 2000 + 200)
    expect(stats.firstSeq).toBeGreaterThan(1)
    expect(segmentFiles(d)[0]).toBe(String(stats.firstSeq).padStart(16, '0') + '.jrnl')
    const all = await readAll(journal)
    const gap = GapEventSchema.parse(all[0])
    expect(gap).toMatchObject({FROM_SEQ: 1, TO_SEQ: stats.firstSeq - 1, REASON: 'retention'})
    expect(seqsOf(all.slice(1))).toEqual(range(stats.firstSeq, 1000))
    // A resume from inside the retained range has no gap; one from before it has exactly the lost part.
    expect(seqsOf(await readAll(journal, {sinceSeq: 990}))).toEqual(range(991, 1000))
    expect(seqsOf(await readAll(journal, {sinceSeq: 5, limit: 2}))).toEqual([`gap:6-${stats.firstSeq - 1}:retention`, stats.firstSeq])
    // The last N never reports a gap: it is clamped to what is retained.
    expect(seqsOf(await readAll(journal, {last: 5000}))[0]).toBe(stats.firstSeq)
  })

  it('gives a cursor left behind by retention a gap, then the rest', async () => {
    const {journal} = await open(dir(), {segmentBytes: 2000, maxBytes: 6000, flushBytes: 100})
    for (const seq of range(1, 20)) journal.append(payload(seq))
    const slow = await journal.cursor({sinceSeq: 0})
    expect(seqsOf(await slow.next(5))).toEqual(range(1, 5))
    for (const seq of range(21, 600)) journal.append(payload(seq))
    journal.flush()
    const first = journal.firstSeq()
    expect(first).toBeGreaterThan(6)
    const page = await slow.next(3)
    // The slow reader may still hold its already-open position for a few records in a deleted segment; then it must see the gap.
    const entries = [...page]
    while (!slow.caughtUp) entries.push(...(await slow.next(1000)))
    const seqs = seqsOf(entries)
    const gapAt = seqs.findIndex((s) => typeof s === 'string')
    expect(gapAt).toBeGreaterThanOrEqual(0)
    expect(seqs[gapAt]).toMatch(new RegExp(`^gap:\\d+-${first - 1}:retention$`))
    expect(seqs.slice(gapAt + 1)).toEqual(range(first, 600))
    const numbers = seqs.filter((s): s is number => typeof s === 'number')
    expect(new Set(numbers).size).toBe(numbers.length)
  })

  it('deletes segments whose newest event is older than maxAgeMs, never the one being written', async () => {
    const d = dir()
    const {journal} = await open(d, {segmentBytes: 2000, flushBytes: 100})
    for (const seq of range(1, 100)) journal.append(payload(seq))
    await journal.close()
    const files = segmentFiles(d)
    expect(files.length).toBeGreaterThan(3)
    const old = new Date(Date.now() - 3 * 3600_000)
    for (const f of files) fs.utimesSync(path.join(d, f), old, old)
    const {journal: again} = await open(d, {segmentBytes: 2000, maxAgeMs: 3600_000})
    expect(segmentFiles(d)).toEqual([files.at(-1)])
    expect(again.lastSeq()).toBe(100)
    const all = await readAll(again)
    expect(all[0]).toMatchObject({EE_EVENT_TYPE: 'R1_GAP', FROM_SEQ: 1, REASON: 'retention'})
    expect(all.at(-1)).toMatchObject({EE_MESSAGE_SEQ: 100})
  })
})

describe('retention while running', () => {
  it('a write arms the next retention pass: segments that aged past maxAgeMs meanwhile go after it', async () => {
    const d = dir()
    const {journal} = await open(d, {segmentBytes: 2000, flushBytes: 100, maxAgeMs: 1000, fsyncIntervalMs: 20})
    for (const seq of range(1, 100)) journal.append(payload(seq))
    journal.flush()
    const before = segmentFiles(d)
    expect(before.length).toBeGreaterThan(3)
    await new Promise((resolve) => setTimeout(resolve, 1500)) // older than maxAgeMs now; an idle journal runs no timer, so nothing checks yet
    expect(segmentFiles(d)).toEqual(before)
    journal.append(payload(101))
    journal.flush()
    const aged = before.slice(0, -1)
    await until(() => !segmentFiles(d).some((f) => aged.includes(f)), 5000, 'the aged segments removed after the write')
    expect((await readAll(journal)).at(-1)).toMatchObject({EE_MESSAGE_SEQ: 101})
    await journal.close()
  })

  it('close leaves no pass behind: the last events it writes arm nothing that could later prune a reopened journal', async () => {
    const d = dir()
    const {journal} = await open(d, {segmentBytes: 2000, flushBytes: 1 << 20, maxAgeMs: 300, fsyncIntervalMs: 20})
    for (const seq of range(1, 100)) journal.append(payload(seq))
    journal.flush()
    await new Promise((resolve) => setTimeout(resolve, 500)) // the segments are past maxAgeMs; no pass is pending
    journal.append(payload(101)) // buffered: close writes it
    await journal.close()
    const {journal: again} = await open(d, {segmentBytes: 2000, maxAgeMs: 3600_000})
    const files = segmentFiles(d)
    await new Promise((resolve) => setTimeout(resolve, 200)) // a pass the first journal left would have run by now, with its 300 ms limit
    expect(segmentFiles(d)).toEqual(files)
    expect(seqsOf(await readAll(again))).toEqual(range(1, 101))
    await again.close()
  })
})

describe('crash and corruption', () => {
  async function filled(d: string, count: number, segmentBytes = 1 << 20) {
    const {journal} = await open(d, {segmentBytes, flushBytes: 100})
    for (const seq of range(1, count)) journal.append(payload(seq))
    await journal.close()
    return segmentFiles(d).map((f) => path.join(d, f))
  }

  it('cuts a torn last record (a write cut short) on open and continues from the record before it', async () => {
    const d = dir()
    const files = await filled(d, 50)
    const last = files.at(-1)!
    const size = fs.statSync(last).size
    const full = fs.readFileSync(last)
    const lastLineStart = full.lastIndexOf(0x0a, size - 2) + 1
    fs.truncateSync(last, lastLineStart + 20) // record 50 half written
    const {journal, warnings} = await open(d)
    expect(journal.lastSeq()).toBe(49)
    expect(warnings.join('\n')).toMatch(/cut 20 bytes of torn or corrupt tail/)
    expect(fs.statSync(last).size).toBe(lastLineStart)
    journal.append(payload(50, {AGAIN: true}))
    journal.append(payload(51))
    const all = await readAll(journal)
    expect(seqsOf(all)).toEqual(range(1, 51))
    expect(all[49]).toMatchObject({AGAIN: true})
  })

  it('cuts appended garbage, with and without newlines, and a record torn just before its newline', async () => {
    const d = dir()
    const files = await filled(d, 30)
    const last = files.at(-1)!
    fs.appendFileSync(last, 'deadbeef 31 {"EE_EVENT_TYPE":"PAY\n\u0000\u0000garbage\nmore')
    let opened = await open(d)
    expect(opened.journal.lastSeq()).toBe(30)
    await opened.journal.close()
    const size = fs.statSync(last).size
    fs.truncateSync(last, size - 1) // record 30 without its newline
    opened = await open(d)
    expect(opened.journal.lastSeq()).toBe(29)
    expect(seqsOf(await readAll(opened.journal))).toEqual(range(1, 29))
  })

  it('skips a corrupt record in the middle with a warning and a gap, keeping every other record', async () => {
    const d = dir()
    const files = await filled(d, 40)
    const file = files[0]!
    const data = fs.readFileSync(file)
    const marker = data.indexOf(Buffer.from(' 20 {'))
    data[marker + 30] ^= 0x01 // one flipped bit in record 20
    fs.writeFileSync(file, data)
    const {journal, warnings} = await open(d)
    expect(journal.lastSeq()).toBe(40)
    expect(warnings.join('\n')).toMatch(/skipping corrupt record\(s\).*checksum mismatch/)
    const all = await readAll(journal)
    expect(seqsOf(all)).toEqual([...range(1, 19), 'gap:20-20:missing', ...range(21, 40)])
  })

  it('reports corruption in an older, closed segment the same way when it is read', async () => {
    const d = dir()
    const files = await filled(d, 200, 2000)
    expect(files.length).toBeGreaterThan(2)
    const file = files[1]!
    const data = fs.readFileSync(file)
    const firstSeq = Number(path.basename(file).slice(0, 16))
    const marker = data.indexOf(Buffer.from(` ${firstSeq + 2} {`))
    data.fill(0x41, marker + 5, marker + 15)
    fs.writeFileSync(file, data)
    const {journal, warnings} = await open(d, {segmentBytes: 2000})
    const all = await readAll(journal)
    expect(seqsOf(all)).toEqual([...range(1, firstSeq + 1), `gap:${firstSeq + 2}-${firstSeq + 2}:missing`, ...range(firstSeq + 3, 200)])
    expect(warnings.join('\n')).toMatch(/skipped a corrupt record \(checksum mismatch\)/)
  })
})
