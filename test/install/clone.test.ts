// r1 from a clone, as `npm link` or `npm install -g .` installs it: the global bin is a symlink to
// this checkout's bin/run.js (npm itself is not run here: it would install into the checkout).
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, relative} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

const repo = join(import.meta.dirname, '../..')
let tmp: string
let r1: string

function run(args: string[], cwd: string) {
  const result = spawnSync(r1, args, {cwd, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}, timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe']})
  return {code: result.status, stdout: result.stdout, stderr: result.stderr}
}

beforeAll(() => {
  if (!existsSync(join(repo, 'dist/commands/init.js'))) throw new Error('dist/ is missing: run `npm run build` before this test')
  tmp = mkdtempSync(join(tmpdir(), 'r1-clone-'))
  mkdirSync(join(tmp, 'prefix/bin'), {recursive: true})
  r1 = join(tmp, 'prefix/bin/r1')
  symlinkSync(join(repo, 'bin/run.js'), r1)
})
afterAll(() => rmSync(tmp, {recursive: true, force: true}))

describe.skipIf(process.platform === 'win32')('r1 linked from a clone', () => {
  it('runs through the symlink, and a project it makes points at the clone by a relative path', () => {
    expect(run(['--version'], tmp).stdout).toMatch(/^r1\/\d+\.\d+\.\d+ /)
    const init = run(['init', 'demo', '--template', 'js-plugin', '--yes', '--no-install', '--no-git'], tmp)
    expect(init.code, init.stderr).toBe(0)
    const spec = JSON.parse(readFileSync(join(tmp, 'demo/package.json'), 'utf8')).devDependencies.r1 as string
    expect(spec).toBe(`file:${relative(join(tmp, 'demo'), repo)}`)
    expect(spec).not.toMatch(/^file:\//)
    const once = run(['run', '--once', '--dir', join(tmp, 'demo')], tmp)
    expect(once.code, once.stderr).toBe(0)
  })
})
