// writeFileAtomic, the one way the node writes a record: the folder is made on the first write, a
// reader sees the old or the new content, and a failed write leaves the old file and no temp file.
import {mkdirSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {writeFileAtomic} from '../../src/files.js'
import {tempDirs} from './helpers.js'

const tempDir = tempDirs()
const temp = () => tempDir('r1-atomic-')

describe('writeFileAtomic', () => {
  it('makes the missing folders on the first write, then replaces the file whole', async () => {
    const file = join(temp(), 'a', 'b', 'record.json')
    await writeFileAtomic(file, 'one', {mode: 0o600})
    expect(readFileSync(file, 'utf8')).toBe('one')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    await writeFileAtomic(file, 'two')
    expect(readFileSync(file, 'utf8')).toBe('two')
    expect(readdirSync(join(file, '..'))).toEqual(['record.json'])
  })

  it('a write that cannot be made leaves what was there and no temp file', async () => {
    const dir = temp()
    // the name is taken by a folder: the rename fails after the temp file was written and synced
    const taken = join(dir, 'record.json')
    mkdirSync(taken)
    writeFileSync(join(taken, 'inside'), 'old')
    await expect(writeFileAtomic(taken, 'new')).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/)
    expect(readFileSync(join(taken, 'inside'), 'utf8')).toBe('old')
    expect(readdirSync(dir)).toEqual(['record.json'])
  })

  it('a folder that cannot be made is the error, and nothing is left', async () => {
    const dir = temp()
    writeFileSync(join(dir, 'plain'), 'a file, not a folder')
    await expect(writeFileAtomic(join(dir, 'plain', 'sub', 'record.json'), 'x')).rejects.toThrow(/ENOTDIR|EEXIST/)
    expect(readdirSync(dir)).toEqual(['plain'])
  })
})
