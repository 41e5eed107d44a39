// Rollouts end to end: the built CLI (`r1 deploy --waves/--canary`) against four real `r1 node start` processes.
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse as parseYaml, stringify as stringifyYaml} from 'yaml'
import {type NodeProcess, bin, cliIdentity, r1, repoRoot, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-rollout-')
/** util-linux `script` gives the CLI a terminal for the Ctrl-C question. */
const hasScript = spawnSync('script', ['--version']).status === 0
if (!hasScript) console.log('skipping the terminal Ctrl-C test: util-linux `script` is not installed')
const project = join(root.dir, 'project')
const PROBE_PROJECT = join(repoRoot, 'test/fixtures/projects/probe')
let env: Record<string, string>
let nodes: NodeProcess[] = []

/** The probe fixture project with probe-1's config and these nodes as targets. */
function writeProject(config: {mode: string; level?: number; sickOn?: string}): void {
  const doc = parseYaml(readFileSync(join(PROBE_PROJECT, 'config.yaml'), 'utf8'))
  doc.pipelines.probe.instances['probe-1'].config = {mode: config.mode, level: config.level ?? 1, sick_on: config.sickOn ?? 'none', process_delay: 0.2, health_interval: 0.2}
  doc.targets = Object.fromEntries(nodes.map((n) => [n.alias, {url: n.url, address: n.address}]))
  writeFileSync(join(project, 'config.yaml'), stringifyYaml(doc))
}

function deploy(args: string[]) {
  return r1(['deploy', '--dir', project, ...args], {env, timeoutMs: 120_000})
}

function byTarget(json: any): Record<string, any> {
  return Object.fromEntries(json.targets.map((t: any) => [t.target, t]))
}

/** The version a node runs of the probe pipeline, and the one it was restored from (if a rollback made it). */
async function current(alias: string): Promise<{version: number; restoredFrom?: number}> {
  const history = await r1(['pipelines', 'history', 'probe', '--dir', project, '--target', alias, '--json'], {env})
  expect(history.exitCode, history.stderr).toBe(0)
  return history.json.targets[0].result.versions.find((v: any) => v.current)
}

/** Starts the CLI as a child without a terminal and resolves once its stderr shows `line`. */
function spawnCli(args: string[]): {child: ChildProcess; stderr: () => string; until(text: string): Promise<void>; exit: Promise<number>} {
  const child = spawn(process.execPath, [bin, ...args], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1', CI: '1', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  const waiters: Array<{text: string; resolve: () => void}> = []
  child.stderr!.on('data', (chunk) => {
    stderr += chunk
    for (const w of waiters.filter((w) => stderr.includes(w.text))) w.resolve()
  })
  child.stdout!.resume()
  const exit = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1))))
  return {
    child,
    stderr: () => stderr,
    until: (text) =>
      new Promise<void>((resolve, reject) => {
        if (stderr.includes(text)) return resolve()
        waiters.push({text, resolve})
        void exit.then((code) => reject(new Error(`r1 exited ${code} before printing "${text}": ${stderr}`)))
      }),
    exit,
  }
}

beforeAll(async () => {
  const cli = await cliIdentity(root.dir)
  env = cli.env
  nodes = await Promise.all(['n1', 'n2', 'n3', 'n4'].map((alias) => startNode({dataDir: join(root.dir, alias), allow: [cli.address], extraArgs: ['--alias', alias, '--heartbeat-interval', '1']})))
  mkdirSync(join(project, 'src'), {recursive: true})
  copyFileSync(join(PROBE_PROJECT, 'src/probe.ts'), join(project, 'src/probe.ts'))
  writeProject({mode: 'ok'})
  const first = await deploy(['--all', '--json'])
  expect(first.exitCode, first.stderr + first.stdout).toBe(0)
}, 120_000)

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  root.dispose()
})

