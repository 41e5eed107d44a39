import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {createInterface} from 'node:readline'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import type {NodeEvent} from '../../src/protocol/events.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {Session} from '../../src/session/index.js'

// Spawns the built CLI (`npm run build` first): `r1 node start` as a real process, killed with -9 and restarted.
const repo = join(import.meta.dirname, '../..')
const bin = join(repo, 'bin/run.js')
let tmp: string
const children = new Set<ChildProcess>()
const sessions = new Set<Session>()

function r1(args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], {cwd: repo, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}, timeout: 60_000})
  return {code: result.status, stdout: result.stdout, stderr: result.stderr}
}

interface Started {
  child: ChildProcess
  address: string
  url: string
  alias: string
  exited: Promise<number | null>
}

async function startNode(dataDir: string, extra: string[] = []): Promise<Started> {
  const child = spawn(process.execPath, [bin, 'node', 'start', '--port', '0', '--data-dir', dataDir, '--alias', 'e2e', '--json', ...extra], {
    cwd: repo,
    env: {...process.env, NO_COLOR: '1'},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({input: child.stdout!})
    lines.once('line', resolve)
    child.once('exit', (code) => reject(new Error(`r1 node start exited ${code}: ${stderr}`)))
  })
  return {child, exited, ...(JSON.parse(first) as {address: string; url: string; alias: string})}
}

