import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type {NodeEvent} from '../../src/protocol/events.js'
import {Journal, type JournalEntry, type JournalRecord, type JournalOptions, type ReadOptions} from '../../src/runtime/journal.js'

export function payload(seq: number, extra: Record<string, unknown> = {}, pipeline = 'temps', instance = 'monitor-1'): NodeEvent {
  return {
    EE_EVENT_TYPE: 'PAYLOAD',
    EE_PAYLOAD_PATH: ['edge-a', pipeline, 'TEMP_MONITOR', instance],
    EE_MESSAGE_SEQ: seq,
    EE_TIMESTAMP: new Date(1_700_000_000_000 + seq).toISOString(),
    TEMPERATURE: 20 + (seq % 10),
    ...extra,
  }
}

export function notification(seq: number, type: string, message: string): NodeEvent {
  return {
    EE_EVENT_TYPE: 'NOTIFICATION',
    EE_PAYLOAD_PATH: ['edge-a', 'temps', 'TEMP_MONITOR', 'monitor-1'],
    EE_MESSAGE_SEQ: seq,
    EE_TIMESTAMP: new Date(1_700_000_000_000 + seq).toISOString(),
    NOTIFICATION_TYPE: type,
    NOTIFICATION: message,
  }
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'r1-journal-'))
}

/** Opens a journal that collects its warnings and errors instead of printing them. */
export async function openCollecting(dir: string, options: JournalOptions = {}) {
  const warnings: string[] = []
  const errors: Error[] = []
  const journal = await Journal.open(dir, {onWarning: (m) => warnings.push(m), onError: (e) => errors.push(e), ...options})
  return {journal, warnings, errors}
}

export async function readAll(journal: Journal, options: ReadOptions = {}): Promise<JournalEntry[]> {
  const out: JournalEntry[] = []
  for await (const entry of journal.read(options)) out.push(entry)
  return out
}

/** Seqs (and gaps as `gap:from-to:reason`) of entries, or of a cursor page's records. */
export function seqsOf(items: Array<JournalEntry | JournalRecord>): Array<number | string> {
  return items.map((item) => {
    const e = (Buffer.isBuffer((item as JournalRecord).json) ? (item as JournalRecord).entry : item) as JournalEntry
    return e.EE_EVENT_TYPE === 'R1_GAP' ? `gap:${e.FROM_SEQ}-${e.TO_SEQ}:${e.REASON}` : e.EE_MESSAGE_SEQ
  })
}

export function range(from: number, to: number): number[] {
  return Array.from({length: to - from + 1}, (_, i) => from + i)
}

export function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.jrnl'))
    .sort()
}
