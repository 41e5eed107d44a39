import {spawnSync} from 'node:child_process'
import {chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {manifestJsonSchema} from '../../src/manifest/json-schema.js'

// Spawns the built CLI (`npm run build` first): exit codes, stdout/stderr separation, --json documents.
const repo = join(import.meta.dirname, '../..')
const bin = join(repo, 'bin/run.js')
const fixtures = join(repo, 'test/fixtures/manifests')
let tmp: string

function r1(args: string[], cwd = repo, as?: {uid: number; gid: number}) {
  const result = spawnSync(process.execPath, [bin, ...args], {cwd, encoding: 'utf8', env: {...process.env, NO_COLOR: '1', FORCE_COLOR: undefined}, timeout: 60_000, ...as})
  return {code: result.status, stdout: result.stdout, stderr: result.stderr}
}

beforeAll(() => {
  if (!existsSync(join(repo, 'dist/commands/validate.js'))) throw new Error('dist/ is missing: run `npm run build` before the e2e tests')
  tmp = mkdtempSync(join(tmpdir(), 'r1-e2e-validate-'))
})
afterAll(() => {
  rmSync(tmp, {recursive: true, force: true})
})

describe('r1 validate', () => {
  it('exits 0 for a valid project (default path: the current folder), summary on stdout, nothing on stderr', () => {
    const run = r1(['validate'], join(fixtures, 'valid/sensor-watch'))
    expect(run).toEqual({code: 0, stdout: '✔ config.yaml is valid\n', stderr: ''})
  })

  it('accepts a folder or a file path', () => {
    expect(r1(['validate', join(fixtures, 'valid/app-runner')]).code).toBe(0)
    expect(r1(['validate', join(fixtures, 'valid/app-runner/config.yaml')]).code).toBe(0)
  })

  it('exits 3 with every diagnostic, code frames and a summary on stdout', () => {
    const run = r1(['validate', 'invalid/many-problems'], fixtures)
    expect(run.code).toBe(3)
    expect(run.stderr).toBe('')
    expect(run.stdout).toContain('invalid/many-problems/config.yaml:1:7 error project name "Bad_Name" must be kebab-case')
    expect(run.stdout).toContain('  > 1 | name: Bad_Name\n      |       ^')
    for (const rule of ['name-format', 'schema-unknown-key', 'ref-entry-missing', 'config-range', 'ref-unknown-plugin', 'config-unknown-key']) expect(run.stdout).toContain(`[${rule}]`)
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('✖ 6 errors in invalid/many-problems/config.yaml')
    expect(run.stdout).not.toContain('\u001B[')
  })

  it('--json prints one document {valid, file, diagnostics} and exits 3', () => {
    const run = r1(['validate', join(fixtures, 'invalid/config-enum'), '--json'])
    expect(run.code).toBe(3)
    expect(run.stderr).toBe('')
    const doc = JSON.parse(run.stdout)
    expect(doc).toEqual({
      valid: false,
      file: join(fixtures, 'invalid/config-enum/config.yaml'),
      diagnostics: [
        {
          file: join(fixtures, 'invalid/config-enum/config.yaml'),
          line: 17,
          col: 40,
          severity: 'error',
          rule: 'config-enum',
          path: 'pipelines.temps.instances.monitor-1.config.unit',
          message: '"c" is not one of "C", "F"',
          suggestion: 'did you mean "C"?',
        },
      ],
    })
  })

  it('--json on a valid project', () => {
    const run = r1(['validate', join(fixtures, 'valid/minimal'), '--json'])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({valid: true, file: join(fixtures, 'valid/minimal/config.yaml'), diagnostics: []})
  })

  it('passes warnings, and fails them with --strict', () => {
    const dir = join(fixtures, 'warnings/missing-description')
    const loose = r1(['validate', dir])
    expect(loose.code).toBe(0)
    expect(loose.stdout).toContain('warning plugin TEMP_MONITOR has no description [missing-description]')
    expect(loose.stdout.trimEnd().split('\n').at(-1)).toMatch(/^✔ .*config\.yaml is valid \(1 warning\)$/)
    const strict = r1(['validate', dir, '--strict'])
    expect(strict.code).toBe(3)
    expect(strict.stdout.trimEnd().split('\n').at(-1)).toMatch(/^✖ 0 errors, 1 warning in .*\(--strict fails on warnings\)$/)
    const json = r1(['validate', dir, '--strict', '--json'])
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stdout)).toMatchObject({valid: false, diagnostics: [{rule: 'missing-description', severity: 'warning'}]})
  })

  it('reports YAML syntax errors as diagnostics (exit 3)', () => {
    const run = r1(['validate', join(fixtures, 'invalid/yaml-tab-indent'), '--json'])
    expect(run.code).toBe(3)
    expect(JSON.parse(run.stdout).diagnostics).toMatchObject([{rule: 'yaml-syntax', line: 13, col: 1}])
  })

  it('a missing project is a clear error on stderr, exit 1, no stack trace', () => {
    const run = r1(['validate', join(tmp, 'absent')])
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain(`${join(tmp, 'absent')} does not exist`)
    expect(run.stderr).toContain('r1 init')
    expect(run.stderr).not.toMatch(/\n\s+at /)
  })

  it('a folder without config.yaml: exit 1, and under --json the error document on stdout', () => {
    const run = r1(['validate', tmp, '--json'])
    expect(run.code).toBe(1)
    expect(JSON.parse(run.stdout)).toMatchObject({error: {code: 'MANIFEST_NOT_FOUND', exitCode: 1, message: `No config.yaml in ${tmp}`}})
  })

  it('an unreadable config.yaml: exit 1, the reason and a hint, no stack trace', (ctx) => {
    // root reads anything: run the CLI as nobody then, if nobody can reach the built CLI here.
    const as = process.getuid?.() === 0 ? {uid: 65534, gid: 65534} : undefined
    if (as && spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(join(repo, 'dist/commands/validate.js'))})`], as).status !== 0) ctx.skip()
    const dir = join(tmp, 'unreadable')
    mkdirSync(dir, {mode: 0o755})
    cpSync(join(fixtures, 'valid/minimal/config.yaml'), join(dir, 'config.yaml'))
    chmodSync(join(dir, 'config.yaml'), 0o000)
    chmodSync(tmp, 0o755)
    const run = r1(['validate', dir], repo, as)
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain(`Cannot read ${join(dir, 'config.yaml')}: EACCES`)
    expect(run.stderr).toContain('Check the file permissions.')
    expect(run.stderr).not.toMatch(/\n\s+at /)
  })

  it('reports a collection used as a key with its own diagnostic, and no Node warning from the YAML parser', () => {
    const dir = join(tmp, 'collection-key')
    mkdirSync(dir, {recursive: true})
    writeFileSync(join(dir, 'config.yaml'), 'name: x\nversion: 0.1.0\npipelines:\n  ? [a, b]\n  : {type: Void, instances: {}}\n')
    const run = r1(['validate', dir])
    expect(run.code).toBe(3)
    expect(run.stdout).toMatch(/config\.yaml:\d+:\d+ error/)
    expect(run.stderr).not.toMatch(/Warning|stringified/)
  })

  it('usage errors exit 2', () => {
    expect(r1(['validate', '--bogus']).code).toBe(2)
    expect(r1(['validate', 'a', 'b']).code).toBe(2)
  })
})

describe('fastValidate (the oclif-free entry bin/run.js may take)', () => {
  const noColor = {...process.env, NO_COLOR: '1', FORCE_COLOR: undefined}
  const fast = (args: string[], cwd = repo, env: NodeJS.ProcessEnv = noColor) => {
    const script = `import {fastValidate} from ${JSON.stringify(join(repo, 'dist/manifest/fast-validate.js'))}; process.exitCode = (await fastValidate(process.argv.slice(1))) ?? 99`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, ...args], {cwd, encoding: 'utf8', env, timeout: 60_000})
    return {code: result.status, stdout: result.stdout, stderr: result.stderr}
  }

  it('prints and exits exactly as `r1 validate` does', () => {
    const cases: Array<[string[], string?]> = [
      [['validate'], join(fixtures, 'valid/sensor-watch')],
      [['validate', 'invalid/many-problems'], fixtures],
      [['validate', join(fixtures, 'invalid/config-enum'), '--json']],
      [['validate', '--strict', join(fixtures, 'warnings/missing-description')]],
      [['validate', join(fixtures, 'warnings/missing-description'), '--json', '--strict']],
      [['validate', join(fixtures, 'invalid/yaml-tab-indent')]],
      [['validate', join(fixtures, 'invalid/yaml-alias-bomb'), '--json']],
      [['validate', 'valid/yaml-anchors-merge'], fixtures],
      [['validate', 'valid/yaml-directive-1.1', '--json'], fixtures],
    ]
    for (const [args, cwd] of cases) {
      const viaOclif = r1(args, cwd)
      expect({args, ...fast(args, cwd)}).toEqual({args, ...viaOclif})
    }
  })

  it('colors exactly as `r1 validate` does when FORCE_COLOR is set', () => {
    const env = {...process.env, NO_COLOR: undefined, FORCE_COLOR: '1'}
    for (const args of [['validate', 'invalid/many-problems'], ['validate', 'warnings/target-insecure'], ['validate', 'valid/minimal']]) {
      const viaOclif = spawnSync(process.execPath, [bin, ...args], {cwd: fixtures, encoding: 'utf8', env, timeout: 60_000})
      const viaFast = fast(args, fixtures, env)
      expect({args, code: viaFast.code, stdout: viaFast.stdout}).toEqual({args, code: viaOclif.status, stdout: viaOclif.stdout})
      expect(viaFast.stdout).toContain('\u001B[')
    }
  })

  it('loads neither yaml@2, chalk, zod nor oclif for a valid manifest (start-up budget), and yaml@2 for diagnostics', () => {
    const hook = join(tmp, 'log-loads.mjs')
    writeFileSync(hook, "export async function resolve(specifier, context, next) {\n  const result = await next(specifier, context)\n  process.stderr.write('load ' + result.url + '\\n')\n  return result\n}\n")
    const register = `data:text/javascript,import {register} from 'node:module'; register(${JSON.stringify(pathToFileURL(hook).href)})`
    const loads = (dir: string) => {
      const run = spawnSync(process.execPath, ['--import', register, bin, 'validate', dir], {cwd: fixtures, encoding: 'utf8', env: noColor, timeout: 60_000})
      return {code: run.status, loaded: run.stderr.split('\n').filter((line) => line.startsWith('load ')).map((line) => line.slice(5))}
    }
    const heavy = ['/node_modules/yaml/', '/node_modules/chalk/', '/node_modules/zod/', '/node_modules/@oclif/', 'node:zlib']
    const valid = loads('valid/yaml-anchors-merge')
    expect(valid.code).toBe(0)
    expect(valid.loaded.some((url) => url.includes('/node_modules/js-yaml/'))).toBe(true)
    expect(valid.loaded.filter((url) => heavy.some((h) => url.includes(h)))).toEqual([])
    const invalid = loads('invalid/config-enum')
    expect(invalid.code).toBe(3)
    expect(invalid.loaded.some((url) => url.includes('/node_modules/yaml/'))).toBe(true)
  })

  it('leaves everything else to oclif, printing nothing', () => {
    for (const args of [['validate', '--help'], ['validate', join(tmp, 'absent')], ['validate', '--bogus'], ['validate', 'a', 'b'], ['types'], ['run', 'validate']]) {
      expect({args, ...fast(args)}).toEqual({args, code: 99, stdout: '', stderr: ''})
    }
  })
})

describe('the shipped JSON Schema', () => {
  it('dist/config.schema.json is the one generated from the zod schema (the build is not stale)', () => {
    expect(JSON.parse(readFileSync(join(repo, 'dist/config.schema.json'), 'utf8'))).toEqual(manifestJsonSchema())
  })
})

describe('r1 types', () => {
  it('writes src/r1-config.d.ts and prints its path', () => {
    const project = join(tmp, 'sensor-watch')
    cpSync(join(fixtures, 'valid/sensor-watch'), project, {recursive: true})
    const run = r1(['types'], project)
    expect(run.code).toBe(0)
    expect(run.stderr).toBe('')
    expect(run.stdout).toBe(`✔ Wrote ${join(project, 'src/r1-config.d.ts')} (1 signature: TEMP_MONITOR)\n`)
    const types = readFileSync(join(project, 'src/r1-config.d.ts'), 'utf8')
    expect(types).toContain('export interface TempMonitorConfig {')
    expect(types).toContain('  UNIT: "C" | "F"')
    expect(types).toContain('  PROCESS_DELAY: number')
  })

  it('--json returns {file, signatures}; --out picks the file', () => {
    const project = join(tmp, 'app-runner')
    cpSync(join(fixtures, 'valid/app-runner'), project, {recursive: true})
    const run = r1(['types', project, '--out', 'types/config.d.ts', '--json'])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({file: join(project, 'types/config.d.ts'), signatures: ['PROCESS_APP_RUNNER']})
    expect(readFileSync(join(project, 'types/config.d.ts'), 'utf8')).toContain("RESTART_POLICY: \"always\" | \"on-failure\" | \"no\"")
  })

  it('--out - prints the declarations instead', () => {
    const run = r1(['types', join(fixtures, 'valid/minimal'), '--out', '-'])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('export interface CustomExec01Config {')
  })

  it('refuses an invalid project with exit 3 and writes nothing', () => {
    const project = join(tmp, 'broken')
    cpSync(join(fixtures, 'invalid/config-type'), project, {recursive: true})
    const run = r1(['types', project])
    expect(run.code).toBe(3)
    expect(run.stdout).toBe('')
    expect(run.stderr).toMatch(/config\.yaml has 1 error:\n.*config\.yaml:17:30 expected number, got string \("hot"\) \[config-type\]/)
    expect(existsSync(join(project, 'src/r1-config.d.ts'))).toBe(false)
  })
})