async function connect(node: Started, identity: ReturnType<typeof generateIdentity>): Promise<Session> {
  const session = await Session.connect({url: node.url, nodeAddress: node.address, identity})
  sessions.add(session)
  return session
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

beforeAll(() => {
  if (!existsSync(join(repo, 'dist/commands/node/start.js'))) throw new Error('dist/ is missing: run `npm run build` before the e2e tests')
  tmp = mkdtempSync(join(tmpdir(), 'r1-e2e-node-'))
})
afterAll(async () => {
  for (const s of sessions) await s.close()
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  rmSync(tmp, {recursive: true, force: true})
})

describe('r1 node', () => {
  const client = generateIdentity()
  const dataDir = () => join(tmp, 'node')

  it('allow / allowed manage the allow-list file, with clear errors', () => {
    expect(r1(['node', 'allowed', '--data-dir', dataDir()]).stdout).toBe('')
    const allowed = r1(['node', 'allow', client.address, '--alias', 'ci', '--data-dir', dataDir(), '--json'])
    expect(allowed.code).toBe(0)
    expect(JSON.parse(allowed.stdout)).toMatchObject({address: client.address, alias: 'ci', added: true})
    expect(JSON.parse(r1(['node', 'allowed', '--data-dir', dataDir(), '--json']).stdout).allowed).toEqual([expect.objectContaining({address: client.address, alias: 'ci'})])
    const bad = r1(['node', 'allow', '0xai_nope', '--data-dir', dataDir()])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('not an r1/Ratio1 address')
  })

  it('disallow takes an address off the allow-list, and says so when it was not on it', () => {
    const other = generateIdentity().address
    const dir = join(tmp, 'disallow')
    expect(r1(['node', 'allow', other, '--data-dir', dir]).code).toBe(0)
    expect(r1(['node', 'allow', client.address, '--data-dir', dir]).code).toBe(0)
    const removed = r1(['node', 'disallow', other, '--data-dir', dir, '--json'])
    expect(removed.code).toBe(0)
    expect(JSON.parse(removed.stdout)).toMatchObject({address: other, removed: true})
    expect(JSON.parse(r1(['node', 'allowed', '--data-dir', dir, '--json']).stdout).allowed).toEqual([expect.objectContaining({address: client.address})])
    const again = r1(['node', 'disallow', other, '--data-dir', dir])
    expect(again).toMatchObject({code: 0, stdout: `Was not allowed: ${other}\n`})
    expect(r1(['node', 'disallow', '0xai_nope', '--data-dir', dir]).code).toBe(2)
  })

  it('restores every pipeline, archive and bundle after kill -9, restarts instances, and keeps numbering events', async () => {
    const first = await startNode(dataDir())
    expect(first.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/)
    let session = await connect(first, client)
    const pipeline = {NAME: 'persist', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'tick', PROCESS_DELAY: 0.2, CODE: 'return {ok: true}'}]}]}
    await session.send('UPDATE_CONFIG', pipeline, {expect: [{code: NotificationCode.PLUGIN_CONFIG_OK, instance: 'tick'}]})
    await session.send('UPDATE_CONFIG', {...pipeline, NAME: 'old', PLUGINS: []}, {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'old'}]})
    await session.send('ARCHIVE_CONFIG', 'old', {expect: [{code: NotificationCode.PIPELINE_ARCHIVE_OK, pipeline: 'old'}]})
    const bundle = Buffer.from('export default {}\n')
    const bundleHash = createHash('sha256').update(bundle).digest('hex')
    await session.putBundle(bundleHash, bundle)
    const before = await session.state()
    const instancePid = before.INSTANCES.find((i) => i.INSTANCE_ID === 'tick')?.PID
    const seqBefore = before.LAST_SEQ

    first.child.kill('SIGKILL')
    await first.exited
    await session.close()
    if (instancePid) await until('the orphaned instance process to exit', () => !alive(instancePid) || undefined)

    const second = await startNode(dataDir())
    expect(second.address).toBe(first.address)
    session = await connect(second, client)
    const after = await session.state()
    expect(after.PIPELINES.map((p) => p.NAME)).toEqual(['persist'])
    expect(after.PIPELINES[0]).toMatchObject({TYPE: 'Void', PLUGINS: pipeline.PLUGINS})
    expect(after.ARCHIVED.map((p) => p.NAME)).toEqual(['old'])
    expect(await session.missingBundles([bundleHash])).toEqual([])
    // The restarted instance emits again, with seqs after everything before the crash.
    const iterator = session.subscribe({types: ['PAYLOAD'], filter: {INSTANCE: 'tick'}})
    const payload = (await iterator.next()).value as NodeEvent
    expect(payload.EE_PAYLOAD_PATH).toEqual(['e2e', 'persist', 'CUSTOM_EXEC_01', 'tick'])
    expect(payload.EE_MESSAGE_SEQ).toBeGreaterThan(seqBefore)
    await iterator.return(undefined)
    await until('the instance to be running', async () => ((await session.state()).INSTANCES.find((i) => i.INSTANCE_ID === 'tick')?.STATUS === 'running' ? true : undefined))

    // A running node picks up `r1 node allow`.
    const late = generateIdentity()
    const lateSession = await connect(second, late)
    await expect(lateSession.state()).rejects.toMatchObject({exitCode: 4, code: 'REJECTED_NOT_ALLOWED'})
    expect(r1(['node', 'allow', late.address, '--data-dir', dataDir()]).code).toBe(0)
    expect((await lateSession.state()).ADDRESS).toBe(second.address)

    // SIGTERM: graceful, exit 0, instances stopped.
    const pid = (await session.state()).INSTANCES[0]?.PID
    second.child.kill('SIGTERM')
    expect(await second.exited).toBe(0)
    if (pid) expect(alive(pid)).toBe(false)
  })

  it('a port in use: exit 1 naming the port, with a hint', async () => {
    const blocker = await startNode(join(tmp, 'blocker'))
    const port = new URL(blocker.url).port
    const run = r1(['node', 'start', '--port', port, '--data-dir', join(tmp, 'other')])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain(port)
    expect(run.stderr).toMatch(/--port/)
    blocker.child.kill('SIGTERM')
    expect(await blocker.exited).toBe(0)
  })
})

