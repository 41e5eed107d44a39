import {mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {fileMatcher, globProblem, matchFiles} from '../../src/manifest/globs.js'
import {packFiles, readFilesHeader, unpackFiles} from '../../src/runtime/files-bundle.js'

const dirs: string[] = []
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'r1-files-'))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
})

describe('files globs', () => {
  it('*, ** and ?, a folder taking everything under it', () => {
    const m = fileMatcher(['app/*.py', 'data/**/*.json', 'model', 'v?.bin'])
    expect(['app/main.py', 'data/a.json', 'data/x/y/b.json', 'model/w/1.bin', 'v1.bin'].every(m)).toBe(true)
    expect(['app/sub/main.py', 'data/a.txt', 'models/x', 'v10.bin', 'app/main.pyc'].some(m)).toBe(false)
    expect(fileMatcher(['**'])('deep/er/file')).toBe(true)
    expect(globProblem('../x')).toMatch(/leaves/)
    expect(globProblem('/etc/*')).toMatch(/absolute/)
    expect(globProblem('app/**')).toBeUndefined()
  })

  it('lists project files without node_modules, .git and .r1', () => {
    const dir = temp()
    for (const file of ['app/a.py', 'node_modules/x/i.js', '.git/HEAD', '.r1/secrets.json', 'app/.env']) {
      mkdirSync(join(dir, file, '..'), {recursive: true})
      writeFileSync(join(dir, file), file)
    }
    expect(matchFiles(dir, ['**'])).toEqual(['app/.env', 'app/a.py'])
  })
})

describe('files bundles', () => {
  it('round-trip: same bytes, same hash, executable bits kept, setup carried', async () => {
    const dir = temp()
    mkdirSync(join(dir, 'app'))
    writeFileSync(join(dir, 'app', 'run.sh'), '#!/bin/sh\necho hi\n', {mode: 0o755})
    writeFileSync(join(dir, 'app', 'data.bin'), Buffer.from([0, 255, 10, 13]))
    const a = await packFiles(dir, ['app/run.sh', 'app/data.bin'], 'echo setup')
    const b = await packFiles(dir, ['app/data.bin', 'app/run.sh'], 'echo setup')
    expect(a.hash).toBe(b.hash)
    const out = temp()
    const header = await unpackFiles(a.bytes, out)
    expect(header.setup).toBe('echo setup')
    expect(readFileSync(join(out, 'app', 'data.bin'))).toEqual(Buffer.from([0, 255, 10, 13]))
    expect(statSync(join(out, 'app', 'run.sh')).mode & 0o111).not.toBe(0)
    expect(statSync(join(out, 'app', 'data.bin')).mode & 0o111).toBe(0)
  })

  it('refuses a forged bundle: paths leaving the folder, sizes that do not add up, no header', () => {
    const forge = (files: Array<{path: string; size: number; mode: number}>, body = '') => Buffer.from(JSON.stringify({format: 'r1-files', version: 1, files}) + '\n' + body)
    expect(() => readFilesHeader(forge([{path: '../escape', size: 1, mode: 420}], 'x'))).toThrow(/bad path/)
    expect(() => readFilesHeader(forge([{path: '/abs', size: 1, mode: 420}], 'x'))).toThrow(/bad path/)
    expect(() => readFilesHeader(forge([{path: 'a/./b', size: 1, mode: 420}], 'x'))).toThrow(/bad path/)
    expect(() => readFilesHeader(forge([{path: 'a', size: 5, mode: 420}], 'x'))).toThrow(/hold 5 bytes/)
    expect(() => readFilesHeader(forge([{path: 'a', size: 0, mode: 420}, {path: 'a', size: 0, mode: 420}]))).toThrow(/twice/)
    expect(() => readFilesHeader(Buffer.from('no newline'))).toThrow(/no header/)
  })
})
