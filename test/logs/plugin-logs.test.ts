// Plugin logs on a real node: ctx.log.* and console.* of plugin code become journaled LOG events that
// `r1 logs` shows and filters (--type log --level warn), rate-limited per instance with a counted notice.
import {readFileSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {Identity} from '../../src/protocol/identity.js'
import {MAX_LINE_CHARS} from '../../src/runtime/log-limit.js'
import {r1, tempRoot} from '../deploy/nodes.js'
import {type LogLine, type NodeProc, deployOne, logsJson, pollLogs, startLogsNode} from './helpers.js'

const root = tempRoot('r1-plugin-logs-')
let env: Record<string, string>
let identity: Identity
let node: NodeProc

const deploy = (name: string, code: string, delay = 0.2) => deployOne(node, identity, name, 'CUSTOM_EXEC_01', {PROCESS_DELAY: delay, CODE: code})
const logLines = (args: string[]) => logsJson(node, env, args)
const logsUntil = (args: string[], done: (lines: Line[]) => boolean, what: string) => pollLogs<Line>(node, env, args, done, what)

type Line = LogLine & {MESSAGE?: string; LEVEL?: string; NOTIFICATION_CODE?: number; INFO?: {DROPPED?: number}}

/** Resident memory of a process (kB), from /proc. */
function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match![1])
}

beforeAll(async () => {
  ;({env, identity, node} = await startLogsNode(root.dir))
}, 120_000)

afterAll(async () => {
  await node?.stop()
  root.dispose()
})

