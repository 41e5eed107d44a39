import {spawn, type ChildProcess} from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {createInterface} from 'node:readline'
import {afterEach, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {Journal} from '../../src/runtime/journal.js'
import {openCollecting, payload, range, readAll, segmentFiles, seqsOf, tempDir} from './helpers.js'

const child = path.join(import.meta.dirname, 'child-append.ts')
const dirs: string[] = []
const children: ChildProcess[] = []
const journals: Journal[] = []
function dir(): string {
  const d = tempDir()
  dirs.push(d)
  return d
}
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const j of journals.splice(0)) await j.close()
  for (const d of dirs.splice(0)) fs.rmSync(d, {recursive: true, force: true})
})

function run(args: string[], shellPrefix?: string): ChildProcess {
  const proc = shellPrefix
    ? spawn('bash', ['-c', `${shellPrefix}; exec "$0" --import tsx "$@"`, process.execPath, child, ...args], {stdio: ['ignore', 'pipe', 'inherit']})
    : spawn(process.execPath, ['--import', 'tsx', child, ...args], {stdio: ['ignore', 'pipe', 'inherit']})
  children.push(proc)
  return proc
}

async function lines(proc: ChildProcess): Promise<string[]> {
  const out: string[] = []
  for await (const line of createInterface({input: proc.stdout!})) out.push(line)
  return out
}

describe('journal under kill -9', () => {
  it('keeps every flushed record intact and contiguous after the appending process is killed mid-write', async () => {
    const d = dir()
    for (const round of [1, 2]) {
      const proc = run(['loop', d])
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      let lastFlushed = 0
      let startedAt = -1
      for await (const line of createInterface({input: proc.stdout!})) {
        const [word, value] = line.split(' ')
        if (word === 'start') startedAt = Number(value)
        if (word === 'flushed') lastFlushed = Number(value)
        // Kill in the middle of the append loop, well into a rotation-heavy run.
        if (lastFlushed >= startedAt + 30_000) {
          proc.kill('SIGKILL')
          break
        }
      }
      await exited
      expect(proc.signalCode).toBe('SIGKILL')
      const {journal, warnings} = await openCollecting(d, {segmentBytes: 256 * 1024})
      journals.push(journal)
      expect(journal.lastSeq()).toBeGreaterThanOrEqual(lastFlushed)
      const all = await readAll(journal)
      const seqs = seqsOf(all)
      expect(seqs.length).toBe(journal.lastSeq())
      expect(seqs).toEqual(range(1, journal.lastSeq()))
      expect(all.every((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && (e as unknown as {FILL: string}).FILL.length === e.EE_MESSAGE_SEQ % 300)).toBe(true)
      expect(warnings.filter((w) => !w.includes('torn or corrupt tail'))).toEqual([])
      if (round === 1) expect(segmentFiles(d).length).toBeGreaterThan(3)
      await journal.close()
      journals.pop()
    }
  })
})

describe('journal on a full disk', () => {
  it('reports ENOSPC on flush, loses only the unwritten events and keeps the earlier segments readable', async () => {
    const d = dir()
    // Records are ~180 bytes: with 100-byte segments every flush closes its segment, so seq 41 starts a new file.
    const reopened = await openCollecting(d, {segmentBytes: 100})
    journals.push(reopened.journal)
    for (const seq of range(1, 40)) {
      reopened.journal.append(payload(seq))
      reopened.journal.flush()
    }
    expect(segmentFiles(d).length).toBe(40)
    // The next segment is named by the next seq; make it the always-full device.
    const name = path.join(d, String(41).padStart(16, '0') + '.jrnl')
    fs.symlinkSync('/dev/full', name)
    reopened.journal.append(payload(41))
    let thrown: unknown
    try {
      reopened.journal.flush()
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(R1Error)
    expect(thrown).toMatchObject({code: 'JOURNAL_DISK_FULL', details: {fromSeq: 41, toSeq: 41, errno: 'ENOSPC'}})
    expect((thrown as Error).message).toMatch(/events 41\.\.41 are lost/)
    // Writes from the event loop go to onError instead of throwing into the node.
    reopened.journal.append(payload(42))
    await new Promise((resolve) => setImmediate(resolve))
    expect(reopened.errors.map((e) => (e as R1Error).code)).toEqual(['JOURNAL_DISK_FULL'])
    const all = await readAll(reopened.journal)
    expect(seqsOf(all)).toEqual([...range(1, 40), 'gap:41-42:missing'])
    await reopened.journal.close()
    journals.pop()
    // Once the disk is back, the journal reopens at the last record written.
    fs.rmSync(name)
    const healed = await openCollecting(d, {segmentBytes: 2000})
    journals.push(healed.journal)
    expect(healed.journal.lastSeq()).toBe(40)
    expect(healed.warnings).toEqual([])
  })

  it('cuts a partial write off the segment when the file limit is hit mid-record (EFBIG), keeping earlier records', async () => {
    const d = dir()
    // 64 KiB file-size limit: the writer gets a short write, then an error, in the middle of a segment.
    const proc = run(['fill', d, '200'], 'ulimit -f 64')
    const out = await lines(proc)
    await new Promise((resolve) => (proc.exitCode === null ? proc.once('exit', resolve) : resolve(null)))
    expect(proc.exitCode).toBe(0)
    const failures = out.filter((l) => l.startsWith('error '))
    expect(failures.length).toBeGreaterThan(0)
    expect(failures[0]).toMatch(/^error EFBIG \d+-\d+$/)
    expect(out.at(-1)).toBe('done 200')
    const file = path.join(d, segmentFiles(d)[0]!)
    expect(fs.statSync(file).size).toBeLessThanOrEqual(64 * 1024)
    const {journal, warnings} = await openCollecting(d)
    journals.push(journal)
    expect(warnings).toEqual([])
    // Later, smaller writes may still fit under the limit: the failed ranges become gaps, every written record is intact.
    const lost = new Set(failures.flatMap((l) => {
      const [from, to] = l.split(' ')[2]!.split('-').map(Number)
      return range(from!, to!)
    }))
    const expected: Array<number | string> = []
    for (let seq = 1; seq <= journal.lastSeq(); seq++) {
      if (!lost.has(seq)) expected.push(seq)
      else if (!lost.has(seq - 1)) {
        let to = seq
        while (lost.has(to + 1) && to + 1 <= journal.lastSeq()) to++
        expected.push(`gap:${seq}-${to}:missing`)
      }
    }
    expect(lost.has(journal.lastSeq())).toBe(false)
    const all = await readAll(journal)
    expect(seqsOf(all)).toEqual(expected)
    expect(all.filter((e) => e.EE_EVENT_TYPE === 'PAYLOAD').every((e) => (e as unknown as {FILL: string}).FILL === 'z'.repeat(1000))).toBe(true)
  })
})
