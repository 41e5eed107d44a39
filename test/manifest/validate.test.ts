import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {R1Error} from '../../src/errors.js'
import {
  compileManifest,
  formatDiagnostics,
  formatSummary,
  generateConfigTypes,
  loadManifest,
  manifestStructureSchema,
  validateProject,
  validateSource,
  writeConfigTypes,
  type JsonSchema,
} from '../../src/manifest/index.js'
import {parseYaml} from '../../src/manifest/positions.js'

const fixtures = join(import.meta.dirname, '../fixtures/manifests')
let tmp: string
let schema: JsonSchema

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'r1-manifest-'))
  schema = await manifestStructureSchema()
})
afterAll(() => {
  rmSync(tmp, {recursive: true, force: true})
})

async function rejection(promise: Promise<unknown>): Promise<R1Error> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(R1Error)
    return error as R1Error
  }
  throw new Error('expected a rejection')
}

describe('validateProject: finding the file', () => {
  it('fails with MANIFEST_NOT_FOUND (exit 1) and a hint for a missing path', async () => {
    const error = await rejection(validateProject(join(tmp, 'nope')))
    expect(error).toMatchObject({exitCode: 1, code: 'MANIFEST_NOT_FOUND', message: `${join(tmp, 'nope')} does not exist`})
    expect(error.hint).toMatch(/r1 init/)
  })
  it('fails the same way for a folder without config.yaml', async () => {
    const empty = join(tmp, 'empty')
    mkdirSync(empty)
    const error = await rejection(validateProject(empty))
    expect(error.message).toBe(`No config.yaml in ${empty}`)
  })
  it('accepts a manifest file under any name', async () => {
    const file = join(tmp, 'other.yaml')
    writeFileSync(file, 'name: other\nversion: 1.0.0\npipelines:\n  p:\n    instances:\n      x: {plugin: CUSTOM_EXEC_01, config: {code: "return 1"}}\n')
    const result = await validateProject(file)
    expect(result).toMatchObject({file, dir: tmp, valid: true, diagnostics: []})
    expect(result.manifest?.pipelines.p.type).toBe('Void')
  })
})

describe('validateSource', () => {
  it('reports every problem in one run, sorted by position', async () => {
    const result = await validateSource(readFileSync(join(fixtures, 'invalid/many-problems/config.yaml'), 'utf8'), join(fixtures, 'invalid/many-problems/config.yaml'), schema)
    expect(result.diagnostics.length).toBe(6)
    const positions = result.diagnostics.map((d) => d.line * 1000 + d.col)
    expect(positions).toEqual([...positions].sort((a, b) => a - b))
  })
  it('refuses names a node would refuse: over 200 characters', async () => {
    const long = 'p'.repeat(201)
    const text = `name: x\nversion: 0.1.0\npipelines:\n  ${long}:\n    instances:\n      ${'i'.repeat(200)}: {plugin: CUSTOM_EXEC_01, config: {code: 'return 1'}}\n`
    const result = await validateSource(text, '/nowhere/config.yaml', schema)
    expect(result.diagnostics.map((d) => [d.rule, d.line])).toEqual([['name-format', 4]])
    expect(result.diagnostics[0]!.message).toMatch(/at most 200 characters \(it has 201\)/)
  })
  it('gives the dotted path of the original spelling', async () => {
    const result = await validateSource(readFileSync(join(fixtures, 'invalid/config-duplicate-key/config.yaml'), 'utf8'), join(fixtures, 'invalid/config-duplicate-key/config.yaml'), schema)
    expect(result.diagnostics[0]).toMatchObject({path: 'pipelines.temps.instances.monitor-1.config.THRESHOLD', severity: 'error'})
    expect(result.diagnostics[0].message).toBe('"THRESHOLD" and "threshold" are the same key (config keys are compared in UPPERCASE)')
  })
  it('keeps warnings on a valid manifest and returns it', async () => {
    const dir = join(fixtures, 'warnings/unused-plugin')
    const result = await validateSource(readFileSync(join(dir, 'config.yaml'), 'utf8'), join(dir, 'config.yaml'), schema)
    expect(result.valid).toBe(true)
    expect(result.manifest?.plugins.SPARE.entry).toBe('src/temp-monitor.ts')
  })
})

