import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {NotificationCode} from '../../src/protocol/codes.js'
import type {InstanceConfig} from '../../src/protocol/pipeline.js'
import {startLocalNode, type LocalNode, type LocalNodeOptions} from '../../src/runtime/index.js'
import type {InstanceSpec} from '../../src/runtime/ipc.js'
import {InstanceSupervisor, defaultSupervisorOptions, type SupervisorEvent} from '../../src/runtime/supervisor.js'
import {Events, FAST, FIXTURES, faultyNode, faultyPipeline, isAlive, meta, until} from './helpers.js'

// from helpers' FIXTURES: this file imports `meta`, which trips vite's rewrite of import.meta
const ROOT = join(FIXTURES, '..', '..', '..')
const BUILT_HOST = join(ROOT, 'dist', 'runtime', 'instance-host.js')
const IS_ROOT = process.getuid?.() === 0

let node: LocalNode | undefined
const dirs: string[] = []
afterEach(async () => {
  await node?.stop()
  node = undefined
  for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
})

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}

async function startNode(instances: InstanceConfig[], options: LocalNodeOptions = {}, signature = 'CUSTOM_EXEC_01'): Promise<Events> {
  node = await startLocalNode({heartbeatIntervalMs: 0, ...options, supervisor: {...FAST, ...options.supervisor}})
  const events = new Events(node)
  await node.execute('UPDATE_CONFIG', {NAME: 'c', TYPE: 'Void', PLUGINS: [{SIGNATURE: signature, INSTANCES: instances.map((i) => ({PROCESS_DELAY: 0.05, SHUTDOWN_TIMEOUT: 1, ...i}))}]}, meta())
  return events
}

/** Live processes whose command line is exactly `argv` (marker arguments make them unique to a test). */
function processesRunning(argv: string[]): number[] {
  const wanted = argv.join('\0') + '\0'
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8') === wanted && isAlive(Number(name))) out.push(Number(name))
    } catch {
      // exited while we read
    }
  }
  return out
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

const marker = () => String(900_000 + Math.floor(Math.random() * 99_999))

// the source host (tsx, what vitest runs) and the built one (what a node runs): both must be contained
const HOSTS: Array<[string, LocalNodeOptions['supervisor']]> = [
  ['source host (tsx)', {}],
  ['built host (dist)', {hostEntry: {modulePath: BUILT_HOST, execArgv: ['--enable-source-maps']}}],
]

