// Files travel with the deploy: the built CLI ships a plugin's `files:` to a real `r1 node start`, each
// instance runs in its own work dir holding them, a setup command runs once per version of the files
// (its output as LOG events), a failing setup is an instance error, and validate catches what is not shipped.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {Identity} from '../../src/protocol/identity.js'
import {type NodeProcess, cliIdentity, r1, startNode, tempRoot} from '../deploy/nodes.js'
import {cliKeyIdentity} from '../logs/helpers.js'

const root = tempRoot('r1-e2e-files-')
const project = join(root.dir, 'project')
let env: Record<string, string>
let node: NodeProcess
let identity: Identity

function writeProject(options: {setup?: string; files?: string; version?: string}): void {
  mkdirSync(join(project, 'app'), {recursive: true})
  writeFileSync(join(project, 'app', 'run.sh'), `echo "version ${options.version ?? 'one'} setup=$(cat setup.txt 2>/dev/null) cwd=$(pwd)"\nsleep 300\n`)
  writeFileSync(join(project, 'app', 'data.txt'), 'data\n')
  writeFileSync(
    join(project, 'config.yaml'),
    `name: shipped
version: 0.1.0
plugins:
  PROCESS_APP_RUNNER:
    files: [${options.files ?? 'app/**'}]
${options.setup ? `    setup: ${JSON.stringify(options.setup)}\n` : ''}pipelines:
  apps:
    instances:
      app-1:
        plugin: PROCESS_APP_RUNNER
        config: { command: [sh, app/run.sh], process_delay: 0.1 }
      app-2:
        plugin: PROCESS_APP_RUNNER
        config: { command: "sh app/run.sh", process_delay: 0.1 }
targets:
  edge-a: { url: "${node.url}", address: "${node.address}" }
`,
  )
}

async function events(type: string, extra: string[] = []): Promise<Array<Record<string, any>>> {
  const run = await r1(['logs', '--dir', project, '--json', '--since', '1h', '--type', type, '--pipeline', 'apps', ...extra], {env})
  expect(run.exitCode, run.stderr).toBe(0)
  return run.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
}

async function until<T>(get: () => Promise<T>, ok: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 45_000
  for (;;) {
    const value = await get()
    if (ok(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 2000)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** The lines the app (app/run.sh) printed, from LOG events (the setup's output is logged on an instance's path too). */
const outputOf = (logs: Array<Record<string, any>>, instance: string): string[] =>
  logs.filter((l) => l.EE_PAYLOAD_PATH[3] === instance && l.LEVEL === 'info' && String(l.MESSAGE).startsWith('version ')).map((l) => l.MESSAGE)

beforeAll(async () => {
  const cli = await cliIdentity(root.dir)
  env = cli.env
  identity = await cliKeyIdentity(env)
  node = await startNode({dataDir: join(root.dir, 'node'), allow: [cli.address], env})
}, 120_000)

afterAll(async () => {
  await node?.stop()
  root.dispose()
})

describe.sequential('files travel with the deploy', () => {
  it('validate refuses an instance whose command names a file that is not shipped', async () => {
    writeProject({files: 'app/data.txt'})
    const run = await r1(['validate', project, '--json'], {env})
    expect(run.exitCode).toBe(3)
    expect(run.stdout).toMatch(/file-not-shipped/)
    expect(run.stdout).toMatch(/app\/run\.sh/)
  })

  it('each instance runs in its own work dir holding the files; the setup ran once, before them', async () => {
    writeProject({setup: 'echo preparing; echo ok > setup.txt'})
    const deployed = await r1(['deploy', '--dir', project, '--target', 'edge-a', '--json'], {env})
    expect(deployed.exitCode, deployed.stderr + deployed.stdout).toBe(0)
    const lines = await until(() => events('log'), (l) => outputOf(l, 'app-1').length > 0 && outputOf(l, 'app-2').length > 0, 'both apps to print')
    const one = outputOf(lines, 'app-1')[0]!
    const two = outputOf(lines, 'app-2')[0]!
    expect(one).toMatch(/^version one setup=ok cwd=\//)
    const cwd1 = one.split('cwd=')[1]!
    const cwd2 = two.split('cwd=')[1]!
    expect(cwd1).not.toBe(cwd2)
    expect(cwd1.startsWith(node.dataDir)).toBe(false) // outside the node's data dir, which instances may not read
    expect(readFileSync(join(cwd1, 'app', 'data.txt'), 'utf8')).toBe('data\n')
    // the setup ran once for the two instances, its output a LOG event
    const logs = await events('log', ['--search', 'preparing'])
    expect(logs.filter((l) => l.MESSAGE === 'preparing')).toHaveLength(1)
    const status = await r1(['status', '--dir', project, '--target', 'edge-a', '--json'], {env})
    const apps = status.json.targets[0].result.pipelines.find((p: any) => p.name === 'apps')
    expect(apps.instances.map((i: any) => i.status)).toEqual(['running', 'running'])
  })

  it('changed files restart the instances with the new copy; unchanged ones upload nothing', async () => {
    writeProject({setup: 'echo preparing; echo ok > setup.txt', version: 'two'})
    const deployed = await r1(['deploy', '--dir', project, '--target', 'edge-a', '--json'], {env})
    expect(deployed.exitCode, deployed.stderr + deployed.stdout).toBe(0)
    await until(() => events('log'), (l) => outputOf(l, 'app-1').some((line) => line.startsWith('version two')), 'the new version')
    const again = await r1(['deploy', '--dir', project, '--target', 'edge-a', '--json'], {env})
    expect(again.exitCode).toBe(0)
    expect(JSON.stringify(again.json)).not.toMatch(/"uploaded":\s*\[\s*"/)
  })

  it('a failing setup: the instances are in error with the reason, and the deploy says so', async () => {
    writeProject({setup: 'echo cannot install >&2; exit 7', version: 'three'})
    const deployed = await r1(['deploy', '--dir', project, '--target', 'edge-a', '--json', '--wait-timeout', '20'], {env})
    expect(deployed.exitCode).not.toBe(0)
    const status = await until(
      () => r1(['status', '--dir', project, '--target', 'edge-a', '--json'], {env}),
      (s) => s.json?.targets?.[0]?.result?.pipelines?.find((p: any) => p.name === 'apps')?.instances.every((i: any) => i.status === 'error'),
      'instances in error',
    )
    const apps = status.json.targets[0].result.pipelines.find((p: any) => p.name === 'apps')
    expect(apps.instances[0].lastError).toMatch(/setup .* failed \(exit 7\): cannot install/)
    const notes = await events('notification', ['--search', 'cannot install'])
    expect(notes.some((n) => n.NOTIFICATION_CODE === -100)).toBe(true)
    void identity
  })
})
