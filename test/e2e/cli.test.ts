import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

// The CLI foundation from the built bin/run.js: version, help, typos, usage errors, --json errors, color.
const repo = join(import.meta.dirname, '../..')
const bin = join(repo, 'bin/run.js')
// eslint-disable-next-line no-control-regex -- an ANSI escape is exactly what we look for
const ansi = /\u001B\[/
const version = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version

function r1(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {cwd: repo, encoding: 'utf8', env: {...process.env, FORCE_COLOR: undefined, ...env}, timeout: 60_000})
  return {code: result.status, stdout: result.stdout, stderr: result.stderr}
}

describe('r1 (foundation)', () => {
  it('--version prints name/version/platform on stdout', () => {
    const run = r1(['--version'])
    expect(run.code).toBe(0)
    expect(run.stdout).toBe(`r1/${version} ${process.platform}-${process.arch} node-${process.version}\n`)
    expect(run.stderr).toBe('')
  })

  it('--help lists every command', () => {
    const run = r1(['--help'])
    expect(run.code).toBe(0)
    for (const command of ['init', 'validate', 'types', 'run', 'keys', 'node', 'deploy', 'status', 'pipelines', 'command', 'rollback', 'logs', 'autocomplete']) {
      expect(run.stdout).toMatch(new RegExp(`^\\s+${command}\\s`, 'm'))
    }
  })

  it('a mistyped command suggests the closest one and exits 2, without prompting', () => {
    const run = r1(['valdate'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('"valdate" is not an r1 command. Did you mean "r1 validate"?')
    expect(run.stdout).toBe('')
    const spaced = r1(['pipelines', 'lss'])
    expect(spaced.code).toBe(2)
    expect(spaced.stderr).toContain('Did you mean "r1 pipelines ls"?')
  })

  it('a mistyped command under --json prints one error document on stdout', () => {
    const run = r1(['zzzzzz', '--json'])
    expect(run.code).toBe(2)
    expect(JSON.parse(run.stdout)).toEqual({error: {code: 'UNKNOWN_COMMAND', message: expect.stringContaining('"zzzzzz" is not an r1 command'), exitCode: 2}})
  })

  it('an unknown flag is a usage error (exit 2), also under --json', () => {
    const human = r1(['templates', '--bogus'])
    expect(human.code).toBe(2)
    expect(human.stdout).toBe('')
    expect(human.stderr).toContain('Unknown flag: --bogus')
    const json = r1(['templates', '--bogus', '--json'])
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stdout).error).toMatchObject({exitCode: 2, message: expect.stringContaining('--bogus')})
  })

  it('prints no color without a terminal or with NO_COLOR; FORCE_COLOR turns it on', () => {
    const piped = r1(['validate', 'templates/js-plugin'])
    expect(piped.code).toBe(0)
    expect(piped.stdout + piped.stderr).not.toMatch(ansi)
    const forced = r1(['validate', 'templates/js-plugin/missing'], {FORCE_COLOR: '1'})
    expect(forced.stderr).toMatch(ansi)
    const noColor = r1(['validate', 'templates/js-plugin/missing'], {NO_COLOR: '1'})
    expect(noColor.stderr).not.toMatch(ansi)
  })
})
