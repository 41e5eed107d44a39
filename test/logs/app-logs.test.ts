// A process app's output on a real node: each line its PROCESS_APP_RUNNER app prints becomes a journaled
// LOG event (stdout info, stderr warn), shown by `r1 logs` and `r1 run` like every plugin log line, within
// the instance's log rate (a flood is dropped and counted; the node keeps serving).
import {spawn} from 'node:child_process'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {Identity} from '../../src/protocol/identity.js'
import {bin, r1, repoRoot, tempRoot} from '../deploy/nodes.js'
import {type LogLine, type NodeProc, deployOne, logsJson, pollLogs, startLogsNode} from './helpers.js'

const root = tempRoot('r1-app-logs-')
let env: Record<string, string>
let identity: Identity
let node: NodeProc

type Line = LogLine & {LEVEL?: string; MESSAGE?: string; NOTIFICATION_CODE?: number; INFO?: {DROPPED?: number}; EE_PAYLOAD_PATH: string[]}

/** Runs `command` (a shell line) under PROCESS_APP_RUNNER as instance `<name>-1` of pipeline `name`. */
const deployApp = (name: string, command: string) => deployOne(node, identity, name, 'PROCESS_APP_RUNNER', {PROCESS_DELAY: 0.2, COMMAND: command})
const logLines = (args: string[]) => logsJson<Line>(node, env, args)
const logsUntil = (args: string[], done: (lines: Line[]) => boolean, what: string) => pollLogs<Line>(node, env, args, done, what)

const messages = (lines: Line[], level?: string) => lines.filter((l) => l.EE_EVENT_TYPE === 'LOG' && (level === undefined || l.LEVEL === level)).map((l) => l.MESSAGE)

beforeAll(async () => {
  ;({env, identity, node} = await startLogsNode(root.dir))
}, 120_000)

afterAll(async () => {
  await node?.stop()
  root.dispose()
})

const LONG = `long ${'z'.repeat(400)} end`

