// Strangers' heartbeat requests against a real node: answered from what the node already has, never
// written to its journal one event per request (which would let any key push history out).
import {afterAll, describe, expect, it} from 'vitest'
import {generateIdentity} from '../../src/protocol/identity.js'
import {AdvNode, Conn, envelope, roundTrip, sign} from './harness.js'

describe('adversarial: heartbeats asked by strangers', () => {
  const allowed = generateIdentity()
  let node: AdvNode | undefined
  afterAll(async () => node?.dispose())

  it('a hundred FULL_HEARTBEAT requests from a stranger do not grow the journal', async () => {
    node = await AdvNode.start([allowed.address])
    const checker = new Conn(node.url, node.address, 'checker')
    await checker.connect()
    const lastSeq = async () => {
      const {answer} = await roundTrip(checker, allowed, 'R1_STATE', null, node!.address)
      return (answer as {RESULT?: {LAST_SEQ?: number}} | undefined)?.RESULT?.LAST_SEQ
    }
    const before = await lastSeq()
    expect(before).toBeTypeOf('number')

    const stranger = new Conn(node.url, node.address, 'stranger')
    await stranger.connect()
    const strangerKey = generateIdentity()
    for (let i = 0; i < 100; i++) {
      const {text, hash} = sign(envelope('FULL_HEARTBEAT', null, node.address), strangerKey)
      await stranger.send(text, {hash})
    }
    await stranger.settle()
    stranger.close()

    // The node's own periodic heartbeat may add one or two events meanwhile; a hundred would be one per request.
    expect((await lastSeq())! - before!).toBeLessThan(10)
    checker.close()
  })
})
