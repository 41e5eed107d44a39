import * as fs from 'node:fs'
import * as path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {startLocalNode} from '../../src/runtime/index.js'
import type {Journal} from '../../src/runtime/journal.js'
import {startNodeServer} from '../../src/runtime/serve.js'
import {openCollecting, payload, tempDir} from './helpers.js'

const dirs: string[] = []
const journals: Journal[] = []
afterEach(async () => {
  for (const j of journals.splice(0)) await j.close()
  for (const d of dirs.splice(0)) fs.rmSync(d, {recursive: true, force: true})
})

async function journalWithEvents(): Promise<{dir: string; id: string}> {
  const dir = tempDir()
  dirs.push(dir)
  const {journal} = await openCollecting(dir)
  for (let seq = 1; seq <= 3; seq++) journal.append(payload(seq))
  await journal.close()
  return {dir, id: journal.id}
}

const asideFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.startsWith('journal.json.bad-'))

describe('a corrupt journal.json', () => {
  for (const [what, text] of [
    ['not JSON', '{"ID": "abc'],
    ['JSON without an ID', '{"CREATED": "2026-01-01"}'],
    ['JSON null', 'null'],
  ] as const) {
    it(`(${what}) starts a new journal loudly: a warning, a warning property, the old file kept aside`, async () => {
      const {dir, id} = await journalWithEvents()
      fs.writeFileSync(path.join(dir, 'journal.json'), text)
      const {journal, warnings} = await openCollecting(dir)
      journals.push(journal)
      expect(journal.id).not.toBe(id)
      expect(journal.warning).toMatch(/journal\.json was corrupt .*started a new journal.*kept as .*journal\.json\.bad-/)
      expect(warnings).toContain(journal.warning)
      const aside = asideFiles(dir)
      expect(aside).toHaveLength(1)
      expect(fs.readFileSync(path.join(dir, aside[0]!), 'utf8')).toBe(text)
      await journal.close()
      journals.pop()

      // the next open is of a sound journal: no warning, the aside file is still there
      const again = await openCollecting(dir)
      journals.push(again.journal)
      expect(again.journal.warning).toBeUndefined()
      expect(again.journal.id).toBe(journal.id)
      expect(asideFiles(dir)).toEqual(aside)
    })
  }

  it('a missing journal.json is a new journal, not a warning', async () => {
    const dir = tempDir()
    dirs.push(dir)
    const {journal, warnings} = await openCollecting(dir)
    journals.push(journal)
    expect(journal.warning).toBeUndefined()
    expect(warnings).toEqual([])
  })

  it('is reported in the node log by a node server, and a node given the warning reports it in its heartbeats', async () => {
    const dataDir = tempDir()
    dirs.push(dataDir)
    const first = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, log: () => undefined})
    await first.stop()
    fs.writeFileSync(path.join(dataDir, 'journal', 'journal.json'), '\u0000\u0000garbage')
    const log: string[] = []
    const server = await startNodeServer({dataDir, port: 0, heartbeatIntervalMs: 0, log: (line) => log.push(line)})
    try {
      expect(log.join('\n')).toMatch(/journal\.json was corrupt .*kept as .*journal\.json\.bad-/)
      expect(server.journal.warning).toBeDefined()
    } finally {
      await server.stop()
    }

    const node = await startLocalNode({heartbeatIntervalMs: 0, warnings: [server.journal.warning!], log: () => undefined})
    try {
      expect(node.heartbeat().R1_WARNINGS).toEqual([server.journal.warning])
      expect(node.warnings()).toEqual([server.journal.warning])
    } finally {
      await node.stop()
    }
  })
})