describe('line ends and byte-order marks', () => {
  it('reports the same line:col and frame with CRLF and a BOM', async () => {
    const source = '\uFEFFname: x\r\nversion: 1.0.0\r\npipelines: {p: {instances: {i: {plugin: NOPE}}}}\r\n'
    const result = await validateSource(source, join(tmp, 'crlf.yaml'), schema)
    expect(result.diagnostics.map((d) => [d.rule, d.line, d.col])).toEqual([['ref-unknown-plugin', 3, 41]])
    expect(formatDiagnostics(result, {source})).toContain('  > 3 | pipelines: {p: {instances: {i: {plugin: NOPE}}}}\n      | ' + ' '.repeat(40) + '^')
  })
})

describe('positions', () => {
  const yaml = parseYaml('a:\n  b: 1\n  c: [x, y]\nd: {e: f}\n')
  it('locates keys and values', () => {
    expect(yaml.locate(['a', 'b'], 'key')).toMatchObject({line: 2, col: 3})
    expect(yaml.locate(['a', 'b'])).toMatchObject({line: 2, col: 6})
    expect(yaml.locate(['a', 'c', 1])).toMatchObject({line: 3, col: 10})
    expect(yaml.locate(['d', 'e'])).toMatchObject({line: 4, col: 8})
  })
  it('falls back to the deepest existing key for absent paths', () => {
    expect(yaml.locate(['a', 'zz', 'y'])).toMatchObject({line: 1, col: 1})
    expect(yaml.locate(['d', 'nope'])).toMatchObject({line: 4, col: 1})
  })
  it('names duplicate keys with their path', () => {
    const dup = parseYaml('a:\n  b: 1\n  b: 2\n')
    expect(dup.duplicateKeys).toMatchObject([{path: ['a'], key: 'b', position: {line: 3, col: 3}}])
  })
})

describe('loadManifest', () => {
  it('throws exit 3 with the diagnostics for an invalid manifest', async () => {
    const error = await rejection(loadManifest(join(fixtures, 'invalid/many-problems')))
    expect(error).toMatchObject({exitCode: 3, code: 'MANIFEST_INVALID'})
    expect(error.message).toMatch(/has 6 errors:\n {2}.*config\.yaml:1:7 /)
    expect((error.details as {diagnostics: unknown[]}).diagnostics).toHaveLength(6)
  })
  it('returns the manifest of a valid project', async () => {
    const {manifest} = await loadManifest(join(fixtures, 'valid/sensor-watch'))
    expect(Object.keys(manifest.plugins)).toEqual(['TEMP_MONITOR'])
  })
})

describe('compileManifest options', () => {
  const load = async (name: string) => (await loadManifest(join(fixtures, 'valid', name))).manifest

  it('compiles only the named pipelines, in the order given', async () => {
    const compiled = compileManifest(await load('multi-pipeline'), {pipelines: ['south', 'north']})
    expect(compiled.map((p) => p.NAME)).toEqual(['south', 'north'])
  })
  it('rejects unknown pipeline names with exit 2, listing the known ones', async () => {
    const manifest = await load('multi-pipeline')
    let error: unknown
    try {
      compileManifest(manifest, {pipelines: ['north', 'west', 'east']})
    } catch (e) {
      error = e
    }
    expect(error).toMatchObject({exitCode: 2, code: 'UNKNOWN_PIPELINE', message: 'Unknown pipelines "west", "east" in multi', hint: 'Pipelines in config.yaml: north, south'})
  })
  it('adds R1_BUNDLES with the bundles each pipeline uses', async () => {
    const sha = (c: string) => c.repeat(64)
    const compiled = compileManifest(await load('multi-pipeline'), {bundles: {SENSOR_A: sha('a'), SENSOR_B: sha('b'), UNUSED: sha('c')}})
    expect(compiled[0].R1_BUNDLES).toEqual({SENSOR_A: sha('a'), SENSOR_B: sha('b')})
    expect(compiled[1].R1_BUNDLES).toEqual({SENSOR_A: sha('a')})
    expect(compileManifest(await load('multi-pipeline'))[0]).not.toHaveProperty('R1_BUNDLES')
  })
})

