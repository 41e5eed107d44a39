// A shipped files' setup, run by the node: its whole output is read before it is judged, so a failed
// setup names the reason it printed last, and what it left running in the background is stopped with it.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {BundleStore} from '../../src/runtime/bundle-store.js'
import {instanceUser} from '../../src/runtime/containment.js'
import {packFiles} from '../../src/runtime/files-bundle.js'
import {ShippedFiles, type WorkLog} from '../../src/runtime/workdir.js'
import {isAlive, tempDirs, until} from './helpers.js'

const temp = tempDirs()

async function prepared(setup: string): Promise<{prepare: Promise<string>; lines: Array<[string, string]>}> {
  const project = temp('r1-project-')
  mkdirSync(join(project, 'app'))
  writeFileSync(join(project, 'app', 'a.txt'), 'a')
  const files = await packFiles(project, ['app/a.txt'], setup)
  const bundles = new BundleStore(temp('r1-bundles-'))
  await bundles.put(files.hash, files.bytes)
  const shipped = new ShippedFiles(join(temp('r1-files-parent-'), 'root'), bundles, {PATH: process.env.PATH ?? '/usr/bin:/bin'}, () => instanceUser(undefined))
  const lines: Array<[string, string]> = []
  const log: WorkLog = (level, text) => lines.push([level, text])
  return {prepare: shipped.prepare(files.hash, log), lines}
}

describe('a files setup', () => {
  it('that fails after much output names the line it printed last, with every line logged', async () => {
    // far more than a pipe holds: the shell exits while most of its output is still unread
    const {prepare, lines} = await prepared('i=0; while [ $i -lt 4000 ]; do echo "step $i of a long install log"; i=$((i+1)); done >&2; echo cannot install >&2; exit 7')
    await expect(prepare).rejects.toThrow(/setup ".*" failed \(exit 7\): cannot install$/)
    const warnings = lines.filter(([level]) => level === 'warn').map(([, text]) => text)
    expect(warnings).toHaveLength(4001)
    expect(warnings.at(-1)).toBe('cannot install')
  })

  it('that leaves a child in the background holding its output ends when the shell does, the child stopped', async () => {
    const {prepare} = await prepared('sleep 300 & echo $! > sleeper.pid; echo done')
    const dir = await prepare
    const pid = Number(readFileSync(join(dir, 'sleeper.pid'), 'utf8'))
    await until(() => !isAlive(pid), 5000, 'the background child to be stopped')
  })

  it('that leaves a process outside its group holding its output still ends (that process is not waited for)', async () => {
    // setsid: a new session, out of reach of the group kill, keeping the output pipes open for a minute
    const {prepare} = await prepared("setsid sh -c 'echo $$ > escaped.pid; exec sleep 60' & sleep 0.2; echo done")
    const dir = await prepare
    const pid = Number(readFileSync(join(dir, 'escaped.pid'), 'utf8'))
    expect(isAlive(pid)).toBe(true)
    process.kill(pid, 'SIGKILL')
  })
})