describe("an instance cannot touch the node's data dir", () => {
  for (const [label, supervisor] of HOSTS) {
    it.skipIf(label.startsWith('built') && !existsSync(BUILT_HOST))(`${label}: reading the node key and writing the allow-list fail with a permission error; the files are unchanged`, async () => {
      const dataDir = tempDir('r1-contain-data-')
      mkdirSync(dataDir, {recursive: true, mode: 0o700})
      writeFileSync(join(dataDir, 'node-key.pem'), 'SECRET KEY\n', {mode: 0o600})
      writeFileSync(join(dataDir, 'allowed.json'), '["0xai_owner"]\n', {mode: 0o600})
      const code = `
        const fs = await import('node:fs')
        const out = {}
        try { out.READ = fs.readFileSync(${JSON.stringify(join(dataDir, 'node-key.pem'))}, 'utf8') } catch (e) { out.READ = e.code }
        try { fs.writeFileSync(${JSON.stringify(join(dataDir, 'allowed.json'))}, '["0xai_evil"]'); out.WRITE = 'written' } catch (e) { out.WRITE = e.code }
        try { out.STATE = fs.readdirSync(${JSON.stringify(dataDir)}) } catch (e) { out.STATE = e.code }
        try { (await import('node:child_process')).execFileSync('cat', [${JSON.stringify(join(dataDir, 'node-key.pem'))}]); out.SPAWN = 'ran' } catch (e) { out.SPAWN = e.code ?? e.status }
        try { fs.writeFileSync('own-file.txt', 'mine'); out.OWN = fs.readFileSync('own-file.txt', 'utf8') } catch (e) { out.OWN = e.code }
        return out`
      if (!existsSync(dataDir)) throw new Error('no data dir')
      const events = await startNode([{INSTANCE_ID: 'thief', CODE: code}], {dataDir, supervisor})
      const payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD' && e.EE_PAYLOAD_PATH[3] === 'thief', 20_000, 'the thief result')
      const result = payload.EXEC_RESULT as Record<string, unknown>
      expect(result.READ).toBe('ERR_ACCESS_DENIED')
      expect(result.WRITE).toBe('ERR_ACCESS_DENIED')
      expect(result.STATE).toBe('ERR_ACCESS_DENIED')
      // the instance keeps a place of its own to write in
      expect(result.OWN).toBe('mine')
      // the built host has no child processes at all; the source host needs them for tsx's esbuild, so only the user stops `cat`
      if (label.startsWith('built')) expect(result.SPAWN).toBe('ERR_ACCESS_DENIED')
      else if (IS_ROOT) expect(result.SPAWN).not.toBe('ran')
      expect(readFileSync(join(dataDir, 'node-key.pem'), 'utf8')).toBe('SECRET KEY\n')
      expect(readFileSync(join(dataDir, 'allowed.json'), 'utf8')).toBe('["0xai_owner"]\n')
    })
  }

  it('the work dir is readable (a project under r1 run), never writable, and never granted when it holds the data dir', async () => {
    const project = tempDir('r1-contain-project-')
    // readable by the instance's user, as a checkout usually is
    chmodSync(project, 0o755)
    writeFileSync(join(project, 'input.txt'), 'project data', {mode: 0o644})
    const code = `const fs = await import('node:fs'); const r = (f) => { try { return fs.readFileSync(f, 'utf8') } catch (e) { return e.code } }
      let w; try { fs.writeFileSync(${JSON.stringify(join(project, 'out.txt'))}, 'x'); w = 'written' } catch (e) { w = e.code }
      return {IN: r(${JSON.stringify(join(project, 'input.txt'))}), KEY: r(${JSON.stringify(join(project, 'data', 'node-key.pem'))}), WRITE: w}`
    // a data dir elsewhere: the project is readable
    let events = await startNode([{INSTANCE_ID: 'w', CODE: code}], {workDir: project})
    let payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD', 20_000, 'the result')
    expect(payload.EXEC_RESULT).toMatchObject({IN: 'project data', WRITE: 'ERR_ACCESS_DENIED'})
    await node!.stop()
    // the data dir inside the work dir: the work dir is not granted at all
    const dataDir = join(project, 'data')
    mkdirSync(dataDir, {mode: 0o700})
    writeFileSync(join(dataDir, 'node-key.pem'), 'SECRET KEY\n', {mode: 0o600})
    events = await startNode([{INSTANCE_ID: 'w', CODE: code}], {workDir: project, dataDir, supervisor: {dataDir}})
    payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD', 20_000, 'the result')
    expect(payload.EXEC_RESULT).toMatchObject({IN: 'ERR_ACCESS_DENIED', KEY: 'ERR_ACCESS_DENIED', WRITE: 'ERR_ACCESS_DENIED'})
  })

  it("a project bundle runs although the node's data dir, where bundles are stored, is closed to the instance", async () => {
    const dataDir = tempDir('r1-contain-data-')
    const started = await faultyNode({dataDir})
    node = started.node
    await node.execute('UPDATE_CONFIG', faultyPipeline(started.hash, [{INSTANCE_ID: 'ok', MODE: 'ok'}]), meta())
    const payload = await started.events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD', 20_000, 'a payload from the bundle')
    expect(payload.MODE).toBe('ok')
  })
})

describe('an instance runs as an unprivileged user when the node is root', () => {
  it('the instance process uid is not 0', async (context) => {
    if (!IS_ROOT) {
      console.log('skipped: the tests do not run as root, so there is no privilege to drop')
      context.skip()
    }
    const events = await startNode([{INSTANCE_ID: 'who', CODE: 'return process.getuid()'}])
    const payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD', 20_000, 'the uid')
    expect(payload.EXEC_RESULT).not.toBe(0)
    const pid = node!.instance('c', 'CUSTOM_EXEC_01', 'who')!.pid!
    const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))!
    expect(Number(uid[1])).not.toBe(0)
    expect(Number(uid[2])).not.toBe(0)
  })
})