describe.sequential('plugin logs on a node', () => {
  it('ctx.log and console lines are journaled LOG events with level and time; --type log --level warn keeps warn and error', async () => {
    await deploy(
      'chatty',
      "if (!plugin.obj_cache.done) { plugin.obj_cache.done = true; plugin.log.debug('dbg line'); plugin.log.info('info line'); plugin.log.warn('warn line'); plugin.log.error('error line'); console.log('console line'); console.error('stderr line') } return null",
    )
    let all: LogLine[] = []
    for (let i = 0; i < 100 && !all.some((l) => l.EE_EVENT_TYPE === 'LOG' && (l as {MESSAGE?: string}).MESSAGE === 'stderr line'); i++) {
      await new Promise((r) => setTimeout(r, 100))
      all = await logLines(['--type', 'log', '--pipeline', 'chatty'])
    }
    const byMessage = new Map(all.map((l) => [(l as {MESSAGE?: string}).MESSAGE, l as LogLine & {LEVEL: string; EE_TIMESTAMP: string}]))
    expect(byMessage.get('dbg line')?.LEVEL).toBe('debug')
    expect(byMessage.get('info line')?.LEVEL).toBe('info')
    expect(byMessage.get('warn line')?.LEVEL).toBe('warn')
    expect(byMessage.get('error line')?.LEVEL).toBe('error')
    expect(byMessage.get('console line')?.LEVEL).toBe('info')
    expect(byMessage.get('stderr line')?.LEVEL).toBe('warn')
    for (const line of byMessage.values()) {
      expect(line.EE_PAYLOAD_PATH).toEqual(['edge-a', 'chatty', 'CUSTOM_EXEC_01', 'chatty-1'])
      expect(Number.isNaN(Date.parse(line.EE_TIMESTAMP))).toBe(false)
    }
    const warn = await logLines(['--type', 'log', '--level', 'warn', '--pipeline', 'chatty'])
    expect(warn.map((l) => (l as {MESSAGE?: string}).MESSAGE).sort()).toEqual(['error line', 'stderr line', 'warn line'])

    // pretty output: time, path, level, message — the same line shape as `r1 run`
    const pretty = await r1(['logs', '--node', node.url, '--address', node.address, '--since', '1h', '--type', 'log', '--level', 'error'], {env})
    expect(pretty.exitCode, pretty.stderr).toBe(0)
    expect(pretty.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} chatty\/CUSTOM_EXEC_01\/chatty-1 error error line$/m)
  })

  it('an instance that logs over its rate: lines are dropped, counted by one notification, and the node keeps serving', async () => {
    // 5,000 lines in one process() call: far over the burst of 500
    await deploy('flood', "if (!plugin.obj_cache.done) { plugin.obj_cache.done = true; for (let i = 0; i < 5000; i++) plugin.log.info('line ' + i) } else plugin.log.info('after the flood'); return null", 0.5)
    let drops: LogLine[] = []
    for (let i = 0; i < 100 && drops.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100))
      drops = (await logLines(['--type', 'notification', '--pipeline', 'flood'])).filter((l) => (l as {NOTIFICATION_CODE?: number}).NOTIFICATION_CODE === -202)
    }
    expect(drops.length).toBeGreaterThanOrEqual(1)
    const dropped = drops.reduce((sum, l) => sum + Number((l as {INFO?: {DROPPED?: number}}).INFO?.DROPPED), 0)
    const kept = (await logLines(['--type', 'log', '--pipeline', 'flood', '--search', 'line '])).length
    // every line of the flood is either journaled or counted as dropped (the counts are reported once lines flow again)
    expect(kept).toBeLessThan(5000)
    expect(kept + dropped).toBe(5000)
  })

  it('a flood then silence: the dropped lines are still reported, with the exact count', async () => {
    // 5,000 lines in the first process() call, then nothing more: no later line carries the count
    await deploy('burst', "if (!plugin.obj_cache.done) { plugin.obj_cache.done = true; for (let i = 0; i < 5000; i++) plugin.log.info('burst ' + i) } return null", 0.5)
    const keptOf = (lines: Line[]) => lines.filter((l) => l.EE_EVENT_TYPE === 'LOG' && l.MESSAGE?.startsWith('burst ')).length
    const droppedOf = (lines: Line[]) => lines.reduce((sum, l) => sum + (l.NOTIFICATION_CODE === -202 ? Number(l.INFO?.DROPPED) : 0), 0)
    const lines = await logsUntil(['--type', 'log', '--type', 'notification', '--pipeline', 'burst'], (got) => keptOf(got) + droppedOf(got) >= 5000, 'the count of the dropped lines')
    const kept = keptOf(lines)
    const dropped = droppedOf(lines)
    expect(dropped).toBeGreaterThan(0)
    expect(kept + dropped).toBe(5000)
  })

  it('a 3 MB console.log or ctx.log line is cut, with a marker; r1 logs shows it and exits 0', async () => {
    const size = 3_000_000
    await deploy('huge', `if (!plugin.obj_cache.done) { plugin.obj_cache.done = true; const big = 'y'.repeat(${size}); console.log('console ' + big); plugin.log.warn('ctx ' + big); console.log('after huge') } return null`)
    const lines = await logsUntil(['--type', 'log', '--pipeline', 'huge'], (got) => got.some((l) => l.MESSAGE === 'after huge') && got.some((l) => l.MESSAGE?.startsWith('ctx ')), 'the cut lines')
    const cut = (prefix: string) => `${(prefix + 'y'.repeat(size)).slice(0, MAX_LINE_CHARS)}… (${prefix.length + size - MAX_LINE_CHARS} more characters cut)`
    expect(lines.find((l) => l.MESSAGE?.startsWith('console '))?.MESSAGE).toBe(cut('console '))
    expect(lines.find((l) => l.MESSAGE?.startsWith('ctx '))).toMatchObject({LEVEL: 'warn', MESSAGE: cut('ctx ')})
  })

  it('50 MB written to stdout without a newline: the node stays within bounded memory and logs the line cut', async () => {
    const pid = node.child.pid!
    const before = rssKb(pid)
    let peak = before
    const sampler = setInterval(() => {
      if (node.child.exitCode === null) peak = Math.max(peak, rssKb(pid))
    }, 20)
    try {
      await deploy('stream', "if (!plugin.obj_cache.done) { plugin.obj_cache.done = true; const chunk = 'w'.repeat(1 << 20); for (let i = 0; i < 50; i++) process.stdout.write(chunk); process.stdout.write('\\nafter the stream\\n') } return null")
      // the node filters (--search) before the wire: this waits for the stream to be read, whatever the long line became
      await logsUntil(['--type', 'log', '--pipeline', 'stream', '--search', 'after the stream'], (got) => got.some((l) => l.MESSAGE === 'after the stream'), 'the line after the stream')
    } finally {
      clearInterval(sampler)
    }
    peak = Math.max(peak, rssKb(pid))
    // a bound on memory, not on time: the 50 MB never sit in the node
    expect((peak - before) / 1024).toBeLessThan(100)
    const messages = (await logLines(['--type', 'log', '--pipeline', 'stream'])).map((l) => (l as Line).MESSAGE!)
    expect(messages).toEqual([`${'w'.repeat(MAX_LINE_CHARS)}… (${50 * 2 ** 20 - MAX_LINE_CHARS} more characters cut)`, 'after the stream'])
  })
})
