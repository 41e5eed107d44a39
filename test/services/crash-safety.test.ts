// The embedded backends after a crash: a torn CStore log line, a damaged one, leftovers of an R1FS add
// cut short, an encrypted file changed on disk.
import {appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {buffer} from 'node:stream/consumers'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {openServices} from '../../src/services/index.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'r1-services-crash-'))
})
afterEach(() => rmSync(dir, {recursive: true, force: true}))

describe('CStore log', () => {
  it('drops a torn last line (a write cut by a crash, never acknowledged) and keeps appending after it', async () => {
    const first = await openServices({dataDir: dir})
    await first.cstore.set('kept', 1)
    await first.cstore.hset('h', 'f', 'v')
    await first.cstore.close()
    await first.r1fs.close()
    const log = join(dir, 'cstore', 'cstore.log')
    appendFileSync(log, '["s","torn",{"half')
    const again = await openServices({dataDir: dir})
    expect(await again.cstore.get('kept')).toBe(1)
    expect(await again.cstore.get('torn')).toBeNull()
    await again.cstore.set('after', true)
    await again.cstore.close()
    await again.r1fs.close()
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line))).toEqual([['s', 'kept', 1], ['h', 'h', 'f', 'v'], ['s', 'after', true]])
  })

  it('refuses a log damaged before its end, naming the line, and leaves the file as it was', async () => {
    mkdirSync(join(dir, 'cstore'))
    const log = join(dir, 'cstore', 'cstore.log')
    const text = '["s","a",1]\nnot json\n["s","b",2]\n'
    writeFileSync(log, text)
    await expect(openServices({dataDir: dir})).rejects.toMatchObject({code: 'CSTORE_CORRUPT', message: `CStore's log ${log} is damaged at line 2: not JSON`})
    expect(readFileSync(log, 'utf8')).toBe(text)
  })

  it('compacts the log to its live entries and reads the same values back', async () => {
    const services = await openServices({dataDir: dir})
    for (let round = 0; round < 30; round++) await Promise.all(Array.from({length: 50}, (_, i) => services.cstore.set(`key-${i}`, {round, i})))
    await Promise.all(Array.from({length: 25}, (_, i) => services.cstore.set(`key-${i}`, null)))
    await services.cstore.close()
    await services.r1fs.close()
    const lines = readFileSync(join(dir, 'cstore', 'cstore.log'), 'utf8').split('\n').filter(Boolean)
    expect(lines.length).toBeLessThan(1500 / 2)
    const again = await openServices({dataDir: dir})
    expect((await again.cstore.keys()).sort()).toEqual(Array.from({length: 25}, (_, i) => `key-${i + 25}`).sort())
    expect(await again.cstore.get('key-40')).toEqual({round: 29, i: 40})
    await again.cstore.close()
    await again.r1fs.close()
  })
})

describe('R1FS files', () => {
  it('removes what an add cut short left (a spool file, bytes without metadata) on open', async () => {
    const first = await openServices({dataDir: dir})
    const cid = await first.r1fs.add(Buffer.from('kept'), {filename: 'kept.txt'})
    await first.cstore.close()
    await first.r1fs.close()
    const orphan = 'ab'.repeat(32)
    mkdirSync(join(dir, 'r1fs', 'files', 'ab'), {recursive: true})
    writeFileSync(join(dir, 'r1fs', 'files', 'ab', orphan), 'no metadata')
    writeFileSync(join(dir, 'r1fs', 'spool', 'cut.part'), 'half an upload')
    const again = await openServices({dataDir: dir})
    expect((await again.r1fs.list()).map((e) => e.cid)).toEqual([cid])
    expect(existsSync(join(dir, 'r1fs', 'files', 'ab', orphan))).toBe(false)
    expect(readdirSync(join(dir, 'r1fs', 'spool'))).toEqual([])
    await again.cstore.close()
    await again.r1fs.close()
  })

  it('errors the stream of an encrypted file changed on disk instead of returning altered bytes', async () => {
    const services = await openServices({dataDir: dir})
    const cid = await services.r1fs.add(Buffer.alloc(200_000, 7), {filename: 'f', secret: 's'})
    const path = join(dir, 'r1fs', 'files', cid.slice(0, 2), cid)
    const stored = readFileSync(path)
    stored[150_000]! ^= 1
    writeFileSync(path, stored)
    await expect(buffer((await services.r1fs.get(cid, 's'))!.stream())).rejects.toThrow(/does not match its secret \(changed or corrupt on disk\)/)
    await services.cstore.close()
    await services.r1fs.close()
  })
})