describe('human output', () => {
  const dir = join(fixtures, 'invalid/config-unknown-key')

  it('shows file:line:col, rule, path, a code frame with a caret and the suggestion, without color', async () => {
    const result = await validateProject(dir)
    const text = formatDiagnostics(result, {color: false, cwd: fixtures})
    expect(text).toBe(
      [
        'invalid/config-unknown-key/config.yaml:17:19 error TEMP_MONITOR has no config key "TRESHOLD" (declare it under plugins.TEMP_MONITOR.config) [config-unknown-key]',
        '  at pipelines.temps.instances.monitor-1.config.treshold',
        '    16 |         plugin: TEMP_MONITOR',
        '  > 17 |         config: { treshold: 25 }',
        '       |                   ^',
        '  hint: did you mean "THRESHOLD"?',
        '',
      ].join('\n'),
    )
    expect(formatSummary(result, {cwd: fixtures})).toBe('✖ 1 error in invalid/config-unknown-key/config.yaml')
  })
  it('colors only when asked', async () => {
    const result = await validateProject(dir)
    expect(formatDiagnostics(result, {color: true})).toContain('\u001B[')
    expect(formatDiagnostics(result, {color: false})).not.toContain('\u001B[')
  })
  it('summarizes warnings, failing them only under --strict', async () => {
    const result = await validateProject(join(fixtures, 'warnings/empty-pipeline'))
    expect(formatSummary(result, {cwd: fixtures})).toBe('✔ warnings/empty-pipeline/config.yaml is valid (1 warning)')
    expect(formatSummary(result, {cwd: fixtures, strict: true})).toBe('✖ 0 errors, 1 warning in warnings/empty-pipeline/config.yaml (--strict fails on warnings)')
  })
})

describe('config types', () => {
  it('declares one interface per signature with UPPERCASE keys, base keys and optionality', async () => {
    const {manifest} = await loadManifest(join(fixtures, 'valid/mixed-case-and-anchors'))
    const types = generateConfigTypes(manifest)
    expect(types).toContain('export interface CounterConfig {')
    expect(types).toMatch(/ {2}STEP: number\n/)
    expect(types).toMatch(/ {2}VERBOSE\?: boolean\n/)
    expect(types).toMatch(/ {2}LIMITS: Record<string, unknown>\n/)
    expect(types).toMatch(/; ≥ 0\.5; default 5 \*\/\n {2}PROCESS_DELAY: number/)
    expect(types).toContain('export interface OpenBoxConfig {')
    expect(types).toContain('  [key: string]: unknown')
    expect(types).toContain('  COUNTER: CounterConfig')
  })

  it('writes declarations that TypeScript compiles and that type-check real use', async () => {
    const project = join(tmp, 'typed')
    mkdirSync(join(project, 'src'), {recursive: true})
    for (const name of ['config.yaml', 'src/temp-monitor.ts']) writeFileSync(join(project, name), readFileSync(join(fixtures, 'valid/sensor-watch', name)))
    const app = join(tmp, 'typed', 'app-runner.yaml')
    writeFileSync(app, readFileSync(join(fixtures, 'valid/app-runner/config.yaml')))
    const written = await writeConfigTypes(project)
    expect(written).toMatchObject({file: join(project, 'src/r1-config.d.ts'), signatures: ['TEMP_MONITOR']})
    const runner = await writeConfigTypes(app, 'src/app.d.ts')
    expect(runner.signatures).toEqual(['PROCESS_APP_RUNNER'])
    writeFileSync(
      join(project, 'src/use.ts'),
      [
        "import type {TempMonitorConfig, R1PluginConfigs} from './r1-config.js'",
        "import type {ProcessAppRunnerConfig} from './app.js'",
        "const ok: TempMonitorConfig = {THRESHOLD: 1, UNIT: 'F', SENSOR: 'x', PROCESS_DELAY: 1, ALLOW_EMPTY_INPUTS: true, DISABLED: false, RESTART_BACKOFF_MAX: 60, SHUTDOWN_TIMEOUT: 5, FORCED_PAUSE: false}",
        "const unit: R1PluginConfigs['TEMP_MONITOR']['UNIT'] = ok.UNIT",
        "const check: ProcessAppRunnerConfig['HEALTH_CHECK'] = {TYPE: 'tcp', PORT: 1}",
        "// @ts-expect-error UNIT is C or F",
        "const bad: TempMonitorConfig['UNIT'] = 'K'",
        'export {ok, unit, check, bad}',
        '',
      ].join('\n'),
    )
    const tsc = join(import.meta.dirname, '../../node_modules/typescript/bin/tsc')
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', join(project, 'src/use.ts')], {stdio: 'pipe'})
  })
})
