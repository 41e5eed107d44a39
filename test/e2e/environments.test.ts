// Tags and environments end to end: `r1 validate` diagnostics, `--tag`/`--env` selection and `deploy --env`
// (dry run and for real) with the built CLI against real node processes.
import {appendFileSync, cpSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type NodeProcess, cliIdentity, r1, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-env-')
const project = join(root.dir, 'project')
let env: Record<string, string>
let nodes: NodeProcess[] = []

const cli = (args: string[]) => r1([...args, '--dir', project], {env})
const targetsOf = (json: any): string[] => json.targets.map((t: any) => t.target)

beforeAll(async () => {
  const identity = await cliIdentity(root.dir)
  env = identity.env
  nodes = await Promise.all(['north', 'south', 'lab'].map((n) => startNode({dataDir: join(root.dir, `node-${n}`), allow: [identity.address], env})))
  cpSync(fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url)), project, {recursive: true})
  const [north, south, lab] = nodes
  appendFileSync(
    join(project, 'config.yaml'),
    [
      'targets:',
      `  north: { url: "${north.url}", address: "${north.address}", tags: { site: north, tier: prod } }`,
      `  south: { url: "${south.url}", address: "${south.address}", tags: { site: south, tier: prod } }`,
      `  lab: { url: "${lab.url}", address: "${lab.address}", tags: { site: north, tier: lab } }`,
      'environments:',
      '  staging: { targets: [lab] }',
      '  production:',
      '    tags: { tier: prod }',
      '    config:',
      '      counting:',
      '        counter-1: { STEP: 5 }',
      '',
    ].join('\n'),
  )
}, 120_000)

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  root.dispose()
})

describe.sequential('tags and environments', () => {
  it('--tag selects by every tag given; --env by the environment; bad selections exit 2', async () => {
    const north = await cli(['status', '--tag', 'site=north', '--json'])
    expect(north.exitCode, north.stderr).toBe(0)
    expect(targetsOf(north.json)).toEqual(['north', 'lab'])
    expect(targetsOf((await cli(['status', '--tag', 'site=north', '--tag', 'tier=prod', '--json'])).json)).toEqual(['north'])
    expect(targetsOf((await cli(['status', '--env', 'production', '--json'])).json)).toEqual(['north', 'south'])
    expect(targetsOf((await cli(['pipelines', 'ls', '--env', 'staging', '--json'])).json)).toEqual(['lab'])

    const none = await cli(['status', '--tag', 'site=west', '--json'])
    expect(none.exitCode).toBe(2)
    expect(none.json.error).toMatchObject({code: 'NO_TARGET_MATCH', hint: expect.stringContaining('site=north, site=south, tier=lab, tier=prod')})
    const malformed = await cli(['status', '--tag', 'site'])
    expect(malformed.exitCode).toBe(2)
    expect(malformed.stderr).toContain('--tag "site" is not name=value')
    const unknown = await cli(['deploy', '--env', 'prodution', '--dry-run', '--json'])
    expect(unknown.exitCode).toBe(2)
    expect(unknown.json.error.message).toContain('Did you mean "production"?')
  })

  it('deploy --dry-run --env shows the environment, the values it sets and each target plan with them', async () => {
    const human = await cli(['deploy', '--env', 'production', '--dry-run'])
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toContain('environment production\n  counting/counter-1 STEP: 2 → 5')
    expect(human.stdout).toContain('+ STEP: 5')
    expect(human.stdout).not.toContain('lab (')

    const json = await cli(['deploy', '--env', 'production', '--dry-run', '--json'])
    expect(json.json.environment).toEqual({name: 'production', overrides: [{pipeline: 'counting', instance: 'counter-1', key: 'STEP', from: 2, to: 5}]})
    expect(targetsOf(json.json)).toEqual(['north', 'south'])
    expect(json.json.targets.map((t: any) => t.status)).toEqual(['planned', 'planned'])
  })

  it('deploy --env applies the overrides; without --env the same nodes would go back to the instance values', async () => {
    const deployed = await cli(['deploy', '--env', 'production', '--json'])
    expect(deployed.exitCode, deployed.stderr + deployed.stdout).toBe(0)
    expect(deployed.json.targets.map((t: any) => t.status)).toEqual(['deployed', 'deployed'])
    const again = await cli(['deploy', '--env', 'production', '--json'])
    expect(again.json.targets.map((t: any) => t.status)).toEqual(['unchanged', 'unchanged'])
    const plain = await cli(['deploy', '--tag', 'tier=prod', '--dry-run'])
    expect(plain.stdout).toContain('~ STEP: 5 → 2')
    expect(plain.stdout).not.toContain('environment')
  })

  it('r1 validate reports environment problems with rule ids, positions and suggestions (exit 3)', async () => {
    const dir = fileURLToPath(new URL('../fixtures/manifests/invalid/environment-problems', import.meta.url))
    const json = await r1(['validate', dir, '--json'])
    expect(json.exitCode).toBe(3)
    const rules = json.json.diagnostics.map((d: any) => `${d.rule}@${d.line}:${d.col}`)
    expect(rules).toEqual(['env-no-targets@21:3', 'env-unknown-target@23:15', 'env-tags-no-match@24:5', 'env-unknown-pipeline@28:7', 'env-unknown-instance@31:9', 'config-type@32:33', 'config-unknown-key@32:38'])
    const human = await r1(['validate', dir])
    expect(human.exitCode).toBe(3)
    expect(human.stdout).toContain('config.yaml:24:5')
    expect(human.stdout).toContain('did you mean "site=north"?')
  })
})
