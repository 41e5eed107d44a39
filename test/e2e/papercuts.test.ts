// Newcomer papercuts, through the built CLI: YAML indentation positions, oversized manifests, unknown
// flags, `--dir` next to the path argument, `r1 types --out - --json`.
import {mkdirSync, openSync, closeSync, ftruncateSync, writeFileSync, cpSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, describe, expect, it} from 'vitest'
import {r1, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-papercuts-')
const basic = fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url))

afterAll(() => root.dispose())

function project(name: string, yaml?: string): string {
  const dir = join(root.dir, name)
  mkdirSync(dir, {recursive: true})
  if (yaml !== undefined) writeFileSync(join(dir, 'config.yaml'), yaml)
  return dir
}

describe('r1 validate', () => {
  it('an over-indented key on line 2 is reported on line 2 with an indentation hint', async () => {
    const dir = project('indent', 'name: foo\n  version: 0.1.0\npipelines: {}\n')
    const result = await r1(['validate', dir, '--json'])
    expect(result.exitCode).toBe(3)
    const [d] = result.json.diagnostics
    expect(d).toMatchObject({line: 2, col: 3, rule: 'yaml-syntax'})
    expect(d.suggestion).toContain('column 1')
    expect(d.suggestion).not.toContain('quote')
  })

  it('refuses a manifest over 4 MiB before parsing it (exit 3, names the file)', async () => {
    const dir = project('huge')
    const file = join(dir, 'config.yaml')
    const fd = openSync(file, 'w')
    ftruncateSync(fd, 50 * 1024 * 1024)
    closeSync(fd)
    const started = Date.now()
    const result = await r1(['validate', dir, '--json'])
    expect(result.exitCode).toBe(3)
    expect(result.json.error.code).toBe('MANIFEST_TOO_LARGE')
    expect(result.json.error.message).toContain(file)
    expect(Date.now() - started).toBeLessThan(10_000)
    const run = await r1(['run', '--dir', dir, '--once', '--json'])
    expect(run.exitCode).toBe(3)
  })

  it('takes the project as a path or as --dir', async () => {
    const dir = join(root.dir, 'basic')
    cpSync(basic, dir, {recursive: true})
    expect((await r1(['validate', '--dir', dir, '--json'])).json.valid).toBe(true)
    expect((await r1(['validate', dir, '--json'])).json.valid).toBe(true)
    const types = await r1(['types', '--dir', dir, '--out', '-', '--json'])
    expect(types.exitCode, types.stderr).toBe(0)
    expect(types.json).toMatchObject({file: '-', signatures: ['COUNTER']})
    expect(types.json.types).toContain('export interface CounterConfig')
    const human = await r1(['types', dir, '--out', '-'])
    expect(human.stdout).toContain('export interface CounterConfig')
  })
})

describe('unknown flags', () => {
  it('get a "did you mean" (exit 2), in text and under --json', async () => {
    const human = await r1(['validate', '.', '--strickt'])
    expect(human.exitCode).toBe(2)
    expect(human.stderr).toContain('did you mean --strict?')
    const json = await r1(['deploy', '--targt', 'x', '--json'])
    expect(json.exitCode).toBe(2)
    expect(json.json.error).toMatchObject({code: 'UNKNOWN_FLAG'})
    expect(json.json.error.message).toContain('did you mean --target?')
  })
})
