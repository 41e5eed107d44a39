// A node serving CStore and R1FS: a process app using the unmodified Ratio1 client finds both through the
// environment the node gives it; `r1 run`'s embedded node serves them on free ports; they stop with the node.
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {ProjectRun} from '../../src/runtime/project-run.js'
import {startTestNode, type TestNode} from '../server/helpers.js'
import {FAST, FIXTURES, meta, until} from '../runtime/helpers.js'
import {repoRoot} from '../deploy/nodes.js'

// the app: the published client, configured by nothing but the node's environment (its CommonJS build:
// the 1.5.2 ESM build has extensionless imports that plain Node cannot load)
const APP = `
const {EdgeSdk} = require('@ratio1/edge-sdk-ts')
const sdk = new EdgeSdk()
;(async () => {
  const {cid} = await sdk.r1fs.addJson({data: {from: 'app'}, fn: 'app.json'})
  await sdk.cstore.setValue({key: 'app/env', value: {cid, cstore: process.env.EE_CHAINSTORE_API_URL, r1fs: process.env.EE_R1FS_API_URL, both: process.env.CSTORE_API_URL === process.env.EE_CHAINSTORE_API_URL && process.env.R1FS_API_URL === process.env.EE_R1FS_API_URL}})
  setInterval(() => undefined, 60_000)
})()
`

let test: TestNode | undefined
afterEach(async () => {
  await test?.dispose()
  test = undefined
})

describe('a node with services', () => {
  it('gives every process app the services’ URLs; the Ratio1 client works with no configuration', async () => {
    test = await startTestNode({services: {cstorePort: 0, r1fsPort: 0}, core: {supervisor: {...FAST, runAs: false}}})
    const {node} = test
    expect(node.services).toEqual({cstoreUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), r1fsUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/)})
    const services = node.core.services!
    const logs: string[] = []
    node.core.onEvent((event) => logs.push(JSON.stringify(event).slice(0, 400)))
    await node.core.execute(
      'UPDATE_CONFIG',
      {NAME: 'app', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'PROCESS_APP_RUNNER', INSTANCES: [{INSTANCE_ID: 'sdk', COMMAND: [process.execPath, '-e', APP], CWD: repoRoot}]}]},
      meta(),
    )
    const seen = (await until(() => services.cstore.get('app/env'), 30_000, 'the app to write CStore').catch((error: Error) => {
      throw new Error(`${error.message}; the node said: ${logs.join('\n')}`)
    })) as {cid: string; cstore: string; r1fs: string; both: boolean}
    expect(seen).toMatchObject({cstore: node.services!.cstoreUrl, r1fs: node.services!.r1fsUrl, both: true})
    const file = await services.r1fs.get(seen.cid)
    expect(file?.filename).toBe('app.json')
  })

  it('stops serving with the node', async () => {
    test = await startTestNode({services: {cstorePort: 0, r1fsPort: 0}})
    const {cstoreUrl} = test.node.services!
    expect((await fetch(`${cstoreUrl}/get_status`)).status).toBe(200)
    await test.node.stop()
    await expect(fetch(`${cstoreUrl}/get_status`)).rejects.toThrow()
  })

  it('reports a services port in use clearly and starts nothing', async () => {
    test = await startTestNode({services: {cstorePort: 0, r1fsPort: 0}})
    const taken = Number(new URL(test.node.services!.r1fsUrl).port)
    await expect(startTestNode({services: {cstorePort: 0, r1fsPort: taken}})).rejects.toMatchObject({code: 'PORT_IN_USE', message: expect.stringContaining(`Cannot serve R1FS on 127.0.0.1:${taken}`), hint: expect.stringContaining('--r1fs-port')})
  })
})

describe('r1 run', () => {
  it('serves CStore and R1FS to the plugins of its embedded node, on free ports', async () => {
    const run = await ProjectRun.start(join(FIXTURES, 'basic'), {heartbeatIntervalMs: 0})
    try {
      const services = run.node.services!
      expect(await services.cstore.set('run', 1)).toBe(true)
      expect(await services.cstore.get('run')).toBe(1)
    } finally {
      await run.stop()
    }
  })
})