describe('the run-as user is an option', () => {
  it('an unknown user is an instance error that names it, not a node crash', async () => {
    await startNode([{INSTANCE_ID: 'u', CODE: 'return 1'}], {supervisor: {runAs: 'no-such-user-r1'}})
    const instance = await until(() => {
      const state = node!.instance('c', 'CUSTOM_EXEC_01', 'u')!
      return state.counters.restarts >= 1 && state
    }, 20_000, 'the failed start')
    expect(instance.counters.lastError).toMatch(/No user "no-such-user-r1"/)
  })

  it('runAs false keeps the node user (for a developer running their own code)', async () => {
    const events = await startNode([{INSTANCE_ID: 'me', CODE: 'return process.getuid()'}], {supervisor: {runAs: false}})
    const payload = await events.waitFor((e) => e.EE_EVENT_TYPE === 'PAYLOAD', 20_000, 'the uid')
    expect(payload.EXEC_RESULT).toBe(process.getuid!())
  })
})

describe('every instance is its own process group, killed as a whole', () => {
  it('what an app leaves behind when it exits is killed at once, and nothing is left after delete or node stop', async () => {
    const crashing = marker()
    const steady = String(Number(crashing) + 1)
    const events = await startNode(
      [
        {INSTANCE_ID: 'spawner', COMMAND: `sleep ${crashing} & sleep ${crashing} & exit 3`, RESTART_POLICY: 'always'},
        {INSTANCE_ID: 'steady', COMMAND: `sleep ${steady} & exec sleep ${steady}`},
      ],
      {},
      'PROCESS_APP_RUNNER',
    )
    await until(() => (node!.instance('c', 'PROCESS_APP_RUNNER', 'spawner')?.counters.restarts ?? 0) >= 3, 30_000, 'three app restarts')
    await until(() => processesRunning(['sleep', steady]).length === 2, 10_000, 'the steady app and its child')
    const hosts = ['spawner', 'steady'].map((id) => node!.instance('c', 'PROCESS_APP_RUNNER', id)!.pid!)
    // each host leads its own group
    for (const pid of hosts) expect(groupExists(pid)).toBe(true)
    // an app's leftovers die with it: at most the current life's two sleeps, never a pile of orphans
    expect(processesRunning(['sleep', crashing]).length).toBeLessThanOrEqual(2)
    await node!.execute('DELETE_CONFIG', 'c', meta())
    await until(() => processesRunning(['sleep', crashing]).length === 0 && processesRunning(['sleep', steady]).length === 0, 10_000, 'no sleep left after delete')
    for (const pid of hosts) await until(() => !groupExists(pid), 10_000, `the group of host ${pid} to be gone`)
    expect(events.all.length).toBeGreaterThan(0)
  })

  it('node stop kills every instance group, app children included', async () => {
    const tag = marker()
    await startNode([{INSTANCE_ID: 'bg', COMMAND: `sleep ${tag} & sleep ${tag} & exec sleep ${tag}`}], {}, 'PROCESS_APP_RUNNER')
    await until(() => processesRunning(['sleep', tag]).length === 3, 10_000, 'three sleeps')
    const host = node!.instance('c', 'PROCESS_APP_RUNNER', 'bg')!.pid!
    await node!.stop()
    node = undefined
    await until(() => processesRunning(['sleep', tag]).length === 0 && !groupExists(host), 10_000, 'nothing left after node stop')
  })

  it('a host killed with SIGKILL takes its app group with it', async () => {
    const tag = marker()
    await startNode([{INSTANCE_ID: 'bg', COMMAND: `sleep ${tag} & exec sleep ${tag}`, RESTART_POLICY: 'no'}], {}, 'PROCESS_APP_RUNNER')
    await until(() => processesRunning(['sleep', tag]).length === 2, 10_000, 'two sleeps')
    process.kill(node!.instance('c', 'PROCESS_APP_RUNNER', 'bg')!.pid!, 'SIGKILL')
    await until(() => node!.instance('c', 'PROCESS_APP_RUNNER', 'bg')!.counters.restarts >= 1, 10_000, 'the crash')
    // the restarted host starts its own two; the first life's are gone
    await until(() => processesRunning(['sleep', tag]).length <= 2, 10_000, 'the old group gone')
  })
})

