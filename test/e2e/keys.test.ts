import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {identityFromPem} from '../../src/protocol/identity.js'

// Spawns the built CLI (`npm run build` first).
const repo = join(import.meta.dirname, '../..')
const bin = join(repo, 'bin/run.js')
let tmp: string

function r1(args: string[], env: Record<string, string | undefined>) {
  const result = spawnSync(process.execPath, [bin, ...args], {cwd: repo, encoding: 'utf8', env: {...process.env, NO_COLOR: '1', R1_CONFIG_DIR: undefined, XDG_CONFIG_HOME: undefined, ...env}, timeout: 60_000})
  return {code: result.status, stdout: result.stdout, stderr: result.stderr}
}

beforeAll(() => {
  if (!existsSync(join(repo, 'dist/commands/keys/generate.js'))) throw new Error('dist/ is missing: run `npm run build` before the e2e tests')
  tmp = mkdtempSync(join(tmpdir(), 'r1-e2e-keys-'))
})
afterAll(() => rmSync(tmp, {recursive: true, force: true}))

describe('r1 keys', () => {
  it('show without a key: exit 1, says how to make one, nothing on stdout', () => {
    const run = r1(['keys', 'show'], {R1_CONFIG_DIR: join(tmp, 'none')})
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain('r1 keys generate')
    const json = r1(['keys', 'show', '--json'], {R1_CONFIG_DIR: join(tmp, 'none')})
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout).error.code).toBe('KEY_MISSING')
  })

  it('generate writes a 0600 PEM under $XDG_CONFIG_HOME/r1 and prints the address; show prints the same', () => {
    const env = {XDG_CONFIG_HOME: join(tmp, 'xdg')}
    const generated = r1(['keys', 'generate'], env)
    expect(generated.code).toBe(0)
    const address = generated.stdout.trim()
    expect(address).toMatch(/^0xai_[A-Za-z0-9_-]{44}$/)
    const file = join(tmp, 'xdg', 'r1', 'key.pem')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(identityFromPem(readFileSync(file, 'utf8')).address).toBe(address)
    expect(r1(['keys', 'show'], env).stdout.trim()).toBe(address)
    expect(JSON.parse(r1(['keys', 'show', '--json'], env).stdout)).toEqual({address, path: file})
  })

  it('generate keeps an existing key unless --force', () => {
    const env = {R1_CONFIG_DIR: join(tmp, 'force')}
    const first = JSON.parse(r1(['keys', 'generate', '--json'], env).stdout)
    const again = r1(['keys', 'generate', '--json'], env)
    expect(again.code).toBe(1)
    expect(JSON.parse(again.stdout).error).toMatchObject({code: 'KEY_EXISTS'})
    expect(JSON.parse(r1(['keys', 'show', '--json'], env).stdout).address).toBe(first.address)
    const forced = JSON.parse(r1(['keys', 'generate', '--force', '--json'], env).stdout)
    expect(forced.address).not.toBe(first.address)
    expect(forced.replaced).toBe(first.address)
  })

  it('a corrupt key file is reported with the file and a way out', () => {
    const dir = join(tmp, 'corrupt')
    r1(['keys', 'generate'], {R1_CONFIG_DIR: dir})
    writeFileSync(join(dir, 'key.pem'), 'not a key')
    const run = r1(['keys', 'show'], {R1_CONFIG_DIR: dir})
    expect(run.code).toBe(1)
    expect(run.stderr).toContain(join(dir, 'key.pem'))
    expect(run.stderr).toContain('--force')
  })
})
