// Installs r1 as a user would: `npm pack` of this checkout, `npm install -g` of the tarball into a
// temporary prefix, then `r1 init` + `r1 run` with the installed bin. Needs the build (`npm run build`
// first: the pack skips the prepack script so that it never rebuilds dist/ under other tests) and
// the npm registry for r1's dependencies; without npm or the registry it is skipped, saying why.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

const repo = join(import.meta.dirname, '../..')
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {version: string}).version
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const QUIET = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error']
const env = {...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false'}

function run(command: string, args: string[], cwd: string, timeout = 60_000) {
  const result = spawnSync(command, args, {cwd, env, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe']})
  return {code: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', error: result.error}
}

const skipReason = (() => {
  const npmVersion = run(npm, ['--version'], repo, 20_000)
  if (npmVersion.code !== 0) return `npm is not available (${npmVersion.error?.message ?? npmVersion.stderr.trim()})`
  const ping = run(npm, ['ping', '--loglevel=error'], repo, 20_000)
  if (ping.code !== 0) return `the npm registry is not reachable (${(ping.stderr.trim().split('\n')[0] || ping.error?.message) ?? 'npm ping failed'})`
  return undefined
})()
if (skipReason) process.stderr.write(`test/install skipped: ${skipReason}\n`)

describe.skipIf(skipReason !== undefined)('r1 installed from its packed tarball', () => {
  let tmp: string
  let tgz: string
  let r1: string

  beforeAll(() => {
    if (!existsSync(join(repo, 'dist/commands/init.js'))) throw new Error('dist/ is missing: run `npm run build` before this test')
    tmp = mkdtempSync(join(tmpdir(), 'r1-install-'))
    const pack = run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp, '--loglevel=error'], repo)
    expect(pack.code, pack.stderr).toBe(0)
    const [packed] = JSON.parse(pack.stdout) as Array<{filename: string; files: Array<{path: string}>}>
    tgz = join(tmp, packed.filename)
    const files = packed.files.map((f) => f.path)
    // What an installed r1 needs, and nothing of the development tree.
    for (const needed of ['bin/run.js', 'oclif.manifest.json', 'dist/commands/init.js', 'dist/plugin/index.js', 'dist/plugin/index.d.ts', 'dist/config.schema.json', 'templates/ts-plugin/gitignore', 'templates/ts-plugin/template.json']) {
      expect(files, needed).toContain(needed)
    }
    expect(files.filter((f) => /^(src|test|bench)\/|^bin\/dev\.js$|node_modules|(^|\/)\.r1\//.test(f))).toEqual([])

    const install = run(npm, ['install', '-g', '--prefix', join(tmp, 'prefix'), tgz, ...QUIET], tmp, 300_000)
    expect(install.code, install.stderr).toBe(0)
    r1 = join(tmp, 'prefix', process.platform === 'win32' ? 'r1.cmd' : 'bin/r1')
  }, 360_000)

  afterAll(() => {
    if (tmp) rmSync(tmp, {recursive: true, force: true})
  })

  it('puts a working r1 on the prefix bin', () => {
    const v = run(r1, ['--version'], tmp)
    expect(v.code, v.stderr).toBe(0)
    expect(v.stdout).toMatch(new RegExp(`^r1/${version.replaceAll('.', '\\.')} `))
    const help = run(r1, ['secrets', '--help'], tmp)
    expect(help.code, help.stderr).toBe(0)
    expect(help.stdout).toContain('secrets set')
  })

  it('r1 init makes a project that depends on the published range (no path of this machine), and r1 run runs it', () => {
    const work = join(tmp, 'work')
    mkdirSync(work)
    const init = run(r1, ['init', 'demo', '--template', 'ts-plugin', '--yes', '--no-install', '--no-git'], work)
    expect(init.code, init.stderr).toBe(0)
    const project = join(work, 'demo')
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'))
    expect(pkg.devDependencies.r1).toBe(`^${version}`)
    expect(readFileSync(join(project, '.gitignore'), 'utf8')).toContain('.r1/')

    // The runtime bundles the plugin with `r1/plugin` taken from the running r1: no install needed.
    const once = run(r1, ['run', '--once', '--json'], project)
    expect(once.code, once.stderr).toBe(0)
    const events = once.stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(events.some((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && typeof e.TEMPERATURE === 'number')).toBe(true)
  })

  it("the project's own tests resolve r1/plugin from the installed package", () => {
    const project = join(tmp, 'work', 'demo')
    // r1 is not on the registry: install the same tarball in its place (package.json keeps the range).
    const install = run(npm, ['install', '--no-save', tgz, ...QUIET], project, 300_000)
    expect(install.code, install.stderr).toBe(0)
    expect(JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')).devDependencies.r1).toBe(`^${version}`)
    const test = run(npm, ['test', '--silent'], project, 120_000)
    expect(test.code, test.stdout + test.stderr).toBe(0)
    expect(test.stdout).toMatch(/# pass [1-9]/)
    const validate = run(join(project, 'node_modules/.bin/r1'), ['validate'], project)
    expect(validate.code, validate.stderr).toBe(0)
  }, 360_000)
})
