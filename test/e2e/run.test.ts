// `r1 run` end to end: the built CLI (bin/run.js → dist) on fixture projects, with real instance processes.
import {spawn, type ChildProcess} from 'node:child_process'
import {cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import {canonicalJson} from '../../src/protocol/canonical.js'
import {FIXTURES, descendants, isAlive, until} from '../runtime/helpers.js'

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'run.js')
const temp = mkdtempSync(join(tmpdir(), 'r1-e2e-run-'))
const running: ChildProcess[] = []

afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})
afterAll(() => rmSync(temp, {recursive: true, force: true}))

interface Cli {
  child: ChildProcess
  stdout: string[]
  stderr: () => string
  /** NDJSON events seen so far (with --json). */
  events: () => Array<Record<string, any>>
  exit: Promise<{code: number | null; signal: NodeJS.Signals | null}>
}

function r1(args: string[], options: {detached?: boolean} = {}): Cli {
  const child = spawn(process.execPath, [BIN, ...args], {env: {...process.env, NO_COLOR: '1', CI: '1'}, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false})
  running.push(child)
  const stdout: string[] = []
  let partial = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n')
    partial = lines.pop()!
    stdout.push(...lines)
  })
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const exit = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) =>
    child.on('close', (code, signal) => {
      if (partial) stdout.push(partial)
      resolve({code, signal})
    }),
  )
  return {child, stdout, stderr: () => stderr, events: () => stdout.filter(Boolean).map((line) => JSON.parse(line)), exit}
}

function copyProject(name: string): string {
  const dir = mkdtempSync(join(temp, `${name}-`))
  cpSync(join(FIXTURES, name), dir, {recursive: true})
  return dir
}

