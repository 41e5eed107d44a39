// The client's broker connection drops under a session: what it sent just before goes unanswered and
// what it sends afterwards finds no connection, both exit 7, and both errors say when the broker
// connection dropped and why, so an operator reading a deploy's failed targets knows that this
// client lost the broker, not that each node went silent.
import {describe, expect, it} from 'vitest'
import {Session} from '../../src/session/index.js'
import {nodeOnEmbeddedBroker} from '../broker/helpers.js'

describe('a client whose broker connection drops', () => {
  const fixture = nodeOnEmbeddedBroker()

  it('refuses what it sends meanwhile as unreachable, naming the drop and its cause', async () => {
    const {broker, test} = fixture
    const session = await Session.connect({url: broker.url, broker: {url: broker.url}, nodeAddress: test.node.address, identity: test.client, connectTimeoutMs: 2000, pingIntervalMs: 500})
    try {
      expect((await session.state()).ADDRESS).toBe(test.node.address)
      await broker.stop()
      const refused = await session.state().then(
        () => undefined,
        (error: unknown) => error as {exitCode: number; code: string; message: string},
      )
      // sent before the client saw the drop: it goes unanswered, and the session gives up on it once silent too long
      expect(refused?.exitCode).toBe(7)
      const dropped = /no connection to the broker since \d{4}-\d\d-\d\dT[\d:.]+Z \((read ECONNRESET|closed by the broker or the network)\)/
      // or, sent once the client saw the drop, it waited for the connection (its connect timeout), and says the same
      expect(refused!.message).toMatch(new RegExp(`(${dropped.source})|(^Not connected to the broker mqtt://127\\.0\\.0\\.1:\\d+ since \\S+ \\((read ECONNRESET|closed by the broker or the network)\\))`))
      const later = await session.state().then(
        () => undefined,
        (error: unknown) => error as {exitCode: number; code: string; message: string},
      )
      expect(later).toMatchObject({exitCode: 7})
      // (the session's link closed by then, or not yet: it says the same)
      expect(later!.message).toMatch(/^Not connected to mqtt:\/\/127\.0\.0\.1:\d+: (the last connection closed with 1006 )?no connection to the broker since /)
      expect(later!.message).toMatch(dropped)
    } finally {
      await session.close()
    }
  })
})