describe.sequential('a process app on a node', () => {
  it('stdout lines are info, stderr lines warn: LOG events, in order, each once; --level warn shows its stderr', async () => {
    // the app sleeps after printing, so no restart prints its lines again
    await deployApp('app', `for i in 1 2 3 4 5; do echo "out $i"; echo "err $i" >&2; done; echo "${LONG}"; echo "done"; exec sleep 300`)
    const all = await logsUntil(['--type', 'log', '--pipeline', 'app'], (lines) => messages(lines).includes('done') && messages(lines).includes('err 5'), 'the app lines')
    for (const line of all) expect(line.EE_PAYLOAD_PATH).toEqual(['edge-a', 'app', 'PROCESS_APP_RUNNER', 'app-1'])
    // stdout and stderr are two pipes: each keeps its order, their interleaving is the reader's
    expect(messages(all, 'info')).toEqual(['out 1', 'out 2', 'out 3', 'out 4', 'out 5', LONG, 'done'])
    expect(messages(all, 'warn')).toEqual(['err 1', 'err 2', 'err 3', 'err 4', 'err 5'])
    for (const line of all) expect(Number.isNaN(Date.parse(line.EE_TIMESTAMP as string))).toBe(false)

    const warn = await logLines(['--type', 'log', '--level', 'warn', '--pipeline', 'app'])
    expect(messages(warn)).toEqual(['err 1', 'err 2', 'err 3', 'err 4', 'err 5'])

    // the status is a payload, the lines are not
    const payloads = await logLines(['--type', 'payload', '--pipeline', 'app'])
    expect(payloads.length).toBeGreaterThan(0)
    for (const payload of payloads) for (const key of Object.keys(payload).filter((k) => !k.startsWith('EE_') && k !== 'R1_TARGET')) expect(['APP_STATUS', 'PID', 'RESTARTS', 'EXIT']).toContain(key)

    // pretty output: time, path, level, message, as for plugin logs; a long line is not clipped
    const pretty = await r1(['logs', '--node', node.url, '--address', node.address, '--since', '1h', '--type', 'log', '--pipeline', 'app'], {env})
    expect(pretty.exitCode, pretty.stderr).toBe(0)
    expect(pretty.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} app\/PROCESS_APP_RUNNER\/app-1 warn {2}err 3$/m)
    expect(pretty.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} app\/PROCESS_APP_RUNNER\/app-1 log {3}out 3$/m)
    expect(pretty.stdout.split('\n').find((l) => l.includes('long zzz'))).toMatch(new RegExp(`log {3}${LONG}$`))
  })

  it('an app that prints 10,000 lines at once: lines over the rate are dropped and counted, the node keeps serving', async () => {
    // then one line now and then, numbered on: the count of what was dropped goes out before the next line that does
    await deployApp('flood', 'i=0; while [ $i -lt 10000 ]; do echo "line $i"; i=$((i+1)); done; while true; do echo "line $i"; i=$((i+1)); sleep 0.2; done')
    const indexOf = (line: Line) => Number(/^line (\d+)$/.exec(line.MESSAGE ?? '')![1])
    const events = await logsUntil(
      ['--type', 'log', '--type', 'notification', '--pipeline', 'flood'],
      (lines) => lines.some((l) => l.EE_EVENT_TYPE === 'LOG' && indexOf(l) >= 10_000),
      'a line after the flood',
    )
    const kept = events.filter((l) => l.EE_EVENT_TYPE === 'LOG')
    const drops = events.filter((l) => l.NOTIFICATION_CODE === -202)
    expect(drops.length).toBeGreaterThanOrEqual(1)
    expect(kept.filter((l) => indexOf(l) < 10_000).length).toBeLessThan(10_000)
    // the burst went out in order
    expect(kept.slice(0, 500).map(indexOf)).toEqual(Array.from({length: 500}, (_, i) => i))
    // every line is journaled once, in order, or counted as dropped by the notification before the next kept line
    let dropped = 0
    let count = 0
    let previous = -1
    for (const event of events) {
      if (event.NOTIFICATION_CODE === -202) dropped += Number(event.INFO?.DROPPED)
      if (event.EE_EVENT_TYPE !== 'LOG') continue
      const index = indexOf(event)
      expect(index).toBeGreaterThan(previous)
      previous = index
      expect(++count + dropped, `at line ${index}`).toBe(index + 1)
    }

    // the node is fine: it still serves, and the app still runs
    expect(node.child.exitCode).toBeNull()
    const status = await r1(['status', '--node', node.url, '--address', node.address, '--json'], {env})
    expect(status.exitCode, status.stderr).toBe(0)
    const flood = (status.json as any).targets[0].result.pipelines.find((p: {name: string}) => p.name === 'flood')
    expect(flood.instances.map((i: {status: string}) => i.status)).toEqual(['running'])
  })
})

describe('r1 run', () => {
  it('prints a process app lines like plugin logs: time, path, level, message', async () => {
    const project = join(root.dir, 'project')
    mkdirSync(project, {recursive: true})
    writeFileSync(
      join(project, 'config.yaml'),
      `name: app-logs
version: 0.1.0
pipelines:
  apps:
    instances:
      app-1:
        plugin: PROCESS_APP_RUNNER
        config: { command: 'echo "hello out"; echo "hello err" >&2; echo "${LONG}"; exec sleep 300', process_delay: 0.2 }
`,
    )
    const run = spawn(process.execPath, [bin, 'run', '--dir', project], {cwd: repoRoot, env: {...process.env, ...env, NO_COLOR: '1', CI: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    const exited = new Promise((resolve) => run.once('exit', resolve))
    let stdout = ''
    let stderr = ''
    run.stdout!.on('data', (chunk) => (stdout += chunk))
    run.stderr!.on('data', (chunk) => (stderr += chunk))
    try {
      const deadline = Date.now() + 60_000
      while (!/hello out\n[^]*hello err\n|hello err\n[^]*hello out\n/.test(stdout) || !stdout.includes(' end\n')) {
        if (run.exitCode !== null || Date.now() > deadline) throw new Error(`r1 run printed no app lines: ${stdout}${stderr}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    } finally {
      run.kill('SIGINT')
      await exited
    }
    expect(stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} apps\/PROCESS_APP_RUNNER\/app-1 log {3}hello out$/m)
    expect(stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} apps\/PROCESS_APP_RUNNER\/app-1 warn {2}hello err$/m)
    expect(stdout.split('\n').find((l) => l.includes('long zzz'))).toMatch(new RegExp(`log {3}${LONG}$`))
  }, 90_000)
})
