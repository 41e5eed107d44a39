// `r1 run --once` ends on every outcome of the first process(): 0 when it went well, 1 with the error
// when it threw, exited or was killed as hung, 5 when --timeout passes first. Real instance processes.
import {cpSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {afterAll, describe, expect, it} from 'vitest'
import {FIXTURES} from '../runtime/helpers.js'

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'run.js')
const temp = mkdtempSync(join(tmpdir(), 'r1-e2e-once-'))
afterAll(() => rmSync(temp, {recursive: true, force: true}))

function faulty(mode: string): string {
  const dir = mkdtempSync(join(temp, `${mode}-`))
  cpSync(join(FIXTURES, 'faulty'), dir, {recursive: true})
  writeFileSync(
    join(dir, 'config.yaml'),
    `name: faulty\nversion: 0.1.0\nplugins:\n  FAULTY:\n    entry: src/faulty.ts\n    description: fails as MODE says\n    config:\n      MODE: { type: string, default: ok }\n      FAULT_AT: { type: number, default: 0 }\npipelines:\n  one:\n    type: Void\n    instances:\n      first:\n        plugin: FAULTY\n        config: { mode: ${mode}, fault_at: 0, process_delay: 0.1 }\n`,
  )
  return dir
}

function once(dir: string, extra: string[] = []) {
  return execa(process.execPath, [BIN, 'run', '--dir', dir, '--once', ...extra], {env: {NO_COLOR: '1', CI: '1'}, reject: false, stdin: 'ignore', timeout: 90_000})
}

describe('r1 run --once', () => {
  it('exit 0 when the first process() went well', async () => {
    const result = await once(faulty('ok'))
    expect(result.exitCode, result.stderr).toBe(0)
  }, 60_000)

  it('exit 1 with the error when the first process() throws', async () => {
    const result = await once(faulty('throw'), ['--json'])
    expect(result.exitCode, result.stderr).toBe(1)
    // NDJSON events, then the error document
    const error = JSON.parse(result.stdout.slice(result.stdout.lastIndexOf('{\n  "error"')))
    expect(error.error.code).toBe('PROCESS_FAILED')
    expect(error.error.message).toContain('fault at iteration')
    const human = await once(faulty('throw'))
    expect(human.exitCode).toBe(1)
    expect(human.stderr).toMatch(/first process\(\) failed: one\/FAULTY\/first: .*fault at iteration/)
  }, 60_000)

  it('exit 1 when the first process() exits the process', async () => {
    const result = await once(faulty('exit'))
    expect(result.exitCode, result.stderr).toBe(1)
    expect(result.stderr).toMatch(/one\/FAULTY\/first/)
  }, 60_000)

  it('returns when the first process() loops forever (here bounded by --timeout; without it by the process timeout)', async () => {
    const result = await once(faulty('loop'), ['--timeout', '4'])
    expect(result.exitCode, result.stderr).not.toBe(0)
    expect(result.stderr).toContain('one/FAULTY/first')
  }, 90_000)

  it('--timeout bounds a hang (exit 5)', async () => {
    const started = Date.now()
    const result = await once(faulty('hang'), ['--timeout', '3'])
    expect(result.exitCode, result.stderr).toBe(5)
    expect(result.stderr).toContain('one/FAULTY/first')
    expect(Date.now() - started).toBeLessThan(30_000)
  }, 60_000)
})