describe('the first process() call is held to the unresponsive timeout', () => {
  it('a busy loop from the first iteration leaves running within the unresponsive timeout, not the start timeout', async () => {
    // a ping period longer than the host's start-up: no pong can arrive before the loop blocks
    const events = await startNode([{INSTANCE_ID: 'busy', CODE: 'for (;;) {}'}], {supervisor: {pingIntervalMs: 2000, unresponsiveMs: 1000, processTimeoutMs: 600_000, startTimeoutMs: 600_000}})
    const crash = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CRASHED, 30_000, 'the busy instance killed')
    expect(String(crash.NOTIFICATION)).toMatch(/unresponsive for 1 s/)
    expect(node!.instance('c', 'CUSTOM_EXEC_01', 'busy')!.counters.restarts).toBeGreaterThanOrEqual(1)
  })
})

describe('MAX_MEMORY_MB', () => {
  // an idle built host is ~50 MiB resident; a source host (tsx, its esbuild service in the group) ~80: caps above each
  const CAPS: Record<string, number> = {'source host (tsx)': 160, 'built host (dist)': 64}
  for (const [label, supervisor] of HOSTS) {
    it.skipIf(label.startsWith('built') && !existsSync(BUILT_HOST))(`${label}: an instance over its memory cap is killed with a notification, and restarts as after a crash`, async () => {
      const cap = CAPS[label]
      // Buffers live outside the JS heap: the resident-memory watchdog catches them
      const code = 'plugin.obj_cache.hog = plugin.obj_cache.hog ?? []; plugin.obj_cache.hog.push(Buffer.alloc(8 * 1024 * 1024, 1)); return plugin.obj_cache.hog.length'
      const events = await startNode([{INSTANCE_ID: 'hog', CODE: code, MAX_MEMORY_MB: cap}, {INSTANCE_ID: 'fine', CODE: 'return 1'}], {supervisor})
      const over = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.EE_PAYLOAD_PATH[3] === 'hog' && /over its memory limit/.test(String(e.NOTIFICATION)), 30_000, 'the memory notification')
      expect(over.INFO).toMatchObject({MAX_MEMORY_MB: cap})
      // it ran and grew before it was killed: not a cap below what the host needs to start
      expect(events.payloads('hog').filter((p) => p.EE_MESSAGE_SEQ < over.EE_MESSAGE_SEQ).length).toBeGreaterThanOrEqual(1)
      const crash = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.EE_PAYLOAD_PATH[3] === 'hog' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CRASHED, 30_000, 'the crash')
      expect(String(crash.NOTIFICATION)).toMatch(/memory limit exceeded/)
      await until(() => node!.instance('c', 'CUSTOM_EXEC_01', 'hog')!.counters.restarts >= 1, 10_000, 'a restart')
      expect(node!.instance('c', 'CUSTOM_EXEC_01', 'fine')!.counters.restarts).toBe(0)
    })
  }

  it('a JavaScript heap over the cap is a memory crash too', async () => {
    const code = 'plugin.obj_cache.hog = plugin.obj_cache.hog ?? []; for (let i = 0; i < 200000; i++) plugin.obj_cache.hog.push({i, s: "x" + i}); return plugin.obj_cache.hog.length'
    // no watchdog tick in the test's time: the heap limit alone stops it
    const events = await startNode([{INSTANCE_ID: 'heap', CODE: code, MAX_MEMORY_MB: 64}], {supervisor: {pingIntervalMs: 60_000, unresponsiveMs: 600_000, processTimeoutMs: 600_000}})
    const crash = await events.waitFor((e) => e.EE_EVENT_TYPE === 'NOTIFICATION' && e.NOTIFICATION_CODE === NotificationCode.PLUGIN_CRASHED, 60_000, 'the crash')
    expect(String(crash.NOTIFICATION)).toMatch(/memory limit exceeded/)
  })
})

