// On a terminal, `r1 run` draws its task list on stderr while events may already arrive on stdout: the
// redraw must not erase or repeat lines, so events wait until the list is done. Needs `script` (a pty).
import {execFileSync} from 'node:child_process'
import {join, resolve} from 'node:path'
import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

const ROOT = resolve(import.meta.dirname, '../..')
const hasScript = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v script'], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
})()

describe.skipIf(!hasScript)('r1 run on a terminal', () => {
  it('prints the first events after the final task list, never inside a redraw', async () => {
    const command = `stty cols 120 rows 40; ${JSON.stringify(process.execPath)} ${JSON.stringify(join(ROOT, 'bin/run.js'))} run --dir ${JSON.stringify(join(ROOT, 'test/fixtures/projects/basic'))} --duration 2`
    const result = await execa('script', ['-qec', command, '/dev/null'], {reject: false, stdin: 'ignore', env: {...process.env, CI: '', TERM: 'xterm-256color', FORCE_COLOR: '0'}, timeout: 60_000})
    const screen = result.stdout
    const applied = screen.indexOf('Pipeline counting v1 applied')
    expect(applied, screen).toBeGreaterThan(0)
    // every redraw of the list happened before the event: nothing can erase it afterwards
    expect(screen.lastIndexOf('Apply counting')).toBeLessThan(applied)
    expect(screen.lastIndexOf('\u001b[1A')).toBeLessThan(applied)
  }, 60_000)
})
