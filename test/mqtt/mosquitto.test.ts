// The broker transport through Debian's mosquitto (skipped, saying why, when it is not installed).
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {startMosquitto} from '../../bench/servers.js'
import {discoverNodes} from '../../src/deploy/discover.js'
import {NotificationCode} from '../../src/protocol/codes.js'
import {Session} from '../../src/session/index.js'
import {skipWithout, type TestBroker} from '../broker/helpers.js'
import {until} from '../runtime/helpers.js'
import {execPipeline, startTestNode, type TestNode} from '../server/helpers.js'

describe.skipIf(skipWithout('mosquitto'))('a node served through mosquitto', () => {
  let broker: TestBroker
  let test: TestNode

  beforeAll(async () => {
    broker = await startMosquitto()
    test = await startTestNode({broker: {url: broker.url}, listen: false, heartbeatIntervalMs: 500, tags: {site: 'mosquitto'}})
    await until(() => test.node.broker?.connected, 10_000, 'the node on mosquitto')
  })

  afterAll(async () => {
    await test?.dispose()
    await broker?.stop()
  })

  it('is discovered by its heartbeat, deploys confirmed, and streams a subscription in seq order', async () => {
    const heard = await discoverNodes({url: broker.url}, test.client, {listenMs: 1500, connectTimeoutMs: 5000, tags: {site: 'mosquitto'}})
    expect(heard.map((n) => n.address)).toEqual([test.node.address])
    const session = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000})
    try {
      const seqs: number[] = []
      const stream = (async () => {
        for await (const item of session.subscribe({types: ['PAYLOAD']})) {
          if (item.EE_EVENT_TYPE === 'PAYLOAD') seqs.push(item.EE_MESSAGE_SEQ)
          if (seqs.length >= 20) return
        }
      })()
      await session.send('UPDATE_CONFIG', execPipeline('via-mosquitto', 'exec-1', 0.05), {expect: [{code: NotificationCode.PIPELINE_OK, pipeline: 'via-mosquitto'}], timeoutMs: 20_000})
      await stream
      expect(new Set(seqs).size).toBe(seqs.length)
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    } finally {
      await session.close()
    }
  })
})