describe.sequential('r1 deploy in waves against real nodes', () => {
  it('refuses rollout flags that do not go together or do not parse (exit 2, naming the flag)', async () => {
    const soakAlone = await deploy(['--all', '--soak', '5s', '--json'])
    expect(soakAlone.exitCode).toBe(2)
    expect(soakAlone.json.error.message).toContain('--soak applies to a rollout in waves')
    const short = await deploy(['--all', '--waves', '1,50%', '--json'])
    expect(short.exitCode).toBe(2)
    expect(short.json.error.message).toContain('the last wave must be 100%')
    expect((await deploy(['--all', '--canary', '1', '--atomic', '--json'])).exitCode).toBe(2)
    expect((await deploy(['--all', '--canary', '1', '--max-failed', 'some', '--json'])).exitCode).toBe(2)
    expect((await current('n1')).version).toBe(1)
  })

  it('--dry-run shows which targets go in which wave and each plan; nothing changes', async () => {
    writeProject({mode: 'ok', level: 2})
    const planned = await deploy(['--all', '--waves', '1,50%,100%', '--dry-run', '--json'])
    expect(planned.exitCode, planned.stderr).toBe(0)
    expect(planned.json.waves.map((w: any) => w.targets)).toEqual([['n1'], ['n2'], ['n3', 'n4']])
    expect(planned.json.targets.every((t: any) => t.status === 'planned' && t.plan.changed)).toBe(true)
    const human = await deploy(['--all', '--waves', '1,50%,100%', '--dry-run'])
    expect(human.stdout).toMatch(/wave 1 \(not started\): n1\nwave 2 \(not started\): n2\nwave 3 \(not started\): n3, n4/)
    expect(human.stdout).toContain('~ LEVEL: 1 → 2')
    expect((await current('n1')).version).toBe(1)
  })

  it('a healthy version goes out wave by wave, is recorded, and `r1 rollouts ls|show` tell it', async () => {
    const result = await deploy(['--all', '--waves', '1,50%,100%', '--soak', '1s', '-m', 'level 2', '--json'])
    expect(result.exitCode, result.stderr + result.stdout).toBe(0)
    expect(result.json.waves.map((w: any) => w.state)).toEqual(['done', 'done', 'done'])
    const t = byTarget(result.json)
    for (const alias of ['n1', 'n2', 'n3', 'n4']) expect(t[alias]).toMatchObject({status: 'deployed', health: {status: 'ok'}})
    expect([t.n1.wave, t.n2.wave, t.n3.wave, t.n4.wave]).toEqual([1, 2, 3, 3])

    const status = await r1(['status', '--dir', project, '--target', 'n3', '--json'], {env})
    expect(status.json.targets[0].result.pipelines[0].instances[0].health).toEqual({status: 'ok'}) // from the heartbeat

    const ls = await r1(['rollouts', 'ls', '--dir', project, '--json'], {env})
    expect(ls.exitCode, ls.stderr).toBe(0)
    const record = ls.json.rollouts.at(-1)
    expect(record).toMatchObject({id: result.json.id, message: 'level 2', exitCode: 0})
    expect(record.who).toMatch(/^0xai_/)
    const show = await r1(['rollouts', 'show', result.json.id, '--dir', project], {env})
    expect(show.exitCode, show.stderr).toBe(0)
    expect(show.stdout).toMatch(/n3\s+3\s+deployed/)
  })

  it('a rollout whose record cannot be written still reports what happened on the nodes', async () => {
    const history = join(project, '.r1/rollouts')
    mkdirSync(history, {recursive: true})
    renameSync(history, `${history}.kept`)
    writeFileSync(history, 'not a folder')
    try {
      const result = await deploy(['--all', '--canary', '1', '--soak', '0', '--json'])
      expect(result.exitCode, result.stderr).toBe(0)
      expect(result.json.targets.map((t: any) => t.status)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged'])
      expect(result.json.historyError).toContain('could not be recorded')
      expect(result.stderr).toContain('warning: the rollout could not be recorded')
    } finally {
      rmSync(history)
      renameSync(`${history}.kept`, history)
    }
  })

  it('a version that crash-loops on the canary is stopped after wave 1 and put back there (exit 8)', async () => {
    const before = await current('n1')
    writeProject({mode: 'crash', level: 2})
    const result = await deploy(['--all', '--canary', '1', '--soak', '20s', '--json'])
    expect(result.exitCode, result.stderr + result.stdout).toBe(8)
    expect(result.json).toMatchObject({reason: 'aborted', rolledBack: true})
    const t = byTarget(result.json)
    expect(t.n1.status).toBe('rolled-back')
    expect(t.n1.error).toMatch(/crash|restarting|error/)
    for (const alias of ['n2', 'n3', 'n4']) expect(t[alias].status).toBe('untouched')
    expect(await current('n1')).toMatchObject({restoredFrom: before.version})
    expect((await current('n2')).version).toBe(before.version)
  })

  it('a plugin health check failing in wave 2 aborts the rollout and puts waves 1 and 2 back', async () => {
    const before = await Promise.all(['n1', 'n2', 'n3'].map((a) => current(a)))
    writeProject({mode: 'sick', level: 3, sickOn: 'n2'})
    const result = await deploy(['--all', '--waves', '1,2,100%', '--soak', '10s', '--json'])
    expect(result.exitCode, result.stderr + result.stdout).toBe(8)
    const t = byTarget(result.json)
    expect(t.n1.status).toBe('rolled-back')
    expect(t.n2).toMatchObject({status: 'rolled-back', health: {status: 'failed'}})
    expect(t.n2.error).toContain('sick on purpose')
    expect(t.n3.status).toBe('untouched')
    expect(result.json.waves.map((w: any) => w.state)).toEqual(['done', 'stopped', 'not started'])
    expect(result.json.signalToRollbackMs).toBeGreaterThanOrEqual(0)
    expect(await current('n1')).toMatchObject({restoredFrom: before[0].version})
    expect(await current('n2')).toMatchObject({restoredFrom: before[1].version})
    expect((await current('n3')).version).toBe(before[2].version)
  })

  it('beforeUpdate: a refusal fails that node with the reason and changes nothing; a deferral delays the update', async () => {
    writeProject({mode: 'refused'})
    const refused = await deploy(['--all', '--canary', '1', '--soak', '0', '--json'])
    expect(refused.exitCode, refused.stdout).toBe(8)
    const t = byTarget(refused.json)
    expect(t.n1.status).toBe('rejected')
    expect(t.n1.error).toContain('refused the update: MODE refused is not welcome here')
    expect(t.n2.status).toBe('untouched')

    writeProject({mode: 'deferred'})
    const deferred = await deploy(['--target', 'n1', '--json'])
    expect(deferred.exitCode, deferred.stderr + deferred.stdout).toBe(0)
    const logs = await r1(['logs', '--dir', project, '--target', 'n1', '--type', 'notification', '--tail', '1000', '--json'], {env})
    const notes = logs.stdout.trim().split('\n').map((l) => JSON.parse(l))
    const deferrals = notes.filter((n) => n.NOTIFICATION_CODE === 111)
    expect(deferrals).toHaveLength(2)
    expect(deferrals[0].NOTIFICATION).toContain('finishing a batch')
  })

  it('a node that dies mid-rollout counts as failed; within --max-failed the rollout goes on (exit 6)', async () => {
    writeProject({mode: 'ok', level: 5})
    const run = spawnCli(['deploy', '--all', '--dir', project, '--waves', '1,2,100%', '--soak', '8s', '--max-failed', '1'])
    await run.until('wave 2: soaking')
    nodes[1].child.kill('SIGKILL')
    expect(await run.exit, run.stderr()).toBe(6)
    const show = await r1(['rollouts', 'show', 'last', '--dir', project, '--json'], {env})
    const t = byTarget(show.json)
    expect(t.n2.status).toBe('failed')
    expect(t.n2.error).toMatch(/connection lost|no heartbeat/)
    for (const alias of ['n1', 'n3', 'n4']) expect(t[alias].status).toBe('deployed')
    nodes[1] = await startNode({dataDir: join(root.dir, 'n2'), extraArgs: ['--alias', 'n2', '--heartbeat-interval', '1']})
    writeProject({mode: 'ok', level: 5})
  })

  it('Ctrl-C mid-rollout without a terminal stops starting waves and puts back what was updated (exit 130)', async () => {
    const before = await current('n1')
    writeProject({mode: 'ok', level: 6})
    const run = spawnCli(['deploy', '--all', '--dir', project, '--waves', '1,100%', '--soak', '60s'])
    await run.until('wave 1: soaking')
    run.child.kill('SIGINT')
    expect(await run.exit, run.stderr()).toBe(130)
    const show = await r1(['rollouts', 'show', 'last', '--dir', project, '--json'], {env})
    expect(show.json).toMatchObject({reason: 'interrupted', rolledBack: true})
    const t = byTarget(show.json)
    expect(t.n1.status).toBe('rolled-back')
    for (const alias of ['n2', 'n3', 'n4']) expect(t[alias].status).toBe('untouched')
    expect(await current('n1')).toMatchObject({restoredFrom: before.version})
  })

  it.skipIf(!hasScript)('Ctrl-C on a terminal asks; answering no keeps the updated targets as they are (exit 130)', async () => {
    writeProject({mode: 'ok', level: 7})
    const command = [process.execPath, bin, 'deploy', '--all', '--dir', project, '--waves', '1,100%', '--soak', '60s'].map((a) => `'${a}'`).join(' ')
    // `script` gives the CLI a terminal; what is typed into its stdin reaches the CLI as keys (Ctrl-C included)
    const child = spawn('script', ['-qefc', command, '/dev/null'], {cwd: repoRoot, env: {...process.env, NO_COLOR: '1', CI: '1', ...env}, stdio: ['pipe', 'pipe', 'pipe']})
    let screen = ''
    child.stdout!.on('data', (chunk) => (screen += chunk))
    const exit = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)))
    const until = async (text: string) => {
      while (!screen.includes(text)) {
        if (child.exitCode !== null) throw new Error(`exited before "${text}": ${screen}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    await until('wave 1: soaking')
    child.stdin!.write('\u0003')
    await until('put the nodes updated so far back')
    child.stdin!.write('n\r')
    expect(await exit, screen).toBe(130)
    const show = await r1(['rollouts', 'show', 'last', '--dir', project, '--json'], {env})
    expect(show.json).toMatchObject({reason: 'interrupted', rolledBack: false})
    const t = byTarget(show.json)
    expect(t.n1.status).toBe('deployed')
    expect(t.n2.status).toBe('untouched')
    const history = await r1(['pipelines', 'history', 'probe', '--dir', project, '--target', 'n1', '--json'], {env})
    expect(history.json.targets[0].result.versions.at(-1)).toMatchObject({current: true})
    expect(history.json.targets[0].result.versions.at(-1).restoredFrom).toBeUndefined()
  })
})
