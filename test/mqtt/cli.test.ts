// The built CLI over a broker: real `r1 node start --broker` processes on an in-process aedes, and
// on Debian's mosquitto and nats-server (its MQTT listener) when installed: discovery by heartbeat (with
// tags), deploy / rollouts / status / logs / doctor through `brokers` in config.yaml.
import {cpSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'
import {startMosquitto, startNatsServer} from '../../bench/servers.js'
import {generateIdentity} from '../../src/protocol/identity.js'
import {skipWithout, startEmbeddedBroker, type TestBroker} from '../broker/helpers.js'
import {type NodeProcess, cliIdentity, r1, repoRoot, startNode, tempRoot} from '../deploy/nodes.js'

const brokers: Array<[string, string | undefined, () => Promise<TestBroker>]> = [
  ['embedded', undefined, () => startEmbeddedBroker()],
  ['mosquitto', skipWithout('mosquitto'), () => startMosquitto()],
  // nats-server's MQTT listener (JetStream on): the broker recommended for fleets
  [
    'nats-server',
    skipWithout('nats-server'),
    async () => {
      const nats = await startNatsServer({mqtt: true})
      return {...nats, url: nats.mqttUrl!}
    },
  ],
]

describe.each(brokers)('the CLI through a broker (%s)', (_name, skip, startBroker) => {
  const root = tempRoot('r1-mqtt-cli-')
  const project = join(root.dir, 'project')
  let broker: TestBroker
  let env: Record<string, string>
  let lab: NodeProcess
  let field: NodeProcess

  function writeConfig(targets: string, step = 2): void {
    const base = readFileSync(join(repoRoot, 'test/fixtures/projects/basic/config.yaml'), 'utf8').replace('step: 2', `step: ${step}`)
    writeFileSync(join(project, 'config.yaml'), `${base}brokers:\n  local: { url: "${broker.url}" }\ntargets:\n${targets}`)
  }

  beforeAll(async () => {
    if (skip) return
    broker = await startBroker()
    const cli = await cliIdentity(root.dir)
    env = cli.env
    const args = (tag: string) => ['--broker', broker.url, '--tag', `site=${tag}`, '--heartbeat-interval', '1', '--alias', tag]
    ;[lab, field] = await Promise.all([
      startNode({dataDir: join(root.dir, 'lab'), allow: [cli.address], extraArgs: args('lab')}),
      startNode({dataDir: join(root.dir, 'field'), allow: [cli.address], extraArgs: args('field')}),
    ])
    cpSync(join(repoRoot, 'test/fixtures/projects/basic'), project, {recursive: true})
    writeConfig(`  lab: { address: "${lab.address}", broker: local }\n  field: { address: "${field.address}", broker: local }\n`)
  }, 120_000)

  afterAll(async () => {
    await Promise.all([lab, field].filter(Boolean).map((n) => n.stop()))
    await broker?.stop()
    root.dispose()
  })

  describe.sequential('commands', () => {
    beforeEach((context) => {
      if (skip) context.skip()
    })

    it('r1 status --broker lists every node heard, with its tags; --tag filters', async () => {
      const all = await r1(['status', '--broker', broker.url, '--discover', '3', '--json'], {env})
      expect(all.exitCode, all.stderr + all.stdout).toBe(0)
      expect(all.json.targets.map((t: any) => t.address).sort()).toEqual([lab.address, field.address].sort())
      expect(all.json.targets.map((t: any) => t.target).sort()).toEqual(['field', 'lab'])
      const filtered = await r1(['status', '--broker', broker.url, '--discover', '3', '--tag', 'site=lab', '--json'], {env})
      expect(filtered.exitCode, filtered.stderr).toBe(0)
      expect(filtered.json.targets.map((t: any) => t.address)).toEqual([lab.address])
      const none = await r1(['status', '--broker', broker.url, '--discover', '2', '--tag', 'site=moon', '--json'], {env})
      expect(none.exitCode).toBe(7)
      expect(none.json.error.code).toBe('NO_NODE_HEARD')
    })

    it('deploys through the broker targets of config.yaml, confirmed; status and logs read them back', async () => {
      const deployed = await r1(['deploy', '--dir', project, '--all', '--json'], {env, timeoutMs: 120_000})
      expect(deployed.exitCode, deployed.stderr + deployed.stdout).toBe(0)
      expect(deployed.json.targets.map((t: any) => t.status)).toEqual(['deployed', 'deployed'])
      const status = await r1(['status', '--dir', project, '--target', 'lab', '--json'], {env})
      expect(status.exitCode, status.stderr).toBe(0)
      expect(status.json.targets[0].result.pipelines.map((p: any) => p.name)).toEqual(['counting'])
      const logs = await r1(['logs', '--dir', project, '--target', 'field', '--type', 'payload', '--tail', '5', '--json'], {env})
      expect(logs.exitCode, logs.stderr).toBe(0)
      const lines = logs.stdout.trim().split('\n').map((l) => JSON.parse(l))
      expect(lines.length).toBeGreaterThan(0)
      const seqs = lines.map((l: any) => l.EE_MESSAGE_SEQ)
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b))
    })

    it('rolls out through the broker: waves watched by heartbeats over it, recorded; a canary that fails is put back (exit 8)', async () => {
      const targets = `  lab: { address: "${lab.address}", broker: local }\n  field: { address: "${field.address}", broker: local }\n`
      writeConfig(targets, 3)
      // a 3 s soak outlasts 2.5 heartbeat periods: heartbeats that did not come through the broker would fail it
      const healthy = await r1(['deploy', '--dir', project, '--all', '--canary', '1', '--soak', '3s', '--json'], {env, timeoutMs: 120_000})
      expect(healthy.exitCode, healthy.stderr + healthy.stdout).toBe(0)
      expect(healthy.json.waves.map((w: any) => [w.targets, w.state])).toEqual([[['lab'], 'done'], [['field'], 'done']])
      expect(healthy.json.targets.map((t: any) => [t.target, t.status, t.health?.status])).toEqual([['lab', 'deployed', 'ok'], ['field', 'deployed', 'ok']])
      const listed = await r1(['rollouts', 'ls', '--dir', project, '--json'], {env})
      expect(listed.json.rollouts.map((r: any) => r.id)).toContain(healthy.json.id)

      writeConfig(targets, -1) // the plugin's config() refuses a negative step
      const failing = await r1(['deploy', '--dir', project, '--all', '--canary', '1', '--soak', '1s', '--json'], {env, timeoutMs: 120_000})
      expect(failing.exitCode, failing.stderr + failing.stdout).toBe(8)
      expect(failing.json.rolledBack).toBe(true)
      const [canary, rest] = failing.json.targets
      expect([canary.target, canary.status, rest.target, rest.status]).toEqual(['lab', 'rolled-back', 'field', 'untouched'])
      expect(canary.error).toContain('STEP must not be negative')
      const history = await r1(['pipelines', 'history', 'counting', '--dir', project, '--target', 'lab', '--json'], {env})
      expect(history.json.targets[0].result.versions.find((v: any) => v.current).restoredFrom).toBeDefined()
      writeConfig(targets)
    })

    it('r1 doctor checks broker targets through the broker (tls skipped); --broker checks the nodes heard, --tag filters', async () => {
      const configured = await r1(['doctor', '--dir', project, '--json'], {env})
      expect(configured.exitCode, configured.stdout + configured.stderr).toBe(0)
      const of = (json: any, target: string) => Object.fromEntries(json.checks.filter((c: any) => c.target === target).map((c: any) => [c.id, c.status]))
      for (const target of ['lab', 'field']) expect(of(configured.json, target)).toEqual({reachable: 'ok', tls: 'skip', address: 'ok', clock: 'ok', 'allow-list': 'ok'})
      const heard = await r1(['doctor', '--broker', broker.url, '--tag', 'site=lab', '--discover', '3', '--json'], {env})
      expect(heard.exitCode, heard.stdout + heard.stderr).toBe(0)
      expect([...new Set(heard.json.checks.filter((c: any) => c.target).map((c: any) => c.target))]).toEqual(['lab'])
      expect(of(heard.json, 'lab')['allow-list']).toBe('ok')
      const none = await r1(['doctor', '--broker', broker.url, '--tag', 'site=moon', '--discover', '2', '--json'], {env})
      expect(none.exitCode).toBe(1)
      expect(none.json.checks.find((c: any) => c.target === broker.url)).toMatchObject({id: 'reachable', status: 'fail', details: {code: 'NO_NODE_HEARD'}})
    })

    it('an ad hoc --broker with --address: the command reaches that node; a node not on the broker is unreachable (7)', async () => {
      const one = await r1(['pipelines', 'ls', '--broker', broker.url, '--address', lab.address, '--json'], {env})
      expect(one.exitCode, one.stderr + one.stdout).toBe(0)
      const ghost = generateIdentity().address
      const gone = await r1(['status', '--broker', broker.url, '--address', ghost, '--connect-timeout', '2', '--json'], {env})
      expect(gone.exitCode).toBe(7)
      expect(gone.json.targets[0].status).toBe('unreachable')
    })

    it('bad input: an unknown broker name, --broker with --node, a target with neither url nor broker', async () => {
      const unknown = await r1(['status', '--dir', project, '--broker', 'locl', '--json'], {env})
      expect(unknown.exitCode).toBe(2)
      expect(unknown.json.error.message).toMatch(/Did you mean "local"/)
      const mixed = await r1(['status', '--broker', broker.url, '--node', 'ws://127.0.0.1:1', '--address', lab.address, '--json'], {env})
      expect(mixed.exitCode).toBe(2)
      writeConfig(`  lab: { address: "${lab.address}" }\n  field: { address: "${field.address}", broker: nowhere }\n`)
      const invalid = await r1(['validate', project, '--json'], {env})
      expect(invalid.exitCode).toBe(3)
      const rules = JSON.stringify(invalid.json)
      expect(rules).toContain('target-transport')
      expect(rules).toContain('ref-broker')
      writeConfig(`  lab: { address: "${lab.address}", broker: local }\n  field: { address: "${field.address}", broker: local }\n`)
    })
  })
})
