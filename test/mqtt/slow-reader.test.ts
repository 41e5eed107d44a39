// A subscriber reading slower than the node emits, through a broker: the client asks the node to
// stop the stream instead of buffering without bound, then resumes from the journal; every event
// arrives once, in order.
import {describe, expect, it} from 'vitest'
import {Session} from '../../src/session/index.js'
import {until} from '../runtime/helpers.js'
import {nodeOnEmbeddedBroker} from '../broker/helpers.js'

describe('a slow reader through a broker', () => {
  const fixture = nodeOnEmbeddedBroker()

  it('holds the node back past its queue limit, then catches up from the journal: each seq once, none missing', async () => {
    const {broker, test} = fixture
    const session = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 5000})
    try {
      const code = 'for (let i = 0; i < 1000; i++) plugin.emit({I: i}); return null'
      const stream = session.subscribe() // every event: the node's seqs are one contiguous run
      const first = stream.next() // subscribes; nothing more is read for now
      await session.send('UPDATE_CONFIG', {NAME: 'flood', TYPE: 'Void', PLUGINS: [{SIGNATURE: 'CUSTOM_EXEC_01', INSTANCES: [{INSTANCE_ID: 'f-1', PROCESS_DELAY: 0.05, CODE: code}]}]}, {expect: [{code: 1}], timeoutMs: 30_000})
      await until(() => test.node.core.lastSeq() > 25_000, 60_000, '25,000 events on the node')
      // held back: while nothing is read the node emits on, but no longer publishes for this session
      const published = test.node.broker!.stats.published
      const emitted = test.node.core.lastSeq()
      await until(() => test.node.core.lastSeq() > emitted + 2000, 30_000, '2,000 more events')
      expect(test.node.broker!.stats.published - published).toBe(0)
      await session.send('DELETE_CONFIG', 'flood', {expect: [{code: 5}], timeoutMs: 30_000})
      const last = test.node.core.lastSeq()
      const seqs: number[] = []
      const firstItem = (await first).value
      if (firstItem && firstItem.EE_EVENT_TYPE !== 'R1_GAP') seqs.push(firstItem.EE_MESSAGE_SEQ)
      for await (const item of stream) {
        if (item.EE_EVENT_TYPE === 'R1_GAP') throw new Error(`unexpected gap ${JSON.stringify(item)}`)
        seqs.push(item.EE_MESSAGE_SEQ)
        if (item.EE_MESSAGE_SEQ >= last) break
      }
      expect(new Set(seqs).size).toBe(seqs.length)
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
      expect(seqs[0]).toBe(1)
      expect(seqs.at(-1)).toBe(last)
      expect(seqs.length).toBe(last)
      expect(seqs.length).toBeGreaterThan(20_000)
    } finally {
      await session.close()
    }
  }, 120_000)
})