describe('crash loops are reported, never shown as running', () => {
  it('an app that exits at once: restarts counted, last error with the exit code and stderr, status error', async () => {
    const command = existsSync('/usr/bin/python3') || existsSync('/root/.pyenv/shims/python3') ? 'python3 app/main.py' : 'sh app/main.sh'
    const statuses: string[] = []
    const events = await startNode([{INSTANCE_ID: 'app', COMMAND: command}], {}, 'PROCESS_APP_RUNNER')
    node!.onInstanceChange((change) => {
      if (change.kind === 'status') statuses.push(change.status)
    })
    const instance = await until(() => {
      const state = node!.state()[0].instances.find((i) => i.instanceId === 'app')!
      return state.counters.restarts >= 4 && state
    }, 30_000, 'four app restarts')
    expect(instance.status).toBe('error')
    expect(instance.lastError).toMatch(/app exited with code \d+: .*(No such file|can't open|cannot open)/)
    expect(statuses).toContain('restarting')
    // once in a crash loop, never back to running
    expect(statuses.slice(statuses.indexOf('error'))).not.toContain('running')
    const crashes = events.notifications({code: NotificationCode.PLUGIN_CRASHED, instanceId: 'app'})
    expect(crashes.length).toBeGreaterThanOrEqual(4)
  })
})

describe('restart back-off is real', () => {
  function spec(code: string): InstanceSpec {
    return {
      pipeline: 'p',
      signature: 'CUSTOM_EXEC_01',
      builtin: 'CUSTOM_EXEC_01',
      instanceId: 'x',
      config: {INSTANCE_ID: 'x', CODE: code, PROCESS_DELAY: 0.05},
      node: {address: '0xai_test', alias: 'test'},
      announceConfig: false,
      exceptionBackoff: {baseMs: 50, capMs: 200},
      baseEnv: {PATH: process.env.PATH ?? '/usr/bin:/bin'},
    }
  }

  it('the delay observed between a crash and the next start is at least the reported restartInMs; a crash loop never shows running', async () => {
    const seen: Array<{at: number; event: SupervisorEvent}> = []
    const options = {...defaultSupervisorOptions, ...FAST, restartBaseMs: 300, restartCapMs: 1200, crashLoopThreshold: 2, env: {PATH: process.env.PATH ?? '/usr/bin:/bin'}}
    // crashes after it is ready: each life passes through "ready" before it dies
    const supervisor = new InstanceSupervisor(spec('process.exit(3)'), options, (event) => seen.push({at: performance.now(), event}))
    supervisor.start()
    try {
      await until(() => seen.filter((s) => s.event.kind === 'crash').length >= 4 && seen.filter((s) => s.event.kind === 'spawned').length >= 5, 30_000, 'four crashes and restarts')
    } finally {
      await supervisor.stop()
    }
    const delays: Array<{reported: number; observed: number}> = []
    for (let i = 0; i < seen.length; i++) {
      const {at, event} = seen[i]
      if (event.kind !== 'crash') continue
      const next = seen.slice(i + 1).find((s) => s.event.kind === 'spawned')
      if (next) delays.push({reported: event.restartInMs, observed: next.at - at})
    }
    expect(delays.map((d) => d.reported).slice(0, 3)).toEqual([300, 600, 1200])
    // a lower bound on behaviour: the restart never comes before the delay it announced (1 ms for timer rounding)
    for (const {reported, observed} of delays) expect(observed).toBeGreaterThanOrEqual(reported - 1)
    const statuses = seen.flatMap((s) => (s.event.kind === 'status' ? [s.event.status] : []))
    expect(statuses).toContain('error')
    expect(statuses.slice(statuses.indexOf('error'))).not.toContain('running')
  })
})
