// Every broker transport the node and the client dial: mqtt:// (the other tests), mqtts://, ws://
// and wss:// — TLS with the broker's certificate trusted through `ca` (--broker-ca, a broker's `ca:`).
import {readFileSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Session} from '../../src/session/index.js'
import {startEmbeddedBroker} from '../broker/helpers.js'
import {selfSignedCert, tempRoot} from '../deploy/nodes.js'
import {until} from '../runtime/helpers.js'
import {startTestNode} from '../server/helpers.js'

const root = tempRoot('r1-mqtt-transports-')
let tls: {cert: string; key: string}

beforeAll(async () => {
  tls = await selfSignedCert(root.dir)
})
afterAll(() => root.dispose())

describe.each(['mqtts', 'ws', 'wss'] as const)('over %s://', (transport) => {
  it('the node dials out and the client reaches it', async () => {
    const broker = await startEmbeddedBroker(transport === 'mqtts' ? {tls} : {wsPort: 0, ...(transport === 'wss' ? {tls} : {})})
    const url = transport === 'mqtts' ? broker.url : broker.wsUrl!
    const ca = transport === 'ws' ? undefined : readFileSync(tls.cert)
    const config = {url, ...(ca ? {ca} : {})}
    const test = await startTestNode({broker: config, listen: false, heartbeatIntervalMs: 200})
    try {
      await until(() => test.node.broker?.connected, 10_000, `the node on ${url}`)
      const session = await Session.connect({url, broker: config, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000})
      expect((await session.state()).ADDRESS).toBe(test.node.address)
      await session.close()
      if (ca) {
        // without the broker's CA the client is told it cannot connect (exit 7)
        await expect(Session.connect({url, broker: {url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 1500})).rejects.toMatchObject({exitCode: 7})
      }
    } finally {
      await test.dispose()
      await broker.stop()
    }
  })
})
