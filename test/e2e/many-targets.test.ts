// A fleet command with many targets in flight at once: each waits on Ctrl-C's signal, which must not read as a
// leak; and many deploys of one config racing to one node are each confirmed.
import {appendFileSync, cpSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, expect, it} from 'vitest'
import {type NodeProcess, cliIdentity, r1, startNode, tempRoot} from '../deploy/nodes.js'

const root = tempRoot('r1-e2e-many-')
let node: NodeProcess | undefined

afterAll(async () => {
  await node?.stop()
  root.dispose()
})

it('a deploy to 12 targets at once (one node under 12 names, racing) is confirmed by all, with no listener-leak warning on stderr', async () => {
  const {env, address} = await cliIdentity(root.dir)
  node = await startNode({dataDir: join(root.dir, 'node'), allow: [address]})
  const project = join(root.dir, 'project')
  cpSync(fileURLToPath(new URL('../fixtures/projects/basic', import.meta.url)), project, {recursive: true})
  // one node under 12 names: a path in the url makes each its own target, with its own session
  appendFileSync(join(project, 'config.yaml'), `targets:\n${Array.from({length: 12}, (_, i) => `  name-${i}: { url: "${node!.url}/name-${i}", address: "${node!.address}" }\n`).join('')}`)
  const result = await r1(['deploy', '--all', '--max-concurrent', '12', '--wait-timeout', '30', '--json', '--dir', project], {env})
  expect(result.exitCode, result.stdout + result.stderr).toBe(0)
  expect(result.json.targets).toHaveLength(12)
  expect(result.stderr).not.toContain('MaxListenersExceededWarning')
}, 60_000)