describe('r1 node start without oclif (the path bin/run.js takes; an idle node\'s RSS is a budget)', () => {
  const noColor = {...process.env, NO_COLOR: '1', FORCE_COLOR: undefined}
  /** bin/run.js's fast path alone (exit 99: it declined) or oclif alone, on the same argv. */
  const via = (entry: 'fast' | 'oclif', args: string[], timeout = 60_000) => {
    const script =
      entry === 'fast'
        ? `import {fastNodeStart} from ${JSON.stringify(join(repo, 'dist/runtime/node-main.js'))}; process.exitCode = (await fastNodeStart(process.argv.slice(1))) ?? 99`
        : `import {execute} from '@oclif/core'; await execute({dir: ${JSON.stringify(pathToFileURL(bin).href)}, args: process.argv.slice(1)})`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, ...args], {cwd: repo, encoding: 'utf8', env: noColor, timeout})
    return {code: result.status, stdout: result.stdout, stderr: result.stderr}
  }

  it('fails exactly as the oclif command does (a port in use, under --json and not)', async () => {
    const blocker = await startNode(join(tmp, 'blocker-2'))
    const port = new URL(blocker.url).port
    for (const json of [[], ['--json']]) {
      const args = ['node', 'start', '--port', port, '--data-dir', join(tmp, 'other-2'), ...json]
      const fast = via('fast', args)
      expect(fast.code).toBe(1)
      expect(fast).toEqual(via('oclif', args))
    }
    blocker.child.kill('SIGTERM')
    expect(await blocker.exited).toBe(0)
  })

  it('refuses an unknown --run-as user exactly as the oclif command does (exit 2, under --json and not), starting nothing', () => {
    const dataDir = join(tmp, 'run-as-unknown')
    for (const json of [[], ['--json']]) {
      const args = ['node', 'start', '--port', '0', '--data-dir', dataDir, '--run-as', 'no-such-user-r1', '--max-memory-mb', '64', '--bundle-quota', '8', '--heartbeat-interval', '2', ...json]
      const fast = via('fast', args)
      expect(fast.code).toBe(2)
      expect(fast.stdout + fast.stderr).toContain('no-such-user-r1')
      expect(fast).toEqual(via('oclif', args))
    }
    expect(existsSync(dataDir)).toBe(false)
  })

  it('leaves --help, unknown flags and values oclif refuses to oclif, doing nothing', () => {
    const refused = [['--max-memory-mb', '0'], ['--max-memory-mb', '1.5'], ['--bundle-quota', 'x'], ['--bundle-quota', '-1'], ['--heartbeat-interval', '0'], ['--run-as'], ['--r1fs-quota', '0'], ['--cstore-port', '70000'], ['--r1fs-port', 'x'], ['--cstore']].map((flag) => ['node', 'start', ...flag])
    for (const args of [['node', 'start', '--help'], ['node', 'start', '--bogus'], ['node', 'start', '--port', 'abc'], ['node', 'start', '--port', '70000'], ['node', 'start', '--tls-cert', 'c.pem'], ['node', 'start', '--alias'], ...refused, ['node', 'allow', 'x'], ['node']]) {
      expect({args, ...via('fast', args)}).toEqual({args, code: 99, stdout: '', stderr: ''})
    }
  })

  it('serves a node (heartbeats answered), loads no oclif module, and stops with exit 0 on SIGTERM', async () => {
    const hook = join(tmp, 'log-loads.mjs')
    writeFileSync(hook, "export async function resolve(specifier, context, next) {\n  const result = await next(specifier, context)\n  process.stderr.write('load ' + result.url + '\\n')\n  return result\n}\n")
    const register = `data:text/javascript,import {register} from 'node:module'; register(${JSON.stringify(pathToFileURL(hook).href)})`
    const dir = join(tmp, 'fast-node')
    const child = spawn(process.execPath, ['--import', register, bin, 'node', 'start', '--port=0', '--data-dir', dir, '--alias', 'fast', '--json'], {cwd: repo, env: noColor, stdio: ['ignore', 'pipe', 'pipe']})
    children.add(child)
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const line = await new Promise<string>((resolve) => createInterface({input: child.stdout!}).once('line', resolve))
    const started = JSON.parse(line) as {address: string; url: string; alias: string}
    expect(started).toMatchObject({alias: 'fast', url: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+$/)})
    const session = await connect({...started, child, exited}, generateIdentity())
    expect((await session.heartbeat()).EE_ADDR).toBe(started.address)
    await session.close()
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    const loaded = stderr.split('\n').filter((l) => l.startsWith('load ')).map((l) => l.slice(5))
    expect(loaded.some((url) => url.includes('/dist/runtime/serve.js'))).toBe(true)
    expect(loaded.filter((url) => url.includes('/node_modules/@oclif/'))).toEqual([])
  })
})