describe('r1 run', () => {
  it('--once --json: NDJSON events only on stdout, stops after every instance processed once', async () => {
    const cli = r1(['run', '--dir', join(FIXTURES, 'basic'), '--once', '--json'])
    const {code} = await cli.exit
    expect(code, cli.stderr()).toBe(0)
    const events = cli.events() // every line parses
    expect(events.find((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === 1)).toMatchObject({EE_PAYLOAD_PATH: ['local', 'counting', null, null]})
    expect(events.find((e) => e.EE_EVENT_TYPE === 'PAYLOAD')).toMatchObject({COUNT: 2, STEP: 2, EE_PAYLOAD_PATH: ['local', 'counting', 'COUNTER', 'counter-1']})
    const seqs = events.map((e) => e.EE_MESSAGE_SEQ)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    // each line is the node's canonical JSON of the event, as `r1 logs --json` prints it (minus R1_TARGET)
    for (const line of cli.stdout.filter((l) => l.trim())) expect(line).toBe(canonicalJson(JSON.parse(line)))
    expect(cli.stderr()).not.toMatch(/Bundle plugins/) // progress is silent under --json
  })

  it('prints pretty lines with time, path and a compact payload; --duration ends it with exit 0', async () => {
    const cli = r1(['run', 'counting', '--dir', join(FIXTURES, 'basic'), '--duration', '1.5'])
    const {code} = await cli.exit
    expect(code, cli.stderr()).toBe(0)
    expect(cli.stdout.join('\n')).toMatch(/^\d\d:\d\d:\d\d\.\d{3} counting\/COUNTER\/counter-1 COUNT=2 STEP=2$/m)
    expect(cli.stderr()).toMatch(/Bundle plugins/)
    // plugin logs are LOG events, printed like every event (time, path, level)
    expect(cli.stdout.join('\n')).toMatch(/^\d\d:\d\d:\d\d\.\d{3} counting\/COUNTER\/counter-1 log +counter counter-1 starting$/m)
  })

  it('an invalid config.yaml: the validate diagnostics and exit 3', async () => {
    const dir = copyProject('basic')
    writeFileSync(join(dir, 'config.yaml'), readFileSync(join(dir, 'config.yaml'), 'utf8').replace('plugin: COUNTER', 'plugin: COUNTR'))
    const cli = r1(['run', '--dir', dir])
    expect((await cli.exit).code).toBe(3)
    expect(cli.stderr()).toMatch(/config\.yaml:\d+:\d+ error .*COUNTR/)
    const json = r1(['run', '--dir', dir, '--json'])
    expect((await json.exit).code).toBe(3)
    const doc = JSON.parse(json.stdout.join('\n'))
    expect(doc.error).toMatchObject({code: 'INVALID_CONFIG', exitCode: 3})
    expect(doc.error.details.diagnostics[0]).toMatchObject({line: expect.any(Number), col: expect.any(Number)})
  })

  it('a bundle error: file:line:col and exit 3', async () => {
    const cli = r1(['run', '--dir', join(FIXTURES, 'bad-bundle')])
    expect((await cli.exit).code).toBe(3)
    expect(cli.stderr()).toMatch(/src\/broken\.ts:6:\d+ error: /)
  })

  it('a pipeline that cannot start: non-zero exit with the reason, no process left', async () => {
    const cli = r1(['run', 'broken-init', '--dir', join(FIXTURES, 'faulty')])
    expect((await cli.exit).code).toBe(1)
    expect(cli.stderr()).toMatch(/Instance broken-init\/FAULTY\/doomed cannot start: init failed: Error: init refuses to start/)
  })

  it('an unknown pipeline name is a usage error (exit 2)', async () => {
    const cli = r1(['run', 'nope', '--dir', join(FIXTURES, 'basic')])
    expect((await cli.exit).code).toBe(2)
    expect(cli.stderr()).toMatch(/No pipeline nope.*\n.*Pipelines: counting/)
  })
})

describe('r1 run: no orphan process on any exit path', () => {
  /** Starts the `mixed` pipeline (a plugin and a `sleep 300` app) and returns every process under r1. */
  async function startMixed(): Promise<{cli: Cli; tree: number[]}> {
    const cli = r1(['run', 'mixed', '--dir', join(FIXTURES, 'faulty'), '--json'])
    await until(() => cli.events().some((e) => e.EE_PAYLOAD_PATH?.[3] === 'app' && typeof e.PID === 'number') && cli.events().some((e) => e.EE_PAYLOAD_PATH?.[3] === 'steady'), 30_000, 'payloads of both instances')
    const appPid = cli.events().find((e) => e.EE_PAYLOAD_PATH?.[3] === 'app' && typeof e.PID === 'number')!.PID as number
    const tree = descendants(cli.child.pid!)
    expect(tree).toContain(appPid) // the app (grandchild) is in the tree
    expect(tree.length).toBeGreaterThanOrEqual(3) // two instance hosts and the app
    return {cli, tree}
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} stops everything cleanly with exit 0`, async () => {
      const {cli, tree} = await startMixed()
      cli.child.kill(signal)
      const {code} = await cli.exit
      expect(code, cli.stderr()).toBe(0)
      await until(() => tree.every((pid) => !isAlive(pid)), 15_000, 'every descendant to exit')
    })
  }

  it('Ctrl-C in a terminal (SIGINT to the whole process group): instances close cleanly, none reported as crashed', async () => {
    const cli = r1(['run', 'mixed', '--dir', join(FIXTURES, 'faulty'), '--json'], {detached: true})
    await until(() => cli.events().some((e) => e.EE_PAYLOAD_PATH?.[3] === 'app' && typeof e.PID === 'number') && cli.events().some((e) => e.EE_PAYLOAD_PATH?.[3] === 'steady'), 30_000, 'payloads of both instances')
    const tree = descendants(cli.child.pid!)
    process.kill(-cli.child.pid!, 'SIGINT')
    const {code} = await cli.exit
    expect(code, cli.stderr()).toBe(0)
    expect(cli.events().filter((e) => e.NOTIFICATION_CODE === -201)).toEqual([])
    expect(cli.events().find((e) => e.EE_EVENT_TYPE === 'LOG' && e.MESSAGE === 'closing steady')).toMatchObject({LEVEL: 'info', EE_PAYLOAD_PATH: ['local', 'mixed', 'FAULTY', 'steady']}) // its close hook ran
    await until(() => tree.every((pid) => !isAlive(pid)), 15_000, 'every descendant to exit')
  })

  it('a reader that goes away (`r1 run --json | head -2`): stops cleanly with exit 0', async () => {
    const {cli, tree} = await startMixed()
    cli.child.stdout!.destroy()
    const {code} = await cli.exit
    expect(code, cli.stderr()).toBe(0)
    await until(() => tree.every((pid) => !isAlive(pid)), 15_000, 'every descendant to exit')
  })

  it('kill -9 of the node process: its instances and their apps exit by themselves', async () => {
    const {cli, tree} = await startMixed()
    cli.child.kill('SIGKILL')
    await cli.exit
    await until(() => tree.every((pid) => !isAlive(pid)), 15_000, `every orphan candidate (${tree.join(', ')}) to exit`)
  })
})

describe('r1 run --watch', () => {
  it('reconfigures on config edits, restarts on code edits, keeps the last good version on errors', async () => {
    const dir = copyProject('basic')
    const config = join(dir, 'config.yaml')
    const source = join(dir, 'src', 'counter.ts')
    const cli = r1(['run', '--dir', dir, '--watch', '--json'])
    const payloads = () => cli.events().filter((e) => e.EE_EVENT_TYPE === 'PAYLOAD')
    await until(() => payloads().length > 0, 30_000, 'a first payload')

    // config edit → live reconfiguration (PLUGIN_CONFIG_OK, and the count goes on from where it was)
    writeFileSync(config, readFileSync(config, 'utf8').replace('step: 2', 'step: 5'))
    const reconfigured = await until(() => payloads().find((e) => e.STEP === 5), 30_000, 'STEP=5 payloads')
    const before = payloads().filter((e) => e.STEP === 2).at(-1)!
    expect(reconfigured.COUNT).toBe(before.COUNT + 5) // same process: module state kept
    expect(cli.events().filter((e) => e.NOTIFICATION_CODE === 100).length).toBeGreaterThanOrEqual(2)

    // a broken edit: reported on stderr, the last good version keeps running
    writeFileSync(source, readFileSync(source, 'utf8').replace('return {COUNT: count, STEP: ctx.config.STEP}', 'return {COUNT: count, STEP: ctx.config.STEP'))
    await until(() => /Cannot bundle .*counter\.ts/.test(cli.stderr()), 30_000, 'the bundle error')
    const seen = payloads().length
    await until(() => payloads().length > seen + 2, 30_000, 'payloads to keep coming')

    // a fixed code edit → the instance restarts with the new bundle (module state starts over)
    writeFileSync(source, readFileSync(join(FIXTURES, 'basic', 'src', 'counter.ts'), 'utf8').replace('return {COUNT: count, STEP: ctx.config.STEP}', 'return {COUNT: count, STEP: ctx.config.STEP, V: 2}'))
    const restarted = await until(() => payloads().find((e) => e.V === 2), 30_000, 'payloads of the new code')
    expect(restarted.COUNT).toBe(5)

    cli.child.kill('SIGINT')
    expect((await cli.exit).code).toBe(0)
  })

  it('a pipeline removed from config.yaml is deleted on the node (DELETE_CONFIG with its name), and the run goes on', async () => {
    const dir = copyProject('basic')
    const config = join(dir, 'config.yaml')
    const original = readFileSync(config, 'utf8')
    // a second pipeline of the same plugin, after the first
    writeFileSync(config, `${original.trimEnd()}\n  second:\n    type: Void\n    instances:\n      counter-2:\n        plugin: COUNTER\n        config: { step: 3, process_delay: 0.2 }\n`)
    const cli = r1(['run', '--dir', dir, '--watch', '--json'])
    const payloadsOf = (pipeline: string) => cli.events().filter((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EE_PAYLOAD_PATH[1] === pipeline)
    await until(() => payloadsOf('counting').length > 0 && payloadsOf('second').length > 0, 30_000, 'payloads of both pipelines')

    // saved as editors do (write aside, rename over): the watcher never reads a half-written file
    writeFileSync(`${config}.tmp`, original)
    renameSync(`${config}.tmp`, config)
    const deleteOk = () => cli.events().find((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === 5 && e.EE_PAYLOAD_PATH[1] === 'second')
    // a failed re-apply is reported on stderr at once: stop waiting then
    await until(() => deleteOk() ?? /✖/.test(cli.stderr()), 30_000, 'PIPELINE_DELETE_OK for "second", or an error')
    expect(cli.stderr()).not.toMatch(/✖/)
    const deleted = deleteOk()!
    expect(deleted).toMatchObject({NOTIFICATION: 'Pipeline second deleted', COMMAND_HASH: expect.stringMatching(/^[0-9a-f]{64}$/)})

    // the other pipeline keeps running untouched (its count goes on, no restart); the deleted one emits no more
    const last = payloadsOf('counting').at(-1)!
    await until(() => payloadsOf('counting').find((e) => e.EE_MESSAGE_SEQ > deleted.EE_MESSAGE_SEQ && e.COUNT > last.COUNT), 30_000, 'payloads of "counting" after the delete')
    expect(payloadsOf('second').filter((e) => e.EE_MESSAGE_SEQ > deleted.EE_MESSAGE_SEQ)).toEqual([])

    cli.child.kill('SIGINT')
    expect((await cli.exit).code, cli.stderr()).toBe(0)
  })
})
