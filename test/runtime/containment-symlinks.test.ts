// The node (root) never writes through a path the instance user controls: what an instance or its
// setup plants as symlinks (the ready marker, the staged bundle) cannot redirect the node's writes.
import {lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {BundleStore} from '../../src/runtime/bundle-store.js'
import {createInstanceDirs, instanceUser, removeInstanceDirs, stageBundle} from '../../src/runtime/containment.js'
import {packFiles} from '../../src/runtime/files-bundle.js'
import {ShippedFiles} from '../../src/runtime/workdir.js'
import {tempDirs} from './helpers.js'

const IS_ROOT = process.getuid?.() === 0
const temp = tempDirs()

/** A root-owned file the instance user may read but not write: what an attacker would want overwritten. */
function victim(): string {
  const dir = temp('r1-victim-')
  const file = join(dir, 'precious')
  writeFileSync(file, 'untouched', {mode: 0o644})
  return file
}

describe('symlinks planted by the instance user', () => {
  it('a setup that plants symlinks where the node used to write its ready marker changes nothing outside its folder', async (context) => {
    if (!IS_ROOT) {
      console.log('skipped: not root, so setup runs as the node user (no privilege to abuse)')
      context.skip()
    }
    const target = victim()
    const project = temp('r1-project-')
    mkdirSync(join(project, 'app'))
    writeFileSync(join(project, 'app', 'a.txt'), 'a')
    // the old marker name inside the folder, and a guess at the marker beside it (the root is not writable to it)
    const setup = `ln -s ${target} .r1-ready; ln -s ${target} "$PWD.ready" 2>/dev/null; ln -s ${target} plugin.mjs; true`
    const files = await packFiles(project, ['app/a.txt'], setup)
    const bundles = new BundleStore(temp('r1-bundles-'))
    await bundles.put(files.hash, files.bytes)
    const root = join(temp('r1-files-parent-'), 'root')
    const shipped = new ShippedFiles(root, bundles, {PATH: process.env.PATH ?? '/usr/bin:/bin'}, () => instanceUser(undefined))
    const dir = await shipped.prepare(files.hash, () => undefined)
    expect(readFileSync(target, 'utf8')).toBe('untouched')
    expect(lstatSync(join(dir, '.r1-ready')).isSymbolicLink()).toBe(true) // it planted it; the node ignored it
    expect(readFileSync(`${dir}.ready`, 'utf8')).toBe(files.hash)
    expect(statSync(`${dir}.ready`).uid).toBe(0)
    // ready: a second prepare does not redo (or re-run) anything
    expect(await shipped.prepare(files.hash, () => undefined)).toBe(dir)
    expect(readFileSync(target, 'utf8')).toBe('untouched')
  })

  it('a symlink planted in an instance run dir does not redirect the staged bundle', async (context) => {
    if (!IS_ROOT) {
      console.log('skipped: not root, so instances run as the node user (no privilege to abuse)')
      context.skip()
    }
    const target = victim()
    const dirs = createInstanceDirs(instanceUser(undefined))
    try {
      symlinkSync(target, join(dirs.run, 'plugin.mjs'))
      const bundle = join(temp('r1-bundle-'), 'b.mjs')
      writeFileSync(bundle, 'export default {}')
      const staged = stageBundle(bundle, dirs)
      expect(staged.startsWith(dirs.code)).toBe(true)
      expect(readFileSync(target, 'utf8')).toBe('untouched')
      expect(statSync(dirs.code).uid).toBe(0)
      // staged again over a planted symlink in the code dir would need write access the user lacks
      expect(statSync(dirs.code).mode & 0o022).toBe(0)
    } finally {
      await removeInstanceDirs(dirs)
    }
  })
})
